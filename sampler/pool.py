"""Scoring a pool in shards: each shard is scored alone and keeps its best candidates; the
merged candidates are what scoring the whole pool at once would give (same items, same
order), for every strategy.

That holds because (1) an item's member probabilities and score depend only on its own
row (sampler.ensemble pads small chunks, sampler.acquisition works per item), (2) `cal`
searches the labeled rows, the same for every shard, (3) `random` hashes item ids instead
of drawing from a generator, and (4) the ranking key, score per unit of cost, shifts
negative scores by a fixed rule (sampler.selection.value_per_cost), not by the shard's
minimum, and breaks ties by item id.
"""

from collections.abc import Iterable

import numpy as np

from sampler.acquisition import ACQUISITIONS, requires
from sampler.ensemble import MLPEnsemble
from sampler.selection import value_per_cost

Candidate = tuple[int, float, float]  # (item id, score, cost): JSON-ready plain types

_GOLDEN = 0x9E3779B97F4A7C15


def split_shards(n: int, shard_size: int) -> list[tuple[int, int]]:
    """Half-open [start, stop) ranges covering range(n) in order, each at most shard_size
    long (the last one may be shorter)."""
    if shard_size <= 0:
        raise ValueError("shard_size must be positive")
    if n < 0:
        raise ValueError("n must be >= 0")
    return [(start, min(n, start + shard_size)) for start in range(0, n, shard_size)]


def hashed_uniform(ids: np.ndarray, random_state: int) -> np.ndarray:
    """A uniform [0, 1) float64 per id, from the splitmix64 hash of (random_state, id):
    the same id gets the same number whichever shard (or batch) it is scored in."""
    with np.errstate(over="ignore"):
        x = np.asarray(ids).astype(np.int64).view(np.uint64)
        x = x + np.uint64((int(random_state) * _GOLDEN + _GOLDEN) % (1 << 64))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _compatible(previous: MLPEnsemble | None, model: MLPEnsemble) -> bool:
    return (
        previous is not None
        and previous.n_classes_ == model.n_classes_
        and previous.n_features_ == model.n_features_
    )


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
    exclude_class: int | None = None,
    exclude_above: float = 0.8,
) -> np.ndarray:
    """Scores, float64 (N,), of the shard's rows X (N, d) under ACQUISITIONS[strategy].

    `chunk_size` rows at a time go through the model, so memory is about chunk_size x
    (K x C + hidden) floats beyond X (which may be a np.memmap: only the chunk is read).
    - cal needs `labeled_X` (L, d): its neighbours are the labeled items, embedded and
      predicted by the same model (ValueError without it).
    - lftl uses `previous_model` (the previous round's ensemble) for p_{t-1}; without one,
      or with one trained on other classes or features, it falls back to the entropy of
      the mean (the first trained round has nothing to contrast with).
    - random hashes (random_state, `ids`) (N,) int, so the scores do not depend on the
      sharding; without ids, the row positions 0..N-1 stand in for them.
    - `exclude_class` (an out-of-scope label's class index): items whose mean predicted
      probability of that class is >= `exclude_above` score -inf, so they are never
      selected (the model is sure they are outside the task).
    """
    if strategy not in ACQUISITIONS:
        raise KeyError(f"unknown acquisition function {strategy!r}")
    n = len(X)
    if exclude_class is not None and not 0 <= exclude_class < model.n_classes_:
        raise ValueError(f"exclude_class must be in [0, {model.n_classes_})")
    if strategy == "random":
        ids = np.arange(n) if ids is None else np.asarray(ids)
        if ids.shape != (n,):
            raise ValueError(f"ids must have shape ({n},), got {ids.shape}")
        out = hashed_uniform(ids, random_state)
        if exclude_class is None:
            return out
    else:
        out = np.empty(n, dtype=np.float64)
    if strategy == "lftl" and not _compatible(previous_model, model):
        strategy = "entropy"
    needs = requires(strategy)
    fixed: dict[str, np.ndarray] = {}
    if "labeled_embeddings" in needs:
        if labeled_X is None or len(labeled_X) == 0:
            raise ValueError("cal needs the labeled rows (labeled_X)")
        fixed["labeled_embeddings"] = model.embed(labeled_X, chunk_size=chunk_size)
        fixed["labeled_probs"] = model.predict_proba(labeled_X, chunk_size=chunk_size).mean(0)
    function = ACQUISITIONS[strategy]
    for start in range(0, n, chunk_size):
        chunk = X[start : start + chunk_size]
        stop = start + len(chunk)
        probs = model.predict_proba(chunk, chunk_size=chunk_size)
        if strategy != "random":
            extra = dict(fixed)
            if "embeddings" in needs:
                extra["embeddings"] = model.embed(chunk, chunk_size=chunk_size)
            if "previous_probs" in needs:
                extra["previous_probs"] = previous_model.predict_proba(
                    chunk, chunk_size=chunk_size
                ).mean(0)
            out[start:stop] = function(probs, **extra)
        if exclude_class is not None:
            outside = probs[:, :, exclude_class].mean(0, dtype=np.float64) >= exclude_above
            out[start:stop][outside] = -np.inf
    return out


def _rank(
    ids: np.ndarray, scores: np.ndarray, costs: np.ndarray, k: int, score_floor: float | None
) -> list[Candidate]:
    """The top k by value_per_cost, ties by lower id, as (id, score, cost) tuples. O(N)
    selection of the contenders (np.partition), then a sort of those."""
    value = value_per_cost(scores, costs, score_floor=score_floor)
    contenders = np.flatnonzero(np.isfinite(value))
    if k <= 0 or len(contenders) == 0:
        return []
    if len(contenders) > k:
        kth = np.partition(value[contenders], len(contenders) - k)[len(contenders) - k]
        contenders = contenders[value[contenders] >= kth]  # keeps every tie at the cut
    order = contenders[np.lexsort((ids[contenders], -value[contenders]))][:k]
    return [(int(ids[i]), float(scores[i]), float(costs[i])) for i in order]


def shard_candidates(
    ids: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    k: int,
    *,
    score_floor: float | None = None,
) -> list[Candidate]:
    """The shard's best k items as (id, score, cost) tuples of plain int / float, best
    first: ranked by score per unit of cost exactly as select_under_budget ranks (see
    sampler.selection.value_per_cost for `score_floor`), ties by lower id. Items with a
    non-finite score are left out."""
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if ids.shape != scores.shape:
        raise ValueError(f"ids {ids.shape} and scores {scores.shape} must have the same shape")
    return _rank(ids, scores, np.asarray(costs, dtype=np.float64), k, score_floor)


def merge_candidates(
    lists: Iterable[list[Candidate]], k: int, *, score_floor: float | None = None
) -> list[Candidate]:
    """The overall best k of several shards' candidate lists, best first, ranked like
    shard_candidates (pass the same `score_floor`). An id listed twice (a shard scored
    twice) counts once."""
    seen: dict[int, Candidate] = {}
    for candidates in lists:
        for item_id, score, cost in candidates:
            seen.setdefault(int(item_id), (int(item_id), float(score), float(cost)))
    if not seen:
        return []
    rows = list(seen.values())
    return _rank(
        np.asarray([r[0] for r in rows], dtype=np.int64),
        np.asarray([r[1] for r in rows], dtype=np.float64),
        np.asarray([r[2] for r in rows], dtype=np.float64),
        k,
        score_floor,
    )
