import numpy as np
import pytest
import torch
from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy
from modAL.models import ActiveLearner, Committee
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from sampler import acquisition
from sampler.acquisition import (
    ACQUISITIONS,
    CONTRASTIVE_ACQUISITIONS,
    ENSEMBLE_ACQUISITIONS,
    requires,
    score_floor,
)
from sampler.testing import committee_for

MODAL_PAIRS = [
    (acquisition.vote_entropy, vote_entropy),
    (acquisition.consensus_entropy, consensus_entropy),
    (acquisition.max_disagreement, KL_max_disagreement),
]


def entropy_loop(p) -> float:
    return -sum(x * np.log(x) for x in p if x > 0)


def kl_loop(p, q) -> float:
    return sum(a * np.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


# modAL parity


@pytest.mark.parametrize(("ours", "theirs"), MODAL_PAIRS, ids=lambda f: f.__name__)
def test_ensemble_scores_equal_modal_on_the_same_committee_outputs(
    member_probs, as_input, ours, theirs
):
    given = as_input(member_probs)
    same_values = np.asarray(given, dtype=np.float64)  # what modAL's learners return
    expected = theirs(committee_for(same_values), np.arange(same_values.shape[1]).reshape(-1, 1))
    got = ours(given)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("ours", "theirs"), MODAL_PAIRS, ids=lambda f: f.__name__)
def test_ensemble_scores_equal_modal_on_a_committee_of_fitted_sklearn_learners(ours, theirs):
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    estimators = [
        LogisticRegression(max_iter=500),
        GaussianNB(),
        DecisionTreeClassifier(max_depth=2, random_state=0),
        KNeighborsClassifier(n_neighbors=4),
    ]
    learners = []
    for estimator in estimators:
        rows = rng.choice(len(y), 40, replace=False)
        learners.append(ActiveLearner(estimator=estimator, X_training=X[rows], y_training=y[rows]))
    committee = Committee(learner_list=learners)
    assert list(committee.classes_) == [0, 1, 2]
    probs = np.stack([learner.predict_proba(X) for learner in learners])  # (4, 150, 3)
    np.testing.assert_allclose(ours(probs), theirs(committee, X), atol=1e-6, rtol=0)


# Worked by hand, and against plain loops


def test_vote_entropy_counts_votes_not_probabilities():
    # Three members vote A, A, B (however confident): entropy of (2/3, 1/3).
    probs = np.array([[[0.9, 0.1]], [[0.6, 0.4]], [[0.2, 0.8]]])
    expected = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    np.testing.assert_allclose(acquisition.vote_entropy(probs), [expected], atol=1e-12)


def test_vote_entropy_gives_a_tied_vote_to_the_lower_class():
    # Both members are torn between classes 0 and 1: both vote 0, so the vote is unanimous.
    probs = np.array([[[0.5, 0.5, 0.0]], [[0.4, 0.4, 0.2]]])
    np.testing.assert_array_equal(acquisition.vote_entropy(probs), [0.0])


def test_consensus_entropy_by_hand():
    # Mean of (1, 0) and (0.5, 0.5) is (0.75, 0.25).
    probs = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    expected = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    np.testing.assert_allclose(acquisition.consensus_entropy(probs), [expected], atol=1e-12)


def test_max_disagreement_by_hand():
    # Mean (0.75, 0.25): KL((1, 0) || mean) = ln(4/3); KL((.5, .5) || mean) = .5 ln(2/1.5) +
    # .5 ln(2): the second member disagrees more.
    probs = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    expected = max(np.log(4 / 3), 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    np.testing.assert_allclose(acquisition.max_disagreement(probs), [expected], atol=1e-12)


def test_bald_on_a_case_worked_by_hand():
    # Two members, certain and opposite: mean (.5, .5), H(mean) = ln 2, members' H = 0.
    # Two members that agree on (.5, .5): H(mean) = ln 2 = mean member H, so BALD = 0.
    probs = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    np.testing.assert_allclose(acquisition.bald(probs), [np.log(2), 0.0], atol=1e-12)


def test_bald_matches_a_loop_reference(member_probs):
    k, n, _ = member_probs.shape
    expected = [
        entropy_loop(member_probs[:, i].mean(0))
        - np.mean([entropy_loop(member_probs[j, i]) for j in range(k)])
        for i in range(n)
    ]
    np.testing.assert_allclose(acquisition.bald(member_probs), expected, atol=1e-10)


def test_bald_of_float32_input_matches_the_float64_reference(member_probs):
    exact = acquisition.bald(member_probs.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(
        acquisition.bald(member_probs.astype(np.float32)), exact, atol=1e-6, rtol=0
    )


def test_margin_least_confidence_and_entropy_by_hand():
    probs = np.array([[[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]])
    np.testing.assert_allclose(acquisition.margin(probs), [-0.5, -0.05], atol=1e-12)
    np.testing.assert_allclose(acquisition.least_confidence(probs), [0.3, 0.6], atol=1e-12)
    np.testing.assert_allclose(
        acquisition.entropy(probs),
        [
            -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
            -(0.4 * np.log(0.4) + 0.35 * np.log(0.35) + 0.25 * np.log(0.25)),
        ],
        atol=1e-12,
    )


def test_one_model_baselines_use_the_mean_over_members(member_probs):
    mean = member_probs.mean(0)
    top2 = np.sort(mean, axis=1)[:, -2:]
    np.testing.assert_allclose(
        acquisition.margin(member_probs), -(top2[:, 1] - top2[:, 0]), atol=1e-12
    )
    np.testing.assert_allclose(
        acquisition.least_confidence(member_probs), 1 - mean.max(1), atol=1e-12
    )
    np.testing.assert_allclose(
        acquisition.entropy(member_probs), [entropy_loop(p) for p in mean], atol=1e-12
    )


def test_a_single_member_is_a_valid_ensemble(member_probs):
    one = member_probs[:1]
    for name in ("entropy", "margin", "least_confidence", "bald", "max_disagreement"):
        assert ACQUISITIONS[name](one).shape == (one.shape[1],), name
    np.testing.assert_allclose(acquisition.bald(one), 0.0, atol=1e-12)


def test_cal_by_hand_averages_kl_over_the_nearest_labeled_neighbours():
    # One candidate at (1, 0); labeled items at (1, .1), (1, -.1) (near) and (-1, 0) (far).
    candidate = np.array([[[0.5, 0.5]]])
    score = acquisition.cal(
        candidate,
        embeddings=np.array([[1.0, 0.0]]),
        labeled_embeddings=np.array([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]]),
        labeled_probs=np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]),
        k=2,
    )
    expected = (kl_loop([0.9, 0.1], [0.5, 0.5]) + kl_loop([0.8, 0.2], [0.5, 0.5])) / 2
    np.testing.assert_allclose(score, [expected], atol=1e-12)


def test_cal_measures_distance_after_l2_normalization():
    # (10, 0) is farther from the candidate (1, 0) than (0.6, 0.8) in raw L2 distance, but
    # it is the same direction: after normalization it is the nearest.
    score = acquisition.cal(
        np.array([[[0.5, 0.5]]]),
        embeddings=np.array([[1.0, 0.0]]),
        labeled_embeddings=np.array([[10.0, 0.0], [0.6, 0.8]]),
        labeled_probs=np.array([[0.9, 0.1], [0.5, 0.5]]),
        k=1,
    )
    np.testing.assert_allclose(score, [kl_loop([0.9, 0.1], [0.5, 0.5])], atol=1e-12)


def test_cal_matches_a_brute_force_reference():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(4, 50))
    emb, lab = rng.normal(size=(50, 6)), rng.normal(size=(20, 6))
    lab_p = rng.dirichlet(np.ones(3), size=20)
    got = acquisition.cal(probs, embeddings=emb, labeled_embeddings=lab, labeled_probs=lab_p, k=5)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    lb = lab / np.linalg.norm(lab, axis=1, keepdims=True)
    mean = probs.mean(0)
    for i in range(50):
        nearest = np.argsort(((lb - e[i]) ** 2).sum(1))[:5]
        expected = np.mean([kl_loop(lab_p[j], mean[i]) for j in nearest])
        assert got[i] == pytest.approx(expected, abs=1e-9)


def test_cal_with_fewer_labeled_items_than_k_uses_them_all():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), size=(2, 5))
    lab_p = rng.dirichlet(np.ones(3), size=3)
    got = acquisition.cal(
        probs,
        embeddings=rng.normal(size=(5, 4)),
        labeled_embeddings=rng.normal(size=(3, 4)),
        labeled_probs=lab_p,
        k=10,
    )
    expected = [np.mean([kl_loop(q, p) for q in lab_p]) for p in probs.mean(0)]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_cal_neighbour_search_is_exact_when_labeled_rows_are_scanned_in_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    inputs = {
        "embeddings": rng.normal(size=(300, 8)),
        "labeled_embeddings": rng.normal(size=(500, 8)),
        "labeled_probs": rng.dirichlet(np.ones(4), size=500),
    }
    probs = rng.dirichlet(np.ones(4), size=(3, 300))
    whole = acquisition.cal(probs, **inputs)
    monkeypatch.setattr(acquisition, "CHUNK_ELEMENTS", 64)  # blocks of ~7 labeled rows
    np.testing.assert_allclose(acquisition.cal(probs, **inputs, chunk_size=9), whole, atol=1e-12)


def test_cal_stays_finite_when_the_candidate_gives_a_class_zero_probability():
    score = acquisition.cal(
        np.array([[[1.0, 0.0]]]),
        embeddings=np.array([[1.0, 0.0]]),
        labeled_embeddings=np.array([[1.0, 0.0]]),
        labeled_probs=np.array([[0.5, 0.5]]),
    )
    assert np.isfinite(score).all() and score[0] > 10


def test_lftl_by_hand():
    now = np.array([[[0.6, 0.4]]])
    before = np.array([[0.4, 0.6]])
    # p~ = (.6, .4) + .03 * (.2, -.2) = (.606, .394): score = -(.606 - .394)
    np.testing.assert_allclose(acquisition.lftl(now, previous_probs=before), [-0.212], atol=1e-12)


def test_lftl_ranks_items_drifting_towards_uncertainty_first():
    now = np.array([[[0.55, 0.45], [0.55, 0.45]]])
    before = np.array([[0.55, 0.45], [0.9, 0.1]])  # the second item moved toward uncertainty
    scores = acquisition.lftl(now, previous_probs=before)
    assert scores[1] > scores[0]


def test_lftl_matches_a_loop_reference(member_probs):
    rng = np.random.default_rng(4)
    previous = rng.dirichlet(np.ones(4), size=member_probs.shape[1])
    expected = []
    for p_now, p_before in zip(member_probs.mean(0), previous, strict=True):
        moved = sorted(p_now + 0.1 * (p_now - p_before), reverse=True)
        expected.append(-(moved[0] - moved[1]))
    got = acquisition.lftl(member_probs, previous_probs=previous, lam=0.1)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_random_is_reproducible_by_seed(member_probs):
    a = acquisition.random(member_probs, random_state=3)
    np.testing.assert_array_equal(a, acquisition.random(member_probs, random_state=3))
    assert not np.array_equal(a, acquisition.random(member_probs, random_state=4))
    assert a.min() >= 0 and a.max() < 1


# Properties shared by every function


def extra_inputs(name: str, probs: np.ndarray) -> dict:
    """The extra keyword inputs `requires(name)` asks for, random but valid."""
    rng = np.random.default_rng(5)
    n, c = probs.shape[1], probs.shape[2]
    available = {
        "embeddings": rng.normal(size=(n, 6)).astype(np.float32),
        "labeled_embeddings": rng.normal(size=(30, 6)),
        "labeled_probs": rng.dirichlet(np.ones(c), size=30),
        "previous_probs": rng.dirichlet(np.ones(c), size=n),
    }
    return {key: available[key] for key in requires(name)}


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_function_returns_one_float64_score_per_item(name, member_probs, as_input):
    scores = ACQUISITIONS[name](as_input(member_probs), **extra_inputs(name, member_probs))
    assert isinstance(scores, np.ndarray)
    assert scores.dtype == np.float64 and scores.shape == (member_probs.shape[1],)
    assert np.isfinite(scores).all()
    assert scores.min() >= score_floor(name) - 1e-12


@pytest.mark.parametrize("name", sorted(set(ACQUISITIONS) - {"random"}))
def test_chunk_size_does_not_change_any_score(name, member_probs):
    probs = member_probs.astype(np.float32)
    extra = extra_inputs(name, member_probs)
    whole = ACQUISITIONS[name](probs, **extra)
    for chunk_size in (1, 7, 64):
        chunked = ACQUISITIONS[name](probs, chunk_size=chunk_size, **extra)
        np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_functions_do_not_modify_their_input(name, member_probs):
    probs = torch.from_numpy(member_probs.astype(np.float32))
    before = probs.clone()
    ACQUISITIONS[name](probs, **extra_inputs(name, member_probs))
    assert torch.equal(probs, before)


def test_an_empty_pool_gets_no_scores():
    empty = np.zeros((3, 0, 4))
    for name in ("vote_entropy", "consensus_entropy", "max_disagreement", "bald", "margin"):
        assert ACQUISITIONS[name](empty).shape == (0,), name


def test_zero_probabilities_give_finite_scores():
    probs = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    for name in ("vote_entropy", "consensus_entropy", "max_disagreement", "bald"):
        assert np.isfinite(ACQUISITIONS[name](probs)).all(), name


def test_every_design_function_is_registered_with_its_extra_inputs():
    assert set(ACQUISITIONS) == {
        "vote_entropy",
        "consensus_entropy",
        "max_disagreement",
        "bald",
        "cal",
        "lftl",
        "entropy",
        "margin",
        "least_confidence",
        "random",
    }
    assert ENSEMBLE_ACQUISITIONS == {
        "vote_entropy",
        "consensus_entropy",
        "max_disagreement",
        "bald",
    }
    assert CONTRASTIVE_ACQUISITIONS == {"cal", "lftl"}
    assert requires("cal") == {"embeddings", "labeled_embeddings", "labeled_probs"}
    assert requires("lftl") == {"previous_probs"}
    assert requires("bald") == frozenset()


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="unknown"):
        requires("uncertainty")
    with pytest.raises(KeyError):
        score_floor("uncertainty")


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        acquisition.bald(np.ones((3, 4)))
