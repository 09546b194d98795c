import numpy as np
import pytest

from sampler.acquisition import ACQUISITIONS
from sampler.selection import cold_start
from sampler.simulate import cold_start_needed, simulate

SMALL_ENSEMBLE = {"n_members": 2, "epochs": 10}


def blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 6)) * 4
    y = rng.integers(0, 3, size=n)
    return (centers[y] + rng.normal(size=(n, 6))).astype(np.float32), y


def test_simulation_spends_the_budget_in_batches_and_learns():
    X, y = blobs()
    seen = []
    curve = simulate(
        X[:300],
        y[:300],
        3,
        strategy="bald",
        budget=40,
        batch_size=10,
        test_X=X[300:],
        test_y=y[300:],
        progress=seen.append,
        ensemble_params={"n_members": 2, "epochs": 20},
    )
    assert [r["labeled"] for r in curve] == [10, 20, 30, 40]
    assert [r["round"] for r in curve] == [1, 2, 3, 4]
    assert seen == curve
    assert curve[-1]["accuracy"] > 0.9
    assert set(curve[0]) == {
        "round",
        "labeled",
        "labeled_indices",
        "accuracy",
        "strategy",
        "audit_accuracy",
        "seconds",
    }


def test_rounds_cold_start_until_there_are_enough_labels():
    X, y = blobs()
    curve = simulate(
        X, y, 3, strategy="margin", budget=30, batch_size=5, ensemble_params=SMALL_ENSEMBLE
    )
    # max(2 * 3 classes, batch 5) = 6 labels: rounds 1-2 cold start (5, 10 labels).
    assert [r["strategy"] for r in curve] == ["cold_start"] * 2 + ["margin"] * 4


def test_cold_start_rounds_use_the_method_given_and_the_labels_so_far(monkeypatch):
    import sampler.simulate

    calls = []

    def recording(features, costs, **kwargs):
        calls.append((kwargs["method"], len(kwargs["labeled_features"])))
        return cold_start(features, costs, **kwargs)

    monkeypatch.setattr(sampler.simulate, "cold_start", recording)
    X, y = blobs()
    simulate(
        X,
        y,
        3,
        strategy="margin",
        budget=10,
        batch_size=5,
        ensemble_params=SMALL_ENSEMBLE,
        cold_start_method="kcenter",
    )
    assert calls == [("kcenter", 0), ("kcenter", 5)]


def test_each_round_names_the_rows_labeled_so_far():
    X, y = blobs(n=150)
    initial = np.array([5, 7, 9])
    curve = simulate(
        X,
        y,
        3,
        strategy="margin",
        budget=23,
        batch_size=10,
        initial=initial,
        ensemble_params=SMALL_ENSEMBLE,
    )
    previous = initial
    for record in curve:
        indices = record["labeled_indices"]
        assert len(indices) == record["labeled"] == len(set(indices.tolist()))
        assert indices[: len(previous)].tolist() == previous.tolist()  # earlier rounds kept
        assert indices.min() >= 0 and indices.max() < len(y)
        previous = indices
    assert [len(r["labeled_indices"]) for r in curve] == [13, 23]


def test_cold_start_rule():
    assert cold_start_needed(np.array([0, 1, 0, 1, 2]), 3, 5)  # 5 < max(6, 5)
    assert cold_start_needed(np.zeros(20, int), 3, 5)  # one class only
    assert not cold_start_needed(np.array([0, 1, 2] * 2), 3, 5)


@pytest.mark.parametrize("strategy", sorted(ACQUISITIONS))
def test_every_strategy_runs_and_is_reproducible(strategy):
    X, y = blobs(n=150)
    params = {"strategy": strategy, "budget": 24, "batch_size": 8, "seed": 3}
    a = simulate(X, y, 3, ensemble_params=SMALL_ENSEMBLE, **params)
    b = simulate(X, y, 3, ensemble_params=SMALL_ENSEMBLE, **params)
    assert [r["labeled"] for r in a] == [8, 16, 24]
    assert [r["accuracy"] for r in a] == [r["accuracy"] for r in b]


def test_initial_labels_count_toward_the_budget():
    X, y = blobs()
    curve = simulate(
        X,
        y,
        3,
        strategy="entropy",
        budget=20,
        batch_size=5,
        initial=np.arange(10),
        ensemble_params=SMALL_ENSEMBLE,
    )
    assert [r["labeled"] for r in curve] == [15, 20]


def test_a_pool_smaller_than_the_budget_is_labeled_completely():
    X, y = blobs(n=30)
    curve = simulate(
        X, y, 3, strategy="random", budget=100, batch_size=8, ensemble_params=SMALL_ENSEMBLE
    )
    assert curve[-1]["labeled"] == 30
