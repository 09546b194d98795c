"""Adaptive budget allocation across groups of items, from each group's learning curve.

After "Adaptive Sampling Strategies to Construct Equitable Training Datasets" (Cai et al.):
each group's error is modelled as a power law of its label count, err(n) = a * n^-b, fitted
in log-log space to the group's history; the next batch goes where the predicted error
reduction per unit of cost is largest, with a floor so that no group is starved.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_EXPONENT = 0.5  # a typical learning-curve slope, used until a group has a history
MIN_EXPONENT, MAX_EXPONENT = 0.05, 2.0


def fit_power_law(labels: Sequence[float], errors: Sequence[float]) -> tuple[float, float]:
    """(a, b) of err(n) = a * n^-b by least squares on (log n, log err).

    Points with n <= 0 or err <= 0 are dropped (err 0 is clipped to 1e-3 first). With one
    usable point, b is DEFAULT_EXPONENT and a goes through the point; with none, (1, b).
    b is clipped to [0.05, 2] so one noisy round cannot claim a group is solved or hopeless.
    """
    points = [(n, max(e, 1e-3)) for n, e in zip(labels, errors, strict=True) if n > 0]
    if not points:
        return 1.0, DEFAULT_EXPONENT
    if len({n for n, _ in points}) < 2:
        n, e = points[-1]
        return e * n**DEFAULT_EXPONENT, DEFAULT_EXPONENT
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(e) for _, e in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    b = min(MAX_EXPONENT, max(MIN_EXPONENT, -slope))
    a = math.exp(my + b * mx)
    return a, b


@dataclass
class GroupCurve:
    """One group's state: labels so far, its history of (labels, error), what it costs."""

    name: str
    labels: int
    history: list[tuple[int, float]]
    mean_cost: float
    available: int  # unlabeled items left in the group
    a: float = field(init=False, default=1.0)
    b: float = field(init=False, default=DEFAULT_EXPONENT)
    gain_per_cost: float = field(init=False, default=0.0)
    slots: int = field(init=False, default=0)


def allocate_batch(groups: list[GroupCurve], *, batch_size: int, floor: float) -> list[GroupCurve]:
    """Split `batch_size` item slots across `groups` and return them with `a`, `b`,
    `gain_per_cost` (predicted error reduction per unit of cost for a fair share of the
    batch) and `slots` filled in.

    Every group with items left first gets ceil(floor * batch_size) slots (as far as the
    batch allows); the rest go one by one to the group whose next label is predicted to
    reduce its error most per unit of cost (diminishing returns are recomputed after
    each slot). No group gets more slots than it has items.
    """
    live = [g for g in groups if g.available > 0]
    share = max(1, batch_size // max(1, len(live)))
    for g in groups:
        g.a, g.b = fit_power_law([n for n, _ in g.history], [e for _, e in g.history])
        n = max(1, g.labels)
        g.gain_per_cost = (g.a * n**-g.b - g.a * (n + share) ** -g.b) / (share * g.mean_cost)
        g.slots = 0
    left = batch_size
    minimum = math.ceil(floor * batch_size)
    for g in sorted(live, key=lambda g: -g.gain_per_cost):
        take = min(minimum, g.available, left)
        g.slots += take
        left -= take

    def marginal(g: GroupCurve) -> float:
        n = max(1, g.labels + g.slots)
        return (g.a * n**-g.b - g.a * (n + 1) ** -g.b) / g.mean_cost

    while left > 0:
        open_groups = [g for g in live if g.slots < g.available]
        if not open_groups:
            break
        best = max(open_groups, key=marginal)
        best.slots += 1
        left -= 1
    return groups
