"""The one interface every backend implements, and the facts it hands back to the runner.

A backend owns placement and lifecycle: it deploys target replicas, the load
cluster and Prometheus, tells the runner where they answer, reports components
that died, and tears everything down, idempotently, on every exit path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaos.nemesis import Nemesis
from chaos.resolve import RunTopology
from orchestrator.backends.local.prometheus import PrometheusServer
from orchestrator.scenario.spec import Scenario


@dataclass(frozen=True)
class ReplicaEndpoint:
    """One running target replica."""

    target: str
    replica: int
    http_addr: str
    grpc_addr: str
    node: str
    """Where it runs: a network namespace locally, a pod on Kubernetes."""


@dataclass(frozen=True)
class ComponentExit:
    """A component that stopped on its own during the run."""

    component: str
    """"target:<name>:<replica>", "locust-master", "locust-worker:<i>" or "prometheus"."""
    returncode: int | None
    message: str
    """The fatal line of its log (e.g. "fatal error: concurrent map writes"), or its last lines."""


class Backend(Protocol):
    name: str

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        """Start every replica of every target and return once all serve. Side effect: processes/pods."""
        ...

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> PrometheusServer:
        """Start Prometheus scraping every replica (and the load workers) and return once it is ready."""
        ...

    def start_load(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> None:
        """Start the Locust master and workers; the load follows the phases and stops by itself."""
        ...

    def start_faults(self) -> Nemesis:
        """Start the fault engine (the chaos agent); faults then go through the returned nemesis."""
        ...

    def topology(self) -> RunTopology:
        """The run's nodes, groups and pids, to resolve faults against."""
        ...

    def load_started_at(self) -> float:
        """time.monotonic() when the load's first phase began: the origin of the phase timeline."""
        ...

    def load_finished(self) -> bool:
        """True once the load cluster has ended (its shape ran out of phases)."""
        ...

    def wait_load(self, timeout_s: float) -> dict[str, object]:
        """Wait for the load to end; return its summary (writes per worker, errors, CSV paths)."""
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
