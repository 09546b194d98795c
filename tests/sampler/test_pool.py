import numpy as np
import pytest

from sampler.acquisition import ACQUISITIONS, SCORE_FLOOR
from sampler.ensemble import MLPEnsemble
from sampler.pool import merge_candidates, score_shard, shard_candidates, split_shards


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    model = MLPEnsemble(n_members=3, epochs=20).fit(X[:100], y[:100], 3)
    previous = MLPEnsemble(n_members=3, epochs=5, random_state=9).fit(X[:50], y[:50], 3)
    costs = rng.choice([1.0, 2.0, 3.5], size=1000)
    return model, previous, X, costs


@pytest.mark.parametrize("strategy", sorted(ACQUISITIONS))
def test_scoring_in_shards_equals_scoring_in_one_piece(trained, strategy):
    model, previous, X, costs = trained
    pool, ids = X[100:], np.arange(100, 1000)
    kwargs = {"labeled_X": X[:100], "previous_model": previous, "random_state": 4}
    floor = SCORE_FLOOR.get(strategy, 0.0)
    whole = score_shard(model, pool, strategy, ids=ids, **kwargs)
    expected = shard_candidates(ids, whole, costs[100:], 25, score_floor=floor)
    parts = []
    for start, stop in split_shards(len(pool), 128):
        scores = score_shard(model, pool[start:stop], strategy, ids=ids[start:stop], **kwargs)
        np.testing.assert_allclose(scores, whole[start:stop], rtol=1e-5, atol=1e-6)
        parts.append(
            shard_candidates(
                ids[start:stop], scores, costs[100 + start : 100 + stop], 25, score_floor=floor
            )
        )
    merged = merge_candidates(parts, 25, score_floor=floor)
    assert [c[0] for c in merged] == [c[0] for c in expected]


def test_candidates_rank_by_score_per_unit_cost():
    ids = np.array([10, 11, 12])
    top = shard_candidates(ids, np.array([1.0, 0.8, 0.3]), np.array([4.0, 1.0, 1.0]), 3)
    assert [c[0] for c in top] == [11, 12, 10]


def test_split_shards_covers_the_range():
    assert split_shards(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert split_shards(0, 4) == []


def test_random_scores_do_not_depend_on_sharding(trained):
    model, _, X, _ = trained
    ids = np.arange(500)
    whole = score_shard(model, X[:500], "random", ids=ids, random_state=2)
    part = score_shard(model, X[200:300], "random", ids=ids[200:300], random_state=2)
    np.testing.assert_array_equal(part, whole[200:300])
    assert 0 <= whole.min() and whole.max() < 1


def test_lftl_without_a_previous_model_falls_back_to_entropy(trained):
    model, _, X, _ = trained
    np.testing.assert_allclose(
        score_shard(model, X[:50], "lftl"), score_shard(model, X[:50], "entropy")
    )
