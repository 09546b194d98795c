"""Acquisition functions: member probabilities in, one score per item out.

Every function takes `probs`, the class probabilities of K ensemble members for N items,
shape (K, N, C), as a torch.Tensor or np.ndarray of float32 or float64, and returns a
float64 np.ndarray of shape (N,): higher = more worth labeling. Natural log; 0 log 0 = 0.
Work is done `chunk` items at a time in the input's precision (float32 stays float32, which
is what keeps the kernels near memory speed), so the working set beyond the input is
bounded whatever N is. The ensemble functions agree with modAL's (vote_entropy,
consensus_entropy, KL_max_disagreement) on the same committee outputs.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

CHUNK_ELEMENTS = 1 << 22  # about 16 MB of float32 per working array


def _tensor(probs) -> torch.Tensor:
    tensor = torch.as_tensor(probs)
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float64)
    if tensor.dim() != 3:
        raise ValueError(
            f"probs must have shape (K members, N items, C classes), got {tuple(tensor.shape)}"
        )
    return tensor


def _chunks(tensor: torch.Tensor) -> Iterator[tuple[int, int]]:
    k, n, c = tensor.shape
    step = max(1, CHUNK_ELEMENTS // max(1, k * c))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _per_item(probs, fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """Apply `fn` to (K, n, C) chunks and gather its (n,) results as float64."""
    tensor = _tensor(probs)
    out = np.empty(tensor.shape[1], dtype=np.float64)
    with torch.no_grad():
        for start, stop in _chunks(tensor):
            out[start:stop] = fn(tensor[:, start:stop, :]).to(torch.float64).numpy()
    return out


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """H over the last axis of a normalized distribution, 0 log 0 = 0."""
    return -torch.special.xlogy(p, p).sum(-1)


def _normalized(p: torch.Tensor) -> torch.Tensor:
    # scipy.stats.entropy (modAL's reference) normalizes its input; so do we.
    return p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)


def _mean(chunk: torch.Tensor) -> torch.Tensor:
    return _normalized(chunk.mean(0))


def vote_entropy(probs) -> np.ndarray:
    """Entropy of the members' votes: the fraction of members whose argmax is each class."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        k, n, c = chunk.shape
        votes = chunk.argmax(-1)  # (K, n)
        counts = torch.zeros(n, c, dtype=chunk.dtype)
        counts.scatter_add_(1, votes.T, torch.ones(n, k, dtype=chunk.dtype))
        return _entropy(counts / k)

    return _per_item(probs, fn)


def consensus_entropy(probs) -> np.ndarray:
    """H(mean over members)."""
    return _per_item(probs, lambda chunk: _entropy(_mean(chunk)))


def max_disagreement(probs) -> np.ndarray:
    """max over members k of KL(probs[k] || mean over members)."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        p = _normalized(chunk)
        log_mean = torch.log(_mean(chunk).clamp_min(torch.finfo(chunk.dtype).tiny))
        kl = torch.special.xlogy(p, p).sum(-1) - (p * log_mean).sum(-1)  # (K, n)
        return kl.amax(0)

    return _per_item(probs, fn)


def bald(probs) -> np.ndarray:
    """Mutual information: H(mean) - mean over members of H(probs[k])."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        return _entropy(_mean(chunk)) - _entropy(_normalized(chunk)).mean(0)

    return _per_item(probs, fn)


def entropy(probs) -> np.ndarray:
    """H of the (mean) prediction: the single-model uncertainty baseline."""
    return consensus_entropy(probs)


def margin(probs) -> np.ndarray:
    """Minus the gap between the two most probable classes of the mean prediction."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        mean = _mean(chunk)
        if mean.shape[-1] < 2:
            return torch.zeros(mean.shape[0], dtype=mean.dtype)
        top = mean.topk(2, dim=-1).values
        return -(top[:, 0] - top[:, 1])

    return _per_item(probs, fn)


def least_confidence(probs) -> np.ndarray:
    """1 - the largest class probability of the mean prediction."""
    return _per_item(probs, lambda chunk: 1 - _mean(chunk).amax(-1))


def random(probs, *, random_state: int = 0) -> np.ndarray:
    """Uniform random scores (the baseline every strategy must beat)."""
    n = _tensor(probs).shape[1]
    return np.random.default_rng(random_state).random(n)


def _mean_probs(probs) -> torch.Tensor:
    tensor = _tensor(probs)
    return _normalized(tensor.mean(0))


def cal(probs, *, embeddings, labeled_embeddings, labeled_probs, k: int = 10) -> np.ndarray:
    """Contrastive active learning (Margatina et al., 2021).

    For each candidate n: its k nearest labeled neighbours by L2 distance between
    L2-normalized embeddings (`embeddings` (N, H), `labeled_embeddings` (L, H)); the score
    is the mean over them of KL(p(neighbour) || p(candidate)), with p the mean-over-members
    probabilities (`labeled_probs` (L, C) are already averaged). Exact search, in chunks of
    candidates, so memory is bounded by chunk x L.
    """
    candidates = _mean_probs(probs)
    dtype = candidates.dtype
    emb = torch.nn.functional.normalize(torch.as_tensor(embeddings).to(dtype), dim=1)
    lab = torch.nn.functional.normalize(torch.as_tensor(labeled_embeddings).to(dtype), dim=1)
    lab_p = _normalized(torch.as_tensor(labeled_probs).to(dtype))
    n, n_labeled = emb.shape[0], lab.shape[0]
    if n_labeled == 0:
        raise ValueError("cal needs at least one labeled item")
    k = min(k, n_labeled)
    tiny = torch.finfo(dtype).tiny
    lab_neg_entropy = torch.special.xlogy(lab_p, lab_p).sum(-1)  # (L,)
    out = np.empty(n, dtype=np.float64)
    step = max(1, CHUNK_ELEMENTS // max(1, n_labeled))
    with torch.no_grad():
        for start in range(0, n, step):
            stop = min(n, start + step)
            # For unit vectors, the nearest in L2 are those of largest dot product.
            sims = emb[start:stop] @ lab.T  # (n, L)
            neighbours = sims.topk(k, dim=1).indices  # (n, k)
            log_cand = torch.log(candidates[start:stop].clamp_min(tiny))  # (n, C)
            p_nb = lab_p[neighbours]  # (n, k, C)
            cross = (p_nb * log_cand[:, None, :]).sum(-1)  # (n, k)
            kl = lab_neg_entropy[neighbours] - cross
            out[start:stop] = kl.mean(1).to(torch.float64).numpy()
    return out


def lftl(probs, *, previous_probs, lam: float = 0.03) -> np.ndarray:
    """Contrast with the previous round's model (after "Learn from the Learnt").

    p~ = p_t + lam (p_t - p_{t-1}), p_t the mean prediction now, `previous_probs` (N, C) the
    previous round's mean prediction for the same items; score = minus the margin of p~, so
    items still uncertain and drifting between rounds rank first.
    """
    current = _mean_probs(probs)
    previous = torch.as_tensor(previous_probs).to(current.dtype)
    if previous.shape != current.shape:
        raise ValueError(f"previous_probs must have shape {tuple(current.shape)}")
    moved = current + lam * (current - previous)
    if moved.shape[-1] < 2:
        return np.zeros(moved.shape[0])
    top = moved.topk(2, dim=-1).values
    return (-(top[:, 0] - top[:, 1])).to(torch.float64).numpy()


ACQUISITIONS: dict[str, Callable[..., np.ndarray]] = {
    "vote_entropy": vote_entropy,
    "consensus_entropy": consensus_entropy,
    "max_disagreement": max_disagreement,
    "bald": bald,
    "cal": cal,
    "lftl": lftl,
    "entropy": entropy,
    "margin": margin,
    "least_confidence": least_confidence,
    "random": random,
}
# The lowest score each function can give where it is below 0 (minus a margin): selection
# ranks by (score - floor) / cost with this fixed floor, so rankings agree across shards.
SCORE_FLOOR: dict[str, float] = {"margin": -1.0, "lftl": -(1.0 + 2 * 0.03)}
ENSEMBLE_ACQUISITIONS = frozenset({"vote_entropy", "consensus_entropy", "max_disagreement", "bald"})
CONTRASTIVE_ACQUISITIONS = frozenset({"cal", "lftl"})
_REQUIRES = {
    "cal": frozenset({"embeddings", "labeled_embeddings", "labeled_probs"}),
    "lftl": frozenset({"previous_probs"}),
}


def requires(name: str) -> frozenset[str]:
    """The extra keyword inputs acquisition function `name` needs besides `probs`."""
    if name not in ACQUISITIONS:
        raise KeyError(f"unknown acquisition function {name!r}")
    return _REQUIRES.get(name, frozenset())
