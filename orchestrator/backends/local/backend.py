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
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from chaos.nemesis import Nemesis
from chaos.resolve import RunTopology
from orchestrator.backends.base import (
    CleanupReport,
    ComponentExit,
    ComponentKind,
    LoadResult,
    ReplicaEndpoint,
    RunListing,
    TargetAdmin,
)
from orchestrator.backends.local import network
from orchestrator.backends.local.locust import LocustCluster, LocustResult
from orchestrator.backends.local.network import LocalNetwork, Node
from orchestrator.backends.local.prometheus import PROMETHEUS_BINARY, PrometheusServer
from orchestrator.backends.local.topology import planned_topology, replica_node, topology_from_network
from orchestrator.backends.locustargs import require_importable_locustfile
from orchestrator.backends.scrape import run_scrape_jobs
from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.core.ledger import Ledger, ResourceKind, list_runs, process_start_time
from orchestrator.core.processes import fatal_message, start_process, stop_process
from orchestrator.core.safety import LOCAL_RUN, AddressAllowList
from orchestrator.model.toolchains import find as find_toolchain
from orchestrator.prometheus.client import PrometheusClient
from orchestrator.scenario.spec import Scenario, ServiceSpec, TargetSpec
from orchestrator.scenario.userparts import expand
from orchestrator.targets.admin import TargetAdminClient
from orchestrator.targets.build import TargetProcess, ensure_built, go_command
from orchestrator.targets.service import ServiceAdmin, ServiceProcess, build_service, service_argv
from workloads.plan import WorkloadPlan

log = logging.getLogger(__name__)

HTTP_PORT = 8080
GRPC_PORT = 9090
LOCUST_MASTER_PORT = 5557
WORKER_METRICS_PORT = 9100
MIN_TARGET_GO = (1, 23)  # the oldest Go whose dependency versions go_targets/go1.23.mod pins
HOST_TOOLS = ("ip", "nsenter")
FAULT_TOOLS = ("nft", "tc")
SERVICE_BASE_ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
"""What a user's service inherits of the controller's environment; the scenario's env adds to it."""


def unsupported_go(scenario: Scenario) -> list[UsageError]:
    """Targets on a Go older than maptarget's dependencies allow (pure)."""
    errors = []
    for target in scenario.targets:
        major, minor = (int(part) for part in target.go.split(".")[:2])
        if (major, minor) < MIN_TARGET_GO:
            errors.append(
                UsageError(
                    f"target '{target.name}': maptarget builds with Go {MIN_TARGET_GO[0]}.{MIN_TARGET_GO[1]} or "
                    f"newer, not {target.go} (its gRPC and Prometheus libraries need it)",
                    hint=f'set go: "1.23" (classic maps) or "1.26"; to see what Go {target.go}\'s maps cost, use '
                    f"`mapquake model predict|measure TYPE --go {target.go}`",
                )
            )
    return errors


class LocalBackend:
    """Processes in network namespaces on this machine (needs root for namespaces and bridges)."""

    name: ClassVar[str] = "local"

    def __init__(self, *, run_id: str, run_dir: Path) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self._ledger: Ledger | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.network: LocalNetwork | None = None
        self.targets: dict[tuple[str, int], TargetProcess | ServiceProcess] = {}
        self._services: dict[str, ServiceSpec] = {}
        self.prometheus: PrometheusServer | None = None
        self.locust: LocustCluster | None = None
        self.locust_result: LocustResult | None = None
        self._load_node: Node | None = None
        self.nemesis: Nemesis | None = None
        self._reported: set[str] = set()
        # One admin token per run: every maptarget gets it (in its environment) and sends it to its
        # peers with Replicate; the controller sends it with POST /admin/gc.
        self.admin_token = secrets.token_hex(16)

    @property
    def ledger(self) -> Ledger:
        """The run's write-ahead record of everything created (opened by the first deploy step)."""
        if self._ledger is None:
            self._ledger = Ledger.create(self.run_id)
            self._start_watchdog(self._ledger)
        return self._ledger

    def _start_watchdog(self, ledger: Ledger) -> None:
        """The run's dead-man switch (watchdog.py): if this controller dies, the run stops by itself."""
        log_path = self.run_dir / "logs" / "watchdog.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "orchestrator.backends.local.watchdog",
            "--run-id", self.run_id,
            "--controller-pid", str(os.getpid()),
            "--controller-start", str(process_start_time(os.getpid())),
        ]  # fmt: skip
        with open(log_path, "ab") as out:
            self._watchdog = start_process(
                argv, ledger=ledger, name="watchdog", stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    # --- before anything starts ---------------------------------------------------------

    def preflight(self, scenario: Scenario) -> None:
        """Root, the host tools, Prometheus, Go: every problem at once, before anything is created."""
        problems: list[str] = []
        hints: list[str] = []
        for error in unsupported_go(scenario):
            raise error  # a scenario this version cannot run: exit 2 before any machine check
        if scenario.existing_prometheus is not None:
            raise UsageError(
                "prometheus.existing needs backend: kubernetes: a local run's components live in network "
                "namespaces no outside Prometheus can reach",
                hint="remove prometheus.existing (the run starts its own server), or run with --backend kubernetes",
            )
        if os.geteuid() != 0:
            problems.append("the local backend needs root: it creates network namespaces, bridges and nftables rules")
            hints.append("run as root (sudo), or in CI as the root user")
        tools = [*HOST_TOOLS, *(FAULT_TOOLS if any(p.faults for p in scenario.phases) else ())]
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            problems.append(f"missing host tools: {', '.join(missing)}")
            hints.append("run `make setup` (Debian packages iproute2, util-linux, nftables)")
        if not Path("/proc/self/ns/net").exists():
            problems.append("this kernel has no network namespaces (/proc/self/ns/net)")
        if not PROMETHEUS_BINARY.exists():
            problems.append(f"Prometheus binary {PROMETHEUS_BINARY} not found")
            hints.append("run `make setup` (Debian's prometheus package) or set MAPQUAKE_PROMETHEUS")
        try:
            go_command()
        except InfrastructureError as err:
            problems.append(err.message)
            hints.append(err.hint or "")
        require_importable_locustfile(scenario.load.locustfile, "its imports must be installed here")
        if problems:
            raise InfrastructureError(
                "the local backend cannot run here:\n  " + "\n  ".join(problems),
                hint="; ".join(h for h in hints if h) or None,
            )

    def planned_topology(self, scenario: Scenario) -> RunTopology:
        return planned_topology(scenario, run_id=self.run_id)

    def allowed_addresses(self) -> AddressAllowList:
        """Loopback and the run namespaces' 198.18.0.0/15 (nothing routes out of it)."""
        return LOCAL_RUN

    # --- targets ------------------------------------------------------------------------

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        # Build first: a build error must not leave a half-made network behind.
        binaries = self._build(scenario)
        self.network = LocalNetwork.create(self.run_id, self.ledger)
        plan: list[tuple[TargetSpec, int, Node]] = []
        for target in scenario.targets:
            for replica in range(target.replicas):
                plan.append((target, replica, self.network.add_node(replica_node(target.name, replica))))
        endpoints = []
        for target, replica, node in plan:
            siblings = [n for t, r, n in plan if t.name == target.name and r != replica]
            endpoint = ReplicaEndpoint(
                target=target.name,
                replica=replica,
                http_addr=f"{node.address}:{HTTP_PORT}",
                grpc_addr=f"{node.address}:{GRPC_PORT}",
                node=node.netns,
            )
            if target.service is None:
                peers = [f"{n.address}:{GRPC_PORT}" for n in siblings]
                process: TargetProcess | ServiceProcess = self._store_process(
                    target, replica, node, binaries[target.name], peers
                )
            else:
                process = self._service_process(target, replica, node, binaries.get(target.name), siblings)
            self.targets[(target.name, replica)] = process
            process.start()
            endpoints.append(endpoint)
        self._services = {t.name: t.service for t in scenario.targets if t.service is not None}
        return endpoints

    def _build(self, scenario: Scenario) -> dict[str, Path | None]:
        """Each target's binary: maptarget for the demo stores, the user's build for a service."""
        binaries: dict[str, Path | None] = {}
        for target in scenario.targets:
            if target.service is None:
                binaries[target.name] = ensure_built(["maptarget"], go_version=target.go)["maptarget"]
            elif target.service.build is not None:
                toolchain = find_toolchain(target.go)
                binaries[target.name] = build_service(target, self.run_dir / "bin", toolchain.go, toolchain.environ())
            elif target.service.command is None:
                raise UsageError(
                    f"target '{target.name}' gives only an image; the local backend runs build: or command:",
                    hint="add build: (a Go main package) or command:, or run with --backend kubernetes",
                )
        return binaries

    def _store_process(
        self, target: TargetSpec, replica: int, node: Node, binary: Path | None, peers: list[str]
    ) -> TargetProcess:
        assert target.store is not None and binary is not None
        process = TargetProcess(
            target.store,
            extra_args=self._target_args(target, peers),
            http_addr=f"{node.address}:{HTTP_PORT}",
            grpc_addr=f"{node.address}:{GRPC_PORT}",
            log_dir=self.run_dir / "logs",
            binary=binary,
            popen=self._node_popen(node, f"target:{target.name}:{replica}"),
            ready_file=self.run_dir / "targets" / f"{target.name}-{replica}.ready.json",
            admin_token=self.admin_token,
        )
        process.log_path = self.run_dir / "logs" / f"target-{target.name}-{replica}.log"
        (self.run_dir / "targets").mkdir(parents=True, exist_ok=True)
        return process

    def _service_process(
        self, target: TargetSpec, replica: int, node: Node, binary: Path | None, siblings: list[Node]
    ) -> ServiceProcess:
        assert target.service is not None
        values = {
            "http_addr": f"{node.address}:{HTTP_PORT}",
            "grpc_addr": f"{node.address}:{GRPC_PORT}",
            "peers": ",".join(f"{n.address}:{HTTP_PORT}" for n in siblings),
            "grpc_peers": ",".join(f"{n.address}:{GRPC_PORT}" for n in siblings),
            "replica": str(replica),
            "name": target.name,
        }
        env = {**SERVICE_BASE_ENV, **{k: expand(v, values) for k, v in target.service.env.items()}}
        return ServiceProcess(
            target,
            replica,
            service_argv(target.service, binary, values),
            env=env,
            http_addr=values["http_addr"],
            grpc_addr=values["grpc_addr"],
            log_path=self.run_dir / "logs" / f"target-{target.name}-{replica}.log",
            popen=self._node_popen(node, f"target:{target.name}:{replica}"),
            placeholders=values,
        )

    def target_admin(self, replica: ReplicaEndpoint) -> TargetAdmin:
        """The controller reaches every namespace through the run's bridge."""
        service = self._services.get(replica.target)
        if service is not None:
            return ServiceAdmin(service, replica.http_addr)
        return TargetAdminClient(replica.http_addr, replica.grpc_addr, self.admin_token)

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

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> PrometheusClient:
        assert self.network is not None, "deploy_targets first"
        node = self.network.add_node("prometheus")
        self._load_node = self.network.add_node("load")
        workers = [f"{self._load_node.address}:{WORKER_METRICS_PORT + i}" for i in range(scenario.load.workers)]
        jobs = run_scrape_jobs(replicas, self._services, workers)
        interval = f"{scenario.scrape_interval_s:g}s"
        self.prometheus = PrometheusServer(
            ledger=self.ledger,
            jobs=jobs,
            node=node,
            scrape_interval=interval,
            allowed=self.allowed_addresses(),
            workdir=self.run_dir / "prometheus",
        )
        self.prometheus.start()
        return self.prometheus.client

    # --- load ---------------------------------------------------------------------------

    def start_load(self, scenario: Scenario, plan: WorkloadPlan) -> None:
        assert self._load_node is not None, "start_prometheus creates the load node"
        node = self._load_node

        def popen(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
            with open(log_path, "wb") as log_file:
                return node.popen(
                    argv, name=f"locust:{log_path.stem}", env=env, stdout=log_file, stderr=subprocess.STDOUT
                )

        self.locust = LocustCluster(
            plan,
            workers=scenario.load.workers,
            work_dir=self.run_dir / "locust",
            popen=popen,
            master_bind_host=node.address,
            master_port=LOCUST_MASTER_PORT,
            metrics_addrs=[f"{node.address}:{WORKER_METRICS_PORT + i}" for i in range(scenario.load.workers)],
        )
        self.locust.start(gated=True)

    def release_load(self) -> None:
        if self.locust is None:
            raise InfrastructureError("the load was never started")
        self.locust.release()

    def load_started_at(self) -> float:
        """time.monotonic() when the load's first phase began (the master starts once all workers joined)."""
        if self.locust is None or self.locust.load_started_at is None:
            raise InfrastructureError("the load has not started")
        return self.locust.load_started_at

    def wait_load(self, timeout_s: float) -> LoadResult:
        if self.locust is None:
            raise InfrastructureError("the load was never started")
        # Workers linger to serve their final metrics; the run waits for that scrape, not for them.
        self.locust_result = self.locust.wait(timeout_s=timeout_s, leave_lingering=True)
        try:
            entries = self.locust_result.expected()
        except ValueError as err:
            raise InfrastructureError(f"cannot tell the expected entries: {err}") from err
        return LoadResult(
            writes=self.locust_result.writes,
            errors=self.locust_result.errors,
            entries=entries,
            problems=tuple(self.locust_result.problems),
            summaries=tuple(self.locust_result.summaries),
        )

    # --- faults -------------------------------------------------------------------------

    def start_faults(self) -> Nemesis:
        """Start the chaos agent for this run (a helper process that heals by lease if we die)."""
        self.nemesis = Nemesis.start_local(self.ledger, self.run_dir / "chaos")
        return self.nemesis

    def topology(self) -> RunTopology:
        """Every node's address and group, and each target replica's pid (for kill and pause)."""
        assert self.network is not None, "deploy_targets first"
        placed = {replica_node(name, replica): (name, replica) for name, replica in self.targets}
        pids = {replica_node(name, replica): p.pid for (name, replica), p in self.targets.items() if p.pid is not None}
        return topology_from_network(self.network, placed, pids)

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
                message = fatal_message(process.log_tail(200))
                exits.append(ComponentExit(ComponentKind.TARGET, component, code, message, name, replica))
        if self.prometheus is not None and "prometheus" not in self._reported:
            code = self.prometheus.returncode()
            if code is not None:
                self._reported.add("prometheus")
                exits.append(ComponentExit(ComponentKind.PROMETHEUS, "prometheus", code, self.prometheus.log_tail(5)))
        return exits

    # --- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Stop load, Prometheus and targets, then remove the network. Never raises; returns problems."""
        problems: list[str] = []
        if self.nemesis is not None:  # heal first: nothing may stay cut or paused
            problems += self.nemesis.close()
            self.nemesis = None
        locust: list[tuple[str, Any]] = [("locust", self.locust.stop if self.locust is not None else None)]
        # A load that ended goes after Prometheus and the targets: its master is still finishing its
        # own shutdown (about a second: its CSVs), which stop() lets it do while the others stop.
        # A load still running (an interrupted run) stops first, before its targets go.
        load_ended = self.locust is not None and self.locust.load_ended()
        steps: list[tuple[str, Any]] = [
            *([] if load_ended else locust),
            ("prometheus", self.prometheus.stop if self.prometheus is not None else None),
            *[(f"target {k[0]}:{k[1]}", p.stop) for k, p in self.targets.items()],
            *(locust if load_ended else []),
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
        if not problems and self._ledger is not None:
            if self._watchdog is not None:  # with problems it stays: it retries once this process exits
                stop_process(self._watchdog)
                self._ledger.released(ResourceKind.PROCESS, "watchdog")
            self._ledger.remove()  # nothing left open: the run's state goes too
        return problems

    # --- runs whose controller died -------------------------------------------------------

    @classmethod
    def list_runs(cls) -> list[RunListing]:
        listings = []
        for info in list_runs():
            state = "alive" if info.controller_alive else "dead"
            listings.append(
                RunListing(
                    info.run_id,
                    f"controller {info.controller_pid} ({state})  {info.open_resources} open resources",
                )
            )
        for run_id in network.orphaned_run_ids():
            listings.append(RunListing(run_id, "no ledger here: namespaces or links named with it exist (--force)"))
        return listings

    @classmethod
    def cleanup(cls, *, run_id: str | None = None, force: bool = False) -> list[CleanupReport]:
        """Processes, namespaces, veths, bridges and state of dead runs (by their ledgers; with ``force``
        also objects named with a run id that has no ledger here)."""
        if run_id is not None:
            reports = [network.cleanup_run(run_id, force=force)]
        else:
            reports = network.cleanup_all_dead_runs()
            if force:
                reports += [network.cleanup_run(orphan, force=True) for orphan in network.orphaned_run_ids()]
        return [
            CleanupReport(
                r.run_id,
                {"processes": len(r.processes), "namespaces": len(r.netns), "links": len(r.links), "dirs": len(r.dirs)},
                tuple(r.errors),
            )
            for r in reports
        ]
