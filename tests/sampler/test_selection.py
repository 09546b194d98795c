import numpy as np
import pytest

from sampler.selection import cold_start, select_under_budget, top_k


def test_top_k_is_ordered_highest_first():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.3])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 4, 0]


@pytest.mark.parametrize("seed", range(20))
def test_selection_never_exceeds_the_budget_or_group_budgets(seed):
    rng = np.random.default_rng(seed)
    n = 200
    scores, costs = rng.random(n), rng.choice([0.5, 1.0, 2.0, 5.0], size=n)
    groups = rng.integers(-1, 3, size=n)
    group_remaining = {0: float(rng.integers(0, 6)), 1: float(rng.integers(0, 6))}
    remaining = float(rng.integers(1, 30))
    picks = select_under_budget(
        scores,
        costs,
        remaining=remaining,
        batch_size=15,
        features=rng.normal(size=(n, 4)) if seed % 2 else None,
        groups=groups,
        group_remaining=group_remaining,
    )
    assert len(picks) == len(set(picks.tolist())) <= 15
    assert costs[picks].sum() <= remaining + 1e-9
    for g, left in group_remaining.items():
        assert costs[picks][groups[picks] == g].sum() <= left + 1e-9


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


def test_cold_start_covers_separated_clusters():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 3)) * 20
    X = np.concatenate([c + rng.normal(size=(50, 3)) for c in centers]).astype(np.float32)
    picks = cold_start(X, np.ones(len(X)), remaining=6, batch_size=6)
    assert len(picks) == 6
    assert len({int(i) // 50 for i in picks}) == 6


def test_cold_start_respects_budget_and_subsamples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    costs = rng.choice([1.0, 3.0], size=5000)
    picks = cold_start(X, costs, remaining=10, batch_size=50, max_candidates=500)
    assert costs[picks].sum() <= 10
    assert len(set(picks.tolist())) == len(picks)
