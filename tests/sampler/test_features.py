import base64
import io

import numpy as np
import pytest
from PIL import Image

from sampler.features import decode_image, featurize_images, featurize_texts, featurize_vectors


def png(color=128, size=(8, 8)) -> str:
    buffer = io.BytesIO()
    image = Image.new("L", size, color=color)
    image.putpixel((0, 0), 255 - color)
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_text_rows_do_not_depend_on_the_batch():
    texts = ["a good film", "a bad film", "the plot was thin", "great acting"]
    whole = featurize_texts(texts)
    parts = np.concatenate([featurize_texts(texts[:1]), featurize_texts(texts[1:])])
    np.testing.assert_allclose(whole, parts, atol=1e-6)
    assert whole.shape == (4, 256) and whole.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1, atol=1e-5)


def test_similar_texts_are_closer_than_different_ones():
    a, b, c = featurize_texts(
        ["the cat sat on the mat", "the cat sat on a mat", "stock prices fell"]
    )
    assert a @ b > a @ c


def test_images_are_normalized_pixels():
    rows = featurize_images([png(10), png(200)], size=16)
    assert rows.shape == (2, 256)
    np.testing.assert_allclose(rows.mean(1), 0, atol=1e-6)


@pytest.mark.parametrize(
    "uri",
    [
        "not a uri",
        "data:image/png;base64,@@@",
        "data:image/png;base64,bm90IGFuIGltYWdl",
        "data:text/plain;base64,aGVsbG8=",
    ],
)
def test_decode_image_rejects_what_is_not_an_image(uri):
    with pytest.raises(ValueError):
        decode_image(uri)


def test_decode_image_refuses_huge_images():
    with pytest.raises(ValueError, match="larger"):
        decode_image(png(size=(5000, 10)))


def test_vectors_must_share_length_and_be_finite():
    assert featurize_vectors([[1, 2], [3, 4]]).dtype == np.float32
    with pytest.raises(ValueError):
        featurize_vectors([[1, 2], [3]])
    with pytest.raises(ValueError):
        featurize_vectors([[1, float("nan")]])
