"""Verdicts: pass, fail, inconclusive, with the evidence behind them. The worst one wins.

Missing or stale data is never a pass: a check that cannot see what it needs is
inconclusive, and says what it could not see. A load that was not delivered as designed (the
``delivery`` result, checks/delivery.py) makes the whole run inconclusive, whatever the checks say:
what they saw was not the designed test.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.errors import EXIT_CHECK_FAILED, EXIT_INCONCLUSIVE, EXIT_OK


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


DELIVERY_KIND = "delivery"
"""The kind of the run-level result on the load's delivery (checks/delivery.py)."""

_RANK = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    verdict: Verdict
    summary: str
    """One line a release manager can read: what was expected, what was seen."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Query, samples, predicted, observed, tolerance: enough to re-derive the verdict."""


def worst(*verdicts: Verdict) -> Verdict:
    """Fail beats inconclusive beats pass."""
    return max(verdicts, key=_RANK.__getitem__)


def overall(results: Iterable[CheckResult]) -> Verdict:
    """The worst verdict of the checks; no checks at all is inconclusive, never a pass. A load that was
    not delivered as designed makes the run inconclusive, never a pass or a fail."""
    results = list(results)
    if any(r.kind == DELIVERY_KIND and r.verdict is Verdict.INCONCLUSIVE for r in results):
        return Verdict.INCONCLUSIVE
    verdicts = [r.verdict for r in results if r.kind != DELIVERY_KIND]
    return worst(*verdicts) if verdicts else Verdict.INCONCLUSIVE


def exit_code(verdict: Verdict) -> int:
    return {Verdict.PASS: EXIT_OK, Verdict.FAIL: EXIT_CHECK_FAILED, Verdict.INCONCLUSIVE: EXIT_INCONCLUSIVE}[verdict]
