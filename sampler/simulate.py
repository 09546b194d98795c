"""Replaying active learning on a labeled set, with the true labels as the annotator.

Uses the building blocks of a real round (cold_start, MLPEnsemble, score_shard,
select_under_budget with batch diversity) with unit costs, so a strategy's learning curve
here is what it would do in production on data like this.
"""

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sampler.acquisition import ACQUISITIONS, score_floor
from sampler.ensemble import MLPEnsemble
from sampler.pool import score_shard
from sampler.selection import cold_start, select_under_budget
from sampler.strategy import DEFAULT_AUDIT_SHARE, audit_size, choose, credit, new_state


def cold_start_needed(labels: np.ndarray, n_classes: int, batch_size: int) -> bool:
    """Too few labels to train: fewer than max(2 * n_classes, batch_size), or one class."""
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
    ensemble_params: dict[str, Any] | None = None,
    test_X: np.ndarray | None = None,
    test_y: np.ndarray | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    audit_share: float | None = None,
    cold_start_method: str = "typiclust",
) -> list[dict[str, Any]]:
    """Label `batch_size` items per round until `budget` labels are spent (or the pool of
    X (N, d) runs out), then record the round.

    A round picks by cold_start (its `cold_start_method`, given the features of the labels
    so far) while cold_start_needed, otherwise by `strategy` scored
    with the ensemble trained on the labels so far (score_shard, then select_under_budget
    with the features for diversity), and reveals the true labels y (N,) int of its picks.
    `initial` (indices into X) are labeled before the first round and count toward the
    budget. After each round an MLPEnsemble(**ensemble_params) is trained on all labels;
    it scores the next round, and its accuracy on test_X / test_y (a held-out split; when
    not given, the still unlabeled rows of X) is recorded.

    `audit_share` of each trained round's batch (sampler.strategy.audit_size; default 0.1
    for "auto", 0 otherwise, as the server does) is picked uniformly at random, and the
    model's accuracy on those picks recorded as 'audit_accuracy'. strategy "auto" draws
    each round's strategy with sampler.strategy's bandit, rewarded by that accuracy.

    Returns one dict per round: {'round': 1, 2, ..., 'labeled': labels so far,
    'labeled_indices': those labels' indices into X (int64, in the order labeled, `initial`
    first), 'accuracy':
    float in [0, 1], 'strategy': the strategy used (or 'cold_start'), 'seconds': the
    round's wall time, choosing and training}. `progress` is called with each dict as it is
    recorded. Deterministic given `seed`.
    """
    if strategy not in ACQUISITIONS and strategy != "auto":
        raise KeyError(f"unknown acquisition function {strategy!r}")
    if audit_share is None:  # the server's default for "auto", none for a fixed strategy
        audit_share = DEFAULT_AUDIT_SHARE if strategy == "auto" else 0.0
    bandit = new_state() if strategy == "auto" else None
    if budget < 0 or batch_size <= 0:
        raise ValueError("budget must be >= 0 and batch_size > 0")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    params = dict(ensemble_params or {})
    labeled = [int(i) for i in initial] if initial is not None else []
    is_labeled = np.zeros(len(y), dtype=bool)
    is_labeled[labeled] = True
    costs = np.ones(len(y))
    model: MLPEnsemble | None = None
    previous: MLPEnsemble | None = None
    if not cold_start_needed(y[labeled], n_classes, batch_size):
        model = _train(X, y, labeled, n_classes, params, seed, 0)
    curve: list[dict[str, Any]] = []
    number = 0
    while len(labeled) < min(budget, len(y)):
        number += 1
        started = time.perf_counter()
        batch = min(batch_size, budget - len(labeled))
        pool = np.flatnonzero(~is_labeled)
        audit_accuracy = None
        if model is None:
            used = "cold_start"
            picks = cold_start(
                X[pool],
                costs[pool],
                remaining=batch,
                batch_size=batch,
                random_state=seed + number,
                method=cold_start_method,
                labeled_features=X[labeled],
            )
        else:
            n_audit = min(audit_size(audit_share, batch), len(pool))
            rng = np.random.default_rng([seed, number])
            audit = rng.choice(len(pool), size=n_audit, replace=False)
            if len(audit):  # the model's accuracy on uniform picks: unbiased on the pool
                predicted = model.predict_proba(X[pool[audit]]).mean(0).argmax(1)
                audit_accuracy = float((predicted == y[pool[audit]]).mean())
            used = strategy
            if bandit is not None:
                if len(audit):  # this model was trained after the last round's picks
                    credit(bandit, round_number=number - 1, reward=audit_accuracy)
                used, _ = choose(bandit, round_number=number, seed=seed)
            rest = np.setdiff1d(np.arange(len(pool)), audit)
            scores = score_shard(
                model,
                X[pool[rest]],
                used,
                ids=pool[rest],
                labeled_X=X[labeled],
                previous_model=previous,
                random_state=seed * 1_000_003 + number,
            )
            chosen = select_under_budget(
                scores,
                costs[pool[rest]],
                remaining=batch - len(audit),
                batch_size=batch - len(audit),
                features=X[pool[rest]],
                score_floor=score_floor(used),
                random_state=seed + number,
            )
            picks = np.concatenate([rest[chosen], audit]).astype(np.int64)
        if len(picks) == 0:
            break
        labeled.extend(int(i) for i in pool[picks])
        is_labeled[pool[picks]] = True
        previous = model
        model = None
        if not cold_start_needed(y[labeled], n_classes, batch_size):
            model = _train(X, y, labeled, n_classes, params, seed, number)
        record = {
            "round": number,
            "labeled": len(labeled),
            "labeled_indices": np.asarray(labeled, dtype=np.int64),
            "accuracy": _accuracy(model, X, y, is_labeled, n_classes, test_X, test_y),
            "strategy": used,
            "audit_accuracy": audit_accuracy,
            "seconds": time.perf_counter() - started,
        }
        curve.append(record)
        if progress is not None:
            progress(record)
    return curve


def _train(X, y, labeled, n_classes, params, seed, number) -> MLPEnsemble:
    """The ensemble after round `number`: its own seed per round, from `seed` (or from
    ensemble_params['random_state'] when given)."""
    params = dict(params)
    random_state = int(params.pop("random_state", seed)) * 1_000_003 + number
    return MLPEnsemble(random_state=random_state, **params).fit(X[labeled], y[labeled], n_classes)


def _accuracy(model, X, y, is_labeled, n_classes, test_X, test_y) -> float:
    if test_X is None:
        test_X, test_y = X[~is_labeled], y[~is_labeled]
    test_y = np.asarray(test_y)
    if len(test_y) == 0:
        return float("nan")
    if model is None:  # too few labels for a model: predict the most frequent label
        majority = np.bincount(y[is_labeled], minlength=n_classes).argmax()
        return float((test_y == majority).mean())
    predicted = model.predict_proba(np.asarray(test_X, dtype=np.float32)).mean(0).argmax(1)
    return float((predicted == test_y).mean())
