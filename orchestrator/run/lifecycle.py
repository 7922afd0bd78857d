"""One run of a scenario, start to verdict, on whichever backend the registry gives. In order:

0. preflight: the backend checks it can run the scenario here; nothing has started yet;
1. open the run: a run id; the backend records everything it creates under it;
2. deploy the targets, start Prometheus, the load's processes (held before their first phase) and
   the chaos engine if any phase has faults (slow faults prepared); wait until Prometheus has
   scraped every replica only if a check reads it in the load's first seconds (run/first_scrape.py;
   otherwise that is confirmed while the phases run), then take each replica's baseline heap
   through the backend's admin access (after a gRPC and metrics warm-up; GC twice, exact);
3. release the load (the scenario's Locust plan, on the backend's address allow-list); it follows
   the phases and stops by itself;
4. walk the phases on one monotonic timeline: apply and heal faults as chaos.schedule says (the
   same schedule --dry-run prints), record each boundary, take the heap samples the model checks
   ask for, watch for components that die, show progress;
5. wait for the load to end and for Prometheus to scrape past the end;
6. compare: one verdict per check;
7. collect the raw series, teardown (always, shielded from a second signal), write the report
   (always: report.json, junit.xml, series.json, report.html) and record the run in the trend store.

SIGTERM and SIGINT unwind through the same teardown; the report says the run was interrupted and
the verdict is inconclusive. Nothing here knows what kind of backend runs the components.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.schedule import PhaseFaults, fault_schedule
from orchestrator.backends.base import (
    Backend,
    BackendFactory,
    ComponentKind,
    FaultInjector,
    ReplicaEndpoint,
    TargetAdmin,
)
from orchestrator.backends.registry import backend_factory
from orchestrator.checks import evaluate as comparator
from orchestrator.checks.delivery import judge_delivery
from orchestrator.checks.evaluate import RangeSeries, RunFacts
from orchestrator.checks.noise_floor import NOISE_REPEATS
from orchestrator.checks.service_model import probed_maps
from orchestrator.checks.verdict import CheckResult, Verdict, exit_code, overall
from orchestrator.core.errors import EXIT_INFRASTRUCTURE, InfrastructureError, MapquakeError, UsageError
from orchestrator.core.ledger import new_run_id
from orchestrator.core.preload import preload
from orchestrator.core.signals import RunInterrupted, SignalGuard
from orchestrator.journal import EventKind, Journal
from orchestrator.prometheus.client import PrometheusAPI
from orchestrator.reporting import report
from orchestrator.run import series
from orchestrator.run.first_scrape import FirstScrapeWatch, reason_to_wait
from orchestrator.run.loadplan import workload_plan
from orchestrator.run.progress import Progress
from orchestrator.scenario.spec import BaselineCheck, ModelCheck, PhaseSpec, Scenario
from orchestrator.trends import store as trends

log = logging.getLogger(__name__)

TICK_S = 1.0
PROMETHEUS_FIRST_SCRAPE_S = 30.0
FIRST_SCRAPE_POLL_S = 0.1
LOAD_END_GRACE_S = 60.0
FINAL_SCRAPE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RunOptions:
    report_dir: Path | None = None
    progress: bool = True


class PromRange:
    """Adapts the Prometheus client to the comparator's range-query interface."""

    def __init__(self, client: PrometheusAPI) -> None:
        self.client = client

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]:
        return [RangeSeries(s.labels, s.points) for s in self.client.query_range(expr, start=start, end=end, step=step)]


def default_report_dir(scenario: Scenario, run_id: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{scenario.name}-{stamp}-{run_id}"


class Run:
    def __init__(
        self, scenario: Scenario, options: RunOptions, backend: Backend, run_id: str, report_dir: Path
    ) -> None:
        self.scenario = scenario
        self.options = options
        self.backend = backend
        self.run_id = run_id
        self.report_dir = report_dir
        self.journal = Journal()
        self.progress = Progress(scenario, enabled=options.progress)
        self.progress.status(f"run {self.run_id}: {scenario.name} on {backend.name}, report in {self.report_dir}")
        self.replicas: list[ReplicaEndpoint] = []
        self.prometheus: PrometheusAPI | None = None
        self.first_scrape: FirstScrapeWatch | None = None
        self.first_scrape_reason: str | None = None
        self.model_points = {
            (c.target, point)
            for c in scenario.checks
            if isinstance(c, ModelCheck)
            for point in [*c.at, *([c.since] if c.since is not None else [])]
        }
        self.faults: FaultInjector | None = None
        self.schedule: tuple[PhaseFaults, ...] = fault_schedule(scenario.phases)
        self.expected: dict[str, list[int]] = {}
        self.load_summary: dict[str, object] = {}
        self.delivery: CheckResult | None = None
        """The load's delivery against its design (checks/delivery.py), once the load has ended."""
        guard = SignalGuard.active
        self._signals_before = list(guard.received) if guard is not None else []

    # --- the lifecycle --------------------------------------------------------------------

    def execute(self) -> report.RunRecord:
        """The whole run under the process's signal guard (the command's, else one of its own)."""
        if SignalGuard.active is not None:
            return self._execute(SignalGuard.active)
        with SignalGuard() as guard:
            return self._execute(guard)

    def _execute(self, guard: SignalGuard) -> report.RunRecord:
        started = time.monotonic()
        results: list[CheckResult] = []
        reason = "completed"
        verdict = Verdict.INCONCLUSIVE
        code = EXIT_INFRASTRUCTURE
        problems: list[str] = []
        collected: dict[str, Any] | None = None
        try:
            self.journal.record(EventKind.NOTE, "run-start", run_id=self.run_id, backend=self.backend.name)
            self._deploy()
            self._timeline()
            self._finish_load()
            with self._step("checking"):
                results = comparator.evaluate(
                    self.scenario,
                    self.journal,
                    RunFacts(
                        self.expected,
                        PromRange(self.prometheus) if self.prometheus else None,
                        trends.StoreHistory(trends.resolve_path()),
                    ),
                )
                if self.delivery is not None:
                    results.append(self.delivery)
            verdict = overall(results)
            code = exit_code(verdict)
        except (RunInterrupted, Exception) as exc:
            guard.hold()  # a second signal must not cut the classification, teardown or report short
            reason, verdict, code = self._ended_by(exc)
        finally:
            # Past this point the guard holds: signals are recorded, teardown and the report complete,
            # and the verdict stands (docs/cli.md, "Signals").
            guard.hold()
            self.progress.close()
            with self._step("collecting series"):
                collected = self._collect_series()
            with self._step("tearing down"):
                draft = self._record(started, verdict, code, reason, results, problems=[])
                problems, figures = self._teardown_while_drawing(draft, collected)
        late = guard.received[len(self._signals_before) :] if reason == "completed" else []
        if late:
            names = ", ".join(signal.Signals(s).name for s in late)
            self.journal.record(EventKind.NOTE, "signal-after-verdict", signals=names)
        record = self._record(started, verdict, code, reason, results, problems=problems)
        report.write(record, collected, figures=figures)
        try:
            with trends.TrendStore.open() as store:
                trends.record_run(store, record, collected)
        except MapquakeError as err:
            log.warning("run not recorded in the trend store: %s", err.message)
        except Exception:  # a bug there must not turn a verdict already reported into a crash
            log.exception("run not recorded in the trend store")
        return record

    def _ended_by(self, exc: BaseException) -> tuple[str, Verdict, int]:
        """Why the live run stopped early: (reason, verdict, exit code), recorded in the journal."""
        if isinstance(exc, RunInterrupted):
            self.journal.record(EventKind.INTERRUPTED, str(exc))
            return f"interrupted by {exc}", Verdict.INCONCLUSIVE, exit_code(Verdict.INCONCLUSIVE)
        if isinstance(exc, MapquakeError):
            self.journal.record(EventKind.NOTE, "error", message=exc.message, hint=exc.hint)
            reason = f"{type(exc).__name__}: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else "")
            return reason, Verdict.INCONCLUSIVE, exc.exit_code
        # A bug in mapquake: still tear down and still report.
        log.error("internal error during the run", exc_info=exc)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        self.journal.record(EventKind.NOTE, "internal-error", message=reason)
        return reason, Verdict.INCONCLUSIVE, EXIT_INFRASTRUCTURE

    def _collect_series(self) -> dict[str, Any] | None:
        """The raw series, while Prometheus still runs; a failure costs the plots, not the report."""
        if self.prometheus is None:
            return None
        try:
            return series.collect(self.prometheus, self.scenario, self.journal)
        except Exception as err:  # e.g. Prometheus died: the report is still written
            log.warning("raw series not collected: %s", err)
            self.journal.record(EventKind.NOTE, "series-failed", message=str(err))
            return None

    def _record(
        self,
        started: float,
        verdict: Verdict,
        code: int,
        reason: str,
        results: list[CheckResult],
        *,
        problems: list[str],
    ) -> report.RunRecord:
        return report.RunRecord(
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

    def _teardown_while_drawing(
        self, draft: report.RunRecord, collected: dict[str, Any] | None
    ) -> tuple[list[str], str | None]:
        """Tear down on a thread while this one draws the report's plots: the slowest part of each (a
        Locust master's own shutdown, about 2 s of its sleeps; matplotlib, about half a second)
        overlap. The teardown has ended when this returns, whatever happened while drawing."""
        try:
            for component, path in self.backend.logs().items():
                self.journal.record(EventKind.NOTE, "log", component=component, path=str(path))
        except Exception as err:
            log.warning("component logs not listed: %s", err)
        problems: list[str] = ["teardown ended without a result"]

        def tear_down() -> None:
            nonlocal problems
            problems = self._teardown()

        # The journal is only read from here on until the thread is joined (the draft's snapshot).
        thread = threading.Thread(target=tear_down, name="mapquake-teardown")
        thread.start()
        try:
            figures = report.draw(draft, collected)
        finally:
            thread.join()
        return problems, figures

    def _teardown(self) -> list[str]:
        """Tear the backend down; its own failure is a problem to report, never a lost report."""
        try:
            problems = self.backend.teardown()
        except Exception as err:  # the contract says never raises; a bug there must not lose the report
            log.exception("teardown raised")
            problems = [f"teardown raised {type(err).__name__}: {err}"]
        if problems:
            log.error("teardown left problems: %s", problems)
        return problems

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        """Show ``name`` as the run's status and record how long it took (the report's set-up breakdown;
        bench/run_overhead.py reads it)."""
        self._check_signals()
        self.progress.status(name)
        began = time.monotonic()
        try:
            yield
        finally:
            self.journal.record(EventKind.NOTE, "step", step=name, seconds=round(time.monotonic() - began, 3))
        self._check_signals()

    @staticmethod
    def _check_signals() -> None:
        """A signal whose interrupt Python swallowed (raised inside a finalizer) still stops the run here."""
        if SignalGuard.active is not None:
            SignalGuard.active.check()

    def _deploy(self) -> None:
        with self._step("deploying targets"):
            self.replicas = self.backend.deploy_targets(self.scenario)
        # Prometheus takes about 5 s to its first scrape (its discovery sends new targets on a
        # fixed 5 s tick), so nothing else waits for it unless it must.
        with self._step("starting Prometheus"):
            self.prometheus = self.backend.start_prometheus(self.scenario, self.replicas)
        self.first_scrape = FirstScrapeWatch(
            self.prometheus, [(r.target, r.replica) for r in self.replicas], timeout_s=PROMETHEUS_FIRST_SCRAPE_S
        )
        plan = workload_plan(self.scenario, self.replicas, self.backend.allowed_addresses())
        with self._step("starting the load's processes"):
            self.backend.start_load(self.scenario, plan)
        if any(p.faults for p in self.scenario.phases):
            with self._step("starting the chaos agent"):
                self.faults = self.backend.start_faults()
                # Start whatever is slow to start (delay proxies) now, so faults land on time later.
                self.faults.prepare(self.scenario.phases, self.backend.topology())
        # Only a check that reads Prometheus in the load's first seconds needs its first scrape (about
        # 5 s away) before the load; otherwise it is confirmed while the phases run (first_scrape.py).
        self.first_scrape_reason = reason_to_wait(self.scenario)
        if self.first_scrape_reason is not None:
            with self._step("waiting for Prometheus's first scrape"):
                self._confirm_first_scrape(wait=True)
        # The baseline heap: after a gRPC and a metrics warm-up, so the servers' one-time set-up (tens of
        # KiB) is not charged to the map. Until Prometheus connects, the warm-up's scrape connection
        # stays open in place of its own (the final sample counts one scrape connection too).
        with self._step("taking baseline heaps"):
            self._confirm_first_scrape(wait=False)
            hold = self.first_scrape is None or self.first_scrape.seen_wall is None
            for replica in self.replicas:
                with self.backend.target_admin(replica).warmed_up(hold_scrape=hold) as admin:
                    for _ in range(self._repeats(replica)):
                        self._sample(replica, "deploy", settle=True, admin=admin)
        self._require_probed_maps()
        with self._step("starting load"):
            self.backend.release_load()

    def _require_probed_maps(self) -> None:
        """A model check on a service needs its mapprobe map: refuse at deploy, not at the verdict."""
        for check in self.scenario.checks:
            if not isinstance(check, ModelCheck) or self.scenario.target(check.target).service is None:
                continue
            for replica in (r for r in self.replicas if r.target == check.target):
                samples = self.journal.replica_samples(check.target, "deploy", replica.replica)
                if not samples:
                    raise InfrastructureError(
                        f"target '{check.target}' replica {replica.replica}: no heap sample at deploy "
                        f"(see the sample-failed note in the report)",
                        hint="with gc_path, it must be mapprobe's GC handler; without it, its metrics path must "
                        "serve its mapprobe series",
                    )
                found = probed_maps(samples[0], check.map)
                if isinstance(found, str):
                    raise InfrastructureError(
                        f"target '{check.target}' replica {replica.replica}: {found} (model check '{check.name}')",
                        hint="register the map with mapprobe (docs/your-service.md) and serve it on the metrics path",
                    )

    def _timeline(self) -> None:
        """Walk the phases; the load follows the same schedule from its own start."""
        phases = self.scenario.phases
        # The controller idles while the phases run: import now what the checks and the report need.
        slow = ["orchestrator.reporting.plots"]
        if any(isinstance(c, BaselineCheck) for c in self.scenario.checks):
            slow.append("scipy.stats")
        preload(*slow)
        boundary = self.backend.load_started_at()
        for index, phase in enumerate(phases):
            self.journal.record(EventKind.PHASE_START, phase.name, index=index)
            self._begin_faults(phase, self.schedule[index], scheduled_at=boundary)
            self._take_samples(f"{phase.name}.start")
            boundary += phase.duration_s
            while (now := time.monotonic()) < boundary:
                self._check_signals()
                self._watch_components()
                self._confirm_first_scrape(wait=False)
                active = [f.summary for f in self.faults.active()] if self.faults else []
                self.progress.tick(phase, boundary - now, self.prometheus, active)
                time.sleep(min(TICK_S, boundary - now))
            if index < len(phases) - 1:
                # Samples at "<phase>.end" see the phase's faults still in place; the heal follows.
                self.journal.record(EventKind.PHASE_END, phase.name, index=index)
                self._take_samples(f"{phase.name}.end")
                self._end_faults(phase, self.schedule[index])
        # The final boundary is recorded once the load has stopped (see _finish_load).

    def _finish_load(self) -> None:
        final = self.scenario.phases[-1]
        with self._step("waiting for the load to stop"):
            self._end_faults(final, self.schedule[-1])
            result = self.backend.wait_load(timeout_s=LOAD_END_GRACE_S)
        self.journal.record(EventKind.PHASE_END, final.name, index=len(self.scenario.phases) - 1)
        self._watch_components()
        with self._step("taking final heaps"):
            self._take_samples(f"{final.name}.end", settle=True)
        for problem in result.problems:
            self.journal.record(EventKind.NOTE, "load-problem", message=problem)
        entries = result.entries
        if len(entries.expected) != len(self.replicas):
            raise InfrastructureError(
                f"the load reported expected entries for {len(entries.expected)} replicas, the run has "
                f"{len(self.replicas)}"
            )
        offset = 0
        for target in self.scenario.targets:
            self.expected[target.name] = entries.expected[offset : offset + target.replicas]
            offset += target.replicas
        self.load_summary = {
            "writes": result.writes,
            "errors": result.errors,
            "exact": entries.exact,
            "expected_low": entries.low,
            "expected_high": entries.high,
            "problems": list(result.problems),
        }
        self.delivery = judge_delivery(self.scenario, result.summaries)
        if self.prometheus is not None:
            self._confirm_first_scrape(wait=True)  # phases shorter than Prometheus's first 5 s
            with self._step("waiting for the last scrape"):
                self._wait_scrape_past(self.journal.events[-1].wall)
            self._record_sources()

    def _record_sources(self) -> None:
        """Which components Prometheus holds series from: the report's proof that every one was seen.

        Over the whole run, not at this instant: a component that has ended (a Locust worker's pod that
        completed, dropped by a shared server's discovery) has stale series by now, and was still seen.
        """
        assert self.prometheus is not None
        window = max(1, math.ceil(time.time() - self.journal.started_wall))
        samples = self.prometheus.query(
            f'count by (job, target, replica, worker) (last_over_time({{job=~"targets|load"}}[{window}s]))'
        )
        sources = sorted(
            ({k: v for k, v in s.labels.items() if k in ("job", "target", "replica", "worker")} for s in samples),
            key=lambda labels: sorted(labels.items()),
        )
        self.journal.record(EventKind.NOTE, "prometheus-sources", sources=sources)

    # --- faults -----------------------------------------------------------------------------

    def _begin_faults(self, phase: PhaseSpec, plan: PhaseFaults, *, scheduled_at: float) -> None:
        """Apply what the schedule applies at the phase's start (faults carried in stay as they are)."""
        if self.faults is None or not plan.apply:
            return
        applied = self.faults.apply_faults(phase, plan.apply, self.backend.topology(), scheduled_at=scheduled_at)
        for fault in applied:
            self.journal.record(EventKind.FAULT_APPLIED, str(fault.fault_id), **fault.journal_data())
            self.progress.event(f"fault applied: {fault.summary} ({fault.lateness_s * 1000:.0f} ms late)")

    def _end_faults(self, phase: PhaseSpec, plan: PhaseFaults) -> None:
        """Heal what the schedule heals at the phase's end; what continues into the next phase stays."""
        if self.faults is None:
            return
        following = self._following(phase)
        for fault_id in plan.continues:
            into = following.name if following is not None else None
            self.journal.record(EventKind.NOTE, "fault-continues", id=str(fault_id), into=into)
        for fault in self.faults.heal_faults(plan.heal, phase=phase.name):
            self.journal.record(EventKind.FAULT_HEALED, str(fault.fault_id), **fault.journal_data())
            self.progress.event(f"fault healed: {fault.summary}")

    def _following(self, phase: PhaseSpec) -> PhaseSpec | None:
        phases = self.scenario.phases
        index = phases.index(phase)
        return phases[index + 1] if index + 1 < len(phases) else None

    def _confirm_first_scrape(self, *, wait: bool) -> None:
        """Note once that Prometheus has scraped every replica still alive; with ``wait``, block until
        it has. Raises (exit 3, each target's health) if it has not by PROMETHEUS_FIRST_SCRAPE_S."""
        watch = self.first_scrape
        if watch is None or watch.seen_wall is not None:
            return
        while not watch.poll(dead={(c.data["target"], c.data["replica"]) for c in self.journal.crashes()}):
            if not wait:
                return
            time.sleep(FIRST_SCRAPE_POLL_S)
            self._watch_components()  # a replica that dies meanwhile is not waited for
        self.journal.record(
            EventKind.NOTE,
            "first-scrape",
            before_load=self.first_scrape_reason is not None,
            why=self.first_scrape_reason or "no check reads Prometheus in the load's first seconds",
        )

    def _wait_scrape_past(self, wall: float) -> None:
        """Wait until Prometheus holds a scrape taken after ``wall``, so the last window has data."""
        assert self.prometheus is not None
        deadline = time.monotonic() + FINAL_SCRAPE_TIMEOUT_S
        while time.monotonic() < deadline:
            # Every target and every load worker (they linger to be scraped once more) scraped after ``wall``.
            samples = self.prometheus.query('min(timestamp(up{job=~"targets|load"}))')
            if samples and samples[0].value >= wall:
                return
            time.sleep(0.2)
        self.journal.record(EventKind.NOTE, "stale-prometheus", message="no scrape after the end of the run")

    # --- samples and health -----------------------------------------------------------------

    def _repeats(self, replica: ReplicaEndpoint) -> int:
        """Samples per point: a service's repeats measure its noise floor (checks/noise_floor.py).

        A demo store counts its own connections and settles them out; one sample does.
        """
        return NOISE_REPEATS if self.scenario.target(replica.target).service is not None else 1

    def _take_samples(self, point: str, *, settle: bool = False) -> None:
        sampled = [r for r in self.replicas if (r.target, point) in self.model_points]
        # Round by round across the replicas, so a replica's repeats are apart by the others' samples:
        # an approximate source (the heap marked by the last GC) only moves when a GC ran between them.
        for round_ in range(max((self._repeats(r) for r in sampled), default=0)):
            for replica in sampled:
                if round_ < self._repeats(replica):
                    self._sample(replica, point, settle=settle)

    def _sample(
        self, replica: ReplicaEndpoint, point: str, *, settle: bool = False, admin: TargetAdmin | None = None
    ) -> None:
        """GC in the replica and read its live heap; with ``settle``, once the load's connections are closed."""
        admin = admin or self.backend.target_admin(replica)
        try:
            target = self.scenario.target(replica.target)
            peers = target.replicas - 1 if target.replicate is not None else 0  # they dial this replica
            heap, settled = admin.settled_heap(peers=peers) if settle else (admin.heap(), False)
        except InfrastructureError as err:
            self.journal.record(
                EventKind.NOTE, "sample-failed", target=replica.target, replica=replica.replica, error=str(err)
            )
            return
        self.journal.add_sample(
            heap.placed(target=replica.target, replica=replica.replica, point=point, wall=time.time(), settled=settled)
        )

    def _watch_components(self) -> None:
        for exit_ in self.backend.exited_components():
            self.journal.record(
                EventKind.CRASH,
                exit_.name,
                target=exit_.target,
                replica=exit_.replica,
                returncode=exit_.returncode,
                message=exit_.message,
            )
            self.progress.event(f"{exit_.name} exited ({exit_.returncode}): {exit_.message}")
            if exit_.kind == ComponentKind.PROMETHEUS:
                raise InfrastructureError(f"Prometheus died during the run: {exit_.message}")


def run(scenario: Scenario, options: RunOptions, factory: BackendFactory | None = None) -> report.RunRecord:
    """Run ``scenario`` on its backend (or on ``factory``'s, e.g. a test's); preflight first.

    Raises (UsageError, InfrastructureError) before anything starts; after that, every outcome is a
    report with an exit code.
    """
    if options.report_dir is not None and options.report_dir.exists() and any(options.report_dir.iterdir()):
        raise UsageError(
            f"report directory {options.report_dir} is not empty",
            hint="give a new --report-dir (or none: each run gets its own under reports/)",
        )
    factory = factory or backend_factory(scenario.backend)
    run_id = new_run_id()
    report_dir = (options.report_dir or default_report_dir(scenario, run_id)).resolve()
    backend = factory(run_id=run_id, run_dir=report_dir / "run")
    backend.preflight(scenario)
    return Run(scenario, options, backend, run_id, report_dir).execute()
