"""The whole run lifecycle on an in-memory backend: deploy, phases with faults, samples, verdicts,
report, trend record, teardown; and the same when any step raises or SIGTERM arrives mid-phase.

No root, no processes: the run sees only the Backend protocol, so this is the lifecycle itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.checks.noise_floor import NOISE_REPEATS
from orchestrator.core.errors import EXIT_INFRASTRUCTURE, InfrastructureError
from orchestrator.core.signals import RunInterrupted, SignalGuard
from orchestrator.run import lifecycle
from orchestrator.run.lifecycle import RunOptions, run
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import Scenario
from tests.unit.run.fakebackend import Boom, FakeBackend

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: lifecycle
targets: [{name: kv, store: syncmap, replicas: 2}]
load: {keys: {space: 5000, distribution: sequential, seed: 1}}
phases:
  - {name: fill, duration: 150ms}
  - name: cut
    duration: 150ms
    faults: [{partition: {shape: isolate-one, among: kv}}]
  - name: hold
    duration: 150ms
    faults: [{partition: {shape: isolate-one, among: kv}}]
  - {name: after, duration: 150ms}
checks:
  - {name: heap, model: live_heap, target: kv, tolerance: 5%, at: [fill.end, after.end]}
  - {name: p99, promql: 'histogram_quantile(0.99, sum by (le) (rate(x_bucket[1s])))', below: 0.05, during: [after]}
  - {name: no-crash, crash: kv, expect: none}
"""

# Every step the run asks of the backend, in the order a healthy run first asks it.
STEPS = [
    "preflight",
    "deploy_targets",
    "start_prometheus",
    "start_load",
    "start_faults",
    "topology",
    "faults.prepare",
    "prometheus.first_scrape",
    "target_admin",
    "admin.warm_up",
    "admin.heap",
    "release_load",
    "load_started_at",
    "faults.apply",
    "exited_components",
    "faults.heal",
    "wait_load",
    "prometheus.query",
    "prometheus.query_range",
]


@pytest.fixture(autouse=True)
def fresh_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAPQUAKE_TREND_STORE", str(tmp_path / "trends.sqlite"))
    FakeBackend.instances.clear()
    yield
    for attr in ("fail_at", "signal_at"):
        setattr(FakeBackend, attr, None)
    FakeBackend.signum = signal.SIGTERM
    FakeBackend.failure = InfrastructureError
    FakeBackend.crash_target = False
    FakeBackend.never_scrapes = False


def scenario(*overrides: str) -> Scenario:
    return load_scenario_text(SCENARIO, "lifecycle.yaml", overrides)


def run_fake(tmp_path: Path, sc: Scenario | None = None) -> tuple[int, dict, FakeBackend]:  # type: ignore[type-arg]
    report_dir = tmp_path / "report"
    record = run(sc or scenario(), RunOptions(report_dir=report_dir, progress=False), FakeBackend)
    doc = json.loads((report_dir / "report.json").read_text())
    assert (report_dir / "junit.xml").exists() and (report_dir / "report.html").exists()
    assert doc["exit_code"] == record.exit_code
    (backend,) = FakeBackend.instances
    return record.exit_code, doc, backend


def trend_rows(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "trends.sqlite") as db:
        return db.execute("SELECT run_id, verdict FROM runs").fetchall()


def events(doc: dict, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in doc["timeline"]["events"] if e["kind"] == kind]


def test_a_healthy_run_goes_through_every_step_and_reports(tmp_path: Path) -> None:
    code, doc, backend = run_fake(tmp_path)
    assert [step for step in STEPS if step not in backend.calls] == []
    assert backend.calls[0] == "preflight" and backend.calls[-1] == "teardown"
    assert backend.torn_down == 1
    # Phases on one timeline; the cut continues through "hold" (listed identically) and heals once.
    assert [e["name"] for e in events(doc, "phase-start")] == ["fill", "cut", "hold", "after"]
    assert [e["name"] for e in events(doc, "fault-applied")] == ["cut.0"]
    assert [e["name"] for e in events(doc, "fault-healed")] == ["cut.0"]
    assert [e["data"]["into"] for e in events(doc, "note") if e["name"] == "fault-continues"] == ["hold"]
    # Samples where the model check asks for them, for both replicas, plus the deploy baseline.
    points = sorted((s["point"], s["replica"]) for s in doc["timeline"]["samples"])
    assert points == sorted((p, r) for p in ("deploy", "fill.end", "after.end") for r in (0, 1))
    verdicts = {c["name"]: c["verdict"] for c in doc["checks"]}
    assert verdicts["no-crash"] == "pass"
    assert verdicts["p99"] == "inconclusive"  # the fake Prometheus has no data: never a pass
    assert verdicts["heap"] in ("pass", "fail")  # evaluated from the samples, not skipped
    # The worst verdict wins: a failed heap check beats the inconclusive latency check.
    expected = ("fail", 1) if verdicts["heap"] == "fail" else ("inconclusive", 4)
    assert (doc["verdict"], code) == expected
    assert trend_rows(tmp_path) == [(doc["run_id"], doc["verdict"])]
    assert backend.plan is not None and backend.plan.targets == ("127.0.0.2:9090", "127.0.0.3:9090")


def test_a_crashing_target_fails_the_crash_check(tmp_path: Path) -> None:
    FakeBackend.crash_target = True
    code, doc, _ = run_fake(tmp_path)
    crash = events(doc, "crash")
    assert [(c["name"], c["data"]["target"], c["data"]["replica"]) for c in crash] == [("target:kv:0", "kv", 0)]
    assert {c["name"]: c["verdict"] for c in doc["checks"]}["no-crash"] == "fail"
    assert code == 1


# A failed heap sample is recorded and its checks lack data; a failed query makes its check inconclusive.
ABSORBED = {"admin.heap", "prometheus.query_range"}


@pytest.mark.parametrize("step", STEPS[1:])
def test_an_infrastructure_error_at_any_step_tears_down_and_reports(tmp_path: Path, step: str) -> None:
    FakeBackend.fail_at = step
    code, doc, backend = run_fake(tmp_path)
    if step in ABSORBED:
        assert doc["reason"] == "completed" and doc["verdict"] != "pass"
        assert any("fake failure" in json.dumps(c) for c in [*doc["checks"], *doc["timeline"]["events"]])
    else:
        assert code == EXIT_INFRASTRUCTURE and doc["verdict"] == "inconclusive"
        assert f"fake failure at {step}" in doc["reason"]
    assert backend.calls[-1] == "teardown" and backend.torn_down == 1
    assert backend.faults is None or backend.faults.closed
    assert [row[0] for row in trend_rows(tmp_path)] == [doc["run_id"]]


@pytest.mark.parametrize("step", ["deploy_targets", "faults.apply", "wait_load", "prometheus.query_range"])
def test_a_bug_at_any_step_still_tears_down_and_reports(tmp_path: Path, step: str) -> None:
    FakeBackend.fail_at, FakeBackend.failure = step, Boom
    code, doc, backend = run_fake(tmp_path)
    assert backend.torn_down == 1
    assert code == EXIT_INFRASTRUCTURE and doc["reason"].startswith("internal error: Boom")


# The signal matrix (docs/cli.md, "Signals"): each signal at each step of a live run.
LIVE_STEPS = [s for s in STEPS if s not in ("preflight", "prometheus.query_range")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("step", LIVE_STEPS)
def test_a_signal_during_the_live_run_tears_down_and_reports_inconclusive(
    tmp_path: Path, step: str, signum: signal.Signals
) -> None:
    FakeBackend.signal_at, FakeBackend.signum = step, signum
    with SignalGuard():  # as the command installs it
        code, doc, backend = run_fake(tmp_path)
    assert code == 4 and doc["verdict"] == "inconclusive"
    assert doc["reason"] == f"interrupted by {signum.name}"
    assert events(doc, "interrupted") and backend.torn_down == 1
    assert backend.faults is None or backend.faults.closed
    assert [row[0] for row in trend_rows(tmp_path)] == [doc["run_id"]]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_the_run_creates_anything_stops_it_without_a_report(
    tmp_path: Path, signum: signal.Signals
) -> None:
    FakeBackend.signal_at, FakeBackend.signum = "preflight", signum
    with SignalGuard(), pytest.raises(RunInterrupted):
        run(scenario(), RunOptions(report_dir=tmp_path / "report", progress=False), FakeBackend)
    assert FakeBackend.instances[0].calls == ["preflight"]
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_teardown_is_held_and_the_verdict_stands(tmp_path: Path, signum: signal.Signals) -> None:
    FakeBackend.signal_at, FakeBackend.signum = "teardown", signum
    with SignalGuard():
        code, doc, backend = run_fake(tmp_path)
    assert (doc["reason"] == "completed" and code in (1, 4) and doc["verdict"] != "inconclusive") or code == 4
    assert backend.torn_down == 1
    notes = [e for e in events(doc, "note") if e["name"] == "signal-after-verdict"]
    assert notes and notes[0]["data"]["signals"] == signum.name


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_report_is_written_is_held(
    tmp_path: Path, signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.run import lifecycle

    real_write = lifecycle.report.write

    def write_with_a_signal(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signum)
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle.report, "write", write_with_a_signal)
    with SignalGuard():
        code, doc, _ = run_fake(tmp_path)  # run_fake reads report.json, junit.xml, report.html
    assert doc["reason"] == "completed" and doc["exit_code"] == code
    assert [row[0] for row in trend_rows(tmp_path)] == [doc["run_id"]]


def test_sigterm_mid_phase_heals_through_teardown(tmp_path: Path) -> None:
    FakeBackend.signal_at = "faults.apply"
    _, doc, backend = run_fake(tmp_path)
    assert backend.faults is not None and backend.faults.closed
    assert [e["name"] for e in events(doc, "phase-start")] == ["fill", "cut"]
    assert not events(doc, "fault-healed")  # healed by the engine's close, not by a phase end


def test_preflight_refusal_starts_nothing_and_writes_no_report(tmp_path: Path) -> None:
    FakeBackend.fail_at = "preflight"
    with pytest.raises(InfrastructureError, match="fake failure at preflight"):
        run(scenario(), RunOptions(report_dir=tmp_path / "report", progress=False), FakeBackend)
    (backend,) = FakeBackend.instances
    assert backend.calls == ["preflight"]
    assert not (tmp_path / "report").exists()


# Prometheus's first scrape (orchestrator/run/first_scrape.py): before the load only when needed.
NO_EARLY_READ = SCENARIO.replace("  - {name: p99,", "  # - {name: p99,")  # no check reads Prometheus early


def scenario_without_early_reads(*overrides: str) -> Scenario:
    return load_scenario_text(NO_EARLY_READ, "lifecycle.yaml", overrides)


def first_scrape_notes(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in events(doc, "note") if e["name"] == "first-scrape"]


def test_a_check_on_the_first_seconds_holds_the_load_until_prometheus_scraped(tmp_path: Path) -> None:
    _, doc, backend = run_fake(tmp_path)
    (note,) = first_scrape_notes(doc)
    assert note["wall"] < next(e["wall"] for e in events(doc, "phase-start"))
    assert note["data"]["before_load"] is True and "check 'p99'" in note["data"]["why"]
    steps = [e["data"]["step"] for e in events(doc, "note") if e["name"] == "step"]
    assert "waiting for Prometheus's first scrape" in steps
    assert backend.held_scrape == [False, False]  # Prometheus holds its own scrape connection by then


def test_without_such_a_check_the_load_starts_at_once_and_the_first_scrape_is_confirmed_later(
    tmp_path: Path,
) -> None:
    _, doc, backend = run_fake(tmp_path, scenario_without_early_reads())
    assert "waiting for Prometheus's first scrape" not in [
        e["data"]["step"] for e in events(doc, "note") if e["name"] == "step"
    ]
    (note,) = first_scrape_notes(doc)
    assert note["data"]["before_load"] is False
    release = next(e["wall"] for e in events(doc, "phase-start"))
    assert note["wall"] >= release  # seen while the phases ran
    assert backend.held_scrape == [True, True]  # the warm-up's connection stands in for Prometheus's


def test_scrape_from_start_holds_the_load_even_without_such_a_check(tmp_path: Path) -> None:
    _, doc, backend = run_fake(tmp_path, scenario_without_early_reads("prometheus.scrape_from_start=true"))
    (note,) = first_scrape_notes(doc)
    assert note["data"]["why"] == "prometheus.scrape_from_start is set"
    assert note["wall"] < next(e["wall"] for e in events(doc, "phase-start"))
    assert backend.held_scrape == [False, False]


@pytest.mark.parametrize("held", [True, False], ids=["held", "not-held"])
def test_a_prometheus_that_never_scrapes_fails_the_run_either_way(
    tmp_path: Path, held: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "PROMETHEUS_FIRST_SCRAPE_S", 0.5)
    FakeBackend.never_scrapes = True
    code, doc, backend = run_fake(tmp_path, scenario() if held else scenario_without_early_reads())
    assert code == EXIT_INFRASTRUCTURE and "never scrapes" in doc["reason"]
    assert backend.torn_down == 1 and first_scrape_notes(doc) == []


def test_a_replica_that_died_before_its_first_scrape_is_not_waited_for(tmp_path: Path) -> None:
    # The racy map dies within a second of the load: Prometheus never sees it up, and that is the
    # crash check's business, not an infrastructure error.
    FakeBackend.crash_target = True
    code, doc, _ = run_fake(tmp_path, scenario_without_early_reads())
    assert code == 1 and doc["reason"] == "completed"
    assert {c["name"]: c["verdict"] for c in doc["checks"]}["no-crash"] == "fail"
    assert [n["data"]["before_load"] for n in first_scrape_notes(doc)] == [False]


def test_a_service_is_sampled_repeatedly_round_by_round_and_a_demo_store_once(tmp_path: Path) -> None:
    """The repeats are the noise floor's spread (checks/noise_floor.py); a demo store settles its own."""
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("class Visitor:\n    pass\n")
    text = (
        SCENARIO.replace(
            "targets: [{name: kv, store: syncmap, replicas: 2}]",
            "targets: [{name: kv, store: syncmap, replicas: 2}, {name: svc, command: [/bin/true], replicas: 2}]",
        )
        .replace(
            "load: {keys: {space: 5000, distribution: sequential, seed: 1}}",
            f"load: {{locustfile: {locustfile}, user: Visitor}}",
        )
        .replace(
            "  - {name: no-crash,",
            "  - {name: svc-heap, model: live_heap, target: svc, map: sessions, at: [after.end]}\n  - {name: no-crash,",
        )
    )
    _, doc, _ = run_fake(tmp_path, load_scenario_text(text, str(tmp_path / "s.yaml")))
    samples = [(s["target"], s["point"], s["replica"]) for s in doc["timeline"]["samples"]]
    assert samples.count(("kv", "after.end", 0)) == 1 and samples.count(("kv", "deploy", 1)) == 1
    assert samples.count(("svc", "deploy", 0)) == NOISE_REPEATS
    at_end = [r for t, p, r in samples if t == "svc" and p == "after.end"]
    assert at_end == [0, 1] * NOISE_REPEATS  # round by round: a replica's repeats are apart
    (heap,) = (c for c in doc["checks"] if c["name"] == "svc-heap")
    assert heap["evidence"]["samples"][0]["repeats"] == [NOISE_REPEATS, NOISE_REPEATS]


def test_a_signal_whose_interrupt_python_swallowed_still_stops_the_run_at_the_next_step(tmp_path: Path) -> None:
    """A handler that ran inside a finalizer (a watch stream closed by the GC) raised where nothing could
    catch it: Python printed "Exception ignored" and went on. The run must stop at its next step anyway."""
    with SignalGuard() as guard:
        with contextlib.suppress(RunInterrupted):
            guard._handle(signal.SIGTERM, None)  # as the handler does; the raise is lost
        with pytest.raises(RunInterrupted):
            guard.check()
        guard.hold()
        guard.check()  # teardown has begun: recorded, never raised
    FakeBackend.signal_at = None
    sc = scenario()
    original = FakeBackend.release_load

    def swallowed(self: FakeBackend) -> None:
        original(self)
        guard = SignalGuard.active
        assert guard is not None
        with contextlib.suppress(RunInterrupted):
            guard._handle(signal.SIGTERM, None)

    FakeBackend.release_load = swallowed  # type: ignore[method-assign]
    try:
        code, doc, backend = run_fake(tmp_path, sc)
    finally:
        FakeBackend.release_load = original  # type: ignore[method-assign]
    assert code == 4 and doc["verdict"] == "inconclusive" and "SIGTERM" in doc["reason"]
    assert backend.torn_down == 1
