"""Acquisition functions: member probabilities in, one score per item out.

Every function takes `probs`, the class probabilities of K ensemble members for N items,
shape (K, N, C) (`# [member, item, class]`), as a torch.Tensor or np.ndarray of float32 or
float64 (other dtypes are converted to float64), and returns a float64 np.ndarray of shape
(N,): higher = more worth labeling. Natural log; 0 log 0 = 0. A one-model baseline is K = 1.

As in scipy.stats.entropy (which modAL's functions call), every distribution is
renormalized to sum to 1 before use, so the ensemble functions agree with modAL's
`vote_entropy`, `consensus_entropy` and `KL_max_disagreement` on the same committee outputs.

Work is done `chunk_size` items at a time (default: about CHUNK_ELEMENTS probabilities per
chunk), so the working memory beyond the input is bounded whatever N is. Passes over the
whole (K, n, C) chunk run in the input's dtype (float32 stays float32: half the memory
traffic); the small (n, C) work on the members' mean runs in float64. Each item's score
depends only on its own row, bit for bit at a given torch thread count (see _aligned):
chunking, and so sharding, does not change it.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

# Default chunk: about this many probability elements (2 MB of float32) per working array.
CHUNK_ELEMENTS = 1 << 19
# Chunks are padded to a multiple of this many items (see _aligned).
ALIGN = 64

Array = np.ndarray | torch.Tensor


def _as_tensor(x: Array, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A CPU tensor sharing memory with `x` when it can (numpy float arrays: no copy)."""
    if isinstance(x, np.ndarray) and any(s < 0 for s in x.strides):
        x = np.ascontiguousarray(x)  # torch refuses negative strides
    tensor = torch.as_tensor(x).detach()
    if dtype is not None:
        return tensor.to(device="cpu", dtype=dtype)
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float64)
    return tensor.cpu()


def _probs(probs: Array) -> torch.Tensor:
    tensor = _as_tensor(probs)
    if tensor.dim() != 3:
        raise ValueError(
            f"probs must have shape (K members, N items, C classes), got {tuple(tensor.shape)}"
        )
    if tensor.shape[0] == 0 or tensor.shape[2] == 0:
        raise ValueError(f"probs needs at least one member and one class, got {tensor.shape}")
    return tensor


def _spans(n: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, chunk_size):
        yield start, min(n, start + chunk_size)


def _chunk_items(tensor: torch.Tensor, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        return chunk_size
    k, _, c = tensor.shape
    return max(ALIGN, CHUNK_ELEMENTS // max(1, k * c) // ALIGN * ALIGN)


def _aligned(chunk: torch.Tensor) -> torch.Tensor:
    """`chunk` (K, n, C) padded with uniform rows to a multiple of ALIGN items.

    Vectorized kernels handle a remainder that does not fill a SIMD register with scalar
    code, whose log and exp can differ from the vector code in the last bit. Padding makes
    every real item take the vector path, so its score is bit-for-bit the same whatever
    chunk (or shard) it sits in, and rankings of near-equal scores agree across shards.
    """
    k, n, c = chunk.shape
    missing = -n % ALIGN
    if missing == 0:
        return chunk
    return torch.cat([chunk, torch.full((k, missing, c), 1.0 / c, dtype=chunk.dtype)], dim=1)


def _per_item(
    probs: Array, fn: Callable[[torch.Tensor], torch.Tensor], chunk_size: int | None
) -> np.ndarray:
    """Apply `fn` to (K, n, C) chunks of `probs`; gather its (n,) results as float64."""
    tensor = _probs(probs)
    out = np.empty(tensor.shape[1], dtype=np.float64)
    with torch.no_grad():
        for start, stop in _spans(tensor.shape[1], _chunk_items(tensor, chunk_size)):
            scores = fn(_aligned(tensor[:, start:stop, :]))
            out[start:stop] = scores[: stop - start].numpy()
    return out


def _normalized(p: torch.Tensor) -> torch.Tensor:
    """Rows over the last axis rescaled to sum to 1 (scipy.stats.entropy does the same)."""
    return p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """H over the last axis of normalized distributions; 0 log 0 = 0."""
    return -torch.special.xlogy(p, p).sum(-1)


def _mean(chunk: torch.Tensor) -> torch.Tensor:
    """The members' mean distribution, normalized, float64 (n, C).

    The (n, C) work is small next to the (K, n, C) input, so it is done in float64: the
    scores that depend on the mean alone agree with float64 references to rounding.
    """
    return _normalized(chunk.mean(0, dtype=torch.float64))


def _transposed(members: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Members x (K, n, C) in the (K, C, n) layout, and their row sums s (K, n).

    In the transposed layout the reductions over classes run across contiguous items
    (vectorized) instead of over short runs of C floats: about twice as fast.
    """
    xt = members.permute(0, 2, 1).contiguous()
    return xt, xt.sum(1)


def _minus_margin(p: torch.Tensor) -> torch.Tensor:
    """-(largest - second largest) over the last axis; 0 with a single class."""
    if p.shape[-1] < 2:
        return torch.zeros(p.shape[:-1], dtype=p.dtype)
    top = p.topk(2, dim=-1).values
    return top[..., 1] - top[..., 0]


def vote_entropy(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """Entropy of the members' votes: with v_c the fraction of the K members whose argmax
    is class c (ties go to the lower class, as argmax and sklearn's predict do),
    score = -sum_c v_c log v_c, in [0, log min(K, C)]. modAL's vote_entropy."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        k, n, c = chunk.shape
        votes = chunk.argmax(-1).T  # (n, K) class indices
        counts = torch.zeros(n, c, dtype=torch.float64)
        counts.scatter_add_(1, votes, torch.ones(n, k, dtype=torch.float64))
        return _entropy(counts / k)

    return _per_item(probs, fn, chunk_size)


def consensus_entropy(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """H(mean over members), in [0, log C]. modAL's consensus_entropy."""
    return _per_item(probs, lambda chunk: _entropy(_mean(chunk)), chunk_size)


def max_disagreement(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """max over members k of KL(probs[k] || mean over members), >= 0. modAL's
    KL_max_disagreement. Always finite: the mean is >= probs[k] / K wherever probs[k] > 0.

    This is the one K x n x C pass with a log per element; it runs in the input's dtype,
    so float32 input agrees with a float64 computation to about 5e-7.
    """

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        xt, s = _transposed(chunk)  # (K, C, n), (K, n)
        tiny = torch.tensor(torch.finfo(chunk.dtype).tiny, dtype=chunk.dtype)
        mean = xt.mean(0)
        mean /= mean.sum(0).clamp_min(tiny)
        mean.clamp_min_(tiny)  # (C, n); a class no member gives mass: 0 / tiny = 0, not nan
        # With p = x / s: KL(p || m) = sum_c p log(p / m) = (sum_c x log(x / m)) / s - log s,
        # so members need no elementwise normalization; x / m + tiny makes 0 log 0 = 0.
        terms = torch.addcdiv(tiny, xt, mean).log_().mul_(xt)
        kl = (terms.sum(1) / s - s.log()).amax(0)
        return kl.to(torch.float64).clamp_min(0)  # rounding can dip below 0 by ~1e-7

    return _per_item(probs, fn, chunk_size)


def bald(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """Mutual information between the label and the member (BALD, Houlsby et al. 2011):
    H(mean over members) - mean over members of H(probs[k]), in [0, log C]."""

    def fn(chunk: torch.Tensor) -> torch.Tensor:
        xt, s = _transposed(chunk)
        tiny = torch.finfo(chunk.dtype).tiny
        # H(x / s) = log s - (sum_c x log x) / s; x + tiny makes 0 log 0 = 0.
        member_entropy = s.log() - (xt + tiny).log_().mul_(xt).sum(1) / s  # (K, n)
        mutual = _entropy(_mean(chunk)) - member_entropy.to(torch.float64).mean(0)
        return mutual.clamp_min(0)  # >= 0 by Jensen; rounding can dip below

    return _per_item(probs, fn, chunk_size)


def entropy(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """H of the mean prediction, in [0, log C]: the one-model uncertainty baseline (with
    K > 1 it equals consensus_entropy)."""
    return consensus_entropy(probs, chunk_size=chunk_size)


def margin(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """-(p1 - p2) of the mean prediction, p1 >= p2 its two largest probabilities: in
    [-1, 0], higher = the top two classes are closer. 0 when C = 1."""
    return _per_item(probs, lambda chunk: _minus_margin(_mean(chunk)), chunk_size)


def least_confidence(probs: Array, *, chunk_size: int | None = None) -> np.ndarray:
    """1 - the largest probability of the mean prediction, in [0, 1 - 1/C]."""
    return _per_item(probs, lambda chunk: 1 - _mean(chunk).amax(-1), chunk_size)


def random(probs: Array, *, random_state: int = 0) -> np.ndarray:
    """Uniform [0, 1) scores from np.random.default_rng(random_state): the baseline every
    strategy must beat. Depends on the items' positions; sampler.pool.score_shard hashes
    item ids instead, so that sharding does not change the scores."""
    n = _probs(probs).shape[1]
    return np.random.default_rng(random_state).random(n)


def _nearest_labeled(
    queries: torch.Tensor, labeled: torch.Tensor, labeled_norms: torch.Tensor, k: int
) -> torch.Tensor:
    """Indices (n, k) of the k labeled rows nearest each unit-norm query row.

    For unit vectors |q - l|^2 = 2 - 2 q.l, so the nearest by L2 are those of largest
    cosine. Exact: labeled rows are scanned in blocks keeping a running top k, so the
    working set is about n x block whatever L is.
    """
    n = queries.shape[0]
    block = max(k, CHUNK_ELEMENTS // max(1, n))
    best_sim = torch.empty(n, 0, dtype=queries.dtype)
    best_idx = torch.empty(n, 0, dtype=torch.int64)
    for start, stop in _spans(labeled.shape[0], block):
        sims = (queries @ labeled[start:stop].T) / labeled_norms[start:stop]
        sims = torch.cat([best_sim, sims], dim=1)
        idx = torch.cat([best_idx, torch.arange(start, stop).expand(n, -1)], dim=1)
        best_sim, where = sims.topk(min(k, sims.shape[1]), dim=1)
        best_idx = idx.gather(1, where)
    return best_idx


def _embedding_tensor(x: Array) -> torch.Tensor:
    tensor = _as_tensor(x)
    if tensor.dim() != 2:
        raise ValueError(f"embeddings must be 2-d (items, H), got {tuple(tensor.shape)}")
    return tensor


def cal(
    probs: Array,
    *,
    embeddings: Array,
    labeled_embeddings: Array,
    labeled_probs: Array,
    k: int = 10,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Contrastive active learning (CAL; Margatina et al., EMNLP 2021; their code,
    mourga/contrastive-active-learning, acquisition/cal.py).

    For each candidate n: its min(k, L) nearest labeled items by L2 distance between the
    L2-normalized embeddings (`embeddings` (N, H) of the candidates, `labeled_embeddings`
    (L, H)); the score is the mean over those neighbours of KL(p(neighbour) || p(n)), with
    p(n) = probs[:, n].mean(0) and p(neighbour) a row of `labeled_probs` (L, C), already
    averaged over members. >= 0; candidate probabilities are floored at the float64
    smallest normal number, so a confident model's exact zeros give a large finite score,
    not inf. Only labeled items are neighbours, as in the paper (small-text's variant also
    searches unlabeled ones). Exact search by matrix products over chunks of candidates and
    blocks of labeled rows: memory is bounded by about CHUNK_ELEMENTS per working array.
    """
    tensor = _probs(probs)
    n, n_classes = tensor.shape[1], tensor.shape[2]
    emb = _embedding_tensor(embeddings)
    lab = _embedding_tensor(labeled_embeddings).to(emb.dtype)
    lab_p = _as_tensor(labeled_probs, dtype=torch.float64)
    if emb.shape[0] != n:
        raise ValueError(f"embeddings must have {n} rows (one per item), got {emb.shape[0]}")
    if lab.shape[1] != emb.shape[1]:
        raise ValueError(f"labeled_embeddings must have {emb.shape[1]} columns like embeddings")
    if lab.shape[0] == 0:
        raise ValueError("cal needs at least one labeled item")
    if tuple(lab_p.shape) != (lab.shape[0], n_classes):
        raise ValueError(f"labeled_probs must have shape ({lab.shape[0]}, {n_classes})")
    if k <= 0:
        raise ValueError("k must be positive")
    k = min(k, lab.shape[0])
    out = np.empty(n, dtype=np.float64)
    with torch.no_grad():
        lab_p = _normalized(lab_p)
        lab_norms = torch.linalg.vector_norm(lab, dim=1).clamp_min(torch.finfo(lab.dtype).tiny)
        lab_neg_entropy = torch.special.xlogy(lab_p, lab_p).sum(-1)  # sum p log p, (L,)
        tiny = torch.finfo(torch.float64).tiny
        step = chunk_size or max(1, CHUNK_ELEMENTS // max(1, k * n_classes, emb.shape[1]))
        for start, stop in _spans(n, step):
            queries = torch.nn.functional.normalize(emb[start:stop], dim=1)
            neighbours = _nearest_labeled(queries, lab, lab_norms, k)  # (n, k)
            log_q = torch.log(_mean(tensor[:, start:stop, :]).clamp_min(tiny))  # (n, C)
            cross = torch.einsum("nkc,nc->nk", lab_p[neighbours], log_q)
            kl = lab_neg_entropy[neighbours] - cross  # KL(neighbour || candidate), (n, k)
            out[start:stop] = kl.mean(1).clamp_min(0).numpy()
    return out


def lftl(
    probs: Array,
    *,
    previous_probs: Array,
    lam: float = 0.03,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Contrast with the previous round's model (after "Learn from the Learnt",
    mining/contrastive_sampling.py).

    p~ = p_t + lam (p_t - p_{t-1}), with p_t = probs.mean(0) and `previous_probs` (N, C)
    p_{t-1}, the previous round's mean prediction for the same items; score = -(p~1 - p~2),
    minus the margin of p~, in [-(1 + 2 lam), 0]: items still uncertain, and drifting
    towards uncertainty between rounds, rank first.
    """
    tensor = _probs(probs)
    previous = _as_tensor(previous_probs, dtype=torch.float64)
    if tuple(previous.shape) != (tensor.shape[1], tensor.shape[2]):
        raise ValueError(
            f"previous_probs must have shape {(tensor.shape[1], tensor.shape[2])}, "
            f"got {tuple(previous.shape)}"
        )
    out = np.empty(tensor.shape[1], dtype=np.float64)
    with torch.no_grad():
        for start, stop in _spans(tensor.shape[1], _chunk_items(tensor, chunk_size)):
            now = _mean(tensor[:, start:stop, :])
            moved = now + lam * (now - _normalized(previous[start:stop]))
            out[start:stop] = _minus_margin(moved).numpy()  # float64 work: no log or exp
    return out


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
# Functions that need several members to mean anything, and those that contrast with
# something besides the pool's own probabilities.
ENSEMBLE_ACQUISITIONS = frozenset({"vote_entropy", "consensus_entropy", "max_disagreement", "bald"})
CONTRASTIVE_ACQUISITIONS = frozenset({"cal", "lftl"})
_REQUIRES: dict[str, frozenset[str]] = {
    "cal": frozenset({"embeddings", "labeled_embeddings", "labeled_probs"}),
    "lftl": frozenset({"previous_probs"}),
}
# The lowest score each function can give, with default parameters. Selection ranks by
# (score - floor) / cost; a fixed floor (not the pool's minimum) keeps the ranking the same
# in every shard. Only the minus-a-margin scores go below 0.
SCORE_FLOOR: dict[str, float] = {name: 0.0 for name in ACQUISITIONS} | {
    "margin": -1.0,
    "lftl": -(1.0 + 2 * 0.03),
}


def requires(name: str) -> frozenset[str]:
    """The extra keyword inputs ACQUISITIONS[name] needs besides `probs` (empty for most)."""
    if name not in ACQUISITIONS:
        raise KeyError(f"unknown acquisition function {name!r}; known: {', '.join(ACQUISITIONS)}")
    return _REQUIRES.get(name, frozenset())


def score_floor(name: str) -> float:
    """The lowest score ACQUISITIONS[name] gives with default parameters: pass it as
    `score_floor` to sampler.selection.select_under_budget and sampler.pool's ranking."""
    requires(name)  # raises KeyError for an unknown name
    return SCORE_FLOOR[name]
