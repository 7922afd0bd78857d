"""The one interface every backend implements, and the facts it hands back to the run.

A backend owns placement and lifecycle: it checks before anything starts that it can run the
scenario here (preflight), deploys target replicas, Prometheus and the load cluster, tells the
run where they answer, gives the run a way to sample each replica's heap and to inject faults,
reports components that died, and tears everything down, idempotently, on every exit path. A
backend class also finds and removes what runs whose controller died left behind.

The run lifecycle (orchestrator/run/lifecycle.py) sees only this module: nothing in it knows
whether replicas are processes in network namespaces or pods.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from chaos.resolve import RunTopology
from chaos.schedule import FaultId
from orchestrator.core.safety import AddressAllowList
from orchestrator.journal import HeapSample
from orchestrator.prometheus.client import PrometheusAPI
from orchestrator.scenario.spec import PhaseSpec, Scenario
from workloads.plan import ExpectedEntries, WorkerSummary, WorkloadPlan


@dataclass(frozen=True)
class ClusterAccess:
    """How a cluster backend reaches its cluster (--kubeconfig, --context, --namespace); local ignores it."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    """Overrides the scenario's kubernetes.namespace; where cleanup looks for runs."""

    def describe(self) -> str:
        where = str(self.kubeconfig) if self.kubeconfig else "the default kubeconfig (or in-cluster)"
        return where + (f", context {self.context}" if self.context else "")


@dataclass(frozen=True)
class ReplicaEndpoint:
    """One running target replica."""

    target: str
    replica: int
    http_addr: str
    grpc_addr: str
    node: str
    """Where it runs: a network namespace locally, a pod on Kubernetes."""


class ComponentKind(StrEnum):
    TARGET = "target"
    LOAD = "load"
    PROMETHEUS = "prometheus"


@dataclass(frozen=True)
class ComponentExit:
    """A component that stopped on its own during the run."""

    kind: ComponentKind
    name: str
    """How the report names it: "target:<name>:<replica>", "locust-master", "locust-worker-<i>", "prometheus"."""
    returncode: int | None
    message: str
    """The fatal line of its log (e.g. "fatal error: concurrent map writes"), or its last lines."""
    target: str | None = None
    replica: int | None = None


@dataclass(frozen=True)
class LoadResult:
    """What the finished load reports, whichever backend ran it."""

    writes: int
    errors: int
    entries: ExpectedEntries
    """Expected live entries per replica, in the plan's routing order (the model's input)."""
    problems: tuple[str, ...] = ()
    """What went wrong in the load cluster (a worker that died, a summary missing); empty if clean."""
    summaries: tuple[WorkerSummary, ...] = ()
    """Each worker's summary, with what it delivered per phase (checks/delivery.py judges it)."""


@dataclass(frozen=True)
class CleanupReport:
    """What ``cleanup`` removed for one dead run."""

    run_id: str
    removed: dict[str, int] = field(default_factory=dict)
    """Kind of object (processes, namespaces, links, dirs, pods, ...) -> how many were removed."""
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunListing:
    run_id: str
    description: str
    """One line: its controller and whether it is alive, what it still holds."""


class TargetAdmin(Protocol):
    """One replica's admin endpoint (orchestrator.targets.admin.TargetAdminClient over HTTP and gRPC)."""

    def warmed_up(self, *, hold_scrape: bool) -> AbstractContextManager[TargetAdmin]:
        """Exercise every write path and the metrics path once, so the server's one-time set-up is in
        a baseline taken inside (with the admin this yields). ``hold_scrape``: Prometheus has not
        connected yet, so the warm-up's scrape connection stays open in its place."""
        ...

    def heap(self) -> HeapSample:
        """runtime.GC() in the replica, then its exact live heap (not yet placed on the timeline)."""
        ...

    def settled_heap(self, *, peers: int) -> tuple[HeapSample, bool]:
        """The heap once the load's connections have closed; and whether they did in time."""
        ...


class AppliedFaultView(Protocol):
    """What the run reads of an applied fault (chaos.nemesis.AppliedFault)."""

    @property
    def fault_id(self) -> FaultId: ...

    @property
    def summary(self) -> str: ...

    @property
    def lateness_s(self) -> float: ...

    def journal_data(self) -> dict[str, Any]: ...


class FaultInjector(Protocol):
    """Applies and heals a run's faults (chaos.nemesis.Nemesis, with its lease-guarded agent)."""

    def prepare(self, phases: Iterable[PhaseSpec], topology: RunTopology) -> list[str]:
        """Start ahead whatever is slow to start (delay proxies), changing no traffic yet."""
        ...

    def apply_faults(
        self, phase: PhaseSpec, ids: Collection[FaultId], topology: RunTopology, *, scheduled_at: float
    ) -> Sequence[AppliedFaultView]:
        """Apply the faults ``ids`` of ``phase`` now; return their records."""
        ...

    def heal_faults(self, ids: Collection[FaultId], *, phase: str) -> Sequence[AppliedFaultView]:
        """At the end of ``phase``: heal those of ``ids`` still in place; return the records healed now."""
        ...

    def active(self) -> Sequence[AppliedFaultView]: ...

    def close(self) -> list[str]:
        """Heal everything, stop the engine. Never raises; returns problems."""
        ...


class Backend(Protocol):
    """One run's components on one kind of infrastructure. Created per run by the registry."""

    name: ClassVar[str]

    def preflight(self, scenario: Scenario) -> None:
        """Raise (UsageError or InfrastructureError, listing every problem) if this backend cannot run
        ``scenario`` here: privileges, kernel features, tools, toolchains. Starts and changes nothing."""
        ...

    def planned_topology(self, scenario: Scenario) -> RunTopology:
        """The nodes the run will have, with illustrative addresses (for --dry-run). Starts nothing."""
        ...

    def allowed_addresses(self) -> AddressAllowList:
        """Where this run's traffic may go: handed to the load plan, Prometheus and mapload."""
        ...

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        """Start every replica of every target and return once all serve. Side effect: processes/pods."""
        ...

    def target_admin(self, replica: ReplicaEndpoint) -> TargetAdmin:
        """How the controller reaches ``replica``'s admin endpoint."""
        ...

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> PrometheusAPI:
        """Start Prometheus scraping every replica and every load worker; return a client once it is ready."""
        ...

    def start_load(self, scenario: Scenario, plan: WorkloadPlan) -> None:
        """Start the Locust master and workers on ``plan``, held before their first phase: no request
        may reach a target before release_load(). A backend may also start nothing until then."""
        ...

    def release_load(self) -> None:
        """Begin the load's first phase; return once it began. The load follows the phases and stops by itself."""
        ...

    def load_started_at(self) -> float:
        """time.monotonic() when the load's first phase began: the origin of the phase timeline."""
        ...

    def wait_load(self, timeout_s: float) -> LoadResult:
        """Wait for the load to end (raise InfrastructureError after ``timeout_s``); return its result."""
        ...

    def start_faults(self) -> FaultInjector:
        """Start the fault engine (the chaos agent); faults then go through it."""
        ...

    def topology(self) -> RunTopology:
        """The run's live nodes, groups and pids, to resolve faults against."""
        ...

    def logs(self) -> dict[str, Path]:
        """Each component's log file, by component name (kept with the report)."""
        ...

    def exited_components(self) -> list[ComponentExit]:
        """Components that have stopped since the last call (each reported once)."""
        ...

    def teardown(self) -> list[str]:
        """Stop and remove everything this backend made; idempotent. Returns problems, never raises."""
        ...


class BackendFactory(Protocol):
    """What the registry holds for each backend (its class): a way to make one per run, and dead-run cleanup."""

    @property
    def name(self) -> str: ...

    def __call__(self, *, run_id: str, run_dir: Path) -> Backend: ...

    def list_runs(self) -> list[RunListing]:
        """Runs this backend knows of on this machine or cluster (alive or dead)."""
        ...

    def cleanup(self, *, run_id: str | None = None, force: bool = False) -> list[CleanupReport]:
        """Remove what dead runs left (only ``run_id`` if given). Leaves runs whose controller lives."""
        ...
