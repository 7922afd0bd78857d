"""One run of a scenario, start to verdict. The lifecycle, in order:

1. open the run: a run id and its ledger (everything created is recorded first);
2. deploy the targets and take each replica's baseline heap (POST /admin/gc);
3. start Prometheus and wait until it has scraped every replica;
4. start the Locust master and workers; they follow the phases and stop by themselves;
5. walk the phases on one monotonic timeline: apply each phase's faults at its start (through
   the lease-guarded chaos agent) and heal them at its end, record each boundary, take the heap
   samples the model checks ask for, watch for components that die, show progress;
6. wait for the load to end and for Prometheus to scrape past the end;
7. compare: one verdict per check;
8. collect the raw series, teardown (always, shielded from a second signal), write the report
   (always: report.json, junit.xml, series.json, report.html) and record the run in the trend store.

SIGTERM and SIGINT unwind through the same teardown; the report says the run was
interrupted and the verdict is inconclusive.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.nemesis import Nemesis
from orchestrator.backends.base import ReplicaEndpoint
from orchestrator.backends.local.backend import LocalBackend
from orchestrator.checks import evaluate as comparator
from orchestrator.checks.evaluate import RangeSeries, RunFacts
from orchestrator.checks.verdict import Verdict, exit_code, overall
from orchestrator.core.errors import EXIT_INFRASTRUCTURE, InfrastructureError, MapquakeError, UsageError
from orchestrator.core.ledger import Ledger
from orchestrator.core.signals import RunInterrupted, SignalGuard
from orchestrator.journal import HeapSample, Journal
from orchestrator.prometheus.client import PrometheusClient
from orchestrator.reporting import report
from orchestrator.run import series
from orchestrator.run.progress import Progress
from orchestrator.scenario.spec import FaultSpec, PhaseSpec, Scenario
from orchestrator.targets.admin import collect_garbage, settled_heap, warm_up
from orchestrator.trends import store as trends

log = logging.getLogger(__name__)

TICK_S = 1.0
PROMETHEUS_FIRST_SCRAPE_S = 30.0
LOAD_END_GRACE_S = 60.0
FINAL_SCRAPE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RunOptions:
    report_dir: Path | None = None
    progress: bool = True


class PromRange:
    """Adapts the Prometheus client to the comparator's range-query interface."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]:
        return [RangeSeries(s.labels, s.points) for s in self.client.query_range(expr, start=start, end=end, step=step)]


def default_report_dir(scenario: Scenario, run_id: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{scenario.name}-{stamp}-{run_id}"


MIN_TARGET_GO = (1, 23)  # the oldest Go whose dependency versions go_targets/go1.23.mod pins


def check_supported(scenario: Scenario) -> None:
    """Refuse, before anything starts, what this version cannot run."""
    for target in scenario.targets:
        major, minor = (int(part) for part in target.go.split(".")[:2])
        if (major, minor) < MIN_TARGET_GO:
            raise UsageError(
                f"target '{target.name}': maptarget builds with Go {MIN_TARGET_GO[0]}.{MIN_TARGET_GO[1]} or newer, "
                f"not {target.go} (its gRPC and Prometheus libraries need it)",
                hint=f'set go: "1.23" (classic maps) or "1.26"; to see what Go {target.go}\'s maps cost, use '
                f"`mapquake model predict|measure TYPE --go {target.go}`",
            )
    if scenario.backend != "local":
        raise UsageError(
            f"backend '{scenario.backend}' is not available in this version; use backend: local",
            hint="the Kubernetes backend is planned; see docs/ARCHITECTURE.md",
        )


class Run:
    def __init__(self, scenario: Scenario, options: RunOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.journal = Journal()
        self.ledger = Ledger.create()
        self.run_id = self.ledger.run_id
        self.report_dir = (options.report_dir or default_report_dir(scenario, self.run_id)).resolve()
        self.progress = Progress(scenario, enabled=options.progress)
        self.progress.status(f"run {self.run_id}: {scenario.name}, report in {self.report_dir}")
        self.backend = LocalBackend(ledger=self.ledger, run_dir=self.report_dir / "run")
        self.replicas: list[ReplicaEndpoint] = []
        self.prometheus: PrometheusClient | None = None
        self.model_points = {
            (c.params["target"], point)
            for c in scenario.checks
            if c.kind == "model"
            for point in [*c.params["at"], *([c.params["since"]] if "since" in c.params else [])]
        }
        self.nemesis: Nemesis | None = None
        self._fault_specs: dict[str, FaultSpec] = {}  # applied fault id -> its spec in the scenario
        self._carried: dict[str, set[int]] = {}  # phase -> indexes of its faults already in place
        self.expected: dict[str, list[int]] = {}
        self.load_summary: dict[str, object] = {}

    # --- the lifecycle --------------------------------------------------------------------

    def execute(self) -> report.RunRecord:
        started = time.monotonic()
        results: list[comparator.CheckResult] = []
        reason = "completed"
        verdict = Verdict.INCONCLUSIVE
        code = EXIT_INFRASTRUCTURE
        problems: list[str] = []
        collected: dict[str, Any] | None = None
        with SignalGuard() as guard:
            try:
                self.journal.record("note", "run-start", run_id=self.run_id)
                self._deploy()
                self._timeline()
                self._finish_load()
                results = comparator.evaluate(
                    self.scenario,
                    self.journal,
                    RunFacts(self.expected, PromRange(self.prometheus) if self.prometheus else None),
                )
                verdict = overall(results)
                code = exit_code(verdict)
            except RunInterrupted as signal_:
                reason = f"interrupted by {signal_}"
                self.journal.record("interrupted", str(signal_))
                verdict, code = Verdict.INCONCLUSIVE, exit_code(Verdict.INCONCLUSIVE)
            except MapquakeError as err:
                reason = f"{type(err).__name__}: {err.message}"
                self.journal.record("note", "error", message=err.message)
                verdict, code = Verdict.INCONCLUSIVE, err.exit_code
            except Exception as err:  # a bug in mapquake: still tear down and still report
                log.exception("internal error during the run")
                reason = f"internal error: {type(err).__name__}: {err}"
                self.journal.record("note", "internal-error", message=reason)
                verdict, code = Verdict.INCONCLUSIVE, EXIT_INFRASTRUCTURE
            finally:
                with guard.shielded():
                    self.progress.close()
                    if self.prometheus is not None:  # the raw series, while Prometheus still runs
                        collected = series.collect(self.prometheus, self.scenario, self.journal)
                    for component, path in self.backend.logs().items():
                        self.journal.record("note", "log", component=component, path=str(path))
                    problems = self.backend.teardown()
                    if problems:
                        log.error("teardown left problems: %s", problems)
                    else:
                        self.ledger.remove()
        record = report.RunRecord(
            run_id=self.run_id,
            scenario=self.scenario,
            verdict=verdict,
            exit_code=code,
            reason=reason,
            results=results,
            journal=self.journal,
            report_dir=self.report_dir,
            duration_s=time.monotonic() - started,
            expected_entries={"per_target": self.expected},
            load=self.load_summary,
            teardown_problems=problems,
        )
        report.write(record, collected)
        try:
            with trends.TrendStore.open() as store:
                trends.record_run(store, record, collected)
        except MapquakeError as err:
            log.warning("run not recorded in the trend store: %s", err.message)
        return record

    def _deploy(self) -> None:
        self.progress.status("deploying targets")
        self.replicas = self.backend.deploy_targets(self.scenario)
        self.progress.status("starting Prometheus")
        server = self.backend.start_prometheus(self.scenario, self.replicas)
        self.prometheus = server.client
        self.prometheus.wait_for_series(
            'up{job="targets"} == 1', timeout=PROMETHEUS_FIRST_SCRAPE_S, min_series=len(self.replicas)
        )
        # The baseline heap: after Prometheus's first scrape and a gRPC warm-up, so the servers'
        # one-time set-up (tens of KiB) is not charged to the map.
        for replica in self.replicas:
            warm_up(replica.grpc_addr)
            self._sample(replica, "deploy", settle=True)
        if any(p.faults for p in self.scenario.phases):
            self.progress.status("starting the chaos agent")
            self.nemesis = self.backend.start_faults()
            # Start whatever is slow to start (delay proxies) now, so faults land on time later.
            self.nemesis.prepare(self.scenario.phases, self.backend.topology())
        self.progress.status("starting load")
        self.backend.start_load(self.scenario, self.replicas)

    def _timeline(self) -> None:
        """Walk the phases; the load follows the same schedule from its own start."""
        phases = self.scenario.phases
        boundary = self.backend.load_started_at()
        for index, phase in enumerate(phases):
            self.journal.record("phase-start", phase.name, index=index)
            self._begin_faults(phase, scheduled_at=boundary)
            self._take_samples(f"{phase.name}.start")
            boundary += phase.duration_s
            while (now := time.monotonic()) < boundary:
                self._watch_components()
                active = [f.summary for f in self.nemesis.active()] if self.nemesis else []
                self.progress.tick(phase, boundary - now, self.prometheus, active)
                time.sleep(min(TICK_S, boundary - now))
            last = index == len(phases) - 1
            if not last:
                # Samples at "<phase>.end" see the phase's faults still in place; the heal follows.
                self.journal.record("phase-end", phase.name, index=index)
                self._take_samples(f"{phase.name}.end")
                self._end_faults(phase, phases[index + 1])
        # The final boundary is recorded once the load has stopped (see _finish_load).

    def _finish_load(self) -> None:
        self.progress.status("waiting for the load to stop")
        final = self.scenario.phases[-1]
        self._end_faults(final)
        result = self.backend.wait_load(timeout_s=LOAD_END_GRACE_S)
        self.journal.record("phase-end", final.name, index=len(self.scenario.phases) - 1)
        self._watch_components()
        self._take_samples(f"{final.name}.end", settle=True)
        for problem in result.problems:
            self.journal.record("note", "load-problem", message=problem)
        try:
            expected = result.expected()
        except ValueError as err:
            raise InfrastructureError(f"cannot tell the expected entries: {err}") from err
        offset = 0
        for target in self.scenario.targets:
            self.expected[target.name] = expected.expected[offset : offset + target.replicas]
            offset += target.replicas
        self.load_summary = {
            "writes": result.writes,
            "errors": result.errors,
            "exact": expected.exact,
            "expected_low": expected.low,
            "expected_high": expected.high,
            "problems": result.problems,
        }
        if self.prometheus is not None:
            self._wait_scrape_past(self.journal.events[-1].wall)
            self._record_sources()

    def _record_sources(self) -> None:
        """Which components Prometheus holds series from: the report's proof that every one was seen."""
        assert self.prometheus is not None
        samples = self.prometheus.query('count by (job, target, replica, worker) ({job=~"targets|load"})')
        sources = sorted(
            ({k: v for k, v in s.labels.items() if k in ("job", "target", "replica", "worker")} for s in samples),
            key=lambda labels: sorted(labels.items()),
        )
        self.journal.record("note", "prometheus-sources", sources=sources)

    # --- faults -----------------------------------------------------------------------------

    def _begin_faults(self, phase: PhaseSpec, *, scheduled_at: float) -> None:
        """Apply the phase's faults, except those still in place from the phase before (identical spec)."""
        if self.nemesis is None or not phase.faults:
            return
        carried = self._carried.pop(phase.name, set())
        topology = self.backend.topology()
        # skip keeps each fault's index (its id), so the proxies prepared for it are the ones used.
        for fault in self.nemesis.begin_phase(phase, topology, scheduled_at=scheduled_at, skip=carried):
            self._fault_specs[fault.id] = phase.faults[int(fault.id.rsplit(".", 1)[1])]
            self.journal.record("fault-applied", fault.id, **fault.journal_data())
            self.progress.event(f"fault applied: {fault.summary} ({fault.lateness_s * 1000:.0f} ms late)")

    def _end_faults(self, phase: PhaseSpec, next_phase: PhaseSpec | None = None) -> None:
        """Heal the phase's faults; one the next phase lists identically stays applied across the
        boundary (so a fault can span phases that differ in load, e.g. a quiet phase to sample in)."""
        if self.nemesis is None:
            return
        if next_phase is not None:
            taken: set[int] = set()
            for record in self.nemesis.active():
                spec = self._fault_specs.get(record.id)
                if record.phase != phase.name or spec is None:
                    continue
                same = [i for i, f in enumerate(next_phase.faults) if f == spec and i not in taken]
                if same:
                    taken.add(same[0])
                    record.phase = next_phase.name  # the next phase's end heals it
                    self.journal.record("note", "fault-continues", id=record.id, into=next_phase.name)
            self._carried[next_phase.name] = taken
        for fault in self.nemesis.end_phase(phase):
            self.journal.record("fault-healed", fault.id, **fault.journal_data())
            self.progress.event(f"fault healed: {fault.summary}")

    def _wait_scrape_past(self, wall: float) -> None:
        """Wait until Prometheus holds a scrape taken after ``wall``, so the last window has data."""
        assert self.prometheus is not None
        deadline = time.monotonic() + FINAL_SCRAPE_TIMEOUT_S
        while time.monotonic() < deadline:
            samples = self.prometheus.query('max(timestamp(up{job="targets"}))')
            if samples and samples[0].value >= wall:
                return
            time.sleep(0.2)
        self.journal.record("note", "stale-prometheus", message="no scrape after the end of the run")

    # --- samples and health -----------------------------------------------------------------

    def _take_samples(self, point: str, *, settle: bool = False) -> None:
        for replica in self.replicas:
            if (replica.target, point) in self.model_points:
                self._sample(replica, point, settle=settle)

    def _sample(self, replica: ReplicaEndpoint, point: str, *, settle: bool = False) -> None:
        """POST /admin/gc; with ``settle``, once the load's connections are closed (exact)."""
        try:
            target = self.scenario.target(replica.target)
            peers = target.replicas - 1 if target.replicate is not None else 0  # they dial this replica
            heap, settled = (
                settled_heap(replica.http_addr, peers=peers) if settle else (collect_garbage(replica.http_addr), False)
            )
        except InfrastructureError as err:
            self.journal.record("note", "sample-failed", target=replica.target, replica=replica.replica, error=str(err))
            return
        self.journal.add_sample(
            HeapSample(
                target=replica.target,
                replica=replica.replica,
                point=point,
                wall=time.time(),
                live_bytes=heap.live_bytes,
                entries=heap.entries,
                high_water=heap.high_water,
                goroutines=heap.goroutines,
                go_version=heap.go_version,
                go_type=heap.go_type,
                settled=settled,
                replication_backlog=heap.replication_backlog,
            )
        )

    def _watch_components(self) -> None:
        for exit_ in self.backend.exited_components():
            kind, _, rest = exit_.component.partition(":")
            target, _, replica = rest.partition(":")
            self.journal.record(
                "crash",
                exit_.component,
                target=target if kind == "target" else None,
                replica=int(replica) if replica.isdigit() else None,
                returncode=exit_.returncode,
                message=exit_.message,
            )
            self.progress.event(f"{exit_.component} exited ({exit_.returncode}): {exit_.message}")
            if kind == "prometheus":
                raise InfrastructureError(f"Prometheus died during the run: {exit_.message}")


def run(scenario: Scenario, options: RunOptions) -> report.RunRecord:
    check_supported(scenario)
    if options.report_dir is not None and options.report_dir.exists() and any(options.report_dir.iterdir()):
        raise UsageError(
            f"report directory {options.report_dir} is not empty",
            hint="give a new --report-dir (or none: each run gets its own under reports/)",
        )
    return Run(scenario, options).execute()
