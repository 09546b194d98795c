"""Scoring a pool in shards: each shard is scored alone, keeps its best candidates, and the
merged candidates equal what scoring the whole pool at once would give."""

from collections.abc import Iterable

import numpy as np

from sampler.acquisition import ACQUISITIONS, requires
from sampler.ensemble import MLPEnsemble
from sampler.selection import top_k, value_per_cost

Candidate = tuple[int, float, float]  # (item id, score, cost)


def split_shards(n: int, shard_size: int) -> list[tuple[int, int]]:
    """Half-open [start, stop) ranges covering range(n), each at most shard_size long."""
    if shard_size <= 0:
        raise ValueError("shard_size must be positive")
    return [(start, min(n, start + shard_size)) for start in range(0, n, shard_size)]


def hashed_uniform(ids: np.ndarray, random_state: int) -> np.ndarray:
    """A uniform [0, 1) number per id from a hash of (random_state, id): the same id gets
    the same number in whichever shard it is scored (splitmix64)."""
    with np.errstate(over="ignore"):
        x = np.asarray(ids, dtype=np.uint64) + np.uint64(random_state) * np.uint64(
            0x9E3779B97F4A7C15
        )
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def score_shard(
    model: MLPEnsemble,
    X: np.ndarray,
    strategy: str,
    *,
    ids: np.ndarray | None = None,
    labeled_X: np.ndarray | None = None,
    previous_model: MLPEnsemble | None = None,
    random_state: int = 0,
    chunk_size: int = 65536,
) -> np.ndarray:
    """Scores (N,) float64 of the shard's rows X (N, d) under `strategy`.

    Member probabilities are computed `chunk_size` rows at a time. `cal` needs `labeled_X`
    (its neighbours are labeled items); `lftl` uses `previous_model` and falls back to the
    entropy of the mean when there is none (the first trained round); `random` hashes
    `ids` so that its scores do not depend on the sharding.
    """
    if strategy not in ACQUISITIONS:
        raise KeyError(f"unknown acquisition function {strategy!r}")
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if strategy == "random":
        if ids is None:
            raise ValueError("random scoring needs the item ids")
        return hashed_uniform(ids, random_state)
    if strategy == "lftl" and previous_model is None:
        strategy = "entropy"
    out = np.empty(n, dtype=np.float64)
    needs = requires(strategy)
    extra_fixed = {}
    if "labeled_embeddings" in needs:
        if labeled_X is None or len(labeled_X) == 0:
            raise ValueError("cal needs the labeled rows (labeled_X)")
        extra_fixed["labeled_embeddings"] = model.embed(labeled_X)
        extra_fixed["labeled_probs"] = model.predict_proba(labeled_X).mean(0)
    function = ACQUISITIONS[strategy]
    for start in range(0, n, chunk_size):
        chunk = X[start : start + chunk_size]
        probs = model.predict_proba(chunk, chunk_size=chunk_size)
        extra = dict(extra_fixed)
        if "embeddings" in needs:
            extra["embeddings"] = model.embed(chunk, chunk_size=chunk_size)
        if "previous_probs" in needs:
            extra["previous_probs"] = previous_model.predict_proba(chunk).mean(0)
        out[start : start + len(chunk)] = function(probs, **extra)
    return out


def _ranked(candidates: list[Candidate], k: int, floor: float) -> list[Candidate]:
    if not candidates:
        return []
    ids = np.asarray([c[0] for c in candidates], dtype=np.int64)
    scores = np.asarray([c[1] for c in candidates], dtype=np.float64)
    costs = np.asarray([c[2] for c in candidates], dtype=np.float64)
    value = value_per_cost(scores, costs, floor=floor)
    order = np.lexsort((ids, -value))[:k]  # ties broken by id: shards merge deterministically
    return [(int(ids[i]), float(scores[i]), float(costs[i])) for i in order]


def shard_candidates(
    ids: np.ndarray, scores: np.ndarray, costs: np.ndarray, k: int, *, score_floor: float = 0.0
) -> list[Candidate]:
    """The shard's top k by score per unit of cost, as JSON-ready (id, score, cost)."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.isfinite(scores)
    ids, scores, costs = np.asarray(ids)[keep], scores[keep], np.asarray(costs)[keep]
    if len(ids) > 4 * k:  # pre-cut in O(n) before the exact, tie-stable ranking
        value = value_per_cost(scores, costs, floor=score_floor)
        cut = top_k(value, 4 * k)
        kth = value[cut].min()
        keep = value >= kth
        ids, scores, costs = ids[keep], scores[keep], costs[keep]
    return _ranked(
        list(zip(ids.tolist(), scores.tolist(), np.asarray(costs, float).tolist(), strict=True)),
        k,
        score_floor,
    )


def merge_candidates(
    lists: Iterable[list[Candidate]], k: int, *, score_floor: float = 0.0
) -> list[Candidate]:
    """The overall top k of several shards' candidates, best first."""
    merged: list[Candidate] = []
    for candidates in lists:
        merged.extend((int(c[0]), float(c[1]), float(c[2])) for c in candidates)
    return _ranked(merged, k, score_floor)


__all__ = ["merge_candidates", "score_shard", "shard_candidates", "split_shards", "top_k"]
