import numpy as np
import pytest
from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy
from modAL.models import ActiveLearner, Committee
from sklearn.base import BaseEstimator, ClassifierMixin

from sampler import acquisition
from sampler.acquisition import ACQUISITIONS, requires


class FixedProba(ClassifierMixin, BaseEstimator):
    """A 'fitted' classifier whose predict_proba returns one member's precomputed rows."""

    def __init__(self, probs=None):
        self.probs = probs

    def fit(self, X, y):
        self.classes_ = np.arange(self.probs.shape[1])
        return self

    def predict_proba(self, X):
        return self.probs[np.asarray(X, dtype=int).ravel()]

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def committee_for(probs: np.ndarray) -> Committee:
    k, n, c = probs.shape
    X = np.arange(n).reshape(-1, 1)
    y = np.arange(n) % c
    learners = [
        ActiveLearner(estimator=FixedProba(probs[i]), X_training=X, y_training=y) for i in range(k)
    ]
    return Committee(learner_list=learners)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (acquisition.vote_entropy, vote_entropy),
        (acquisition.consensus_entropy, consensus_entropy),
        (acquisition.max_disagreement, KL_max_disagreement),
    ],
)
def test_ensemble_scores_agree_with_modal(member_probs, as_input, ours, theirs):
    committee = committee_for(member_probs)
    X = np.arange(member_probs.shape[1]).reshape(-1, 1)
    expected = theirs(committee, X)
    got = ours(as_input(member_probs))
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=as_input.tolerance, rtol=0)


def test_bald_on_a_case_worked_by_hand():
    # Two members, certain and opposite: mean (.5, .5), H(mean) = ln 2, members' H = 0.
    # Two members that agree on (.5, .5): H(mean) = ln 2 = mean member H, so BALD = 0.
    probs = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    np.testing.assert_allclose(acquisition.bald(probs), [np.log(2), 0.0], atol=1e-12)


def test_bald_matches_a_loop_reference(member_probs):
    def h(p):
        return -sum(x * np.log(x) for x in p if x > 0)

    k, n, _ = member_probs.shape
    expected = [
        h(member_probs[:, i].mean(0)) - np.mean([h(member_probs[j, i]) for j in range(k)])
        for i in range(n)
    ]
    np.testing.assert_allclose(acquisition.bald(member_probs), expected, atol=1e-10)


def test_vote_entropy_counts_votes_not_probabilities():
    # Three members vote A, A, B (however confident): entropy of (2/3, 1/3).
    probs = np.array([[[0.9, 0.1]], [[0.6, 0.4]], [[0.2, 0.8]]])
    expected = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    np.testing.assert_allclose(acquisition.vote_entropy(probs), [expected], atol=1e-12)


def test_margin_and_least_confidence_by_hand():
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


def test_cal_by_hand_averages_kl_over_the_nearest_labeled_neighbours():
    # One candidate at (1, 0); labeled items at (1, .1), (1, -.1) (near) and (-1, 0) (far).
    candidate = np.array([[[0.5, 0.5]]])
    labeled_probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    score = acquisition.cal(
        candidate,
        embeddings=np.array([[1.0, 0.0]]),
        labeled_embeddings=np.array([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]]),
        labeled_probs=labeled_probs,
        k=2,
    )

    def kl(p, q):
        return sum(a * np.log(a / b) for a, b in zip(p, q, strict=True))

    expected = (kl([0.9, 0.1], [0.5, 0.5]) + kl([0.8, 0.2], [0.5, 0.5])) / 2
    np.testing.assert_allclose(score, [expected], atol=1e-12)


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
        expected = np.mean([(lab_p[j] * np.log(lab_p[j] / mean[i])).sum() for j in nearest])
        assert got[i] == pytest.approx(expected, abs=1e-9)


def test_lftl_by_hand():
    now = np.array([[[0.6, 0.4]]])
    before = np.array([[0.4, 0.6]])
    # p~ = (.6, .4) + .03 * (.2, -.2) = (.606, .394): score = -(.606 - .394)
    np.testing.assert_allclose(acquisition.lftl(now, previous_probs=before), [-0.212], atol=1e-12)


def test_lftl_ranks_drifting_items_first():
    now = np.array([[[0.55, 0.45], [0.55, 0.45]]])
    before = np.array([[0.55, 0.45], [0.9, 0.1]])  # the second item moved toward uncertainty
    scores = acquisition.lftl(now, previous_probs=before)
    assert scores[1] > scores[0]


def test_random_is_reproducible_by_seed(member_probs):
    a = acquisition.random(member_probs, random_state=3)
    np.testing.assert_array_equal(a, acquisition.random(member_probs, random_state=3))
    assert not np.array_equal(a, acquisition.random(member_probs, random_state=4))


def test_chunking_does_not_change_results(member_probs, monkeypatch):
    whole = acquisition.max_disagreement(member_probs)
    monkeypatch.setattr(acquisition, "CHUNK_ELEMENTS", 40)
    np.testing.assert_allclose(acquisition.max_disagreement(member_probs), whole, atol=1e-12)


def test_zero_probabilities_give_finite_scores():
    probs = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    for name in ("vote_entropy", "consensus_entropy", "max_disagreement", "bald"):
        assert np.isfinite(ACQUISITIONS[name](probs)).all(), name


def test_every_design_function_is_registered():
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
    assert requires("cal") == {"embeddings", "labeled_embeddings", "labeled_probs"}
    assert requires("lftl") == {"previous_probs"}
    assert requires("bald") == frozenset()


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        acquisition.bald(np.ones((3, 4)))
