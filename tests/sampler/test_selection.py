import numpy as np
import pytest

from sampler.selection import (
    BUDGET_TOLERANCE,
    cold_start,
    select_under_budget,
    top_k,
    value_per_cost,
)

# top_k


def test_top_k_is_ordered_highest_first():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.3])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 4, 0]
    assert top_k(scores, 0).tolist() == []
    assert top_k(scores, 3).dtype == np.int64


def test_top_k_breaks_ties_at_the_cut_by_lower_index():
    scores = np.array([0.5, 1.0, 0.5, 0.5, 0.2, 0.5])
    assert top_k(scores, 3).tolist() == [1, 0, 2]


def test_top_k_counts_nan_as_minus_infinity():
    assert top_k(np.array([np.nan, 0.2, -np.inf, 0.1]), 4).tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("seed", range(5))
def test_top_k_equals_a_full_stable_sort(seed):
    scores = np.random.default_rng(seed).integers(0, 20, size=1000).astype(float)
    expected = np.argsort(-scores, kind="stable")[:37]
    np.testing.assert_array_equal(top_k(scores, 37), expected)


# select_under_budget


@pytest.mark.parametrize("seed", range(20))
def test_selection_never_exceeds_the_budget_or_group_budgets(seed):
    rng = np.random.default_rng(seed)
    n = 200
    scores = rng.normal(size=n) if seed % 3 == 0 else rng.random(n)
    costs = rng.choice([0.1, 0.2, 0.5, 1.0, 2.0, 5.0], size=n)
    groups = rng.integers(-1, 3, size=n)
    group_remaining = {0: float(rng.integers(0, 6)), 1: round(float(rng.random() * 3), 2)}
    remaining = round(float(rng.random() * 30), 2)
    picks = select_under_budget(
        scores,
        costs,
        remaining=remaining,
        batch_size=15,
        features=rng.normal(size=(n, 4)) if seed % 2 else None,
        groups=groups,
        group_remaining=group_remaining,
    )
    assert picks.dtype == np.int64
    assert len(picks) == len(set(picks.tolist())) <= 15
    assert costs[picks].sum() <= remaining + BUDGET_TOLERANCE
    for g, left in group_remaining.items():
        assert costs[picks][groups[picks] == g].sum() <= left + BUDGET_TOLERANCE


@pytest.mark.parametrize("seed", range(5))
def test_selection_fills_the_batch_when_the_budget_allows(seed):
    rng = np.random.default_rng(seed)
    picks = select_under_budget(
        rng.random(100), rng.choice([1.0, 2.0], 100), remaining=1000, batch_size=12
    )
    assert len(picks) == 12


def test_selection_prefers_score_per_unit_cost():
    picks = select_under_budget(
        np.array([0.9, 0.5, 0.4]), np.array([3.0, 1.0, 1.0]), remaining=2, batch_size=5
    )
    assert picks.tolist() == [1, 2]


def test_selection_skips_what_does_not_fit_and_goes_on():
    picks = select_under_budget(
        np.array([0.9, 0.8, 0.1]), np.array([1.0, 5.0, 1.0]), remaining=2, batch_size=5
    )
    assert picks.tolist() == [0, 2]


def test_a_group_at_its_allocation_gives_way_to_other_items():
    picks = select_under_budget(
        np.array([0.9, 0.8, 0.7, 0.1]),
        np.ones(4),
        remaining=10,
        batch_size=3,
        groups=np.array([0, 0, 0, -1]),
        group_remaining={0: 2},
    )
    assert picks.tolist() == [0, 1, 3]


def test_groups_without_an_allocation_count_toward_the_total_only():
    picks = select_under_budget(
        np.array([0.9, 0.8, 0.7]),
        np.ones(3),
        remaining=2,
        batch_size=3,
        groups=np.array([5, 5, 5]),
        group_remaining={0: 0.0},
    )
    assert picks.tolist() == [0, 1]


def test_decimal_costs_that_fit_exactly_are_taken():
    # 0.1 + 0.2 > 0.3 in floats; the budget tolerance lets the exact fit through.
    picks = select_under_budget(
        np.array([0.9, 0.8]), np.array([0.1, 0.2]), remaining=0.3, batch_size=5
    )
    assert picks.tolist() == [0, 1]


def test_negative_scores_rank_by_score_at_equal_cost():
    margins = np.array([-0.9, -0.05, -0.5, -0.2])  # minus a margin: higher is better
    picks = select_under_budget(margins, np.ones(4), remaining=10, batch_size=4)
    assert picks.tolist() == [1, 3, 2, 0]


def test_a_score_floor_makes_worth_per_cost_linear():
    # Worth = score - (-1): 0.95 for cost 1 vs 0.5 for cost 0.5 (1.0 per unit).
    margins, costs = np.array([-0.05, -0.5]), np.array([1.0, 0.5])
    picks = select_under_budget(margins, costs, remaining=1, batch_size=1, score_floor=-1.0)
    assert picks.tolist() == [1]


def test_a_score_below_the_floor_is_refused():
    with pytest.raises(ValueError, match="below"):
        value_per_cost(np.array([-2.0]), np.ones(1), score_floor=-1.0)


def test_non_finite_scores_are_never_selected():
    picks = select_under_budget(
        np.array([np.nan, -np.inf, 0.1, np.inf]), np.ones(4), remaining=10, batch_size=4
    )
    assert picks.tolist() == [2]


def test_costs_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        select_under_budget(np.ones(2), np.array([1.0, 0.0]), remaining=5, batch_size=2)


def test_diversity_spreads_a_batch_across_clusters():
    rng = np.random.default_rng(0)
    # 12 near-duplicates with the top scores, and 4 other clusters scoring a little lower:
    # the 25 candidates (5 x batch) hold all five clusters.
    centers = np.eye(5) * 10
    labels = np.repeat(np.arange(5), [12, 10, 10, 10, 10])
    X = centers[labels] + rng.normal(scale=0.01, size=(52, 5))
    scores = np.where(labels == 0, 1.0, 0.9) + rng.random(52) * 0.01
    plain = select_under_budget(scores, np.ones(52), remaining=100, batch_size=5)
    diverse = select_under_budget(scores, np.ones(52), remaining=100, batch_size=5, features=X)
    assert set(labels[plain]) == {0}
    assert set(labels[diverse]) == {0, 1, 2, 3, 4}
    assert diverse[0] == plain[0]  # the best item still comes first


def test_a_cluster_whose_best_item_does_not_fit_offers_its_next_best():
    rng = np.random.default_rng(1)
    labels = np.arange(30) % 3  # the 15 candidates hold 5 items of each cluster
    X = np.eye(3)[labels] * 10 + rng.normal(scale=0.01, size=(30, 3))
    scores = 1.0 - 0.01 * np.arange(30)
    groups = np.where(np.arange(30) == 1, 7, -1)  # item 1, cluster 1's best, is in group 7
    picks = select_under_budget(
        scores,
        np.ones(30),
        remaining=3,
        batch_size=3,
        features=X,
        groups=groups,
        group_remaining={7: 0.5},  # which cannot afford it
    )
    assert picks.tolist() == [0, 4, 2]


def test_selection_is_deterministic():
    rng = np.random.default_rng(2)
    scores, X = rng.random(300), rng.normal(size=(300, 8))
    runs = [
        select_under_budget(scores, np.ones(300), remaining=20, batch_size=10, features=X)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*runs)


# cold_start


def test_cold_start_covers_separated_clusters():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 3)) * 20
    sizes = [200, 20, 20, 20, 20, 20]  # one dominant cluster does not crowd out the others
    X = np.concatenate([c + rng.normal(size=(s, 3)) for c, s in zip(centers, sizes, strict=True)])
    cluster = np.repeat(np.arange(6), sizes)
    picks = cold_start(X.astype(np.float32), np.ones(len(X)), remaining=6, batch_size=6)
    assert len(picks) == 6 and picks.dtype == np.int64
    assert set(cluster[picks]) == set(range(6))


def test_cold_start_respects_budget_and_subsamples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    costs = rng.choice([1.0, 3.0], size=5000)
    picks = cold_start(X, costs, remaining=10, batch_size=50, max_candidates=500)
    assert costs[picks].sum() <= 10
    assert len(set(picks.tolist())) == len(picks) > 3


def test_cold_start_respects_group_budgets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    groups = np.repeat([0, 1], 200)
    picks = cold_start(
        X, np.ones(400), remaining=20, batch_size=20, groups=groups, group_remaining={0: 3}
    )
    assert len(picks) == 20
    assert (groups[picks] == 0).sum() <= 3


def test_cold_start_handles_a_pool_of_a_million_rows_without_a_pairwise_matrix():
    X = np.random.default_rng(2).normal(size=(1_000_000, 2)).astype(np.float32)
    picks = cold_start(X, np.ones(len(X)), remaining=50, batch_size=50, random_state=3)
    assert len(set(picks.tolist())) == 50  # an n x n float matrix would need 4 TB


def test_cold_start_is_deterministic_given_the_random_state():
    X = np.random.default_rng(3).normal(size=(3000, 5)).astype(np.float32)
    a = cold_start(X, np.ones(3000), remaining=9, batch_size=9, max_candidates=1000)
    b = cold_start(X, np.ones(3000), remaining=9, batch_size=9, max_candidates=1000)
    np.testing.assert_array_equal(a, b)


def test_cold_start_with_nothing_affordable_picks_nothing():
    X = np.zeros((5, 2), dtype=np.float32)
    assert cold_start(X, np.full(5, 2.0), remaining=1, batch_size=3).tolist() == []
