"""The benchmark battery of issue 9: does each strategy spend a labeling budget better than
random picking, on public labeled sets nobody tuned for (docs/data/README.md)?

For each set: featurize as the server does (texts with its default text featurizer,
MiniLM; `features` as given), hold out a fixed test split, and replay active learning
with sampler.simulate for each strategy and seed. The labels picked are judged at every
round by two models: the server's own ensemble (what simulate records) and an independent
one, scikit-learn's LogisticRegression on TF-IDF of the texts (or on the standardized
features), because users train their own models on the labels.

The baseline `random` picks uniformly at random from the first label on (uniform_random),
as a user without the server would; every other strategy starts with the server's cold
start, as in production.

Per judge, set and strategy (curves are means over seeds):
- saving: 1 - labels needed to reach random's accuracy at the full budget / budget
  (linear interpolation between rounds; 0 when never reached, marked "-");
- auc: mean accuracy over the budget (area under the learning curve / its width);
- worst: the worst difference to random over the checkpoints (2, 5, 10 labels per class
  and the budget), and random's seed-to-seed standard deviation there (spread).

Run: `python -m bench.bench_battery [--sets a,b] [--strategies ...] [--seeds 5] [--quick]`.
Writes var/battery.json. No Django; torch on one thread; no parallelism.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
CACHE = ROOT / "var" / "battery-cache"
OUT = ROOT / "var" / "battery.json"
JUDGES = ("server", "independent")
DEFAULT_STRATEGIES = ("random", "margin", "bald", "cal", "default", "auto")
CHECKPOINTS_PER_CLASS = (2, 5, 10)
JUDGE_C = 1.0  # the independent judge's C (scikit-learn's default; see IndependentJudge)
TEST_SEED = 12345  # the held-out split is the same for every strategy and seed


@dataclass(frozen=True)
class Spec:
    """One set of the battery: its file, a budget (labels), a batch size, and optionally
    a number of rows to draw from it (seed 0; all rows when None)."""

    name: str
    budget: int
    batch: int
    rows: int | None = None


# Budgets: 30 labels per class up to 20 classes, 10 per class above (at most 1,000);
# batches about a fifteenth of the budget, 20 to 50.
SETS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec("digits", budget=300, batch=20),
        Spec("mnist", budget=300, batch=20),
        Spec("segment", budget=210, batch=20),
        Spec("movie_sentiment", budget=200, batch=20),
        Spec("stackoverflow20", budget=600, batch=40),
        Spec("hwu64", budget=640, batch=40),
        Spec("banking77", budget=770, batch=50),
        Spec("clinc150", budget=1000, batch=50),
    )
}
QUICK = {  # --quick: a smoke run of a few minutes (texts cut to 800 rows: featurizing)
    "digits": Spec("digits", budget=60, batch=20),
    "segment": Spec("segment", budget=60, batch=20),
    "stackoverflow20": Spec("stackoverflow20", budget=120, batch=40, rows=800),
}


def default_acquisition() -> str:
    """annotation.models.DEFAULT_ACQUISITION, read from the source (no Django here)."""
    tree = ast.parse((ROOT / "annotation" / "models.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "DEFAULT_ACQUISITION" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError("DEFAULT_ACQUISITION not found in annotation/models.py")


def accepted(strategy: str) -> bool:
    """Whether sampler.simulate takes this strategy (asked, not assumed: "auto" may or may
    not exist yet)."""
    from sampler.simulate import simulate

    X = np.zeros((4, 2), dtype=np.float32)
    try:
        simulate(X, np.array([0, 1, 0, 1]), 2, strategy=strategy, budget=0, batch_size=1)
    except (KeyError, ValueError):
        return False
    return True


def resolve_strategies(names: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(strategies to run, with random first; aliases such as {"default": "margin"};
    names skipped because sampler does not accept them)."""
    run: list[str] = ["random"]
    aliases: dict[str, str] = {}
    skipped: list[str] = []
    for name in names:
        target = default_acquisition() if name == "default" else name
        if not accepted(target):
            skipped.append(name)
            continue
        if name != target:
            aliases[name] = target
        if target not in run:
            run.append(target)
    return run, aliases, skipped


# ---------------------------------------------------------------- data and features


@dataclass
class LabeledSet:
    name: str
    kind: str  # "text" or "features"
    raw: list  # texts or feature vectors
    y: np.ndarray  # (n,) int64
    classes: list[str]
    sha256: str


def load(name: str, data_dir: Path = DATA, rows: int | None = None) -> LabeledSet:
    """docs/data/<name>.jsonl; with `rows`, that many drawn with seed 0, in file order
    (the name then says so, and so does the feature cache's key)."""
    path = data_dir / f"{name}.jsonl"
    blob = path.read_bytes()
    records = [json.loads(line) for line in blob.decode("utf-8").splitlines() if line.strip()]
    if rows is not None and rows < len(records):
        keep = np.sort(np.random.default_rng(0).choice(len(records), rows, replace=False))
        records = [records[i] for i in keep]
        name = f"{name}-{rows}rows"
    return _labeled(name, records, hashlib.sha256(blob).hexdigest())


def _labeled(name: str, rows: list[dict], sha256: str) -> LabeledSet:
    kind = "text" if "text" in rows[0] else "features"
    classes = sorted({str(row["label"]) for row in rows})
    index = {label: i for i, label in enumerate(classes)}
    y = np.asarray([index[str(row["label"])] for row in rows], dtype=np.int64)
    raw = [row[kind] for row in rows]
    return LabeledSet(name, kind, raw, y, classes, sha256)


def featurize(data: LabeledSet, cache: Path = CACHE) -> tuple[np.ndarray, str, float]:
    """The server's features for the set: (X (n, d) float32, featurizer name, seconds spent
    now). Text embeddings are cached under `cache`, keyed by the file's SHA-256."""
    from sampler.features import TEXT_FEATURIZERS, default_text_featurizer, featurize_vectors

    started = time.perf_counter()
    if data.kind == "features":
        return featurize_vectors(data.raw), "features", time.perf_counter() - started
    featurizer = default_text_featurizer()
    path = cache / f"{data.name}-{featurizer}-{data.sha256[:16]}.npy"
    if path.exists():
        return np.load(path), featurizer, time.perf_counter() - started
    X = np.asarray(TEXT_FEATURIZERS[featurizer](data.raw), dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X, featurizer, time.perf_counter() - started


def split(n: int, test_fraction: float = 0.25, max_test: int = 1000) -> tuple[np.ndarray, ...]:
    """(train, test) row indices: a fixed random split (TEST_SEED), at most max_test rows
    held out."""
    order = np.random.default_rng(TEST_SEED).permutation(n)
    n_test = min(int(n * test_fraction), max_test)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class IndependentJudge:
    """LogisticRegression trained on the labeled rows, scored on the test rows: on TF-IDF
    (word 1-2-grams, sublinear tf, vocabulary from the training pool's texts) for texts, on
    the features standardized with the pool's statistics otherwise. `C` is the inverse L2
    strength: scikit-learn's default 1.0 underfits with few labels per class (random 120 /
    600 labels: 0.22 / 0.74 on stackoverflow20, 0.07 / 0.43 on hwu64, against 0.43 / 0.79
    and 0.24 / 0.59 with C=10)."""

    def __init__(
        self, data: LabeledSet, train: np.ndarray, test: np.ndarray, *, C: float = JUDGE_C
    ):
        self.C = C
        if data.kind == "text":
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
            self.pool = vectorizer.fit_transform([data.raw[i] for i in train])
            self.test = vectorizer.transform([data.raw[i] for i in test])
        else:
            X = np.asarray(data.raw, dtype=np.float64)
            mean, scale = X[train].mean(0), np.maximum(X[train].std(0), 1e-9)
            self.pool = (X[train] - mean) / scale
            self.test = (X[test] - mean) / scale
        self.pool_y = data.y[train]
        self.test_y = data.y[test]

    def accuracy(self, labeled: np.ndarray) -> float:
        """Test accuracy after training on pool rows `labeled` (indices into the pool)."""
        from sklearn.linear_model import LogisticRegression

        y = self.pool_y[labeled]
        if len(np.unique(y)) < 2:
            majority = np.bincount(y).argmax() if len(y) else 0
            return float((self.test_y == majority).mean())
        model = LogisticRegression(C=self.C, max_iter=1000)
        model.fit(self.pool[labeled], y)
        return float((model.predict(self.test) == self.test_y).mean())


# ---------------------------------------------------------------- the arithmetic


def labels_to_reach(labels: np.ndarray, curve: np.ndarray, target: float) -> float | None:
    """Labels at which `curve` (accuracy after each round, spent `labels`) first reaches
    `target`, interpolated linearly within the round that crosses it; None if never."""
    above = np.flatnonzero(curve >= target)
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(labels[0])
    a0, a1 = curve[i - 1], curve[i]
    return float(labels[i - 1] + (target - a0) / (a1 - a0) * (labels[i] - labels[i - 1]))


def area(labels: np.ndarray, curve: np.ndarray) -> float:
    """Mean accuracy over the budget: trapezoid area under the curve / its width."""
    if len(labels) < 2:
        return float(curve[0])
    widths = np.diff(labels)
    return float(((curve[1:] + curve[:-1]) / 2 * widths).sum() / widths.sum())


def checkpoint_rounds(labels: np.ndarray, n_classes: int) -> list[int]:
    """Round indices of the checkpoints: the first round with at least 2, 5 and 10 labels
    per class, and the last round (deduplicated, in order)."""
    rounds = {len(labels) - 1}
    for per_class in CHECKPOINTS_PER_CLASS:
        reached = np.flatnonzero(labels >= per_class * n_classes)
        if len(reached):
            rounds.add(int(reached[0]))
    return sorted(rounds)


def summarize(
    labels: np.ndarray, runs: dict[str, np.ndarray], checkpoints: list[int]
) -> dict[str, dict[str, Any]]:
    """Per strategy, from its accuracy runs (seeds, rounds) against runs["random"]:
    saving, labels needed, auc, worst checkpoint difference to random (and where), and
    random's seed-to-seed std at every checkpoint and at the worst one."""
    labels = np.asarray(labels, dtype=float)
    random = np.asarray(runs["random"], dtype=float)
    random_mean = random.mean(0)
    random_std = random.std(0, ddof=1) if len(random) > 1 else np.zeros(random.shape[1])
    budget = labels[-1]
    target = random_mean[-1]
    out: dict[str, dict[str, Any]] = {}
    for name, acc in runs.items():
        mean = np.asarray(acc, dtype=float).mean(0)
        needed = labels_to_reach(labels, mean, target)
        diffs = [(mean[r] - random_mean[r], r) for r in checkpoints]
        worst, at = min(diffs)
        out[name] = {
            "target": float(target),
            "needed": needed,
            "saving": 0.0 if needed is None else 1.0 - needed / budget,
            "auc": area(labels, mean),
            "worst": float(worst),
            "worst_at": int(labels[at]),
            "spread_at_worst": float(random_std[at]),
            "within_spread": bool(all(d >= -random_std[r] for d, r in diffs)),
            "checkpoints": {
                int(labels[r]): {"mean": float(mean[r]), "random_std": float(random_std[r])}
                for r in checkpoints
            },
        }
    return out


# ---------------------------------------------------------------- running


def uniform_random(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    budget: int,
    batch_size: int,
    seed: int,
    test_X: np.ndarray,
    test_y: np.ndarray,
    ensemble_params: dict[str, Any] | None = None,
    **_: Any,
) -> list[dict[str, Any]]:
    """The baseline: simulate's rounds and records, but every pick uniformly at random from
    the first round on (simulate's "random" strategy picks by the cold start until the
    ensemble can train; a user picking at random does not). The server's ensemble is
    trained and scored exactly as simulate does (its _train / _accuracy, the same seeds,
    no model while cold_start_needed)."""
    from sampler.simulate import _accuracy, _train, cold_start_needed

    order = np.random.default_rng(seed).permutation(len(y))
    params = dict(ensemble_params or {})
    curve = []
    for number, size in enumerate(range(batch_size, budget + batch_size, batch_size), 1):
        size = min(size, budget, len(y))
        labeled = order[:size]
        is_labeled = np.zeros(len(y), dtype=bool)
        is_labeled[labeled] = True
        model = None
        if not cold_start_needed(y[labeled], n_classes, batch_size):
            model = _train(X, y, labeled, n_classes, params, seed, number)
        accuracy = _accuracy(model, X, y, is_labeled, n_classes, test_X, test_y)
        curve.append({"labeled": size, "labeled_indices": labeled, "accuracy": accuracy})
        if size >= min(budget, len(y)):
            break
    return curve


def run_set(
    data: LabeledSet,
    X: np.ndarray,
    strategies: list[str],
    *,
    budget: int,
    batch: int,
    seeds: int,
    ensemble_params: dict[str, Any] | None = None,
    judge_c: float = JUDGE_C,
    log=print,
) -> dict[str, Any]:
    """Replay every strategy and seed on one set; both judges' accuracy after each round."""
    from sampler.simulate import simulate

    train, test = split(len(data.y))
    judge = IndependentJudge(data, train, test, C=judge_c)
    n_classes = len(data.classes)
    runs: dict[str, dict[str, list[list[float]]]] = {j: {} for j in JUDGES}
    labels: list[int] = []
    seconds: dict[str, float] = {}
    for name in strategies:
        began = time.perf_counter()
        for seed in range(seeds):
            replay = uniform_random if name == "random" else simulate
            curve = replay(
                X[train],
                data.y[train],
                n_classes,
                strategy=name,
                budget=budget,
                batch_size=batch,
                seed=seed,
                test_X=X[test],
                test_y=data.y[test],
                ensemble_params=ensemble_params,
            )
            labels = [r["labeled"] for r in curve]
            runs["server"].setdefault(name, []).append([r["accuracy"] for r in curve])
            runs["independent"].setdefault(name, []).append(
                [judge.accuracy(r["labeled_indices"]) for r in curve]
            )
        seconds[name] = time.perf_counter() - began
        log(f"  {data.name}/{name}: {seeds} seeds in {seconds[name]:.0f} s")
    lab = np.asarray(labels)
    checkpoints = checkpoint_rounds(lab, n_classes)
    return {
        "items": len(data.y),
        "classes": n_classes,
        "kind": data.kind,
        "train": len(train),
        "test": len(test),
        "budget": budget,
        "batch": batch,
        "seeds": seeds,
        "labels": labels,
        "checkpoints": [labels[r] for r in checkpoints],
        "seconds": seconds,
        "runs": runs,
        "summary": {
            judge_name: summarize(lab, {k: np.asarray(v) for k, v in by.items()}, checkpoints)
            for judge_name, by in runs.items()
        },
    }


def table(results: dict[str, Any], judge: str, names: list[str]) -> str:
    """The printed table of one judge: a row per set and strategy, and the mean saving."""
    lines = [
        f"judge: {'server ensemble' if judge == 'server' else 'independent (LogReg)'}",
        f"{'set':<24}{'strategy':<14}{'target':>7}{'needed':>8}{'saving':>8}{'auc':>7}"
        f"{'worst':>8}{'at':>6}{'spread':>8}",
    ]
    savings: dict[str, list[float]] = {}
    for set_name, result in results.items():
        summary = result["summary"][judge]
        for shown in names:
            name = result["aliases"].get(shown, shown)
            if name not in summary:
                continue
            s = summary[name]
            savings.setdefault(shown, []).append(s["saving"])
            needed = f"{s['needed']:.0f}" if s["needed"] is not None else "-"
            flag = "" if s["within_spread"] else " !"
            label = shown if shown == name else f"{shown}={name}"
            lines.append(
                f"{set_name:<24}{label:<14}{s['target']:7.3f}{needed:>8}"
                f"{s['saving']:8.0%}{s['auc']:7.3f}{s['worst']:+8.3f}{s['worst_at']:6d}"
                f"{s['spread_at_worst']:8.3f}{flag}"
            )
    lines.append(
        "(needed: labels to reach random's accuracy at the budget, `target`; saving = 1 -"
        " needed / budget; auc: mean accuracy over the budget; worst: the worst checkpoint"
        " difference to random, at `at` labels; spread: random's seed std there; !: below"
        " random by more than its spread at a checkpoint)"
    )
    lines.append(
        "mean saving: "
        + ", ".join(f"{name} {np.mean(v):.0%} ({len(v)} sets)" for name, v in savings.items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--quick", action="store_true", help="3 sets, small budgets, 2 seeds")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--judge-c", type=float, default=JUDGE_C, help="LogisticRegression C")
    parser.add_argument(
        "--table", type=Path, help="only print the tables of a JSON this wrote (even partial)"
    )
    args = parser.parse_args(argv)
    if args.table:
        report = json.loads(args.table.read_text(encoding="utf-8"))
        print_tables(report["sets"], report["strategies"])
        return report["sets"]
    import torch

    torch.set_num_threads(1)
    specs = dict(QUICK) if args.quick else dict(SETS)
    if args.sets:
        wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SETS]
        if unknown:
            parser.error(f"--sets: unknown {', '.join(unknown)}")
        specs = {s: specs.get(s, SETS[s]) for s in wanted}
    seeds = args.seeds or (2 if args.quick else 5)
    shown = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if "random" not in shown:
        shown.insert(0, "random")
    strategies, aliases, skipped = resolve_strategies(shown)
    shown = [s for s in shown if s not in skipped]
    if skipped:
        print(f"not accepted by sampler.simulate, skipped: {', '.join(skipped)}")
    results: dict[str, Any] = {}
    for name, spec in specs.items():
        began = time.perf_counter()
        data = load(name, rows=spec.rows)
        X, featurizer, featurize_seconds = featurize(data)
        print(
            f"{name}: {len(data.y)} items, {len(data.classes)} classes, {featurizer} "
            f"{X.shape[1]}-d ({featurize_seconds:.0f} s); budget {spec.budget}, "
            f"batch {spec.batch}, {seeds} seeds",
            flush=True,
        )
        result = run_set(
            data,
            X,
            strategies,
            budget=spec.budget,
            batch=spec.batch,
            seeds=seeds,
            judge_c=args.judge_c,
            log=lambda line: print(line, flush=True),
        )
        result.update(
            judge_c=args.judge_c,
            featurizer=featurizer,
            sha256=data.sha256,
            aliases=aliases,
            wall_seconds=time.perf_counter() - began,
        )
        results[name] = result
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_report(results, shown), indent=1))
    print(f"\nstrategies: {', '.join(shown)}; aliases {aliases}; {seeds} seeds")
    print_tables(results, shown)
    print(f"written: {args.out}")
    return results


def print_tables(results: dict[str, Any], shown: list[str]) -> None:
    for judge in JUDGES:
        print()
        print(table(results, judge, shown))
    print(
        "\nwall seconds per set: "
        + ", ".join(f"{k} {v['wall_seconds']:.0f}" for k, v in results.items())
    )


def _report(results: dict[str, Any], shown: list[str]) -> dict[str, Any]:
    return {"command": " ".join(sys.argv), "strategies": shown, "sets": results}


if __name__ == "__main__":
    main()
