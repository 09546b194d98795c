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


COLD_START_METHODS = ("typiclust", "kcenter", "random")
TYPICALITY_NEIGHBOURS = 20  # K of TypiClust's typicality (Hacohen et al. 2022)
MIN_CLUSTER_SIZE = 5  # smaller clusters (outliers) are used only after all the others
MAX_CLUSTERS = 500  # k-means k at most this (the paper's cap)
MAX_CLUSTER_REFERENCE = 2000  # a bigger cluster's neighbours come from a subsample this size
KMEANS_ITERATIONS = 50  # Lloyd iterations at most
_CHUNK = 1024  # rows per block of distances: memory O(_CHUNK * MAX_CLUSTER_REFERENCE)


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
    method: str = "typiclust",
    labeled_features: np.ndarray | None = None,
) -> np.ndarray:
    """First picks, before any model can be trained, from the rows of `features` (N, d).

    A uniform subsample of max_candidates rows (by `random_state`) is taken when N is
    larger. An item is picked only if it is affordable: its cost fits the budget still
    remaining, total and group, with the same rules as select_under_budget. Returns int64
    indices into `features`, in pick order: at most `batch_size`, fewer when nothing
    affordable is left. `labeled_features` (M, d): the items already labeled (not in
    `features`), so a later cold-start round goes where the labels are not.

    method:
    - "typiclust" (TypiClust, Hacohen, Dekel and Weinshall, "Active Learning on a Budget",
      ICML 2022): the candidates and the labeled items, standardized with the candidates'
      mean and deviation, are clustered by k-means into min(M + batch_size, 500) clusters;
      a cluster holding a labeled item (or an earlier pick) is covered. Each pick comes
      from the least covered cluster, the largest first (clusters under 5 items, outliers,
      only once no other cluster is left), and is its most typical affordable item:
      typicality = 1 / mean distance to the item's 20 nearest neighbours in its cluster
      (neighbours among a 2,000-item subsample for a bigger cluster). At small budgets it
      picks the dense middles of the data, where k-center picks its outliers.
    - "kcenter": k-center greedy. The first pick is the affordable item farthest from the
      labeled items (nearest the candidates' mean when there are none); each next pick is
      the affordable item farthest (L2) from everything picked or labeled so far.
    - "random": affordable items in a random order (by `random_state`).

    Memory O(N d + N k) for k clusters and O(N d) for k-center: no N x N matrix (modAL's
    ranked batch builds one).
    """
    if method not in COLD_START_METHODS:
        raise ValueError(f"method must be one of {COLD_START_METHODS}, got {method!r}")
    features = np.asarray(features, dtype=np.float32)
    n = len(features)
    costs = _checked_costs(costs, n)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-d (N, d), got shape {features.shape}")
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
    if labeled_features is None or len(labeled_features) == 0:
        labeled = np.zeros((0, features.shape[1]), dtype=np.float32)
    else:
        labeled = np.asarray(labeled_features, dtype=np.float32)
        if labeled.ndim != 2 or labeled.shape[1] != features.shape[1]:
            raise ValueError(
                f"labeled_features must have shape (M, {features.shape[1]}), got {labeled.shape}"
            )
    if n == 0 or batch_size <= 0:
        return np.zeros(0, dtype=np.int64)
    pool = np.arange(n)
    if n > max_candidates:
        rng = np.random.default_rng(random_state)
        pool = np.sort(rng.choice(n, max_candidates, replace=False))
    budget = _Budget(
        costs[pool], groups[pool] if groups is not None else None, remaining, group_remaining
    )
    if method == "random":
        order = np.random.default_rng([random_state, 1]).permutation(len(pool))
        budget.walk(order, batch_size)
    elif method == "kcenter":
        _kcenter(features[pool].astype(np.float64), labeled.astype(np.float64), budget, batch_size)
    else:
        _typiclust(features[pool], labeled, budget, batch_size, random_state)
    return pool[budget.result()].astype(np.int64)


def _affordable(budget: _Budget) -> np.ndarray:
    """(n,) bool: the items whose cost fits what is left, total and group, not yet chosen."""
    ok = budget.costs <= budget.left + BUDGET_TOLERANCE
    groups = budget.groups if budget.groups is not None else np.full(len(ok), -1)
    for g, g_left in budget.group_left.items():
        ok &= (groups != g) | (budget.costs <= g_left + BUDGET_TOLERANCE)
    ok[budget.chosen] = False
    return ok


def _kcenter(X: np.ndarray, labeled: np.ndarray, budget: _Budget, batch_size: int) -> None:
    """k-center greedy into `budget`: O(n d) per pick."""
    sq = (X * X).sum(1)
    nearest = np.full(len(X), np.inf)  # squared distance to the closest pick or label
    for row in labeled:
        nearest = np.minimum(nearest, np.maximum(sq - 2 * X @ row + row @ row, 0))
    while len(budget.chosen) < batch_size:
        ok = _affordable(budget)
        if not ok.any():
            return
        if budget.chosen or len(labeled):
            pick = int(np.argmax(np.where(ok, nearest, -np.inf)))
        else:
            centre = X.mean(0)
            pick = int(np.argmin(np.where(ok, sq - 2 * X @ centre + centre @ centre, np.inf)))
        budget.take(pick)
        nearest = np.minimum(nearest, np.maximum(sq - 2 * X @ X[pick] + sq[pick], 0))


def _kmeans(X: np.ndarray, k: int, random_state: int) -> np.ndarray:
    """Labels (n,) of the rows of X into k clusters, all by scikit-learn with k-means++
    seeding, 3 initializations and bounded iterations: KMeans up to k = 50 clusters of up
    to 5,000 rows; MiniBatchKMeans for more clusters (as TypiClust's code does) or more
    rows (20,000 rows of 384 features: about 2 s on one core, where KMeans takes 50 s)."""
    import warnings

    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    if k <= 1:
        return np.zeros(len(X), dtype=np.int64)
    if len(X) <= 5000 and k <= 50:
        model = KMeans(k, n_init=3, max_iter=KMEANS_ITERATIONS, random_state=random_state)
    elif len(X) <= 5000:
        model = MiniBatchKMeans(
            k, n_init=3, max_iter=KMEANS_ITERATIONS, batch_size=4096, random_state=random_state
        )
    else:
        model = MiniBatchKMeans(
            k, n_init=3, max_iter=20, batch_size=1024, random_state=random_state
        )
    with warnings.catch_warnings():  # duplicates: fewer distinct points than clusters
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit_predict(X).astype(np.int64)


def _typicality(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) 1 / (mean distance of each row of X (n, d) to its K nearest other rows),
    K = min(TYPICALITY_NEIGHBOURS, n // 2); the neighbours are taken among a subsample of
    MAX_CLUSTER_REFERENCE rows when n is larger. 0 for a lone row. Memory O(_CHUNK * R)."""
    n = len(X)
    reference = np.arange(n)
    if n > MAX_CLUSTER_REFERENCE:
        reference = np.sort(rng.choice(n, MAX_CLUSTER_REFERENCE, replace=False))
    k = min(TYPICALITY_NEIGHBOURS, len(reference) // 2)
    if k == 0:
        return np.zeros(n)
    R = X[reference]
    r_sq = (R * R).sum(1)
    out = np.empty(n)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        Q = X[rows]
        d2 = np.maximum((Q * Q).sum(1)[:, None] - 2 * Q @ R.T + r_sq, 0)
        is_self = rows[:, None] == reference[None, :]
        d2[is_self] = np.inf  # not its own neighbour (a duplicate is, at distance 0)
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        out[rows] = 1.0 / (np.sqrt(nearest).mean(1) + 1e-12)
    return out


def _typiclust(
    X: np.ndarray, labeled: np.ndarray, budget: _Budget, batch_size: int, random_state: int
) -> None:
    """TypiClust's picks into `budget` (see cold_start)."""
    n = len(X)
    mean, scale = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64)
    scale = np.where(scale > 1e-12, scale, 1.0)
    both = ((np.concatenate([X, labeled]) - mean) / scale).astype(np.float32)  # O(n d)
    k = min(len(labeled) + batch_size, MAX_CLUSTERS, len(both))
    clusters = _kmeans(both, k, random_state)
    pool_clusters, labeled_clusters = clusters[:n], clusters[n:]
    size = np.bincount(pool_clusters, minlength=k)
    covered = np.bincount(labeled_clusters, minlength=k)
    rng = np.random.default_rng([random_state, 2])
    order: dict[int, np.ndarray] = {}  # cluster -> its members, most typical first
    open_ = size > 0
    while len(budget.chosen) < batch_size and open_.any():
        ok = _affordable(budget)
        if not ok.any():
            return
        # the least covered open cluster; regular before tiny; largest first; lowest id
        candidates = np.flatnonzero(open_)
        c = int(
            candidates[
                np.lexsort(
                    (
                        candidates,
                        -size[candidates],
                        size[candidates] < MIN_CLUSTER_SIZE,
                        covered[candidates],
                    )
                )[0]
            ]
        )
        if c not in order:
            members = np.flatnonzero(pool_clusters == c)
            typicality = _typicality(both[members].astype(np.float64), rng)
            order[c] = members[np.lexsort((members, -typicality))]
        fitting = order[c][ok[order[c]]]
        if len(fitting) == 0:
            open_[c] = False  # nothing left in it that fits
            continue
        budget.take(int(fitting[0]))
        covered[c] += 1
