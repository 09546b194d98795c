import io

import pytest
from django.core.management import CommandError, call_command


def test_simulate_prints_the_curve_and_writes_a_plot(tmp_path):
    out = io.StringIO()
    plot = tmp_path / "curve.svg"
    call_command(
        "simulate",
        data="docs/data/digits.jsonl",
        strategies="bald,random",
        budget=40,
        batch=20,
        seeds=1,
        out=str(plot),
        stdout=out,
    )
    text = out.getvalue()
    assert "1797 rows, 10 classes, 64 features" in text
    assert "Labels needed to reach random's final accuracy" in text
    assert plot.read_text().startswith("<?xml")


def test_simulate_refuses_an_unknown_strategy():
    with pytest.raises(CommandError, match="Unknown strategy"):
        call_command("simulate", data="sklearn:digits", strategies="magic")
