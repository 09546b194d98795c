"""Fixtures for the sampler tests. Nothing here needs Django: these tests also run with
`python -m pytest tests/sampler -p no:django --confcutdir=tests/sampler`."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: faster on a shared 2-core machine, and what the workers use."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def minilm():
    """The MiniLM sentence encoder, loaded once for the whole session (about a second, after
    importing sentence-transformers for several more)."""
    from sampler.text_encoder import load_minilm

    return load_minilm()


@pytest.fixture
def member_probs() -> np.ndarray:
    """Member probabilities (K=5, N=400, C=4), float64, with real disagreement, exact
    zeros, exact argmax ties and rows where all members agree."""
    rng = np.random.default_rng(0)
    probs = np.exp(rng.normal(size=(5, 400, 4)) * 2)
    probs /= probs.sum(-1, keepdims=True)
    probs[:, :20] = [0.5, 0.5, 0.0, 0.0]  # a tie, and classes no member gives mass
    probs[1, 20:40] = [0.0, 0.0, 1.0, 0.0]  # one certain member
    probs[:, 40:60] = probs[0, 40:60]  # unanimous members
    return probs


@pytest.fixture(params=["numpy-float64", "numpy-float32", "torch-float64", "torch-float32"])
def as_input(request):
    """Convert float64 probabilities to one of the accepted input kinds."""
    library, dtype = request.param.split("-")

    def convert(probs: np.ndarray):
        array = probs.astype(dtype)
        return torch.from_numpy(array) if library == "torch" else array

    return convert
