"""When the load waits for Prometheus's first scrape (orchestrator/run/first_scrape.py): pure rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.run.first_scrape import prometheus_reads, reason_to_wait, unscraped_start_s
from orchestrator.scenario import load_scenario, load_scenario_text
from orchestrator.scenario.spec import Scenario

REPO = Path(__file__).resolve().parents[3]

BASE = """\
apiVersion: mapquake/v1
kind: Scenario
name: first-scrape
targets: [{name: kv, store: syncmap, replicas: 3, replicate: {}}]
load: {keys: {space: 5000, distribution: sequential, seed: 1}}
phases:
  - {name: warm, duration: 4s}
  - name: cut
    duration: 20s
    faults: [{partition: {shape: isolate-one, among: kv}}]
  - {name: after, duration: 30s}
checks:
"""


def build(*checks: str, overrides: tuple[str, ...] = ()) -> Scenario:
    listed = "".join(f"  - {c}\n" for c in checks) or "  - {name: no-crash, crash: kv, expect: none}\n"
    return load_scenario_text(BASE + listed, "first-scrape.yaml", overrides)


P99 = "{{name: p99, promql: 'histogram_quantile(0.99, rate(x_bucket[10s]))', below: 0.1, during: [{}]}}"
RECOVERY = "{name: heals, recovery: 'max(mapquake_replication_backlog)', below: 100, within: 10s}"


def test_the_quickstart_does_not_wait() -> None:
    # Its latency check reads "steady", 15 s into the load: Prometheus scrapes well before then.
    assert reason_to_wait(load_scenario(REPO / "scenarios/quickstart.yaml")) is None


def test_a_check_on_the_first_phase_waits() -> None:
    reason = reason_to_wait(build(P99.format("warm")))
    assert reason is not None and "check 'p99'" in reason and "from 0s" in reason


def test_a_check_on_a_phase_inside_the_unscraped_start_waits() -> None:
    # "cut" starts 4 s in; the unscraped start is 10 s at a 1 s interval.
    assert unscraped_start_s(build()) == pytest.approx(10.0)
    assert reason_to_wait(build(P99.format("cut"))) is not None


def test_a_check_on_a_later_phase_does_not_wait() -> None:
    assert reason_to_wait(build(P99.format("after"))) is None


def test_a_longer_scrape_interval_widens_the_unscraped_start() -> None:
    # At 10 s per scrape, Prometheus may need 5 + 3 x 10 + 2 = 37 s: "after" (24 s in) is too early.
    slow = build(P99.format("after"), overrides=("prometheus.scrape_interval=10s",))
    assert unscraped_start_s(slow) == pytest.approx(37.0)
    assert reason_to_wait(slow) is not None


def test_a_recovery_check_reads_from_each_heal() -> None:
    # The partition heals at the end of "cut", 24 s in: past the unscraped start.
    scenario = build(RECOVERY)
    assert list(prometheus_reads(scenario)) == [("heals", 24.0)]
    assert reason_to_wait(scenario) is None
    early_heal = build(RECOVERY, overrides=("phases.1.duration=3s",))
    assert list(prometheus_reads(early_heal)) == [("heals", 7.0)]
    assert reason_to_wait(early_heal) is not None


def test_model_and_crash_checks_read_no_prometheus() -> None:
    scenario = build(
        "{name: heap, model: live_heap, target: kv, tolerance: 5%, at: [warm.end]}",
        "{name: no-crash, crash: kv, expect: none}",
    )
    assert list(prometheus_reads(scenario)) == []
    assert reason_to_wait(scenario) is None


def test_the_scenario_can_ask_for_series_from_the_first_second() -> None:
    reason = reason_to_wait(build(overrides=("prometheus.scrape_from_start=true",)))
    assert reason == "prometheus.scrape_from_start is set"
