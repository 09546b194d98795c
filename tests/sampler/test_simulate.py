import numpy as np

from sampler.simulate import simulate


def test_simulation_spends_the_budget_in_batches_and_learns():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 4
    y = rng.integers(0, 3, size=400)
    X = (centers[y] + rng.normal(size=(400, 6))).astype(np.float32)
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
    assert seen == curve
    assert curve[-1]["accuracy"] > 0.9
