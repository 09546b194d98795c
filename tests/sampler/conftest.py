import numpy as np
import pytest
import torch


@pytest.fixture
def member_probs():
    """Member probabilities (K=5, N=300, C=4) with real disagreement, float64."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 300, 4)) * 2
    probs = np.exp(logits)
    return probs / probs.sum(-1, keepdims=True)


@pytest.fixture(params=["numpy64", "numpy32", "torch64", "torch32"])
def as_input(request):
    """The same probabilities as numpy or torch, float64 or float32."""
    kind = request.param

    def convert(probs: np.ndarray):
        dtype = np.float32 if kind.endswith("32") else np.float64
        array = probs.astype(dtype)
        return torch.from_numpy(array) if kind.startswith("torch") else array

    convert.tolerance = 1e-5 if request.param.endswith("32") else 1e-6
    return convert
