import json

import numpy as np
import pytest

from sampler.acquisition import ACQUISITIONS, score_floor
from sampler.ensemble import MLPEnsemble
from sampler.pool import (
    hashed_uniform,
    merge_candidates,
    score_shard,
    shard_candidates,
    split_shards,
)
from sampler.selection import select_under_budget


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    model = MLPEnsemble(n_members=3, epochs=20).fit(X[:100], y[:100], 3)
    previous = MLPEnsemble(n_members=3, epochs=5, random_state=9).fit(X[:50], y[:50], 3)
    costs = rng.choice([1.0, 2.0, 3.5], size=1200)
    return model, previous, X, costs


@pytest.mark.parametrize("strategy", sorted(ACQUISITIONS))
@pytest.mark.parametrize("shard_size", [128, 333])
def test_scoring_in_shards_and_merging_equals_scoring_in_one_piece(trained, strategy, shard_size):
    model, previous, X, costs = trained
    pool, ids, pool_costs = X[100:], np.arange(100, 1200), costs[100:]
    kwargs = {"labeled_X": X[:100], "previous_model": previous, "random_state": 4}
    floor = score_floor(strategy)
    whole = score_shard(model, pool, strategy, ids=ids, **kwargs)
    expected = shard_candidates(ids, whole, pool_costs, 40, score_floor=floor)
    parts = []
    for start, stop in split_shards(len(pool), shard_size):
        scores = score_shard(model, pool[start:stop], strategy, ids=ids[start:stop], **kwargs)
        np.testing.assert_array_equal(scores, whole[start:stop])  # bit for bit
        parts.append(
            shard_candidates(ids[start:stop], scores, pool_costs[start:stop], 40, score_floor=floor)
        )
    merged = merge_candidates(parts, 40, score_floor=floor)
    assert merged == expected
    # ... and the same order select_under_budget walks in, over the whole pool.
    order = select_under_budget(whole, pool_costs, remaining=1e9, batch_size=40, score_floor=floor)
    assert [c[0] for c in merged] == ids[order].tolist()


def test_merging_without_a_floor_equals_one_piece_for_negative_scores(trained):
    model, _, X, costs = trained
    ids = np.arange(len(X))
    whole = score_shard(model, X, "margin")
    assert whole.max() <= 0
    expected = shard_candidates(ids, whole, costs, 30)
    parts = [
        shard_candidates(ids[a:b], whole[a:b], costs[a:b], 30) for a, b in split_shards(1200, 250)
    ]
    assert merge_candidates(parts, 30) == expected


def test_candidates_rank_by_score_per_unit_cost():
    ids = np.array([10, 11, 12])
    top = shard_candidates(ids, np.array([1.0, 0.8, 0.3]), np.array([4.0, 1.0, 1.0]), 3)
    assert [c[0] for c in top] == [11, 12, 10]


def test_candidate_ties_are_broken_by_lower_id():
    ids = np.array([7, 3, 5, 1])
    top = shard_candidates(ids, np.full(4, 0.5), np.ones(4), 3)
    assert [c[0] for c in top] == [1, 3, 5]


def test_candidates_are_plain_json_ready_tuples():
    top = shard_candidates(np.array([4, 2]), np.array([0.25, 0.5]), np.array([1.0, 2.0]), 5)
    assert top == [(4, 0.25, 1.0), (2, 0.5, 2.0)]
    assert all(type(v) in (int, float) for c in top for v in c)
    assert [tuple(c) for c in json.loads(json.dumps(top))] == top


def test_candidates_leave_out_non_finite_scores():
    top = shard_candidates(np.arange(3), np.array([np.nan, -np.inf, 0.1]), np.ones(3), 3)
    assert [c[0] for c in top] == [2]


def test_merging_counts_an_item_listed_twice_once():
    shard = [(5, 0.9, 1.0), (6, 0.1, 1.0)]
    assert merge_candidates([shard, shard], 3) == shard


def test_split_shards_covers_the_range_in_order():
    assert split_shards(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert split_shards(0, 4) == []
    with pytest.raises(ValueError):
        split_shards(10, 0)


def test_random_scores_do_not_depend_on_sharding(trained):
    model, _, X, _ = trained
    ids = np.arange(500)
    whole = score_shard(model, X[:500], "random", ids=ids, random_state=2)
    part = score_shard(model, X[200:300], "random", ids=ids[200:300], random_state=2)
    np.testing.assert_array_equal(part, whole[200:300])
    assert 0 <= whole.min() and whole.max() < 1


def test_hashed_random_scores_look_uniform_and_change_with_the_seed():
    u = hashed_uniform(np.arange(100_000), 0)
    assert abs(u.mean() - 0.5) < 0.01 and abs((u < 0.1).mean() - 0.1) < 0.01
    assert not np.array_equal(u[:100], hashed_uniform(np.arange(100), 1))


def test_lftl_without_a_previous_model_falls_back_to_entropy(trained):
    model, _, X, _ = trained
    np.testing.assert_array_equal(
        score_shard(model, X[:50], "lftl"), score_shard(model, X[:50], "entropy")
    )


def test_lftl_contrasts_with_the_previous_model(trained):
    model, previous, X, _ = trained
    with_previous = score_shard(model, X[:50], "lftl", previous_model=previous)
    assert not np.allclose(with_previous, score_shard(model, X[:50], "lftl"))


def test_cal_needs_the_labeled_rows(trained):
    model, _, X, _ = trained
    with pytest.raises(ValueError, match="labeled"):
        score_shard(model, X[:10], "cal")


def test_chunked_scoring_equals_one_chunk(trained):
    model, previous, X, _ = trained
    kwargs = {"labeled_X": X[:100], "previous_model": previous}
    for strategy in ("bald", "cal", "lftl"):
        np.testing.assert_array_equal(
            score_shard(model, X, strategy, chunk_size=100, **kwargs),
            score_shard(model, X, strategy, **kwargs),
        )


def test_out_of_scope_class_scores_minus_infinity(trained):
    model, _, X, _ = trained
    probs = model.predict_proba(X[:200]).mean(0)
    scores = score_shard(model, X[:200], "entropy", exclude_class=0, exclude_above=0.6)
    confident = probs[:, 0] >= 0.6
    assert confident.any() and (~confident).any()
    assert np.isneginf(scores[confident]).all()
    assert np.isfinite(scores[~confident]).all()
