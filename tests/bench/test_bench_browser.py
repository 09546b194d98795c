"""The browser bench's arithmetic (bench/bench_browser.py), on hand-made page records."""

from bench.bench_browser import latencies


def test_a_key_is_timed_to_the_first_later_change_to_another_item():
    page = {
        "keys": [{"t": 100.0, "now": 101.0, "text": "a"}],
        "shows": [
            {"t": 20.0, "frame": 30.0, "text": "z"},  # before the key: not its answer
            {"t": 50.0, "frame": 60.0, "text": "a"},  # on screen when the key went down
            {"t": 108.0, "frame": 116.0, "text": "b"},
            {"t": 300.0, "frame": 310.0, "text": "c"},
        ],
    }
    assert latencies(page) == ([8.0], [16.0])
