import numpy as np

from sampler.ensemble import MLPEnsemble


def blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 10)) * 3
    y = rng.integers(0, 3, size=n)
    return (centers[y] + rng.normal(size=(n, 10))).astype(np.float32), y.astype(np.int64)


def test_ensemble_learns_a_separable_problem():
    X, y = blobs()
    model = MLPEnsemble(n_members=3).fit(X[:300], y[:300], 3)
    probs = model.predict_proba(X[300:])
    assert probs.shape == (3, 300, 3) and probs.dtype == np.float32
    assert (probs.mean(0).argmax(1) == y[300:]).mean() > 0.95
    assert model.oob_accuracy_ > 0.9


def test_members_differ_but_training_is_reproducible():
    X, y = blobs()
    a = MLPEnsemble(n_members=3, random_state=1).fit(X[:100], y[:100], 3).predict_proba(X)
    b = MLPEnsemble(n_members=3, random_state=1).fit(X[:100], y[:100], 3).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])


def test_serialization_round_trips_predictions():
    X, y = blobs()
    model = MLPEnsemble(n_members=2, epochs=10).fit(X[:100], y[:100], 4)
    again = MLPEnsemble.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.embed(X), model.embed(X))
    assert again.n_classes_ == 4 and again.get_params() == model.get_params()


def test_embed_gives_penultimate_features():
    X, y = blobs()
    model = MLPEnsemble(n_members=2, hidden=16, epochs=5).fit(X, y, 3)
    assert model.embed(X[:7]).shape == (7, 16)


def test_chunked_prediction_equals_whole():
    X, y = blobs()
    model = MLPEnsemble(n_members=2, epochs=5).fit(X, y, 3)
    np.testing.assert_allclose(
        model.predict_proba(X, chunk_size=64), model.predict_proba(X), rtol=1e-6, atol=1e-7
    )
