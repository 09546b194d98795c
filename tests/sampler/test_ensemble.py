import numpy as np
import pytest
import torch

from sampler.ensemble import MLPEnsemble, cross_val_accuracy


def blobs(n=600, classes=3, d=10, seed=0):
    """Well separated Gaussian blobs: float32 (n, d) features, int64 (n,) labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def fitted():
    X, y = blobs()
    return MLPEnsemble(n_members=3, epochs=30).fit(X[:300], y[:300], 3), X, y


def test_ensemble_learns_a_separable_problem(fitted):
    model, X, y = fitted
    probs = model.predict_proba(X[300:])
    assert probs.shape == (3, 300, 3) and probs.dtype == np.float32
    assert (probs.mean(0).argmax(1) == y[300:]).mean() > 0.95


def test_out_of_bag_accuracy_estimates_held_out_accuracy(fitted):
    model, X, y = fitted
    held_out = (model.predict_proba(X[300:]).mean(0).argmax(1) == y[300:]).mean()
    assert 0.9 < model.oob_accuracy_ <= 1.0
    assert abs(model.oob_accuracy_ - held_out) < 0.05
    assert model.oob_proba_.shape == (300, 3)


def test_without_bootstrap_there_is_no_out_of_bag_estimate():
    X, y = blobs(n=60)
    model = MLPEnsemble(n_members=2, epochs=3, bootstrap=False).fit(X, y, 3)
    assert model.oob_accuracy_ is None


def test_fit_returns_self_and_sets_learned_attributes_only_then():
    X, y = blobs(n=60, d=5)
    model = MLPEnsemble(n_members=2, hidden=8, epochs=2)
    assert not any(name.endswith("_") for name in vars(model))
    assert model.fit(X, y, 4) is model
    assert (model.n_classes_, model.n_features_, len(model.members_)) == (4, 5, 2)


def test_probabilities_are_distributions_over_all_classes_even_unseen_ones():
    X, _ = blobs(n=50)
    only_class_0 = MLPEnsemble(n_members=2, epochs=3).fit(X, np.zeros(50, np.int64), 3)
    probs = only_class_0.predict_proba(X[:20])
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert probs.shape == (2, 20, 3)


def test_members_differ_but_training_is_reproducible():
    X, y = blobs()
    a = MLPEnsemble(n_members=3, random_state=1, epochs=5).fit(X[:100], y[:100], 3)
    b = MLPEnsemble(n_members=3, random_state=1, epochs=5).fit(X[:100], y[:100], 3)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X)[0], a.predict_proba(X)[1])
    c = MLPEnsemble(n_members=3, random_state=2, epochs=5).fit(X[:100], y[:100], 3)
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))


def test_fitting_leaves_the_global_random_generators_alone():
    X, y = blobs(n=100)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    MLPEnsemble(n_members=2, epochs=2).fit(X, y, 3)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


@pytest.mark.parametrize(("max_steps", "expected"), [(7, 14), (None, 2 * 3 * 4)])
def test_max_steps_caps_the_optimizer_steps_of_each_member(monkeypatch, max_steps, expected):
    X, y = blobs(n=200)
    steps = []
    step = torch.optim.Adam.step
    monkeypatch.setattr(
        torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k)
    )
    # 2 members x 3 epochs x 4 minibatches of 50 = 24 steps, or 2 x 7 with the cap.
    MLPEnsemble(n_members=2, epochs=3, batch_size=50, max_steps=max_steps).fit(X, y, 3)
    assert len(steps) == expected


def test_serialization_round_trips_to_identical_predictions(fitted):
    model, X, _ = fitted
    again = MLPEnsemble.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.embed(X), model.embed(X))
    assert again.get_params() == model.get_params()
    assert (again.n_classes_, again.oob_accuracy_) == (3, model.oob_accuracy_)


def test_serialized_size_is_compact(fitted):
    model, _, _ = fitted
    parameters = sum(p.numel() for m in model.members_ for p in m.parameters())
    assert len(model.to_bytes()) < parameters * 4 + 20_000


def test_embed_gives_penultimate_features_averaged_over_members(fitted):
    model, X, _ = fitted
    embedding = model.embed(X[:7])
    assert embedding.shape == (7, 64) and embedding.dtype == np.float32
    inputs = torch.from_numpy((X[:7] - model.mean_) / model.scale_)
    with torch.no_grad():
        expected = torch.stack([m.body(inputs) for m in model.members_]).mean(0).numpy()
    np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 100])
def test_predictions_do_not_depend_on_the_chunk_size(fitted, chunk_size):
    model, X, _ = fitted
    np.testing.assert_array_equal(
        model.predict_proba(X, chunk_size=chunk_size), model.predict_proba(X)
    )
    np.testing.assert_array_equal(model.embed(X, chunk_size=chunk_size), model.embed(X))


def test_a_row_scores_the_same_alone_as_within_the_pool(fitted):
    model, X, _ = fitted
    whole = model.predict_proba(X)
    for i in (0, 17, 599):
        np.testing.assert_array_equal(model.predict_proba(X[i : i + 1])[:, 0], whole[:, i])


def test_predict_reads_a_memmap_in_chunks(fitted, tmp_path):
    model, X, _ = fitted
    path = tmp_path / "pool.f32"
    stored = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    stored[:] = X
    stored.flush()
    pool = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    np.testing.assert_array_equal(model.predict_proba(pool, chunk_size=128), model.predict_proba(X))


def test_bad_training_data_is_refused():
    X, y = blobs(n=20)
    with pytest.raises(ValueError, match="labels"):
        MLPEnsemble().fit(X, y, 2)  # label 2 is outside [0, 2)
    with pytest.raises(ValueError):
        MLPEnsemble().fit(X[:10], y, 3)
    with pytest.raises(ValueError, match="finite"):
        MLPEnsemble().fit(np.full_like(X, np.nan), y, 3)


def test_predicting_before_fitting_or_with_other_features_is_refused(fitted):
    model, X, _ = fitted
    with pytest.raises(RuntimeError, match="fit"):
        MLPEnsemble().predict_proba(X)
    with pytest.raises(ValueError, match="10"):
        model.predict_proba(X[:, :4])


def test_cross_validated_accuracy_is_high_on_a_separable_problem():
    X, y = blobs(n=150)
    assert cross_val_accuracy(X, y, 3, folds=3, n_members=2, epochs=20) > 0.9
