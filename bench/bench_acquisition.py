"""Acquisition throughput against modAL on the same committee outputs, one thread.

K=5 members, N=200,000 items, C=10 classes of Dirichlet member probabilities. modAL is
driven through a real Committee whose learners' predict_proba return the precomputed member
arrays, so what is timed is modAL's own work. Prints items/s, the speed-up over modAL
measured in the same run (timings interleaved, best of several, because the machine is
shared), and the effective bandwidth (bytes of probabilities read per second) as a fraction
of a memcpy measured in the same run.

    python -m bench.bench_acquisition [--n 200000] [--k 5] [--c 10]
"""

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy

from sampler import acquisition
from sampler.testing import committee_for

# The speed-ups over modAL the product promises.
FLOORS = {"vote_entropy": 10.0, "max_disagreement": 10.0, "consensus_entropy": 2.0}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memcpy_bandwidth(nbytes: int) -> float:
    """Bytes copied per second by np.copyto on arrays bigger than any cache (best of 5)."""
    size = max(nbytes, 256 << 20)
    src = np.ones(size, dtype=np.uint8)
    dst = np.empty_like(src)
    return size / min(timed(lambda: np.copyto(dst, src)) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    parser.add_argument(
        "--modal-vote-n",
        type=int,
        default=20_000,
        help="items for modAL's vote_entropy (a Python loop per item): timed on this "
        "subsample and scaled per item",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(args.c, 0.5), size=(args.k, args.n)).astype(np.float32)
    probs64 = probs.astype(np.float64)
    rows = np.arange(args.n).reshape(-1, 1)
    committee = committee_for(probs)
    memcpy = memcpy_bandwidth(probs.nbytes)
    print(
        f"K={args.k} N={args.n:,} C={args.c}: {probs.nbytes / 1e6:.0f} MB of float32 "
        f"probabilities; torch threads {torch.get_num_threads()}; best of {args.repeat}"
    )
    print(f"memcpy bandwidth, measured now: {memcpy / 1e9:.2f} GB/s (bytes copied per second)")
    print(
        "modAL's learners return the same float32 member arrays; modAL's Committee copies "
        "them into float64 itself.\n"
    )
    cases = [
        ("vote_entropy", acquisition.vote_entropy, vote_entropy),
        ("consensus_entropy", acquisition.consensus_entropy, consensus_entropy),
        ("max_disagreement", acquisition.max_disagreement, KL_max_disagreement),
        ("bald", acquisition.bald, None),
    ]
    header = (
        f"{'function':<18} {'ours f32 items/s':>17} {'ours f64 items/s':>17} "
        f"{'modAL items/s':>14} {'speed-up':>9} {'GB/s':>6} {'of memcpy':>9}  floor"
    )
    print(header)
    met = 0
    notes = []
    for name, ours, theirs in cases:
        modal_n = args.modal_vote_n if name == "vote_entropy" else args.n
        ours32, ours64, modal = [], [], []
        for _ in range(args.repeat):  # interleaved, so a busy moment hits all three alike
            ours32.append(timed(lambda ours=ours: ours(probs)))
            ours64.append(timed(lambda ours=ours: ours(probs64)))
            if theirs is not None:
                sub = rows[:modal_n]
                modal.append(timed(lambda theirs=theirs, sub=sub: theirs(committee, sub)))
        rate32, rate64 = args.n / min(ours32), args.n / min(ours64)
        bandwidth = probs.nbytes / min(ours32)
        line = (
            f"{name:<18} {rate32:>17,.0f} {rate64:>17,.0f} "
            f"{{modal}} {bandwidth / 1e9:>6.2f} {bandwidth / memcpy:>8.0%}  {{floor}}"
        )
        if theirs is None:
            print(line.format(modal=f"{'-':>14} {'-':>9}", floor="(no modAL function)"))
            continue
        modal_rate = modal_n / min(modal)
        speedup = rate32 / modal_rate
        verdict = "PASS" if speedup >= FLOORS[name] else "FAIL"
        met += verdict == "PASS"
        print(
            line.format(
                modal=f"{modal_rate:>14,.0f} {speedup:>8.1f}x",
                floor=f">={FLOORS[name]:.0f}x {verdict}",
            )
        )
        if modal_n < args.n:
            notes.append(
                f"modAL's {name} was timed on {modal_n:,} items and scaled per item "
                f"({min(modal):.2f} s; about {min(modal) * args.n / modal_n:.0f} s for all "
                f"{args.n:,})."
            )
    for note in notes:
        print(note)
    print(
        "Speed-up and floors compare ours on float32 (what MLPEnsemble.predict_proba "
        "returns) with modAL on the same values."
    )
    print(f"{met} of {len(FLOORS)} speed floors met")


if __name__ == "__main__":
    main()
