"""Replaying active learning on a labeled set, with the true labels as the annotator.

Uses the building blocks of the real round (cold_start, MLPEnsemble, score_shard,
select_under_budget) with unit costs, so a strategy's figure here is what it would do in
production on data like this.
"""

import time
from collections.abc import Callable

import numpy as np

from sampler.acquisition import SCORE_FLOOR
from sampler.ensemble import MLPEnsemble
from sampler.pool import score_shard
from sampler.selection import cold_start, select_under_budget


def cold_start_needed(labels: np.ndarray, n_classes: int, batch_size: int) -> bool:
    """Too few labels to train: fewer than two per class (at least a batch), or one class."""
    return len(labels) < max(2 * n_classes, batch_size) or len(np.unique(labels)) < 2


def simulate(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    strategy: str,
    budget: int,
    batch_size: int,
    seed: int = 0,
    initial: np.ndarray | None = None,
    ensemble_params: dict | None = None,
    test_X: np.ndarray | None = None,
    test_y: np.ndarray | None = None,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run rounds until `budget` labels are spent; after each, train on the labels so far
    and record {'round', 'labeled', 'accuracy', 'strategy', 'seconds'} (accuracy on
    test_X/test_y, or on the unlabeled rest of X when no test set is given)."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    params = {"n_members": 5, **(ensemble_params or {})}
    labeled = list(initial) if initial is not None else []
    costs = np.ones(len(y))
    curve: list[dict] = []
    number = 0
    while len(labeled) < min(budget, len(y)):
        number += 1
        started = time.perf_counter()
        batch = min(batch_size, budget - len(labeled))
        is_labeled = np.zeros(len(y), dtype=bool)
        is_labeled[labeled] = True
        pool = np.flatnonzero(~is_labeled)
        if cold_start_needed(y[labeled], n_classes, batch_size):
            picks = cold_start(
                X[pool], costs[pool], remaining=batch, batch_size=batch, random_state=seed + number
            )
        else:
            model = MLPEnsemble(random_state=seed * 1000 + number, **params).fit(
                X[labeled], y[labeled], n_classes
            )
            scores = score_shard(
                model, X[pool], strategy, ids=pool, labeled_X=X[labeled], random_state=seed + number
            )
            picks = select_under_budget(
                scores,
                costs[pool],
                remaining=batch,
                batch_size=batch,
                features=X[pool],
                score_floor=SCORE_FLOOR.get(strategy, 0.0),
            )
        labeled.extend(int(i) for i in pool[picks])
        record = {
            "round": number,
            "labeled": len(labeled),
            "accuracy": _accuracy(X, y, labeled, n_classes, params, seed, test_X, test_y),
            "strategy": strategy,
            "seconds": time.perf_counter() - started,
        }
        curve.append(record)
        if progress is not None:
            progress(record)
        if len(picks) == 0:
            break
    return curve


def _accuracy(X, y, labeled, n_classes, params, seed, test_X, test_y) -> float:
    if len(np.unique(y[labeled])) < 2:
        majority = np.bincount(y[labeled], minlength=n_classes).argmax()
        target = test_y if test_y is not None else y
        return float((target == majority).mean())
    model = MLPEnsemble(random_state=seed, **params).fit(X[labeled], y[labeled], n_classes)
    if test_X is None:
        rest = np.setdiff1d(np.arange(len(y)), labeled)
        test_X, test_y = X[rest], y[rest]
    return float((model.predict_proba(test_X).mean(0).argmax(1) == test_y).mean())
