"""sampler.selection.cold_start: TypiClust (the default), k-center and random first picks."""

import numpy as np
import pytest

from sampler.selection import cold_start

BLOBS = 5
PER_BLOB = 80


def ring_of_blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """BLOBS well-separated 2-d Gaussian blobs (std 1) on a circle of radius 30:
    (features (BLOBS * PER_BLOB, 2) float32, blob of each row)."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(BLOBS) / BLOBS
    centers = 30 * np.stack([np.cos(angles), np.sin(angles)], 1)
    blob = np.repeat(np.arange(BLOBS), PER_BLOB)
    X = centers[blob] + rng.normal(size=(len(blob), 2))
    return X.astype(np.float32), blob


def unit(n: int) -> np.ndarray:
    return np.ones(n)


def test_typiclust_picks_the_typical_point_of_each_blob_and_no_outlier():
    X, blob = ring_of_blobs()
    outliers = np.array([[70, 5], [-60, 40], [10, -75], [-5, 65]], dtype=np.float32)
    X = np.concatenate([X, outliers])
    picks = cold_start(X, unit(len(X)), remaining=BLOBS, batch_size=BLOBS, random_state=1)
    assert len(picks) == BLOBS
    assert not (picks >= len(blob)).any()  # no outlier
    assert sorted(blob[picks]) == list(range(BLOBS))
    for i in picks:  # each pick lies in the dense middle of its blob
        members = X[: len(blob)][blob == blob[i]]
        to_centre = np.linalg.norm(members - members.mean(0), axis=1)
        assert np.linalg.norm(X[i] - members.mean(0)) <= np.quantile(to_centre, 0.25)


def test_kcenter_would_pick_the_outliers():  # what typiclust is for
    X, _ = ring_of_blobs()
    outliers = np.array([[70, 5], [-60, 40], [10, -75], [-5, 65]], dtype=np.float32)
    X = np.concatenate([X, outliers])
    picks = cold_start(X, unit(len(X)), remaining=BLOBS, batch_size=BLOBS, method="kcenter")
    assert (picks >= BLOBS * PER_BLOB).sum() >= 3


@pytest.mark.parametrize("seed", range(5))
def test_typiclust_covers_every_cluster_when_the_batch_is_the_number_of_clusters(seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, 10)) * 15
    sizes = [300, 40, 40, 60, 40, 100, 40, 40]  # unequal: the big ones do not crowd out
    X = np.concatenate([c + rng.normal(size=(s, 10)) for c, s in zip(centers, sizes, strict=True)])
    cluster = np.repeat(np.arange(8), sizes)
    picks = cold_start(X, unit(len(X)), remaining=8, batch_size=8, random_state=seed)
    assert sorted(cluster[picks]) == list(range(8))


def test_typiclust_respects_the_total_budget():
    X, _ = ring_of_blobs()
    costs = np.random.default_rng(2).choice([0.1, 0.7, 2.5], size=len(X))
    picks = cold_start(X, costs, remaining=3.0, batch_size=50)
    assert costs[picks].sum() <= 3.0 + 1e-9
    assert len(picks) == len(set(picks.tolist())) >= 4


def test_typiclust_skips_what_the_remaining_budget_cannot_pay_for():
    X, blob = ring_of_blobs()
    costs = np.where(blob == 0, 10.0, 1.0)  # blob 0 is too expensive
    picks = cold_start(X, costs, remaining=BLOBS, batch_size=BLOBS)
    assert len(picks) == BLOBS
    assert 0 not in blob[picks]


def test_typiclust_respects_group_budgets():
    X, blob = ring_of_blobs()
    groups = np.where(blob < 2, 0, 1)  # blobs 0 and 1 are group 0
    picks = cold_start(
        X, unit(len(X)), remaining=10, batch_size=10, groups=groups, group_remaining={0: 1}
    )
    assert len(picks) == 10
    assert (groups[picks] == 0).sum() == 1


def test_typiclust_skips_clusters_the_labeled_items_cover():
    X, blob = ring_of_blobs()
    labeled = np.stack([X[blob == 0].mean(0), X[blob == 3].mean(0) + 0.5])
    picks = cold_start(
        X, unit(len(X)), remaining=3, batch_size=3, labeled_features=labeled, random_state=4
    )
    assert sorted(blob[picks]) == [1, 2, 4]


def test_typiclust_is_deterministic_given_the_random_state():
    X = np.random.default_rng(3).normal(size=(3000, 8)).astype(np.float32)
    a = cold_start(X, unit(3000), remaining=12, batch_size=12, max_candidates=1000)
    b = cold_start(X, unit(3000), remaining=12, batch_size=12, max_candidates=1000)
    np.testing.assert_array_equal(a, b)


def test_a_pool_smaller_than_the_batch_is_picked_whole():
    X = np.array([[0, 0], [1, 0], [5, 5]], dtype=np.float32)
    picks = cold_start(X, unit(3), remaining=10, batch_size=10)
    assert sorted(picks.tolist()) == [0, 1, 2]


def test_an_empty_pool_gives_no_picks():
    picks = cold_start(np.zeros((0, 4), dtype=np.float32), unit(0), remaining=5, batch_size=5)
    assert picks.tolist() == [] and picks.dtype == np.int64


def test_duplicates_are_picked_once_each():
    X = np.concatenate([np.zeros((40, 3)), np.ones((40, 3)), [[5, 5, 5]]]).astype(np.float32)
    picks = cold_start(X, unit(len(X)), remaining=6, batch_size=6)
    assert len(picks) == len(set(picks.tolist())) == 6
    assert {0, 1} <= {int(X[i, 0]) for i in picks}  # both stacks of duplicates


def test_the_middle_of_a_cluster_beats_its_rim():
    # one dense clump and a sparse ring around it, one pick: from the clump
    rng = np.random.default_rng(5)
    clump = rng.normal(size=(60, 2)) * 0.2
    angles = rng.uniform(0, 2 * np.pi, 60)
    rim = 5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    X = np.concatenate([rim, clump]).astype(np.float32)
    picks = cold_start(X, unit(len(X)), remaining=1, batch_size=1)
    assert picks.tolist()[0] >= 60


def test_kcenter_still_covers_separated_clusters():
    X, blob = ring_of_blobs()
    picks = cold_start(X, unit(len(X)), remaining=BLOBS, batch_size=BLOBS, method="kcenter")
    assert sorted(blob[picks]) == list(range(BLOBS))


def test_kcenter_starts_far_from_the_labeled_items():
    X, blob = ring_of_blobs()
    labeled = X[blob != 2]
    picks = cold_start(
        X, unit(len(X)), remaining=1, batch_size=1, method="kcenter", labeled_features=labeled
    )
    assert blob[picks].tolist() == [2]


def test_random_respects_the_budget_and_the_seed():
    X, _ = ring_of_blobs()
    costs = np.random.default_rng(6).choice([1.0, 3.0], size=len(X))
    a = cold_start(X, costs, remaining=10, batch_size=50, method="random", random_state=7)
    b = cold_start(X, costs, remaining=10, batch_size=50, method="random", random_state=7)
    c = cold_start(X, costs, remaining=10, batch_size=50, method="random", random_state=8)
    np.testing.assert_array_equal(a, b)
    assert costs[a].sum() <= 10 and len(set(a.tolist())) == len(a) > 3
    assert a.tolist() != c.tolist()


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        cold_start(np.zeros((3, 2)), unit(3), remaining=1, batch_size=1, method="coreset")


def test_labeled_features_of_another_width_are_refused():
    with pytest.raises(ValueError, match="labeled_features"):
        cold_start(
            np.zeros((3, 2)), unit(3), remaining=1, batch_size=1, labeled_features=np.zeros((1, 3))
        )
