"""The one duration parser and the one percent parser (orchestrator.core.units)."""

from __future__ import annotations

import pytest

from orchestrator.core.errors import UsageError
from orchestrator.core.units import (
    DURATION_PATTERN,
    PERCENT_PATTERN,
    Duration,
    Percent,
    parse_duration,
    parse_percent,
)
from orchestrator.scenario import schema


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("20s", 20.0),
        ("1.5s", 1.5),
        ("2h", 7200.0),
        ("1h2m3s500ms", 3723.5),
        ("0s", 0.0),
        ("1s1s", 2.0),  # parts add up, as the schema allows
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", ".5s", "1.s", "1.5.2s", "-1s", "5 s", " 5s", "5s ", "5s\n", "5x", "5sec", "1m30"]
)
def test_not_durations(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


def test_a_bare_number_is_told_it_needs_a_unit() -> None:
    with pytest.raises(UsageError, match="a number needs a unit"):
        parse_duration("10")


@pytest.mark.parametrize(
    ("text", "fraction"), [("5%", 0.05), ("12.5%", 0.125), ("0%", 0.0), ("100%", 1.0), ("150%", 1.5)]
)
def test_percentages(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["", "%", "5", "0.05", "-5%", "5 %", "5%%", ".5%", "5%\n", "five%"])
def test_not_percentages(text: str) -> None:
    with pytest.raises(UsageError, match="is not a percentage"):
        parse_percent(text)


def test_not_strings_are_refused() -> None:
    with pytest.raises(UsageError):
        parse_duration(5)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        parse_percent(0.05)  # type: ignore[arg-type]


def test_the_scenario_schema_validates_with_the_parsers_patterns() -> None:
    """What the schema lets through is what the parsers read: one pattern each, written once."""
    assert schema.DURATION_PATTERN is DURATION_PATTERN
    assert schema.PERCENT_PATTERN is PERCENT_PATTERN
    phase = schema.SCENARIO_SCHEMA["properties"]["phases"]["items"]["properties"]
    assert phase["duration"]["pattern"] is DURATION_PATTERN


def test_parsed_values_keep_their_text_and_compare_by_value() -> None:
    ninety = Duration.parse("1m30s")
    assert (ninety.seconds, ninety.text, str(ninety)) == (90.0, "1m30s", "1m30s")
    assert ninety == Duration.parse("90s") and hash(ninety) == hash(Duration.parse("90s"))
    assert ninety != Duration.parse("91s")
    assert Percent.parse("12.50%") == Percent.parse("12.5%") and str(Percent.parse("12.50%")) == "12.50%"
    assert Percent.parse("5%").fraction == 0.05
    with pytest.raises(UsageError, match="is not a duration"):
        Duration.parse("90")
    with pytest.raises(UsageError, match="is not a percentage"):
        Percent.parse("5")
