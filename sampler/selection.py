"""Choosing what to queue: the best items per unit of cost within the budget, diverse.

Budgets are checked with a tolerance of BUDGET_TOLERANCE (costs are decimal amounts such as
0.1 that floats do not hold exactly: 0.1 + 0.2 > 0.3). The database re-checks the budget
exactly when the items are reserved; these functions only must not propose more.
"""

from collections.abc import Mapping

import numpy as np

BUDGET_TOLERANCE = 1e-9
VALUE_EPS = 1e-12  # value of a zero score, so that zero-score items still rank by cost


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """int64 indices of the k highest of `scores` (N,), highest first, ties broken by the
    lower index; NaN counts as -inf. O(N + k log k) (argpartition, then a sort of the k).
    Unlike modAL's multi_argmax, the result is ordered."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-d, got shape {s.shape}")
    s = np.where(np.isnan(s), -np.inf, s)
    n = len(s)
    k = max(0, min(int(k), n))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-s, k - 1)[:k]
        # argpartition may cut through a run of ties at the k-th value: take them in index
        # order, so the answer does not depend on its internals.
        kth = s[part].min()
        above = np.flatnonzero(s > kth)
        ties = np.flatnonzero(s == kth)[: k - len(above)]
        part = np.concatenate([above, ties])
    else:
        part = np.arange(n)
    order = np.lexsort((part, -s[part]))
    return part[order].astype(np.int64)


def _checked_costs(costs: np.ndarray, n: int) -> np.ndarray:
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (n,):
        raise ValueError(f"costs must have shape ({n},), got {costs.shape}")
    if not (np.isfinite(costs) & (costs > 0)).all():
        raise ValueError("costs must be finite and positive")
    return costs


def value_per_cost(
    scores: np.ndarray, costs: np.ndarray, *, score_floor: float | None = None
) -> np.ndarray:
    """Worth per unit of cost, float64 (N,): the ranking key of selection and of
    sampler.pool's shard candidates. Non-finite scores get -inf (never chosen).

    Scores may be negative (margin and lftl are minus a margin), so they are shifted to be
    positive first, by a rule that does not look at the other scores: the ranking must be
    the same whichever shard an item is scored in, which "score - min(scores)" or ranks
    would break.
    - score_floor given (the lowest score the function can give,
      sampler.acquisition.score_floor(name); -1 for margin): (score - floor + VALUE_EPS) /
      cost. Raises ValueError if a score lies below the floor.
    - None: a score s >= 0 is worth s + VALUE_EPS; a negative one VALUE_EPS * exp(s), which
      is positive, increasing and below any non-negative score's worth. With unit costs
      this ranks exactly by score; with costs it is a usable default, but passing the
      strategy's floor gives the linear trade-off.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-d, got shape {scores.shape}")
    costs = _checked_costs(costs, len(scores))
    finite = np.isfinite(scores)
    if score_floor is not None:
        if (scores[finite] < score_floor - 1e-9).any():
            raise ValueError(f"a score lies below score_floor={score_floor}")
        worth = np.maximum(scores - score_floor, 0.0) + VALUE_EPS
    else:
        with np.errstate(over="ignore", under="ignore"):
            worth = np.where(
                scores >= 0, scores + VALUE_EPS, VALUE_EPS * np.exp(np.minimum(scores, 0))
            )
    return np.where(finite, worth / costs, -np.inf)


def _ranked(value: np.ndarray) -> np.ndarray:
    """Indices by value, best first (ties: lower index), without the -inf ones."""
    order = np.argsort(-value, kind="stable")
    return order[np.isfinite(value[order])]


class _Budget:
    """What is left of the total and group budgets while items are being chosen."""

    def __init__(
        self,
        costs: np.ndarray,
        groups: np.ndarray | None,
        remaining: float,
        group_remaining: Mapping[int, float] | None,
    ):
        self.costs = costs
        self.groups = groups
        self.left = float(remaining)
        self.group_left = {int(g): float(v) for g, v in (group_remaining or {}).items()}
        self.chosen: list[int] = []

    def _group(self, i: int) -> int:
        return int(self.groups[i]) if self.groups is not None else -1

    def fits(self, i: int) -> bool:
        cost = float(self.costs[i])
        if cost > self.left + BUDGET_TOLERANCE:
            return False
        g = self._group(i)
        return g not in self.group_left or cost <= self.group_left[g] + BUDGET_TOLERANCE

    def take(self, i: int) -> None:
        cost, g = float(self.costs[i]), self._group(i)
        self.left -= cost
        if g in self.group_left:
            self.group_left[g] -= cost
        self.chosen.append(int(i))

    def walk(self, order: np.ndarray, batch_size: int) -> None:
        """Take, in `order`, each item not yet chosen that still fits, up to batch_size
        items in all (greedy knapsack: what does not fit is skipped, the walk goes on)."""
        taken = set(self.chosen)
        cheapest = float(self.costs.min()) if len(self.costs) else 0.0
        for i in order:
            if len(self.chosen) >= batch_size or self.left + BUDGET_TOLERANCE < cheapest:
                return
            if int(i) not in taken and self.fits(int(i)):
                self.take(int(i))
                taken.add(int(i))

    def result(self) -> np.ndarray:
        return np.asarray(self.chosen, dtype=np.int64)


def _kmeans_labels(X: np.ndarray, k: int, first: int, random_state: int, iterations: int = 10):
    """Cluster labels (n,) of the rows of X (n, d) into k clusters: k-means++ seeding from
    row `first`, then Lloyd iterations. Memory O(n k + k d): distances come from
    |x|^2 - 2 x.c + |c|^2, never an (n, k, d) array."""
    rng = np.random.default_rng(random_state)
    sq = (X * X).sum(1)

    def sq_dist(centers: np.ndarray) -> np.ndarray:
        return np.maximum(sq[:, None] - 2 * X @ centers.T + (centers * centers).sum(1), 0)

    centers = [first]
    closest = sq_dist(X[[first]])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        pick = (
            int(rng.choice(len(X), p=closest / total)) if total > 0 else int(rng.integers(len(X)))
        )
        centers.append(pick)
        closest = np.minimum(closest, sq_dist(X[[pick]])[:, 0])
    C = X[centers].copy()
    labels = sq_dist(C).argmin(1)
    for _ in range(iterations):
        for j in range(k):
            members = labels == j
            if members.any():
                C[j] = X[members].mean(0)
        new = sq_dist(C).argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _clusters(features: np.ndarray, candidates: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels (len(candidates),) of the candidates' L2-normalized features; the
    seeding starts from candidates[0], the best item."""
    X = np.asarray(features[candidates], dtype=np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return _kmeans_labels(X, min(k, len(candidates)), first=0, random_state=seed)


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
    score_floor: float | None = None,
    random_state: int = 0,
) -> np.ndarray:
    """int64 indices into `scores` (N,), in priority order, of at most `batch_size` items.

    Items are ranked by score per unit of cost (value_per_cost, with `score_floor`; ties by
    lower index; non-finite scores are never chosen) and walked greedily: an item is taken
    if its cost still fits `remaining` (the total of the chosen costs stays <= remaining)
    and, when `groups` (N,) int gives it a group g present in `group_remaining`, the
    group's chosen costs stay <= group_remaining[g]; otherwise it is skipped and the walk
    goes on. Group -1 means no group; groups absent from group_remaining count toward the
    total only. `costs` (N,) must be finite and > 0.

    With `features` (N, d): batch diversity. The top diversity_pool * batch_size items are
    clustered (k-means++ seeding by `random_state`, then Lloyd's k-means) into batch_size
    clusters on their L2-normalized features; first each cluster, in the order of its best
    item, gives its best item that fits, then the walk above fills the batch. So one round
    does not queue near-duplicates, and the budgets hold the same way.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    costs = _checked_costs(costs, n)
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
    if batch_size <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    order = _ranked(value_per_cost(scores, costs, score_floor=score_floor))
    budget = _Budget(costs, groups, remaining, group_remaining)
    if features is not None and len(order) > batch_size:
        features = np.asarray(features)
        if features.ndim != 2 or len(features) != n:
            raise ValueError(f"features must have shape ({n}, d), got {features.shape}")
        candidates = order[: max(1, diversity_pool) * batch_size]
        labels = _clusters(features, candidates, batch_size, random_state)
        # One item per cluster first: clusters in the order of their best candidate, each
        # giving its best candidate that fits (not only its best, which may not).
        for label in dict.fromkeys(labels.tolist()):
            for i in candidates[labels == label]:
                if len(budget.chosen) < batch_size and budget.fits(int(i)):
                    budget.take(int(i))
                    break
    budget.walk(order, batch_size)  # then the rest by value
    return budget.result()


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
    """Diverse first picks, before any model: k-center greedy on `features` (N, d).

    A uniform subsample of max_candidates rows (by `random_state`) is taken when N is
    larger. The first pick is the affordable item nearest the candidates' mean; each next
    pick is the affordable item farthest (L2) from everything picked so far, until
    `batch_size` picks or nothing affordable is left. Affordable: its cost fits the budget
    still remaining, total and group, with the same rules as select_under_budget.
    Memory O(n d) and time O(n d) per pick: no n x n matrix (modAL's ranked batch builds
    one). Returns int64 indices into `features`, in pick order.
    """
    features = np.asarray(features, dtype=np.float32)
    n = len(features)
    costs = _checked_costs(costs, n)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-d (N, d), got shape {features.shape}")
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
    if n == 0 or batch_size <= 0:
        return np.zeros(0, dtype=np.int64)
    pool = np.arange(n)
    if n > max_candidates:
        rng = np.random.default_rng(random_state)
        pool = np.sort(rng.choice(n, max_candidates, replace=False))
    X = features[pool].astype(np.float64)
    pool_costs = costs[pool]
    pool_groups = groups[pool] if groups is not None else np.full(len(pool), -1)
    left = float(remaining)
    group_left = {int(g): float(v) for g, v in (group_remaining or {}).items()}

    def affordable() -> np.ndarray:
        ok = pool_costs <= left + BUDGET_TOLERANCE
        for g, g_left in group_left.items():
            ok &= (pool_groups != g) | (pool_costs <= g_left + BUDGET_TOLERANCE)
        return ok

    sq = (X * X).sum(1)
    ok = affordable()
    if not ok.any():
        return np.zeros(0, dtype=np.int64)
    centre = X.mean(0)
    to_centre = sq - 2 * X @ centre + centre @ centre
    pick = int(np.argmin(np.where(ok, to_centre, np.inf)))
    chosen: list[int] = []
    nearest = np.full(len(pool), np.inf)  # squared distance to the closest pick
    while True:
        chosen.append(pick)
        cost, g = float(pool_costs[pick]), int(pool_groups[pick])
        left -= cost
        if g in group_left:
            group_left[g] -= cost
        nearest = np.minimum(nearest, np.maximum(sq - 2 * X @ X[pick] + sq[pick], 0))
        ok = affordable()
        ok[chosen] = False
        if len(chosen) >= batch_size or not ok.any():
            break
        pick = int(np.argmax(np.where(ok, nearest, -np.inf)))
    return pool[np.asarray(chosen, dtype=np.int64)].astype(np.int64)
