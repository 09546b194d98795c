"""Cold-start rules at small budgets (issue 9): are the first labels better chosen by
typicality (TypiClust), k-center greedy, or at random?

For each set of the battery (bench_battery's features, cached texts embeddings and fixed
test split), each labels-per-class checkpoint (2, 5, 10) and seed, sampler.selection's
cold_start picks checkpoint x classes items from the training pool with unit costs, in
rounds of `--batch` (each round given the earlier picks as labeled_features, as the
server's later cold-start rounds are; 0: all in one round). The picks are judged by the
battery's two models, trained on them and scored on the held-out split: the server's
MLPEnsemble and the independent LogisticRegression.

Run: `python -m bench.bench_cold_start [--sets digits,segment] [--seeds 5] [--batch 0]`.
Prints a table (mean accuracy over seeds, and the seed-to-seed standard deviation) and
writes var/cold_start.json. No Django; torch on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench.bench_battery import ROOT, IndependentJudge, featurize, load, split

METHODS = ("random", "kcenter", "typiclust")
PER_CLASS = (2, 5, 10)
OUT = ROOT / "var" / "cold_start.json"


def picks(X: np.ndarray, method: str, n: int, batch: int, seed: int) -> np.ndarray:
    """n cold-start picks (indices into X), in rounds of `batch` (all at once when 0)."""
    from sampler.selection import cold_start

    chosen = np.zeros(0, dtype=np.int64)
    number = 0
    while len(chosen) < n:
        number += 1
        size = min(batch or n, n - len(chosen))
        free = np.setdiff1d(np.arange(len(X)), chosen)
        new = cold_start(
            X[free],
            np.ones(len(free)),
            remaining=size,
            batch_size=size,
            random_state=seed * 1000 + number,
            method=method,
            labeled_features=X[chosen],
        )
        if len(new) == 0:
            break
        chosen = np.concatenate([chosen, free[new]])
    return chosen


def run(names: list[str], seeds: int, batch: int, log=print) -> dict:
    import torch

    from sampler.simulate import _accuracy, _train

    torch.set_num_threads(1)
    results: dict = {}
    for name in names:
        data = load(name)
        X, featurizer, _ = featurize(data)
        train, test = split(len(data.y))
        judge = IndependentJudge(data, train, test)
        n_classes = len(data.classes)
        pool_X, pool_y = X[train], data.y[train]
        results[name] = {"classes": n_classes, "pool": len(train), "featurizer": featurizer}
        for per_class in PER_CLASS:
            n = per_class * n_classes
            for method in METHODS:
                began = time.perf_counter()
                acc: dict[str, list[float]] = {"server": [], "independent": []}
                for seed in range(seeds):
                    chosen = picks(pool_X, method, n, batch, seed)
                    is_labeled = np.zeros(len(pool_y), dtype=bool)
                    is_labeled[chosen] = True
                    model = _train(pool_X, pool_y, chosen, n_classes, {}, seed, 0)
                    acc["server"].append(
                        _accuracy(
                            model, pool_X, pool_y, is_labeled, n_classes, X[test], data.y[test]
                        )
                    )
                    acc["independent"].append(judge.accuracy(chosen))
                results[name][f"{per_class}/{method}"] = acc
                log(
                    f"{name} {per_class}/class {method}: "
                    + " ".join(
                        f"{j} {np.mean(a):.3f}±{np.std(a, ddof=1):.3f}" for j, a in acc.items()
                    )
                    + f" ({time.perf_counter() - began:.0f} s)"
                )
    return results


def table(results: dict) -> str:
    lines = [
        "| set | labels/class | judge | random | kcenter | typiclust |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    means: dict[tuple[str, str], list[float]] = {}
    for name, result in results.items():
        for per_class in PER_CLASS:
            for judge in ("server", "independent"):
                cells = []
                for method in METHODS:
                    a = np.asarray(result[f"{per_class}/{method}"][judge])
                    means.setdefault((judge, method), []).append(float(a.mean()))
                    spread = a.std(ddof=1) if len(a) > 1 else 0.0
                    cells.append(f"{a.mean():.3f} ± {spread:.3f}")
                label = "MLPEnsemble" if judge == "server" else "LogReg"
                lines.append(f"| {name} | {per_class} | {label} | " + " | ".join(cells) + " |")
    for judge in ("server", "independent"):
        label = "MLPEnsemble" if judge == "server" else "LogReg"
        cells = [f"{np.mean(means[(judge, m)]):.3f}" for m in METHODS]
        lines.append(f"| mean | all | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="digits,segment,mnist,stackoverflow20")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0)
    args = parser.parse_args(argv)
    results = run(args.sets.split(","), args.seeds, args.batch)
    print(table(results))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
