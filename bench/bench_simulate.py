"""Label efficiency: how many labels each strategy needs to reach the accuracy that random
picking reaches with the whole budget (mean over seeds).

Same protocol as `manage.py simulate`: a held-out test split per seed (a quarter of the
rows), the true labels as the annotator, the real round building blocks.

1. scikit-learn's digits (given features): B=200, b=20, 5 seeds.
2. Text, docs/data/banking77.jsonl (3,080 queries, 77 intents): the two text featurizers
   (hashed n-grams, MiniLM sentence embeddings) with random and margin picking, B=480,
   b=40, 5 seeds; the first 154 labels (two per class) are the cold start's.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sampler.simulate import simulate

DEFAULT_STRATEGY = "margin"  # annotation.models.DEFAULT_ACQUISITION
GOAL = 0.30
TEXT_DATA = Path(__file__).resolve().parents[1] / "docs" / "data" / "banking77.jsonl"


def mean_curves(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    names: list[str],
    *,
    budget: int,
    batch: int,
    seeds: int,
    n_test: int,
) -> tuple[list[int], dict[str, np.ndarray]]:
    """Labels spent after each round, and each strategy's test accuracy by round (mean of
    `seeds` runs; seed s holds out rows permutation(s)[:n_test] for testing)."""
    curves: dict[str, np.ndarray] = {}
    labeled: list[int] = []
    for name in names:
        runs = []
        for seed in range(seeds):
            order = np.random.default_rng(seed).permutation(len(y))
            test, train = order[:n_test], order[n_test:]
            curve = simulate(
                X[train],
                y[train],
                n_classes,
                strategy=name,
                budget=budget,
                batch_size=batch,
                seed=seed,
                test_X=X[test],
                test_y=y[test],
            )
            runs.append([r["accuracy"] for r in curve])
            labeled = [r["labeled"] for r in curve]
        curves[name] = np.mean(runs, axis=0)
    return labeled, curves


def labels_to_reach(labeled: list[int], curve: np.ndarray, target: float) -> int | None:
    return next((n for n, a in zip(labeled, curve, strict=True) if a >= target), None)


def print_curves(labeled: list[int], curves: dict[str, np.ndarray], width: int = 14) -> None:
    print("labels  " + "".join(f"{name:>{width}}" for name in curves))
    for i, n in enumerate(labeled):
        print(f"{n:6d}  " + "".join(f"{curve[i]:{width}.3f}" for curve in curves.values()))


def digits_table(args) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = (digits.data / 16.0).astype(np.float32), digits.target
    names = [s.strip() for s in args.strategies.split(",")]
    if "random" not in names:
        names.insert(0, "random")
    started = time.perf_counter()
    labeled, curves = mean_curves(
        X, y, 10, names, budget=args.budget, batch=args.batch, seeds=args.seeds, n_test=450
    )
    target = curves["random"][-1]
    print(
        f"digits: {len(y)} items, 10 classes; budget {args.budget}, batch {args.batch}, "
        f"{args.seeds} seeds ({time.perf_counter() - started:.0f} s)"
    )
    print_curves(labeled, curves)
    print(f"\nrandom reaches {target:.3f} with {labeled[-1]} labels; labels each strategy needs:")
    for name in names:
        reached = labels_to_reach(labeled, curves[name], target)
        saving = 1 - reached / labeled[-1] if reached else 0.0
        mark = ""
        if name == DEFAULT_STRATEGY:
            mark = f"   <- default; goal >= {GOAL:.0%} fewer: " + (
                "PASS" if saving >= GOAL else "FAIL"
            )
        print(f"  {name:>18}: {reached or 'not reached':>11}  ({saving:.0%} fewer){mark}")


def text_table(args) -> None:
    from sampler.features import DEFAULT_TEXT_FEATURIZER, TEXT_FEATURIZERS

    rows = [json.loads(line) for line in TEXT_DATA.read_text(encoding="utf-8").splitlines()]
    texts = [row["text"] for row in rows]
    classes = sorted({row["label"] for row in rows})
    y = np.asarray([classes.index(row["label"]) for row in rows], dtype=np.int64)
    strategies = [s.strip() for s in args.text_strategies.split(",")]
    if "random" not in strategies:
        strategies.insert(0, "random")
    featurizers = ["hashed", "minilm"]
    curves: dict[str, np.ndarray] = {}
    timings = []
    labeled: list[int] = []
    started = time.perf_counter()
    for featurizer in featurizers:
        began = time.perf_counter()
        X = TEXT_FEATURIZERS[featurizer](texts)
        timings.append(f"{featurizer} {X.shape[1]}-d in {time.perf_counter() - began:.1f} s")
        labeled, by_strategy = mean_curves(
            X,
            y,
            len(classes),
            strategies,
            budget=args.text_budget,
            batch=args.text_batch,
            seeds=args.seeds,
            n_test=len(y) // 4,
        )
        curves.update({f"{featurizer}/{name}": curve for name, curve in by_strategy.items()})
    print(
        f"text, {TEXT_DATA.name}: {len(y)} items, {len(classes)} classes; budget "
        f"{args.text_budget}, batch {args.text_batch}, {args.seeds} seeds "
        f"({time.perf_counter() - started:.0f} s; featurized {', '.join(timings)})"
    )
    print_curves(labeled, curves, width=16)
    default = f"{DEFAULT_TEXT_FEATURIZER}/{DEFAULT_STRATEGY}"
    for baseline in (f"{f}/random" for f in featurizers):
        target = curves[baseline][-1]
        print(f"\n{baseline} reaches {target:.3f} with {labeled[-1]} labels; labels each needs:")
        for name, curve in curves.items():
            reached = labels_to_reach(labeled, curve, target)
            saving = f"{1 - reached / labeled[-1]:.0%} fewer" if reached else "-"
            mark = "   <- default" if name == default else ""
            print(f"  {name:>18}: {reached or 'not reached':>11}  ({saving}){mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategies", default="random,vote_entropy,bald,margin,cal,lftl")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--text-strategies", default="random,margin")
    parser.add_argument("--text-budget", type=int, default=480)
    parser.add_argument("--text-batch", type=int, default=40)
    parser.add_argument("--only", choices=["digits", "text"], help="Run one table only.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.only != "text":
        digits_table(args)
    if args.only != "digits":
        if args.only is None:
            print()
        text_table(args)


if __name__ == "__main__":
    main()
