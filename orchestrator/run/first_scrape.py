"""Prometheus's first scrape: whether the load must wait for it, and confirming it came.

A run's own Prometheus scrapes for the first time about 5 s after it starts, whatever the scrape
interval: its discovery manager hands new targets to the scrape manager on a fixed 5 s tick
(``updatert`` in Prometheus's discovery/manager.go, settable only from Go), static configurations
included. Holding the load until then costs every run those seconds, and is needed only when
something reads Prometheus's series from the load's first seconds:

- a promql or baseline check during a phase that starts then,
- a recovery check after a heal then,
- or the scenario asks for series from the first second (``prometheus.scrape_from_start``).

Otherwise the load starts at once and ``FirstScrapeWatch`` confirms the first scrape while the phases
run; a Prometheus that never scrapes fails the run as it did before (exit 3, each target's health).
The heap baselines do not depend on it: the controller warms each replica's metrics path up itself
(``TargetAdmin.warmed_up``), so the first scrape's one-time set-up is in the baseline either way.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence

from chaos.schedule import fault_schedule
from orchestrator.prometheus.client import PrometheusAPI
from orchestrator.scenario.spec import BaselineCheck, PromqlCheck, RecoveryCheck, Scenario

DISCOVERY_TICK_S = 5.0
"""Prometheus's discovery-to-scrape hand-over tick (fixed in its code)."""
SCRAPES_OF_MARGIN = 3
"""Scrape intervals on top: the scrape manager's own reload tick, the target's offset in the interval,
and one more so that a rate() at the window's first point has two samples."""
SLACK_S = 2.0
"""For a busy machine: Prometheus's start, the load's release and a slow first scrape."""

FIRST_SCRAPE_EXPR = 'up{job="targets"} == 1'

ReplicaKey = tuple[str, int]
"""(target name, replica index): how the scrape configuration labels each replica."""


def unscraped_start_s(scenario: Scenario) -> float:
    """How long into the load Prometheus may not have scraped yet, when the load does not wait for it."""
    return DISCOVERY_TICK_S + SCRAPES_OF_MARGIN * scenario.scrape_interval_s + SLACK_S


def reason_to_wait(scenario: Scenario) -> str | None:
    """Why the load must wait for Prometheus's first scrape, or None if it need not (pure)."""
    if scenario.scrape_from_start:
        return "prometheus.scrape_from_start is set"
    if scenario.existing_prometheus is not None:
        return "an existing Prometheus (it may take minutes to find the run's pods)"
    horizon = unscraped_start_s(scenario)
    for name, offset_s in prometheus_reads(scenario):
        if offset_s < horizon:
            return f"check '{name}' reads Prometheus from {offset_s:g}s into the load (before {horizon:g}s)"
    return None


def prometheus_reads(scenario: Scenario) -> Iterator[tuple[str, float]]:
    """(check name, seconds into the load) where each Prometheus-evaluated check's windows begin."""
    starts: dict[str, float] = {}
    ends: list[float] = []
    elapsed = 0.0
    for phase in scenario.phases:
        starts[phase.name] = elapsed
        elapsed += phase.duration_s
        ends.append(elapsed)
    heals = [end for end, plan in zip(ends, fault_schedule(scenario.phases), strict=True) if plan.heal]
    for check in scenario.checks:
        if isinstance(check, PromqlCheck | BaselineCheck):
            yield from ((check.name, starts[phase]) for phase in check.during if phase in starts)
        elif isinstance(check, RecoveryCheck):
            yield from ((check.name, heal) for heal in heals)


class FirstScrapeWatch:
    """Has Prometheus scraped every replica yet? Polled while the run goes on; raises past its deadline.

    A replica that has died (a crash the run recorded: the racy map's fatal error, say) is not waited
    for: Prometheus cannot scrape it, and whether it may die is the scenario's crash check's business.
    """

    def __init__(self, prometheus: PrometheusAPI, replicas: Sequence[ReplicaKey], *, timeout_s: float) -> None:
        self.prometheus = prometheus
        self.replicas = tuple(replicas)
        self.deadline = time.monotonic() + timeout_s
        self.seen_wall: float | None = None
        """When the run first saw every living replica scraped (time.time())."""

    def poll(self, dead: Collection[ReplicaKey] = ()) -> bool:
        """True once every replica not in ``dead`` has been scraped; raises InfrastructureError (with
        every target's health and last scrape error) if the deadline passed first."""
        if self.seen_wall is not None:
            return True
        wanted = [r for r in self.replicas if r not in dead]
        scraped = {
            (s.labels.get("target", ""), s.labels.get("replica", "")) for s in self.prometheus.query(FIRST_SCRAPE_EXPR)
        }
        if all((target, str(replica)) in scraped for target, replica in wanted):
            self.seen_wall = time.time()
            return True
        if time.monotonic() >= self.deadline:
            # Raises, naming each target's health (unless the scrape came in the meantime).
            self.prometheus.wait_for_series(FIRST_SCRAPE_EXPR, timeout=0.0, min_series=len(self.replicas))
            self.seen_wall = time.time()
            return True
        return False
