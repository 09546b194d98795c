"""Replay a labeled file through the real round code to choose a strategy before spending."""

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from annotation.services.imports import parse_upload

BUILTIN = {"sklearn:digits"}


def load_labeled(path: str) -> tuple[str, list, list[str]]:
    """Rows of a JSONL/JSON/CSV file with a `label` column -> (kind, contents, labels)."""
    if path == "sklearn:digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return "features", (digits.data / 16.0).tolist(), [str(t) for t in digits.target]
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"No such file: {path} (or use one of {', '.join(sorted(BUILTIN))}).")
    rows = []
    for number, row in enumerate(_rows(file), start=1):
        if not isinstance(row, dict) or row.get("label") in (None, ""):
            raise CommandError(f"row {number}: needs a 'label'")
        rows.append(row)
    kinds = [k for k in ("text", "image", "features") if k in rows[0]]
    if len(kinds) != 1:
        raise CommandError("row 1: needs exactly one of 'text', 'image' or 'features'")
    kind = kinds[0]
    missing = next((i for i, r in enumerate(rows, start=1) if kind not in r), None)
    if missing:
        raise CommandError(f"row {missing}: has no {kind!r}")
    return kind, [r[kind] for r in rows], [str(r["label"]) for r in rows]


def _rows(file: Path) -> list:
    # parse_upload refuses unknown columns; `label` is what this command needs, so it is
    # taken out before and put back after parsing.
    if file.suffix.lower() == ".csv":
        import csv

        with file.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            if "features" in row and row["features"]:
                row["features"] = json.loads(row["features"])
        return rows
    return parse_upload(name=file.name, content_type="", data=file.read_bytes())


class Command(BaseCommand):
    help = (
        "Simulate active learning on a labeled file (JSONL/JSON/CSV with a 'label' column, "
        "or sklearn:digits) with the true labels as the annotator, and compare strategies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="A labeled file, or sklearn:digits.")
        parser.add_argument("--strategies", default="vote_entropy,bald,cal,random")
        parser.add_argument("--budget", type=int, default=200)
        parser.add_argument("--batch", type=int, default=20)
        parser.add_argument("--seeds", type=int, default=3)
        parser.add_argument("--test-fraction", type=float, default=0.25)
        parser.add_argument("--out", default="var/simulate.png", help="Plot file (.png/.svg).")
        parser.add_argument(
            "--featurizer",
            choices=["minilm", "hashed"],
            help="Text only: sentence embeddings (minilm) or hashed n-grams (hashed). "
            "Default: the server's default for text.",
        )

    def handle(
        self, *args, data, strategies, budget, batch, seeds, test_fraction, out, featurizer, **opts
    ):
        from tqdm import tqdm

        from sampler.acquisition import ACQUISITIONS
        from sampler.features import FEATURIZERS, TEXT_FEATURIZERS, default_text_featurizer
        from sampler.simulate import simulate

        names = [s.strip() for s in strategies.split(",") if s.strip()]
        unknown = [s for s in names if s not in ACQUISITIONS]
        if unknown:
            raise CommandError(f"Unknown strategy {unknown[0]!r}; known: {', '.join(ACQUISITIONS)}")
        if budget < 1 or batch < 1 or seeds < 1 or not 0 < test_fraction < 1:
            raise CommandError(
                "--budget, --batch and --seeds must be positive, 0 < --test-fraction < 1"
            )
        kind, contents, labels = load_labeled(data)
        if featurizer and kind != "text":
            raise CommandError(f"--featurizer is for text; {data} holds {kind}.")
        if kind == "text":
            featurizer = featurizer or default_text_featurizer()
        featurize = TEXT_FEATURIZERS[featurizer] if featurizer else FEATURIZERS[kind]
        classes = sorted(set(labels))
        y = np.asarray([classes.index(label) for label in labels], dtype=np.int64)
        X = np.asarray(featurize(contents), dtype=np.float32)
        self.stdout.write(
            f"{len(y)} rows, {len(classes)} classes, {X.shape[1]} features "
            f"({kind}{', ' + featurizer if featurizer else ''}); "
            f"budget {budget}, batch {batch}, {seeds} seeds"
        )
        curves: dict[str, list[list[dict]]] = {}
        total = len(names) * seeds * -(-budget // batch)
        with tqdm(total=total, desc="rounds", unit="round", disable=None) as bar:
            for name in names:
                for seed in range(seeds):
                    rng = np.random.default_rng(seed)
                    order = rng.permutation(len(y))
                    n_test = int(len(y) * test_fraction)
                    test, train = order[:n_test], order[n_test:]
                    curves.setdefault(name, []).append(
                        simulate(
                            X[train],
                            y[train],
                            len(classes),
                            strategy=name,
                            budget=budget,
                            batch_size=batch,
                            seed=seed,
                            test_X=X[test],
                            test_y=y[test],
                            progress=lambda *_: bar.update(1),
                        )
                    )
        self._report(curves, out)

    def _report(self, curves: dict[str, list[list[dict]]], out: str) -> None:
        means: dict[str, tuple[list[int], list[float]]] = {}
        for name, runs in curves.items():
            length = min(len(run) for run in runs)
            labeled = [runs[0][i]["labeled"] for i in range(length)]
            accuracy = [float(np.mean([run[i]["accuracy"] for run in runs])) for i in range(length)]
            means[name] = (labeled, accuracy)
        steps = sorted({n for labeled, _ in means.values() for n in labeled})
        header = "labels  " + "  ".join(f"{name:>16}" for name in means)
        self.stdout.write("\nMean test accuracy by labels spent\n" + header)
        for n in steps:
            cells = []
            for labeled, accuracy in means.values():
                cells.append(f"{accuracy[labeled.index(n)]:16.3f}" if n in labeled else " " * 16)
            self.stdout.write(f"{n:6d}  " + "  ".join(cells))
        if "random" in means:
            target = means["random"][1][-1]
            self.stdout.write(
                f"\nLabels needed to reach random's final accuracy ({target:.3f}) "
                f"at {means['random'][0][-1]} labels:"
            )
            for name, (labeled, accuracy) in means.items():
                reached = next(
                    (n for n, a in zip(labeled, accuracy, strict=True) if a >= target), None
                )
                saving = (
                    f"{100 * (1 - reached / means['random'][0][-1]):.0f}% fewer"
                    if reached
                    else "not reached"
                )
                self.stdout.write(f"  {name:>18}: {reached or '-'} ({saving})")
        self._plot(means, out)

    def _plot(self, means, out: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4))
        for name, (labeled, accuracy) in means.items():
            axes.plot(labeled, accuracy, marker="o", markersize=3, label=name)
        axes.set_xlabel("labels")
        axes.set_ylabel("test accuracy")
        axes.grid(alpha=0.3)
        axes.legend()
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, bbox_inches="tight")
        plt.close(figure)
        self.stdout.write(f"\nPlot written to {out}")
