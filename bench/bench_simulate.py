"""Label efficiency on scikit-learn's digits: how many labels each strategy needs to reach
the accuracy that random picking reaches with the whole budget (mean over seeds).

Same protocol as `manage.py simulate`: a held-out test split per seed, the true labels as
the annotator, the real round building blocks. Default: B=200, b=20, 5 seeds.
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

from sampler.simulate import simulate

DEFAULT_STRATEGY = "margin"  # annotation.models.DEFAULT_ACQUISITION
GOAL = 0.30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategies", default="random,vote_entropy,bald,margin,cal,lftl")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    digits = load_digits()
    X, y = (digits.data / 16.0).astype(np.float32), digits.target
    names = [s.strip() for s in args.strategies.split(",")]
    if "random" not in names:
        names.insert(0, "random")
    curves: dict[str, np.ndarray] = {}
    labeled = None
    started = time.perf_counter()
    for name in names:
        runs = []
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(y))
            test, train = order[:450], order[450:]
            curve = simulate(
                X[train],
                y[train],
                10,
                strategy=name,
                budget=args.budget,
                batch_size=args.batch,
                seed=seed,
                test_X=X[test],
                test_y=y[test],
            )
            runs.append([r["accuracy"] for r in curve])
            labeled = [r["labeled"] for r in curve]
        curves[name] = np.mean(runs, axis=0)
    target = curves["random"][-1]
    print(
        f"digits: {len(y)} items, 10 classes; budget {args.budget}, batch {args.batch}, "
        f"{args.seeds} seeds ({time.perf_counter() - started:.0f} s)"
    )
    print("labels  " + "".join(f"{n:>14}" for n in names))
    for i, n in enumerate(labeled):
        print(f"{n:6d}  " + "".join(f"{curves[name][i]:14.3f}" for name in names))
    print(f"\nrandom reaches {target:.3f} with {labeled[-1]} labels; labels each strategy needs:")
    for name in names:
        reached = next((n for n, a in zip(labeled, curves[name], strict=True) if a >= target), None)
        saving = 1 - reached / labeled[-1] if reached else 0.0
        mark = ""
        if name == DEFAULT_STRATEGY:
            mark = f"   <- default; goal >= {GOAL:.0%} fewer: " + (
                "PASS" if saving >= GOAL else "FAIL"
            )
        print(f"  {name:>18}: {reached or 'not reached':>11}  ({saving:.0%} fewer){mark}")


if __name__ == "__main__":
    main()
