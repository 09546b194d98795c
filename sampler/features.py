"""Featurizers: item contents -> float32 feature matrices (n, d).

All of them are stateless: the same item gives the same row whichever batch it is in, so
a pool can be featurized in independent batches (and shards) and rows stay comparable.
Nothing is downloaded: text uses hashed n-grams and a fixed seeded projection.
"""

import base64
import binascii
import io
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

MAX_IMAGE_SIDE = 4096
HASH_FEATURES = 1 << 18
DATA_URI = re.compile(
    r"^data:(?P<mime>image/[a-zA-Z0-9.+-]+)?(?P<params>(;[^,;]*)*?);base64,", re.S
)


@lru_cache(maxsize=4)
def _text_projection(dim: int):
    """A fixed sparse random projection from the hashed n-gram space to `dim`."""
    import scipy.sparse
    from sklearn.random_projection import SparseRandomProjection

    projection = SparseRandomProjection(n_components=dim, random_state=0, dense_output=True)
    projection.fit(scipy.sparse.csr_matrix((1, HASH_FEATURES), dtype=np.float32))
    return projection


@lru_cache(maxsize=1)
def _hashers():
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {
        "n_features": HASH_FEATURES,
        "alternate_sign": False,
        "norm": None,
        "dtype": np.float32,
        "lowercase": True,
    }
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), **common)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)
    return words, chars


def featurize_texts(texts: Sequence[str], *, dim: int = 256) -> np.ndarray:
    """Texts -> float32 (n, dim): hashed word 1-2-grams and character 3-5-grams with
    sublinear term frequency, projected to `dim` by a fixed sparse random projection and
    L2-normalized. Stateless (no vocabulary is fitted)."""
    if len(texts) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    words, chars = _hashers()
    counts = words.transform(texts) + chars.transform(texts)
    counts.data = np.log1p(counts.data)
    dense = np.asarray(_text_projection(dim).transform(counts), dtype=np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return dense / np.maximum(norms, 1e-12)


def decode_image(data_uri: str):
    """Parse a `data:image/...;base64,...` URI into a loaded PIL image.

    Raises ValueError with a clear message for anything else: not a data URI, not base64,
    not a decodable image, or larger than MAX_IMAGE_SIDE on a side.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data_uri, str):
        raise ValueError("expected a data URI string")
    match = DATA_URI.match(data_uri)
    if match is None or not match.group("mime"):
        raise ValueError("expected a base64 data URI of an image (data:image/...;base64,...)")
    try:
        raw = base64.b64decode(data_uri[match.end() :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the data URI is not valid base64") from exc
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            width, height = probe.size
            if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
                raise ValueError(f"the image is larger than {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}")
            probe.verify()
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError("the data is not a decodable image") from exc
    return image


def featurize_images(data_uris: Sequence[str], *, size: int = 16) -> np.ndarray:
    """Images -> float32 (n, size*size): grey-scale, resized to size x size, scaled to
    [0, 1], then centred and scaled to unit norm per image (brightness and contrast
    invariant)."""
    from PIL import Image

    out = np.zeros((len(data_uris), size * size), dtype=np.float32)
    for row, uri in enumerate(data_uris):
        image = decode_image(uri).convert("L").resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).reshape(-1) / 255.0
        pixels -= pixels.mean()
        norm = float(np.linalg.norm(pixels))
        out[row] = pixels / norm if norm > 1e-6 else pixels
    return out


def featurize_vectors(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """Given feature vectors -> float32 (n, d), as they are. Rows must be non-empty, of one
    length, and finite."""
    if len(vectors) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = {len(v) for v in vectors}
    if len(lengths) != 1:
        raise ValueError(f"feature vectors differ in length: {sorted(lengths)}")
    if 0 in lengths:
        raise ValueError("feature vectors must not be empty")
    matrix = np.asarray(vectors, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("feature vectors must hold finite numbers only")
    return matrix


FEATURIZERS = {
    "text": featurize_texts,
    "image": featurize_images,
    "features": featurize_vectors,
}

__all__ = [
    "FEATURIZERS",
    "decode_image",
    "featurize_images",
    "featurize_texts",
    "featurize_vectors",
]
