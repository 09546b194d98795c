"""Acquisition throughput against modAL on the same committee outputs, one thread.

K=5 members, N=200,000 items, C=10 classes (Dirichlet member probabilities). Prints items/s,
the speed-up over modAL measured in the same run, and the effective bandwidth (bytes of
probabilities read per second) as a fraction of a memcpy measured in the same run.
"""

import argparse
import time

import numpy as np
import torch
from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy
from modAL.models import ActiveLearner, Committee
from sklearn.base import BaseEstimator, ClassifierMixin

from sampler import acquisition

FLOORS = {"vote_entropy": 10.0, "max_disagreement": 10.0, "consensus_entropy": 2.0}


class FixedProba(ClassifierMixin, BaseEstimator):
    """A committee member whose predict_proba returns precomputed rows (so modAL's own
    cost is what is timed, not a model's)."""

    def __init__(self, probs=None):
        self.probs = probs

    def fit(self, X, y):
        self.classes_ = np.arange(self.probs.shape[1])
        return self

    def predict_proba(self, X):
        return self.probs[: len(X)]

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument(
        "--modal-n",
        type=int,
        default=20_000,
        help="rows for modAL's vote entropy (its Python loop is slow)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(args.c) * 0.5, size=(args.k, args.n)).astype(np.float32)
    probs64 = probs.astype(np.float64)
    X = np.zeros((args.n, 1))
    y = np.arange(args.n) % args.c
    committee = Committee(
        learner_list=[
            ActiveLearner(
                estimator=FixedProba(probs64[i]), X_training=X[: args.c], y_training=y[: args.c]
            )
            for i in range(args.k)
        ]
    )
    nbytes = probs.nbytes
    big = np.empty(nbytes // 4 * 4, dtype=np.uint8)
    big[:] = 1
    copy_target = np.empty_like(big)
    memcpy = nbytes / best_of(lambda: np.copyto(copy_target, big), 5)
    print(
        f"K={args.k} N={args.n:,} C={args.c}, float32 probabilities: "
        f"{nbytes / 1e6:.0f} MB; one thread"
    )
    print(f"memcpy bandwidth measured now: {memcpy / 1e9:.2f} GB/s\n")
    rows = [
        ("vote_entropy", acquisition.vote_entropy, vote_entropy, args.modal_n),
        ("consensus_entropy", acquisition.consensus_entropy, consensus_entropy, args.n),
        ("max_disagreement", acquisition.max_disagreement, KL_max_disagreement, args.n),
        ("bald", acquisition.bald, None, args.n),
    ]
    print(
        f"{'function':<18} {'ours items/s':>14} {'modAL items/s':>14} {'speed-up':>9} "
        f"{'GB/s':>6} {'of memcpy':>9}  floor"
    )
    failed = 0
    for name, ours, theirs, modal_n in rows:
        ours_time = best_of(lambda ours=ours: ours(probs), 3)
        ours_rate = args.n / ours_time
        bandwidth = nbytes / ours_time
        if theirs is not None:
            sub = X[:modal_n]
            for member, learner in zip(committee.learner_list, range(args.k), strict=True):
                member.estimator.probs = probs64[learner, :modal_n]
            modal_time = best_of(
                lambda theirs=theirs, sub=sub: theirs(committee, sub), 1 if modal_n < args.n else 2
            )
            modal_rate = modal_n / modal_time
            speedup = ours_rate / modal_rate
            floor = FLOORS[name]
            verdict = "PASS" if speedup >= floor else "FAIL"
            failed += verdict == "FAIL"
            note = f" (modAL timed on {modal_n:,} rows)" if modal_n < args.n else ""
            print(
                f"{name:<18} {ours_rate:>14,.0f} {modal_rate:>14,.0f} {speedup:>8.1f}x "
                f"{bandwidth / 1e9:>6.2f} {bandwidth / memcpy:>8.0%}  "
                f">={floor:.0f}x {verdict}{note}"
            )
        else:
            print(
                f"{name:<18} {ours_rate:>14,.0f} {'-':>14} {'-':>9} {bandwidth / 1e9:>6.2f} "
                f"{bandwidth / memcpy:>8.0%}  (no modAL function)"
            )
        for member, learner in zip(committee.learner_list, range(args.k), strict=True):
            member.estimator.probs = probs64[learner]
    print(f"\n{len(FLOORS) - failed} of {len(FLOORS)} speed floors met")


if __name__ == "__main__":
    main()
