import math

import pytest

from sampler.allocation import GroupCurve, allocate_batch, fit_power_law


def test_power_law_fit_recovers_a_known_curve():
    labels = [10, 20, 40, 80]
    a, b = fit_power_law(labels, [0.8 * n**-0.6 for n in labels])
    assert a == pytest.approx(0.8, rel=1e-9)
    assert b == pytest.approx(0.6, rel=1e-9)


def test_power_law_with_one_point_uses_the_default_slope():
    a, b = fit_power_law([16], [0.25])
    assert b == 0.5
    assert a * 16**-b == pytest.approx(0.25)


def test_power_law_exponent_is_clipped():
    assert fit_power_law([10, 20], [0.5, 0.5])[1] == 0.05  # a flat curve is not "solved"


def curve(name, labels, error_at, b, cost=1.0, available=1000):
    history = [(n, error_at * (n / labels) ** -b) for n in (labels // 4, labels // 2, labels)]
    return GroupCurve(name, labels, history, cost, available)


def test_batch_goes_where_the_error_falls_fastest():
    fast = curve("fast", 40, 0.4, 1.0)
    slow = curve("slow", 40, 0.4, 0.1)
    allocate_batch([fast, slow], batch_size=20, floor=0.1)
    assert fast.slots > slow.slots
    assert fast.slots + slow.slots == 20


def test_every_group_gets_its_floor():
    strong = curve("strong", 40, 0.4, 1.5)
    weak = curve("weak", 400, 0.05, 0.05)
    allocate_batch([strong, weak], batch_size=20, floor=0.2)
    assert weak.slots >= math.ceil(0.2 * 20)


def test_cost_counts_against_a_group():
    cheap = curve("cheap", 40, 0.3, 0.5, cost=1.0)
    dear = curve("dear", 40, 0.3, 0.5, cost=10.0)
    allocate_batch([cheap, dear], batch_size=20, floor=0.0)
    assert cheap.slots > dear.slots
    assert cheap.gain_per_cost > dear.gain_per_cost


def test_a_group_never_gets_more_slots_than_items():
    small = curve("small", 40, 0.5, 1.0, available=3)
    big = curve("big", 40, 0.1, 0.1)
    allocate_batch([small, big], batch_size=20, floor=0.1)
    assert small.slots == 3 and big.slots == 17
