"""The local backend: every component in its own network namespace on the run's bridge.

    host (controller) ── bridge mqb<run> 198.18.N.1
        ├── <target>-<i>   maptarget replica, HTTP :8080, gRPC :9090
        ├── load           Locust master and workers (worker i serves metrics on :9100+i)
        └── prometheus     Prometheus :9090, scraping everything every scrape_interval

Nothing routes out of the run's /24. The controller reaches every node through
the bridge. Everything is recorded in the run's ledger before it is created,
so `mapquake cleanup` can remove what a killed controller left.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from chaos.nemesis import Nemesis
from chaos.resolve import RunTopology
from orchestrator.backends.base import ComponentExit, ReplicaEndpoint
from orchestrator.backends.local.locust import LocustCluster, LocustResult
from orchestrator.backends.local.network import LocalNetwork, Node
from orchestrator.backends.local.prometheus import PrometheusServer
from orchestrator.backends.local.topology import replica_node, topology_from_network
from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.core.ledger import Ledger
from orchestrator.prometheus.config import ScrapeJob, ScrapeTarget
from orchestrator.scenario.spec import LoadSpec, PhaseSpec, Scenario, TargetSpec
from orchestrator.targets.build import TargetProcess, ensure_built
from workloads.keyspace import KeySpec
from workloads.plan import Phase, WorkloadPlan

log = logging.getLogger(__name__)

HTTP_PORT = 8080
GRPC_PORT = 9090
LOCUST_MASTER_PORT = 5557
WORKER_METRICS_PORT = 9100
FATAL_MARKERS = ("fatal error:", "panic:")


def fatal_message(log_text: str) -> str:
    """The first fatal line of a Go program's output (what killed it), else its last line."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(FATAL_MARKERS):
            return line
    return lines[-1] if lines else "(no output)"


def _phase(phase: PhaseSpec, load: LoadSpec) -> Phase:
    """A scenario phase as the Locust shape runs it. The scenario's rate is per user; the shape's is
    over all users of the phase (none when the phase pauses the load with users: 0)."""
    users = load.users if phase.users is None else phase.users
    per_user = phase.rate or load.rate
    return Phase(
        name=phase.name,
        duration_s=phase.duration_s,
        users=users,
        spawn_rate=load.spawn_rate,
        rate=per_user * users if per_user and users else None,
    )


def workload_plan(scenario: Scenario, replicas: list[ReplicaEndpoint]) -> WorkloadPlan:
    """The Locust plan for the scenario's load against these replicas (in routing order)."""
    load = scenario.load
    replicated = any(t.replicate is not None for t in scenario.targets)
    if replicated and len(scenario.targets) > 1:
        raise UsageError(
            "a scenario with replication may have only one target (its replicas share every key)",
            hint="split the scenario, or remove replicate from the other targets",
        )
    keys = KeySpec(
        space=load.keys.space,
        distribution=load.keys.distribution,  # type: ignore[arg-type]
        seed=load.keys.seed,
        s=load.keys.s,
        hot_fraction=load.keys.hot_fraction,
        hot_ops=load.keys.hot_ops_fraction,
    )
    phases = tuple(_phase(p, load) for p in scenario.phases)
    write_mode = "stream" if load.stream else ("batch" if load.batch > 1 else "put")
    return WorkloadPlan(
        user=load.user,
        protocol=load.protocol,  # type: ignore[arg-type]
        targets=tuple(r.grpc_addr if load.protocol == "grpc" else r.http_addr for r in replicas),
        keys=keys,
        phases=phases,
        value_type=load.value.type,
        value_size=load.value.size,
        write_mode=write_mode,  # type: ignore[arg-type]
        batch=load.batch,
        read_ratio=load.read_ratio,
        replicated=replicated,
        max_ops_per_worker=load.max_ops,
        # Workers keep serving their final counters for two scrapes after the load stops.
        linger_s=2 * scenario.scrape_interval_s,
        extra={"scenario": scenario.name},
    )


class LocalBackend:
    """Processes in network namespaces on this machine (needs root for namespaces and bridges)."""

    name = "local"

    def __init__(self, *, ledger: Ledger, run_dir: Path) -> None:
        self.ledger = ledger
        self.run_dir = run_dir
        self.network: LocalNetwork | None = None
        self.targets: dict[tuple[str, int], TargetProcess] = {}
        self.prometheus: PrometheusServer | None = None
        self.locust: LocustCluster | None = None
        self.locust_result: LocustResult | None = None
        self._load_node: Node | None = None
        self.nemesis: Nemesis | None = None
        self._reported: set[str] = set()

    # --- targets ------------------------------------------------------------------------

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        # Build first: a build error must not leave a half-made network behind.
        binaries = {t.go: ensure_built(["maptarget"], go_version=t.go)["maptarget"] for t in scenario.targets}
        self.network = LocalNetwork.create(self.ledger.run_id, self.ledger)
        plan: list[tuple[TargetSpec, int, Node]] = []
        for target in scenario.targets:
            for replica in range(target.replicas):
                plan.append((target, replica, self.network.add_node(replica_node(target.name, replica))))
        endpoints = []
        for target, replica, node in plan:
            peers = [f"{n.address}:{GRPC_PORT}" for t, r, n in plan if t.name == target.name and r != replica]
            process = TargetProcess(
                target.store,
                extra_args=self._target_args(target, peers),
                http_addr=f"{node.address}:{HTTP_PORT}",
                grpc_addr=f"{node.address}:{GRPC_PORT}",
                log_dir=self.run_dir / "logs",
                binary=binaries[target.go],
                popen=self._node_popen(node, f"target:{target.name}:{replica}"),
                ready_file=self.run_dir / "targets" / f"{target.name}-{replica}.ready.json",
            )
            process.log_path = self.run_dir / "logs" / f"target-{target.name}-{replica}.log"
            (self.run_dir / "targets").mkdir(parents=True, exist_ok=True)
            self.targets[(target.name, replica)] = process
            process.start()
            endpoints.append(
                ReplicaEndpoint(
                    target=target.name,
                    replica=replica,
                    http_addr=f"{node.address}:{HTTP_PORT}",
                    grpc_addr=f"{node.address}:{GRPC_PORT}",
                    node=node.netns,
                )
            )
        return endpoints

    @staticmethod
    def _target_args(target: TargetSpec, peers: list[str]) -> list[str]:
        args = ["--value-type", target.value_type, "--shards", str(target.shards)]
        args += ["--rebuild-every", str(target.rebuild_every), "--ring-size", str(target.ring_size)]
        if target.ring_leak:
            args.append("--ring-leak")
        if target.slice_buffer:
            args += ["--slice-buffer", str(target.slice_buffer)]
        if target.replicate is not None and peers:
            args += ["--peers", ",".join(peers), "--peer-queue", target.replicate.queue]
            args += ["--peer-queue-capacity", str(target.replicate.capacity)]
        return args

    @staticmethod
    def _node_popen(node: Node, label: str) -> Any:
        def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
            return node.popen(argv, name=label, **kwargs)

        return popen

    # --- Prometheus ---------------------------------------------------------------------

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> PrometheusServer:
        assert self.network is not None, "deploy_targets first"
        node = self.network.add_node("prometheus")
        self._load_node = self.network.add_node("load")
        jobs = [
            ScrapeJob(
                name="targets",
                targets=[ScrapeTarget(r.http_addr, {"target": r.target, "replica": str(r.replica)}) for r in replicas],
            ),
            ScrapeJob(
                name="load",
                targets=[
                    ScrapeTarget(f"{self._load_node.address}:{WORKER_METRICS_PORT + i}", {"worker": str(i)})
                    for i in range(scenario.load.workers)
                ],
            ),
        ]
        interval = f"{scenario.scrape_interval_s:g}s"
        self.prometheus = PrometheusServer(
            ledger=self.ledger, jobs=jobs, node=node, scrape_interval=interval, workdir=self.run_dir / "prometheus"
        )
        self.prometheus.start()
        return self.prometheus

    # --- load ---------------------------------------------------------------------------

    def start_load(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> None:
        assert self._load_node is not None, "start_prometheus creates the load node"
        node = self._load_node

        def popen(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
            with open(log_path, "wb") as log_file:
                return node.popen(
                    argv, name=f"locust:{log_path.stem}", env=env, stdout=log_file, stderr=subprocess.STDOUT
                )

        self.locust = LocustCluster(
            workload_plan(scenario, replicas),
            workers=scenario.load.workers,
            work_dir=self.run_dir / "locust",
            popen=popen,
            master_bind_host=node.address,
            master_port=LOCUST_MASTER_PORT,
            metrics_addrs=[f"{node.address}:{WORKER_METRICS_PORT + i}" for i in range(scenario.load.workers)],
        )
        self.locust.start()

    def load_started_at(self) -> float:
        """time.monotonic() when the load's first phase began (the master starts once all workers joined)."""
        if self.locust is None or self.locust.load_started_at is None:
            raise InfrastructureError("the load has not started")
        return self.locust.load_started_at

    def load_finished(self) -> bool:
        return self.locust is not None and all(p.proc.poll() is not None for p in self.locust.processes)

    def wait_load(self, timeout_s: float) -> LocustResult:
        if self.locust is None:
            raise InfrastructureError("the load was never started")
        self.locust_result = self.locust.wait(timeout_s=timeout_s)
        return self.locust_result

    # --- faults -------------------------------------------------------------------------

    def start_faults(self) -> Nemesis:
        """Start the chaos agent for this run (a helper process that heals by lease if we die)."""
        self.nemesis = Nemesis.start_local(self.ledger, self.run_dir / "chaos")
        return self.nemesis

    def topology(self) -> RunTopology:
        """Every node's address and group, and each target replica's pid (for kill and pause)."""
        assert self.network is not None, "deploy_targets first"
        pids = {replica_node(name, replica): p.pid for (name, replica), p in self.targets.items() if p.pid is not None}
        return topology_from_network(self.network, pids)

    # --- health and logs ----------------------------------------------------------------

    def logs(self) -> dict[str, Path]:
        found = {f"target:{name}:{replica}": p.log_path for (name, replica), p in self.targets.items()}
        if self.prometheus is not None:
            found["prometheus"] = self.prometheus.log_path
        if self.locust is not None:
            found.update({f"locust-{p.role}": p.log_path for p in self.locust.processes})
        return {name: path for name, path in found.items() if path.exists()}

    def exited_components(self) -> list[ComponentExit]:
        exits = []
        for (name, replica), process in self.targets.items():
            component = f"target:{name}:{replica}"
            code = process.returncode()
            if code is not None and component not in self._reported:
                self._reported.add(component)
                exits.append(ComponentExit(component, code, fatal_message(process.log_tail(200))))
        if self.prometheus is not None and self.prometheus.pid is not None and "prometheus" not in self._reported:
            proc = self.prometheus._proc
            if proc is not None and proc.poll() is not None:
                self._reported.add("prometheus")
                exits.append(ComponentExit("prometheus", proc.returncode, self.prometheus.log_tail(5)))
        return exits

    # --- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Stop load, Prometheus and targets, then remove the network. Never raises; returns problems."""
        problems: list[str] = []
        if self.nemesis is not None:  # heal first: nothing may stay cut or paused
            problems += self.nemesis.close()
            self.nemesis = None
        steps: list[tuple[str, Any]] = [
            ("locust", self.locust.stop if self.locust is not None else None),
            ("prometheus", self.prometheus.stop if self.prometheus is not None else None),
            *[(f"target {k[0]}:{k[1]}", p.stop) for k, p in self.targets.items()],
            ("network", self.network.teardown if self.network is not None else None),
        ]
        for what, step in steps:
            if step is None:
                continue
            started = time.monotonic()
            try:
                step()
            except Exception as err:  # keep tearing down: nothing may be left behind
                problems.append(f"{what}: {err}")
            log.debug("teardown %s took %.2fs", what, time.monotonic() - started)
        self.network = None
        self.locust = None
        return problems
