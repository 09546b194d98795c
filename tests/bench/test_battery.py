"""The battery's arithmetic and plumbing (bench/bench_battery.py), on tiny synthetic sets."""

import json

import numpy as np
import pytest
import torch

from bench import bench_battery as battery

LABELS = np.arange(50, 501, 50)  # 10 rounds of 50 labels, budget 500
RANDOM = np.array(
    [[0.50 + 0.04 * i + d for i in range(10)] for d in (-0.01, 0.0, 0.01)]
)  # 3 seeds, rising to 0.86 (mean) at 500 labels
CHECKPOINTS = [0, 1, 4, 9]


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 5)) * 4
    y = rng.integers(0, 3, size=n)
    return (centers[y] + rng.normal(size=(n, 5))).astype(np.float32), y


def test_a_strategy_identical_to_random_saves_nothing():
    summary = battery.summarize(LABELS, {"random": RANDOM, "same": RANDOM.copy()}, CHECKPOINTS)
    assert summary["same"]["saving"] == pytest.approx(0.0, abs=1e-9)
    assert summary["same"]["needed"] == pytest.approx(500)
    assert summary["same"]["worst"] == pytest.approx(0.0)
    assert summary["same"]["auc"] == pytest.approx(summary["random"]["auc"])


def test_reaching_randoms_final_accuracy_at_half_the_budget_saves_half():
    fast = 0.50 + 0.36 * np.minimum(LABELS - 50, 200) / 200  # 0.86 from 250 labels on
    summary = battery.summarize(
        LABELS, {"random": RANDOM, "fast": np.stack([fast] * 3)}, CHECKPOINTS
    )
    assert summary["fast"]["needed"] == pytest.approx(250)
    assert summary["fast"]["saving"] == pytest.approx(0.5)
    assert summary["fast"]["auc"] > summary["random"]["auc"]


def test_crossing_between_rounds_is_interpolated():
    assert battery.labels_to_reach(LABELS, RANDOM.mean(0), 0.52) == pytest.approx(50 + 50 * 0.5)


def test_a_strategy_that_never_reaches_random_saves_nothing_and_is_flagged():
    slow = RANDOM - 0.05  # 0.05 below random everywhere, spread is 0.01
    summary = battery.summarize(LABELS, {"random": RANDOM, "slow": slow}, CHECKPOINTS)
    assert summary["slow"]["needed"] is None
    assert summary["slow"]["saving"] == 0.0
    assert summary["slow"]["worst"] == pytest.approx(-0.05)
    assert summary["slow"]["spread_at_worst"] == pytest.approx(0.01)
    assert not summary["slow"]["within_spread"]
    assert summary["random"]["within_spread"]


def test_checkpoints_are_the_rounds_reaching_2_5_10_labels_per_class_and_the_last():
    labels = np.arange(20, 201, 20)  # 10 classes: 20, 50, 100 labels and the budget 200
    assert battery.checkpoint_rounds(labels, 10) == [0, 2, 4, 9]


def test_the_independent_judge_scores_texts_with_tfidf():
    texts = ["good film", "great good fun", "bad film", "awful bad plot"] * 5
    data = battery.LabeledSet("t", "text", texts, np.array([0, 0, 1, 1] * 5), ["pos", "neg"], "")
    judge = battery.IndependentJudge(data, np.arange(4), np.arange(4, 20))
    assert judge.accuracy(np.arange(4)) == 1.0
    assert judge.accuracy(np.array([0, 1])) == 0.5  # one class: predicts it


def test_the_independent_judge_trains_on_the_rows_simulate_picked_not_on_the_servers_features():
    X, y = blobs()
    order = np.argsort(y, kind="stable")  # sorted by class: the pool's first rows are all "a"
    X, y = X[order], y[order]
    data = battery.LabeledSet("blobs", "features", X.tolist(), y, ["a", "b", "c"], "")
    noise = np.random.default_rng(1).normal(size=X.shape).astype(np.float32)
    result = battery.run_set(
        data,
        noise,  # the server sees noise, the independent judge the informative features
        ["random"],
        budget=40,
        batch=10,
        seeds=2,
        ensemble_params={"n_members": 2, "epochs": 10},
        log=lambda line: None,
    )
    assert result["labels"] == [10, 20, 30, 40]
    server = np.mean(result["runs"]["server"]["random"], axis=0)
    independent = np.mean(result["runs"]["independent"]["random"], axis=0)
    assert independent[-1] > 0.9
    assert server[-1] < 0.6


def test_the_default_strategy_is_read_from_the_model_and_unknown_ones_are_skipped():
    from annotation.models import DEFAULT_ACQUISITION

    run, aliases, skipped = battery.resolve_strategies(["margin", "default", "no-such-thing"])
    assert aliases == {"default": DEFAULT_ACQUISITION}
    assert run[0] == "random" and DEFAULT_ACQUISITION in run
    assert skipped == ["no-such-thing"]


def test_a_set_cut_to_fewer_rows_keeps_a_seeded_draw_in_file_order(tmp_path):
    rows = [{"external_id": f"r{i}", "text": f"text {i}", "label": "ab"[i % 2]} for i in range(10)]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    whole = battery.load("s", tmp_path)
    cut = battery.load("s", tmp_path, rows=4)
    again = battery.load("s", tmp_path, rows=4)
    assert len(whole.raw) == 10 and whole.name == "s"
    assert len(cut.raw) == 4 and cut.name == "s-4rows"
    assert cut.raw == again.raw == sorted(cut.raw, key=lambda t: int(t.split()[1]))
    assert cut.sha256 == whole.sha256  # the file's hash; the name tells the cut apart


def test_the_random_baseline_picks_without_looking_at_the_features_from_the_first_round():
    X, y = blobs(n=120)
    other = np.random.default_rng(7).normal(size=X.shape).astype(np.float32)
    common = {"budget": 30, "batch_size": 10, "seed": 2, "test_X": X[:20], "test_y": y[:20]}
    params = {"ensemble_params": {"n_members": 2, "epochs": 5}}
    a = battery.uniform_random(X, y, 3, **common, **params)
    b = battery.uniform_random(other, y, 3, **common, **params)
    assert [r["labeled"] for r in a] == [10, 20, 30]
    assert [r["labeled_indices"].tolist() for r in a] == [r["labeled_indices"].tolist() for r in b]
    assert set(a[0]["labeled_indices"].tolist()) <= set(a[1]["labeled_indices"].tolist())


def test_the_battery_replays_random_as_the_uniform_baseline_and_the_rest_with_simulate(
    monkeypatch,
):
    calls = []
    uniform = battery.uniform_random

    def recorded(*args, **kwargs):
        calls.append(kwargs["strategy"])
        return uniform(*args, **kwargs)

    monkeypatch.setattr(battery, "uniform_random", recorded)
    X, y = blobs(n=120)
    data = battery.LabeledSet("blobs", "features", X.tolist(), y, ["a", "b", "c"], "")
    result = battery.run_set(
        data,
        X,
        ["random", "margin"],
        budget=30,
        batch=10,
        seeds=2,
        ensemble_params={"n_members": 2, "epochs": 5},
        log=lambda line: None,
    )
    assert calls == ["random", "random"]
    assert len(result["runs"]["server"]["margin"]) == 2
