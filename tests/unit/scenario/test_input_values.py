"""Values that validate must run: numbers are finite, durations bounded (issue 12)."""

from __future__ import annotations

import pytest

from orchestrator.scenario.schema import NAME_MAX_LENGTH

from .test_validate import VALID, errors_of

PROMQL = "checks:\n  - {promql: up, below: 1, above: 0}\n"


@pytest.mark.parametrize("word", [".nan", ".inf", "-.inf", ".NaN", "1.0e+999"])
@pytest.mark.parametrize(
    "field",
    [
        "load.rate",
        "load.spawn_rate",
        "load.keys.s",
        "load.keys.hot_fraction",
        "load.read_ratio",
        "phases.0.rate",
        "checks.1.below",
        "checks.1.above",
    ],
)
def test_non_finite_numbers_are_refused_everywhere(field: str, word: str) -> None:
    text = VALID + "  - {promql: up, below: 1, above: 0}\n"
    shown = {".NaN": ".nan", "1.0e+999": ".inf"}.get(word, word)
    messages = errors_of(text, (f"{field}={word}",))
    assert f"--set {field}={word}: {field}: must be a finite number, got {shown}" in messages


def test_a_non_finite_number_in_the_file_has_its_line() -> None:
    text = VALID.replace("keys: {space: 1000}", "keys: {space: 1000}\n  rate: .nan")
    assert errors_of(text) == ["s.yaml:8: load.rate: must be a finite number, got .nan"]


def test_durations_are_bounded() -> None:
    digits = "1" * 400 + "s"
    (message,) = errors_of(VALID.replace("duration: 2s", f"duration: {digits}"))
    assert message.startswith("s.yaml:9: phases.0.duration: must be from 0s to 24h, got '1111")
    assert message.endswith("…'") and len(message) < 150
    assert errors_of(VALID.replace("duration: 2s", "duration: 24h1s"))[0].endswith(
        "must be from 0s to 24h, got '24h1s'"
    )
    assert errors_of(VALID.replace("duration: 2s", "duration: 24h")) == []


@pytest.mark.parametrize(
    ("interval", "ok"), [("0s", False), ("99ms", False), ("100ms", True), ("1m", True), ("61s", False)]
)
def test_the_scrape_interval_is_within_100ms_and_1m(interval: str, ok: bool) -> None:
    messages = errors_of(VALID + f"prometheus: {{scrape_interval: {interval}}}\n")
    assert messages == (
        [] if ok else [f"s.yaml:13: prometheus.scrape_interval: must be from 100ms to 1m, got '{interval}'"]
    )


@pytest.mark.parametrize(("loss", "ok"), [("100%", True), ("99.99%", True), ("100.5%", False), ("150%", False)])
def test_netem_loss_is_at_most_100_percent_at_validation(loss: str, ok: bool) -> None:
    text = VALID.replace(
        "faults: [{partition: {shape: halves, among: cache}}]", f"faults: [{{netem: {{target: cache, loss: {loss}}}}}]"
    )
    expected = (
        []
        if ok
        else [f"s.yaml:10: phases.1.faults.0.netem.loss: loss {loss} is more than 100%; 100% drops every packet"]
    )
    assert errors_of(text) == expected


def test_the_name_advice_takes_its_limit_from_the_schema() -> None:
    (message,) = errors_of(VALID.replace("name: churn", "name: " + "a" * 26))
    assert message.endswith(f"'{'a' * 26}' is not valid: use lowercase letters, digits and '-', starting with a letter "
                            f"(at most {NAME_MAX_LENGTH} characters)")  # fmt: skip
    assert NAME_MAX_LENGTH == 24 and errors_of(VALID.replace("name: churn", "name: " + "a" * 24)) == []


@pytest.mark.parametrize(
    "edit",
    [
        ("name: churn", "name: {}"),  # a pattern error
        ("target: cache, at", "target: {}, at"),  # a reference to no target
        ("duration: 2s", "duration: {}"),  # a pattern error
        ("keys: {space: 1000}", "keys: {{space: 1000}}\n  {:.1000}: 1"),  # an unknown key (YAML: keys < 1024)
        ("store: syncmap", "store: {}"),  # not one of
    ],
)
def test_a_huge_value_is_echoed_shortened(edit: tuple[str, str]) -> None:
    huge = "x" * 1_000_000
    messages = errors_of(VALID.replace(edit[0], edit[1].format(huge)))
    assert messages and all(len(m) < 600 for m in messages), [len(m) for m in messages]
    assert any("x" * 70 + "…" in m for m in messages)


def test_a_huge_set_override_is_echoed_shortened() -> None:
    (message,) = errors_of(VALID, ("load.user=" + "y" * 1_000_000,))
    assert message.startswith("--set load.user=yyy") and len(message) < 600 and "…" in message
