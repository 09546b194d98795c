"""Choosing what to queue: the best items per unit of cost within the budget, diverse."""

from collections.abc import Mapping

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, highest first (ties: lower index first). O(N)."""
    scores = np.asarray(scores)
    n = len(scores)
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        # argpartition may cut through a tie at the k-th value: take the lowest indices.
        kth = scores[part].min()
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)[: k - len(above)]
        part = np.concatenate([above, ties])
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def value_per_cost(scores: np.ndarray, costs: np.ndarray, *, floor: float = 0.0) -> np.ndarray:
    """Worth per unit of cost: (score - floor) / cost, with `floor` the lowest score the
    acquisition function can give (sampler.acquisition.SCORE_FLOOR; 0 for most, -1 for a
    minus-margin). A fixed floor, not the pool's minimum, keeps the ranking the same in
    every shard. Non-finite scores rank last."""
    scores = np.asarray(scores, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    worth = np.maximum(scores - floor, 0.0) + 1e-12
    return np.where(np.isfinite(scores), worth / costs, -np.inf)


def _fits(
    order: np.ndarray,
    costs: np.ndarray,
    remaining: float,
    batch_size: int,
    groups: np.ndarray | None,
    group_remaining: Mapping[int, float] | None,
) -> np.ndarray:
    """Walk `order` and keep each item that still fits the total and its group's budget."""
    left = float(remaining)
    group_left = dict(group_remaining or {})
    chosen: list[int] = []
    eps = 1e-9
    for i in order:
        if len(chosen) >= batch_size:
            break
        cost = float(costs[i])
        if cost > left + eps:
            continue
        g = int(groups[i]) if groups is not None else -1
        if g in group_left:
            if cost > group_left[g] + eps:
                continue
            group_left[g] -= cost
        left -= cost
        chosen.append(int(i))
    return np.asarray(chosen, dtype=np.int64)


def _diverse_order(
    value: np.ndarray,
    features: np.ndarray,
    candidates: np.ndarray,
    batch_size: int,
    random_state: int = 0,
) -> np.ndarray:
    """Re-order `candidates` (best first) so that near-duplicates come last: cluster them
    into `batch_size` groups (k-means++ seeding, a few Lloyd steps) and take the best of
    each cluster first (clusters in order of their best member), then the rest."""
    if len(candidates) <= batch_size:
        return candidates
    X = np.asarray(features[candidates], dtype=np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(random_state)
    k = batch_size
    centers = [int(np.argmax(value[candidates]))]
    dist = ((X - X[centers[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = dist.sum()
        nxt = int(rng.choice(len(X), p=dist / total)) if total > 0 else int(rng.integers(len(X)))
        centers.append(nxt)
        dist = np.minimum(dist, ((X - X[nxt]) ** 2).sum(1))
    C = X[centers]

    def nearest(C: np.ndarray) -> np.ndarray:
        # |x - c|^2 = |c|^2 - 2 x.c + const(x): no (n, k, d) temporary.
        return np.argmin((C**2).sum(1)[None, :] - 2 * X @ C.T, axis=1)

    for _ in range(5):
        labels = nearest(C)
        for j in range(k):
            members = labels == j
            if members.any():
                C[j] = X[members].mean(0)
    labels = nearest(C)
    by_value = np.argsort(-value[candidates], kind="stable")
    seen: set[int] = set()
    first, rest = [], []
    for position in by_value:
        (rest if labels[position] in seen else first).append(position)
        seen.add(int(labels[position]))
    return candidates[np.asarray(first + rest, dtype=np.int64)]


def select_under_budget(
    scores: np.ndarray,
    costs: np.ndarray,
    *,
    remaining: float,
    batch_size: int,
    features: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    group_remaining: Mapping[int, float] | None = None,
    diversity_pool: int = 5,
    score_floor: float = 0.0,
) -> np.ndarray:
    """Indices (priority order) of at most `batch_size` items, ranked by score per unit of
    cost (value_per_cost with `score_floor`), whose total cost is <= `remaining` and, for
    each group code g in `group_remaining`, whose group-g cost is <= group_remaining[g]
    (`groups` holds a code per item, -1 = no group). An item that does not fit is skipped
    and the walk goes on (greedy knapsack). With `features`, the top
    `diversity_pool * batch_size` candidates are clustered first so that one batch does not
    hold near-duplicates.
    """
    value = value_per_cost(scores, costs, floor=score_floor)
    order = np.argsort(-value, kind="stable")
    order = order[np.isfinite(value[order])]
    if features is not None and len(order) > batch_size:
        pool = diversity_pool * batch_size
        order = np.concatenate(
            [_diverse_order(value, features, order[:pool], batch_size), order[pool:]]
        )
    return _fits(
        order, np.asarray(costs, dtype=np.float64), remaining, batch_size, groups, group_remaining
    )


def cold_start(
    features: np.ndarray,
    costs: np.ndarray,
    *,
    remaining: float,
    batch_size: int,
    random_state: int = 0,
    max_candidates: int = 20000,
    groups: np.ndarray | None = None,
    group_remaining: Mapping[int, float] | None = None,
) -> np.ndarray:
    """Diverse first picks, before any model: k-center greedy on the features.

    Starts from the item nearest the centre of the data and repeatedly takes the item
    farthest from everything chosen, skipping items that do not fit the budget (total and
    group). Subsamples to `max_candidates` first; memory is O(n), never an n x n matrix.
    Returns indices into `features`, in pick order.
    """
    features = np.asarray(features, dtype=np.float32)
    costs = np.asarray(costs, dtype=np.float64)
    n = len(features)
    if n == 0 or batch_size <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    pool = np.arange(n)
    if n > max_candidates:
        pool = np.sort(rng.choice(n, max_candidates, replace=False))
    X = features[pool]
    left = float(remaining)
    group_left = dict(group_remaining or {})
    usable = np.ones(len(pool), dtype=bool)

    def fits(i: int) -> bool:
        g = int(groups[pool[i]]) if groups is not None else -1
        cost = float(costs[pool[i]])
        return cost <= left + 1e-9 and (g not in group_left or cost <= group_left[g] + 1e-9)

    dist = ((X - X.mean(0)) ** 2).sum(1)
    start_order = np.argsort(dist, kind="stable")
    chosen: list[int] = []
    min_dist = np.full(len(pool), np.inf)
    candidate = next((int(i) for i in start_order if fits(int(i))), None)
    while candidate is not None and len(chosen) < batch_size:
        chosen.append(candidate)
        usable[candidate] = False
        cost = float(costs[pool[candidate]])
        left -= cost
        g = int(groups[pool[candidate]]) if groups is not None else -1
        if g in group_left:
            group_left[g] -= cost
        min_dist = np.minimum(min_dist, ((X - X[candidate]) ** 2).sum(1))
        candidate = None
        ranked = np.where(usable, min_dist, -np.inf)
        for i in np.argsort(-ranked, kind="stable"):
            if not usable[i]:
                break
            if fits(int(i)):
                candidate = int(i)
                break
            usable[i] = False
    return pool[np.asarray(chosen, dtype=np.int64)]
