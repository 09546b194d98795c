"""sampler.strategy: the bandit behind acquisition "auto"."""

import json

import numpy as np
import pytest

from sampler.strategy import ARMS, choose, credit, new_state, probabilities


def test_a_new_state_draws_every_arm_alike():
    assert probabilities(new_state()) == pytest.approx([1 / len(ARMS)] * len(ARMS))


def test_an_arm_that_keeps_paying_gains_weight():
    state = new_state(("good", "bad"))
    for number in range(1, 41):
        arm, _ = choose(state, round_number=number, seed=1)
        credit(state, round_number=number, reward=0.9 if arm == "good" else 0.3)
    p = probabilities(state)
    assert p[0] > 0.7 and p[1] >= 0.3 / 2 - 1e-9  # exploration never stops


def test_the_choice_is_recorded_as_pending_until_credited():
    state = new_state()
    arm, reason = choose(state, round_number=7, seed=0)
    assert state["pending"][0][:2] == [7, list(ARMS).index(arm)]
    assert arm in reason
    assert credit(state, round_number=7, reward=0.5) is True
    assert state["pending"] == [] and state["rewards"] == [[7, list(ARMS).index(arm), 0.5]]
    assert credit(state, round_number=7, reward=0.5) is False


def test_the_draw_is_deterministic_given_seed_and_round():
    a, b = new_state(), new_state()
    assert [choose(a, round_number=n, seed=3)[0] for n in range(20)] == [
        choose(b, round_number=n, seed=3)[0] for n in range(20)
    ]


def test_rewards_are_clipped_to_the_unit_interval():
    state = new_state(("a", "b"))
    choose(state, round_number=1, seed=0)
    credit(state, round_number=1, reward=7.0)
    assert state["rewards"][0][2] == 1.0
    assert np.isfinite(state["log_weights"]).all()


def test_the_state_survives_json():
    state = new_state()
    choose(state, round_number=1, seed=0)
    assert json.loads(json.dumps(state)) == state


def test_simulate_runs_auto_with_an_audit_slice_in_every_trained_round():
    from sampler.simulate import simulate
    from tests.sampler.test_simulate import blobs

    X, y = blobs()
    curve = simulate(X, y, 3, strategy="auto", budget=100, batch_size=20, seed=0)
    trained = [r for r in curve if r["strategy"] != "cold_start"]
    assert trained and {r["strategy"] for r in trained} <= set(ARMS)
    assert all(0 <= r["audit_accuracy"] <= 1 for r in trained)
    assert curve[-1]["labeled"] == 100


def test_a_fixed_strategy_has_no_audit_slice_unless_asked():
    from sampler.simulate import simulate
    from tests.sampler.test_simulate import blobs

    X, y = blobs()
    plain = simulate(X, y, 3, strategy="margin", budget=80, batch_size=20, seed=0)
    audited = simulate(
        X, y, 3, strategy="margin", budget=80, batch_size=20, seed=0, audit_share=0.2
    )
    assert all(r["audit_accuracy"] is None for r in plain)
    assert any(r["audit_accuracy"] is not None for r in audited)
