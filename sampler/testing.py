"""modAL committees over precomputed member outputs: the reference the acquisition
functions are checked (tests/sampler) and timed (bench/bench_acquisition.py) against."""

import numpy as np
from modAL.models import ActiveLearner, Committee
from sklearn.base import BaseEstimator, ClassifierMixin


class FixedProba(ClassifierMixin, BaseEstimator):
    """A fitted committee member whose predict_proba returns precomputed rows: X holds row
    numbers. Consecutive rows come back as a view (no copy), so that what a benchmark
    times is modAL's own work, not the wrapper's."""

    def __init__(self, probs=None):
        self.probs = probs

    def fit(self, X, y):
        self.classes_ = np.arange(self.probs.shape[1])
        return self

    def predict_proba(self, X):
        rows = np.asarray(X, dtype=int)[:, 0]
        first = int(rows[0]) if len(rows) else 0
        if np.array_equal(rows, np.arange(first, first + len(rows))):
            return self.probs[first : first + len(rows)]
        return self.probs[rows]

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def committee_for(probs: np.ndarray) -> Committee:
    """A modAL Committee of K members whose outputs on rows 0..N-1 are probs (K, N, C)."""
    k, n, c = probs.shape
    X, y = np.arange(c).reshape(-1, 1), np.arange(c)  # every class seen: classes_ = 0..C-1
    return Committee(
        learner_list=[
            ActiveLearner(estimator=FixedProba(probs[i]), X_training=X, y_training=y)
            for i in range(k)
        ]
    )
