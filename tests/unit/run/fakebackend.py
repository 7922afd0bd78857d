"""An in-memory backend for driving the run lifecycle without root, processes or network.

Every method the run calls is logged in ``calls``; ``fail_at`` makes one of them raise, and
``signal_at`` makes one of them send this process SIGTERM (as a user's kill would, mid-call).
The fake holds no state a real backend would leak, but it remembers whether teardown ran.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from chaos.resolve import GROUP_LOAD, GROUP_PROMETHEUS, ROLE_TARGET, NodeInfo, RunTopology
from chaos.schedule import FaultId
from orchestrator.backends.base import (
    CleanupReport,
    ComponentExit,
    ComponentKind,
    LoadResult,
    ReplicaEndpoint,
    RunListing,
)
from orchestrator.checks.delivery import designed_phases
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.safety import LOOPBACK_ONLY, AddressAllowList
from orchestrator.journal import HeapSample, MapReading
from orchestrator.prometheus.client import Sample, Series
from orchestrator.run.first_scrape import FIRST_SCRAPE_EXPR
from orchestrator.scenario.spec import PhaseSpec, Scenario
from workloads.plan import ExpectedEntries, PhaseDelivery, WorkerSummary, WorkloadPlan

BASE_HEAP = 400_000
BYTES_PER_ENTRY = 64


class Boom(Exception):
    """A bug inside a backend (not a MapquakeError)."""


class FakePrometheus:
    """Answers the run's own queries; user PromQL finds no data (so those checks are inconclusive)."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.first_scrape_queries = 0

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        self.backend.hit("prometheus.query")
        now = time.time()
        if expr.startswith(("min(timestamp(", "max(timestamp(")):  # the last-scrape wait
            return [Sample({}, now, now)]
        if expr == FIRST_SCRAPE_EXPR:
            self.backend.hit("prometheus.first_scrape")
            self.first_scrape_queries += 1
            # Like a real one, it has not scraped yet when first asked (the baseline's look).
            if self.backend.never_scrapes or self.first_scrape_queries < 2:
                return []
            crashed = self.backend.replicas[:1] if self.backend.crash_target else []  # never scraped up
            up = [r for r in self.backend.replicas if r not in crashed]
            return [Sample({"target": r.target, "replica": str(r.replica)}, now, 1.0) for r in up]
        if expr.startswith("count by (job"):
            return [
                Sample({"job": "targets", "target": r.target, "replica": str(r.replica)}, now, 1.0)
                for r in self.backend.replicas
            ]
        return []

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]:
        self.backend.hit("prometheus.query_range")
        return []

    def wait_for_series(self, expr: str, *, timeout: float = 30.0, min_series: int = 1) -> list[Sample]:
        self.backend.hit("prometheus.wait_for_series")
        if self.backend.never_scrapes:
            raise InfrastructureError(f"no data for {expr!r} after {timeout:.0f}s (fake: never scrapes)")
        return [Sample({}, time.time(), 1.0)] * min_series


class FakeAdmin:
    def __init__(self, backend: FakeBackend, replica: ReplicaEndpoint) -> None:
        self.backend = backend
        self.replica = replica

    @contextlib.contextmanager
    def warmed_up(self, *, hold_scrape: bool) -> Iterator[FakeAdmin]:
        self.backend.hit("admin.warm_up")
        self.backend.held_scrape.append(hold_scrape)
        yield self

    def heap(self) -> HeapSample:
        self.backend.hit("admin.heap")
        entries = self.backend.entries_now()
        service = self.backend._scenario.target(self.replica.target).service is not None
        return HeapSample(
            live_bytes=BASE_HEAP + BYTES_PER_ENTRY * entries,
            entries=entries,
            high_water=entries,
            goroutines=12,
            go_version="go1.26.8",
            go_type="sync.Map[string][32]byte",
            # A service describes its maps through mapprobe; a demo store reports its one store above.
            maps=(MapReading("sessions", entries, entries, "map[string]int64"),) if service else (),
        )

    def settled_heap(self, *, peers: int) -> tuple[HeapSample, bool]:
        return self.heap(), True


@dataclass
class FakeFault:
    fault_id: FaultId
    summary: str
    lateness_s: float = 0.001
    healed: bool = False

    def journal_data(self) -> dict[str, Any]:
        return {"id": str(self.fault_id), "summary": self.summary, "lateness_s": self.lateness_s}


@dataclass
class FakeFaults:
    backend: FakeBackend
    applied: list[FakeFault] = field(default_factory=list)
    closed: bool = False

    def prepare(self, phases: Iterable[PhaseSpec], topology: RunTopology) -> list[str]:
        self.backend.hit("faults.prepare")
        return []

    def apply_faults(
        self, phase: PhaseSpec, ids: Collection[FaultId], topology: RunTopology, *, scheduled_at: float
    ) -> list[FakeFault]:
        self.backend.hit("faults.apply")
        new = [FakeFault(i, f"{phase.faults[i.index].kind} ({i})") for i in sorted(ids)]
        self.applied += new
        return new

    def heal_faults(self, ids: Collection[FaultId], *, phase: str) -> list[FakeFault]:
        self.backend.hit("faults.heal")
        healed = [f for f in self.applied if f.fault_id in ids and not f.healed]
        for fault in healed:
            fault.healed = True
        return healed

    def active(self) -> list[FakeFault]:
        return [f for f in self.applied if not f.healed]

    def close(self) -> list[str]:
        self.backend.hit("faults.close")
        for fault in self.active():
            fault.healed = True
        self.closed = True
        return []


class FakeBackend:
    """One run's components, in memory. Class attributes configure the next instance (the run makes it)."""

    name: ClassVar[str] = "fake"
    fail_at: ClassVar[str | None] = None
    failure: ClassVar[type[Exception]] = InfrastructureError
    signal_at: ClassVar[str | None] = None
    signum: ClassVar[signal.Signals] = signal.SIGTERM
    crash_target: ClassVar[bool] = False
    never_scrapes: ClassVar[bool] = False
    """Its Prometheus never scrapes a replica (the first-scrape watch must fail the run)."""
    delivered: ClassVar[float | None] = None
    """The share of each paced phase's design its one worker reports delivered (None: no summaries)."""
    instances: ClassVar[list[FakeBackend]] = []

    def __init__(self, *, run_id: str, run_dir: Path) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.calls: list[str] = []
        self.held_scrape: list[bool] = []
        """Each baseline warm-up's hold_scrape: whether Prometheus had not connected yet."""
        self.replicas: list[ReplicaEndpoint] = []
        self.plan: WorkloadPlan | None = None
        self.scenario: Scenario | None = None
        self.faults: FakeFaults | None = None
        self.load_start: float | None = None
        self.torn_down = 0
        self._crash_reported = False
        FakeBackend.instances.append(self)

    # --- test hooks -----------------------------------------------------------------------

    def hit(self, step: str) -> None:
        self.calls.append(step)
        if step == self.signal_at:
            os.kill(os.getpid(), self.signum)  # the handler raises in this thread, right here
        if step == self.fail_at:
            raise self.failure(f"fake failure at {step}")

    def entries_now(self) -> int:
        if self.load_start is None or self.plan is None:
            return 0
        return min(self.plan.keys.space, int((time.monotonic() - self.load_start) * 10_000))

    # --- the protocol ---------------------------------------------------------------------

    def preflight(self, scenario: Scenario) -> None:
        self.hit("preflight")

    def planned_topology(self, scenario: Scenario) -> RunTopology:
        nodes = [
            NodeInfo(f"{t.name}-{i}", f"fake-{t.name}-{i}", f"127.0.0.{i + 2}", "lo", ROLE_TARGET, t.name, i)
            for t in scenario.targets
            for i in range(t.replicas)
        ]
        nodes += [
            NodeInfo("prometheus", "fake-prometheus", "127.0.0.100", "lo", GROUP_PROMETHEUS),
            NodeInfo("load", "fake-load", "127.0.0.101", "lo", GROUP_LOAD),
        ]
        return RunTopology(self.run_id, tuple(nodes))

    def allowed_addresses(self) -> AddressAllowList:
        return LOOPBACK_ONLY

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        self.hit("deploy_targets")
        self._scenario = scenario
        self.replicas = [
            ReplicaEndpoint(t.name, i, f"127.0.0.{i + 2}:8080", f"127.0.0.{i + 2}:9090", f"fake-{t.name}-{i}")
            for t in scenario.targets
            for i in range(t.replicas)
        ]
        return self.replicas

    def target_admin(self, replica: ReplicaEndpoint) -> FakeAdmin:
        self.hit("target_admin")
        return FakeAdmin(self, replica)

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> FakePrometheus:
        self.hit("start_prometheus")
        return FakePrometheus(self)

    def start_load(self, scenario: Scenario, plan: WorkloadPlan) -> None:
        self.hit("start_load")
        self.plan = plan
        self.scenario = scenario

    def release_load(self) -> None:
        self.hit("release_load")
        self.load_start = time.monotonic()

    def load_started_at(self) -> float:
        self.hit("load_started_at")
        assert self.load_start is not None
        return self.load_start

    def wait_load(self, timeout_s: float) -> LoadResult:
        self.hit("wait_load")
        entries = self.entries_now()
        n = len(self.replicas)
        return LoadResult(
            writes=entries,
            errors=0,
            entries=ExpectedEntries([entries] * n, [entries] * n, [entries] * n, True),
            summaries=() if self.delivered is None else (self._summary(self.delivered),),
        )

    def _summary(self, share: float) -> WorkerSummary:
        """One worker's summary that delivered ``share`` of each phase's design at 40 % of a core."""
        assert self.scenario is not None
        phases = tuple(
            PhaseDelivery(d.phase, tasks=round((d.designed or 0) * share), seconds=d.duration_s,
                          cpu_seconds=0.4 * d.duration_s, cpu_peak=0.5, wait_seconds=0.05 * d.duration_s)
            for d in designed_phases(self.scenario)
        )  # fmt: skip
        return WorkerSummary(
            worker_index=0, worker_count=1, user="MapWriteUser", protocol="grpc", draws=0, writes=0,
            writes_per_target=[0] * len(self.replicas), uncertain_per_target=[0] * len(self.replicas),
            phases=phases,
        )  # fmt: skip

    def start_faults(self) -> FakeFaults:
        self.hit("start_faults")
        self.faults = FakeFaults(self)
        return self.faults

    def topology(self) -> RunTopology:
        self.hit("topology")
        return self.planned_topology(self._scenario)

    def logs(self) -> dict[str, Path]:
        return {}

    def exited_components(self) -> list[ComponentExit]:
        self.hit("exited_components")
        if self.crash_target and not self._crash_reported and self.replicas:
            self._crash_reported = True
            r = self.replicas[0]
            name = f"target:{r.target}:{r.replica}"
            return [ComponentExit(ComponentKind.TARGET, name, 2, "fatal error: concurrent map writes", r.target, 0)]
        return []

    def teardown(self) -> list[str]:
        if self.faults is not None:  # heal first, as a real backend does
            self.faults.close()
        self.torn_down += 1
        if self.signal_at == "teardown":
            self.hit("teardown")  # a signal mid-teardown: the run's guard holds by now
        else:
            self.calls.append("teardown")
        return []

    @classmethod
    def list_runs(cls) -> list[RunListing]:
        return []

    @classmethod
    def cleanup(cls, *, run_id: str | None = None, force: bool = False) -> list[CleanupReport]:
        return []
