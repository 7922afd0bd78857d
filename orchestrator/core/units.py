"""Durations and percentages as scenarios write them: the one parser of each (pure).

    parse_duration("1m30s") == 90.0      parse_duration("250ms") == 0.25
    parse_percent("12.5%") == 0.125

A duration is one or more ``<number><unit>`` parts, unit ms, s, m or h, summed; a
percentage a non-negative number followed by ``%``. The patterns are the scenario
schema's (orchestrator/scenario/schema.py uses these constants), so what validates
also parses; anything else raises UsageError rather than being read as something else.
What range a value may take (a loss of at most 100%) is its user's rule, not the parser's.

``Duration`` and ``Percent`` hold a value parsed once together with the text it was written as,
so a typed scenario can still be reported as written; two of them are equal when their values are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestrator.core.errors import UsageError

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
PERCENT_PATTERN = r"^[0-9]+(\.[0-9]+)?%$"

_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_PERCENT = re.compile(PERCENT_PATTERN)
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "1m30s" or "250ms". Raises UsageError for anything else."""
    if not isinstance(text, str) or _DURATION.fullmatch(text) is None:
        if isinstance(text, str) and _NUMBER.fullmatch(text):
            raise UsageError(f"{text!r} is not a duration: a number needs a unit (ms, s, m, h)")
        raise UsageError(f"{text!r} is not a duration such as 500ms, 20s, 1m30s")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def parse_percent(text: str) -> float:
    """A percentage as a fraction: "5%" -> 0.05. Raises UsageError for anything else."""
    if not isinstance(text, str) or _PERCENT.fullmatch(text) is None:
        raise UsageError(f"{text!r} is not a percentage such as 5%")
    return float(text[:-1]) / 100.0


@dataclass(frozen=True)
class Duration:
    """A duration parsed once: ``seconds``, and ``text`` as written (``1m30s`` and ``90s`` are equal)."""

    seconds: float
    text: str = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls(parse_duration(text), text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Percent:
    """A percentage parsed once: ``fraction`` (5% is 0.05), and ``text`` as written."""

    fraction: float
    text: str = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> Percent:
        return cls(parse_percent(text), text)

    def __str__(self) -> str:
        return self.text
