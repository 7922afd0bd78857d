"""The Kubernetes backend: the run's targets, load and Prometheus as pods in one opted-in namespace.

    run object (ConfigMap mapquake-run-<id>)  ── owns ──┬─ StatefulSet + headless Service per target
                                                         ├─ Secret (the run's admin token)
                                                         ├─ Job locust-master, indexed Job locust-workers
                                                         └─ Pod prometheus (+ its ConfigMap)

The controller talks to the API server (kube.py) and to the pods over the pod network: the
targets' admin endpoints and Prometheus's HTTP API by pod IP. In-cluster traffic (load, scrapes,
replication) uses the stable DNS names of headless Services, so a killed replica keeps its
name. Faults go through the chart's chaos agent DaemonSet (chaos.nemesis, remote agents).

Nothing is created before the namespace's opt-in label is checked. Teardown deletes the run
object (the garbage collector removes what it owns), sweeps anything left by label, and waits
until no pod of the run remains. ``mapquake cleanup --backend kubernetes`` finds run objects whose
controller stopped renewing its heartbeat annotation.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from chaos.resolve import GROUP_LOAD, GROUP_PROMETHEUS, ROLE_TARGET, NodeInfo, RunTopology
from orchestrator.backends.base import (
    ClusterAccess,
    ComponentExit,
    ComponentKind,
    FaultInjector,
    LoadResult,
    ReplicaEndpoint,
    TargetAdmin,
)
from orchestrator.backends.kubernetes import manifests as m
from orchestrator.backends.kubernetes import monitoring
from orchestrator.backends.kubernetes.agents import AGENT_PORT, TOKEN_SECRET, Agent, find_agents
from orchestrator.backends.kubernetes.kube import RUN_KINDS, Kube
from orchestrator.backends.kubernetes.pods import container_exit, is_ready, pod_ip
from orchestrator.backends.kubernetes.reach import PodNetwork, PodReach, PortForwards, reaches
from orchestrator.backends.locustargs import master_args, require_importable_locustfile, user_env, worker_args
from orchestrator.backends.scrape import run_scrape_jobs
from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.core.processes import fatal_message
from orchestrator.core.safety import AddressAllowList
from orchestrator.prometheus.client import PrometheusClient, RunScopedClient
from orchestrator.prometheus.config import render_config
from orchestrator.scenario.spec import ExistingPrometheus, KubernetesSpec, Scenario, ServiceSpec, TargetSpec
from orchestrator.scenario.userparts import expand
from orchestrator.targets.admin import TargetAdminClient
from orchestrator.targets.service import ServiceAdmin
from workloads.plan import (
    LOAD_STARTED_MARKER,
    SUMMARY_LOG_MARKER,
    SUMMARY_TO_LOG,
    WorkerSummary,
    WorkloadPlan,
    expected_entries,
)

log = logging.getLogger(__name__)

TARGETS_READY_S = 180.0
PROMETHEUS_READY_S = 120.0
LOAD_READY_S = 180.0
GONE_TIMEOUT_S = 120.0
HEARTBEAT_S = 10.0
DEAD_AFTER_S = 60.0
"""A run whose heartbeat is older than this has lost its controller (cleanup may remove it)."""
IMAGE_ENV = {"mapquake": "MAPQUAKE_IMAGE", "maptarget": "MAPQUAKE_MAPTARGET_IMAGE"}
"""Image defaults from the environment (the chart's CronJob sets them); the scenario and --image win."""
AGENT_NAMESPACE_ENV = "MAPQUAKE_AGENT_NAMESPACE"
AGENT_SECRET_ENV = "MAPQUAKE_AGENT_TOKEN_SECRET"
IMAGE_GO = "1.26"
"""The Go the maptarget image is built with: demo stores on another Go cannot run here."""
STARTED_PHASES = ("Running", "Succeeded", "Failed")
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
_DISCOVERY_HINT = {
    monitoring.ANNOTATIONS: "the server needs a kubernetes-pods scrape job that keeps pods annotated "
    "prometheus.io/scrape=true, scrapes their prometheus.io/port and /path, and labelmaps "
    "__meta_kubernetes_pod_label_(.+), with RBAC to list pods in the run's namespace (docs/kubernetes.md)",
    monitoring.SERVICE_MONITOR: "the Prometheus resource must select the run's ServiceMonitors "
    "(serviceMonitorSelector: set prometheus.existing.monitor_labels to match; serviceMonitorNamespaceSelector: "
    "the run's namespace) and may list its pods (docs/kubernetes.md)",
}
PER_POD_PLACEHOLDERS = ("{peers}", "{grpc_peers}", "{replica}")
"""Placeholders whose value differs per replica: a StatefulSet's pods share one template."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KubernetesBackend:
    """One run on a cluster (needs the chart's RBAC, or any identity allowed the same verbs)."""

    name: ClassVar[str] = "kubernetes"

    def __init__(self, *, run_id: str, run_dir: Path, access: ClusterAccess | None = None) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.access = access or ClusterAccess()
        self.settings = KubernetesSpec()
        self.names = m.RunNames(run_id, self.settings.namespace)
        self._kube: Kube | None = None
        self.owner: m.Owner | None = None
        self.admin_token = secrets.token_hex(16)
        self._scenario: Scenario | None = None
        self._services: dict[str, ServiceSpec] = {}
        self._replicas: list[ReplicaEndpoint] = []
        self._plan: WorkloadPlan | None = None
        self._load_started_at: float | None = None
        self._pending_load: tuple[Scenario, WorkloadPlan] | None = None
        self._master_log: Path | None = None
        self._follower: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._reported: dict[str, int] = {}
        self.nemesis: FaultInjector | None = None
        self._reach: PodReach | None = None
        self._discovery = monitoring.ANNOTATIONS
        """How an existing Prometheus finds the run's pods (preflight resolves auto)."""

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube.connect(self.access)
        return self._kube

    # --- before anything starts ---------------------------------------------------------

    def configure(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self.settings = scenario.kubernetes
        if self.access.namespace:
            self.settings = replace(self.settings, namespace=self.access.namespace)
        self.names = m.RunNames(self.run_id, self.settings.namespace, split_targets(scenario))

    def preflight(self, scenario: Scenario) -> None:
        """Scenario limits first (exit 2), then the cluster: API reachable, namespace opted in, agent there."""
        self.configure(scenario)
        errors = scenario_errors(scenario)
        if errors:
            raise UsageError("this scenario cannot run on Kubernetes:\n  " + "\n  ".join(errors))
        require_importable_locustfile(scenario.load.locustfile, "the workers import it in the mapquake image")
        namespace = self.settings.namespace
        labels = self.kube.namespace_labels(namespace)
        if labels is None:
            raise InfrastructureError(
                f"namespace '{namespace}' does not exist",
                hint=f"create it with the label {m.OPT_IN_LABEL}=true (or list it in the chart's runNamespaces)",
            )
        if labels.get(m.OPT_IN_LABEL) != "true":
            raise InfrastructureError(
                f"namespace '{namespace}' has not opted in to mapquake runs: nothing was created",
                hint=f"label it: kubectl label namespace {namespace} {m.OPT_IN_LABEL}=true",
            )
        if any(p.faults for p in scenario.phases):
            self._agents()  # raises naming what is missing
        if scenario.existing_prometheus is not None:
            self._check_existing_prometheus(scenario.existing_prometheus)

    def _check_existing_prometheus(self, existing: ExistingPrometheus) -> None:
        """The named server answers, and the way it finds pods is there (before anything is created)."""
        self._discovery = monitoring.resolve_discovery(
            existing.discovery, monitors_served=self.kube.serves(*monitoring.MONITOR_API)
        )
        try:
            RunScopedClient(existing.url, self.run_id).query("vector(1)")
        except InfrastructureError as err:
            raise InfrastructureError(
                f"prometheus.existing: the server at {existing.url} does not answer: {err}",
                hint="give a URL the controller reaches (--set prometheus.existing.url=...), e.g. through "
                "kubectl port-forward from a laptop, or the Service's DNS name from a pod",
            ) from err

    def planned_topology(self, scenario: Scenario) -> RunTopology:
        self.configure(scenario)
        nodes: list[NodeInfo] = []
        for target in scenario.targets:
            for replica in range(target.replicas):
                pod = self.names.replica_pod(target.name, replica)
                nodes.append(
                    NodeInfo(
                        f"{target.name}-{replica}", f"pod/{self.names.namespace}/{pod}", "<pod ip>", "eth0",
                        ROLE_TARGET, target.name, replica,
                    )
                )  # fmt: skip
        if scenario.existing_prometheus is None:
            nodes.append(
                NodeInfo(
                    "prometheus",
                    f"pod/{self.names.namespace}/{self.names.prometheus}",
                    "<pod ip>",
                    "eth0",
                    GROUP_PROMETHEUS,
                )
            )
        nodes.append(
            NodeInfo("load", f"pod/{self.names.namespace}/{self.names.master_job}", "<pod ip>", "eth0", GROUP_LOAD)
        )
        return RunTopology(self.run_id, tuple(nodes), note="planned: pod IPs are known once the pods run")

    def allowed_addresses(self) -> AddressAllowList:
        """The run's own pods: their IPs (the controller dials them) and their stable names (in-cluster)."""
        ips = sorted({f"{ip}/32" for pod in self._run_pods() if (ip := pod_ip(pod))})
        names = [r.http_addr.rsplit(":", 1)[0] for r in self._replicas]
        if self._scenario is not None:
            names += [self.names.worker_host(i) for i in range(self._scenario.load.workers)]
            names.append(self.names.master_host)
        return AddressAllowList.of("127.0.0.0/8", *ips, names=tuple(names))

    # --- targets ------------------------------------------------------------------------

    def deploy_targets(self, scenario: Scenario) -> list[ReplicaEndpoint]:
        self.configure(scenario)
        self._create_run_object(scenario)
        assert self.owner is not None
        self.kube.create(m.admin_secret(self.names, self.owner, self.admin_token))
        images = self._images()
        for target in scenario.targets:
            self.kube.apply(m.target_service(self.names, self.owner, target))
            for statefulset in self._statefulsets(target, images):
                self.kube.apply(statefulset)
        self._services = {t.name: t.service for t in scenario.targets if t.service is not None}
        expected = sum(t.replicas for t in scenario.targets)
        self.kube.wait_for(
            "Pod",
            self.names.namespace,
            m.run_selector(self.run_id) + f",{m.COMPONENT_LABEL}=target",
            lambda pods: len(pods) == expected and all(is_ready(p) for p in pods),
            timeout_s=max([TARGETS_READY_S, *(t.service.ready.timeout_s for t in scenario.targets if t.service)]),
            what=f"the target pods of run {self.run_id} in {self.names.namespace}",
            failed=_failed_pods,
        )
        self._replicas = [
            ReplicaEndpoint(
                target=t.name,
                replica=i,
                http_addr=f"{self.names.replica_host(t.name, i)}:{m.HTTP_PORT}",
                grpc_addr=f"{self.names.replica_host(t.name, i)}:{m.GRPC_PORT}",
                node=f"pod/{self.names.namespace}/{self.names.replica_pod(t.name, i)}",
            )
            for t in scenario.targets
            for i in range(t.replicas)
        ]
        return list(self._replicas)

    def _create_run_object(self, scenario: Scenario) -> None:
        controller = f"{socket.gethostname()}:{os.getpid()}"
        stored = self.kube.apply(
            m.run_object(self.names, scenario=m.scenario_summary(scenario), controller=controller, heartbeat=_now())
        )
        self.owner = m.Owner(stored["metadata"]["name"], stored["metadata"]["uid"])
        self._heartbeat = threading.Thread(target=self._beat, name="k8s-heartbeat", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        """Renew the run object's heartbeat: cleanup tells a live run from one whose controller died."""
        while not self._heartbeat_stop.wait(HEARTBEAT_S):
            try:
                self.kube.patch_annotations(
                    "ConfigMap", self.names.namespace, self.names.run_object, {m.HEARTBEAT_ANNOTATION: _now()}
                )
            except InfrastructureError as err:
                log.warning("heartbeat not renewed: %s", err)

    def _images(self) -> dict[str, str]:
        images = m.default_images()
        # In the chart's CronJob the controller is told its images by environment (the chart's values).
        images.update({name: os.environ[var] for name, var in IMAGE_ENV.items() if os.environ.get(var)})
        if self.settings.maptarget_image:
            images["maptarget"] = self.settings.maptarget_image
        if self.settings.mapquake_image:
            images["mapquake"] = self.settings.mapquake_image
        return images

    def _statefulsets(self, target: TargetSpec, images: Mapping[str, str]) -> list[dict[str, Any]]:
        """The target's StatefulSet; for a split service (per-replica args) one per replica."""
        assert self.owner is not None
        pull = self.settings.pull_policy
        replicas: list[int | None] = list(range(target.replicas)) if target.name in self.names.split else [None]
        if target.service is None:
            return [
                m.target_statefulset(
                    self.names, self.owner, target, image=images["maptarget"], pull_policy=pull,
                    args=m.store_args(target, self.names), env={}, ready_path="/healthz", ready_port=m.HTTP_PORT,
                    replica=replica, **self._pod_scrape("targets", m.HTTP_PORT, "/metrics", target.name, replica),
                )
                for replica in replicas
            ]  # fmt: skip
        service = target.service
        assert service.image is not None  # scenario_errors refused it otherwise
        ready_port = m.GRPC_PORT if service.ready.tcp == "grpc" else m.HTTP_PORT
        objects = []
        for replica in replicas:
            values = self._placeholders(target, replica)
            objects.append(
                m.target_statefulset(
                    self.names, self.owner, target, image=service.image, pull_policy=pull,
                    args=[expand(a, values) for a in service.args],
                    env={k: expand(v, values) for k, v in service.env.items()},
                    ready_path=service.ready.http, ready_port=ready_port, replica=replica,
                    **self._pod_scrape("targets", m.HTTP_PORT, service.metrics_path, target.name, replica),
                )
            )  # fmt: skip
        return objects

    def _pod_scrape(
        self, job: str, port: int, path: str, target: str | None = None, replica: int | None = None
    ) -> dict[str, dict[str, str]]:
        """With an existing Prometheus: the pod labels its series take (and, by annotations, where to scrape)."""
        if self._scenario is None or self._scenario.existing_prometheus is None:
            return {}
        annotations = monitoring.scrape_annotations(port, path) if self._discovery == monitoring.ANNOTATIONS else {}
        labels = monitoring.series_labels(self.run_id, job, target=target, replica=replica)
        return {"pod_labels": labels, "pod_annotations": annotations}

    def _placeholders(self, target: TargetSpec, replica: int | None) -> dict[str, str]:
        """A service's placeholders on Kubernetes: listen on every address, peers by stable names."""
        values = {"http_addr": f"0.0.0.0:{m.HTTP_PORT}", "grpc_addr": f"0.0.0.0:{m.GRPC_PORT}", "name": target.name}
        if replica is not None:
            others = [self.names.replica_host(target.name, i) for i in range(target.replicas) if i != replica]
            values["replica"] = str(replica)
            values["peers"] = ",".join(f"{host}:{m.HTTP_PORT}" for host in others)
            values["grpc_peers"] = ",".join(f"{host}:{m.GRPC_PORT}" for host in others)
        return values

    def target_admin(self, replica: ReplicaEndpoint) -> TargetAdmin:
        """The replica's admin endpoint by its pod's current IP (a killed replica comes back elsewhere)."""
        name = replica.node.rsplit("/", 1)[-1]
        pod = self.kube.get("Pod", self.names.namespace, name)
        ip = pod_ip(pod) if pod else None
        if ip is None:
            raise InfrastructureError(f"replica {replica.target}:{replica.replica} has no pod IP right now")
        http = self._address(self.names.namespace, name, ip, m.HTTP_PORT)
        service = self._services.get(replica.target)
        if service is not None:
            return ServiceAdmin(service, http)
        return TargetAdminClient(http, self._address(self.names.namespace, name, ip, m.GRPC_PORT), self.admin_token)

    # --- Prometheus ---------------------------------------------------------------------

    def start_prometheus(self, scenario: Scenario, replicas: list[ReplicaEndpoint]) -> PrometheusClient:
        assert self.owner is not None, "deploy_targets first"
        if scenario.existing_prometheus is not None:
            return self._use_existing_prometheus(scenario, scenario.existing_prometheus, replicas)
        workers = [f"{self.names.worker_host(i)}:{m.WORKER_METRICS_PORT}" for i in range(scenario.load.workers)]
        jobs = run_scrape_jobs(replicas, self._services, workers)
        text = render_config(jobs, allowed=self.allowed_addresses(), scrape_interval=f"{scenario.scrape_interval_s:g}s")
        images = self._images()
        self.kube.apply(m.prometheus_config(self.names, self.owner, text))
        # Created, not applied: a bare pod is made once, and the chart's Role grants no patch on pods.
        self.kube.create(
            m.prometheus_pod(self.names, self.owner, image=images["mapquake"], pull_policy=self.settings.pull_policy)
        )
        pods = self.kube.wait_for(
            "Pod",
            self.names.namespace,
            m.run_selector(self.run_id) + f",{m.COMPONENT_LABEL}=prometheus",
            lambda pods: len(pods) == 1 and is_ready(pods[0]),
            timeout_s=PROMETHEUS_READY_S,
            what="the run's Prometheus pod",
            failed=_failed_pods,
        )
        address = self._address(self.names.namespace, self.names.prometheus, pod_ip(pods[0]), m.PROMETHEUS_PORT)
        return PrometheusClient(f"http://{address}")

    def _use_existing_prometheus(
        self, scenario: Scenario, existing: ExistingPrometheus, replicas: list[ReplicaEndpoint]
    ) -> PrometheusClient:
        """The run's queries go to a shared server, scoped to the run; return once it scrapes every replica."""
        assert self.owner is not None
        if self._discovery == monitoring.SERVICE_MONITOR:
            for monitor in self._service_monitors(scenario, existing):
                self.kube.apply(monitor)
        client = RunScopedClient(existing.url, self.run_id)
        log.info("using the Prometheus at %s (%s discovery), scoped to the run", existing.url, self._discovery)
        try:
            client.wait_for_series('up{job="targets"} == 1', timeout=existing.discovery_timeout_s,
                                   min_series=len(replicas))  # fmt: skip
        except InfrastructureError as err:
            raise InfrastructureError(
                f"the Prometheus at {existing.url} did not scrape every replica of the run within "
                f"{existing.discovery_timeout_s:g}s ({self._discovery} discovery): {err.message}",
                hint=_DISCOVERY_HINT[self._discovery],
            ) from err
        intervals = [t.scrape_interval_s for t in client.targets() if t.scrape_interval_s is not None]
        slow = sorted(i for i in intervals if i > scenario.scrape_interval_s)
        if slow:
            raise InfrastructureError(
                f"the Prometheus at {existing.url} scrapes the run's pods every {slow[-1]:g}s; the scenario "
                f"needs every {scenario.scrape_interval_s:g}s (prometheus.scrape_interval)",
                hint="set prometheus.scrape_interval to the server's interval (and phases long enough for it), "
                "or use discovery: servicemonitor, which sets the interval per run",
            )
        return client

    def _service_monitors(self, scenario: Scenario, existing: ExistingPrometheus) -> list[dict[str, Any]]:
        assert self.owner is not None
        every, labels = scenario.scrape_interval_s, existing.monitor_labels
        monitors = [
            monitoring.service_monitor(
                self.names, self.owner, name=self.names.target(t.name), component="target",
                service_labels={m.RUN_LABEL: self.run_id, m.TARGET_LABEL: t.name}, port="http",
                path=t.service.metrics_path if t.service else "/metrics", interval_s=every, labels=labels,
            )
            for t in scenario.targets
        ]  # fmt: skip
        monitors.append(
            monitoring.service_monitor(
                self.names, self.owner, name=self.names.workers_service, component="load",
                service_labels={m.RUN_LABEL: self.run_id, m.ROLE_LABEL: "worker"}, port="metrics",
                path="/metrics", workers=True, interval_s=every, labels=labels,
            )
        )  # fmt: skip
        return monitors

    # --- load ---------------------------------------------------------------------------

    def start_load(self, scenario: Scenario, plan: WorkloadPlan) -> None:
        """Nothing yet: the pods start at release_load(), after the baselines (their Jobs start the
        first phase as soon as the workers joined)."""
        self._pending_load = (scenario, plan)

    def release_load(self) -> None:
        """The Locust master Job and the workers' indexed Job; returns once the first phase began."""
        if self._pending_load is None:
            raise InfrastructureError("the load was never started")
        scenario, plan = self._pending_load
        assert self.owner is not None, "deploy_targets first"
        workers = scenario.load.workers
        data: dict[str, str] = {}
        if plan.locustfile is not None:
            # The user's locustfile travels in the ConfigMap; the pods read it where it is mounted.
            source = Path(plan.locustfile)
            data[source.name] = source.read_text()
            plan = replace(plan, locustfile=f"{m.PLAN_DIR}/{source.name}")
        master = replace(plan, worker_count=workers).for_master()
        self._plan = master
        data["master.json"] = json.dumps(master.to_dict(), sort_keys=True)
        for i in range(workers):
            worker = master.for_worker(i, metrics_addr=f"0.0.0.0:{m.WORKER_METRICS_PORT}", summary_path=SUMMARY_TO_LOG)
            data[f"worker-{i}.json"] = json.dumps(worker.to_dict(), sort_keys=True)
        images = self._images()
        deadline = int(master.startup_s + master.load_s + master.cap_s + 60)
        self.kube.apply(m.load_config(self.names, self.owner, data))
        self.kube.apply(
            m.headless_service(
                self.names.master_service, self.names, self.owner, "load", {m.ROLE_LABEL: "master"},
                {"master": m.LOCUST_MASTER_PORT},
            )
        )  # fmt: skip
        self.kube.apply(
            m.headless_service(
                self.names.workers_service, self.names, self.owner, "load", {m.ROLE_LABEL: "worker"},
                {"metrics": m.WORKER_METRICS_PORT},
            )
        )  # fmt: skip
        image, pull, env = images["mapquake"], self.settings.pull_policy, user_env(master)
        margs = master_args(master, workers=workers, bind_host="0.0.0.0", port=m.LOCUST_MASTER_PORT)
        master_job = self.kube.apply(
            m.locust_master_job(
                self.names,
                self.owner,
                image=image,
                pull_policy=pull,
                args=margs,
                env=env,
                deadline_s=deadline,
                resources=scenario.kubernetes.locust_master,
            )
        )
        # The workers belong to the master: the load is one Job tree, gone with its master.
        master_owner = m.Owner(master_job["metadata"]["name"], master_job["metadata"]["uid"], "Job", "batch/v1")
        wargs = worker_args(master, master_host=self.names.master_host, port=m.LOCUST_MASTER_PORT)
        self.kube.apply(
            m.locust_workers_job(
                self.names, master_owner, workers=workers, image=image, pull_policy=pull, args=wargs, env=env,
                deadline_s=deadline, resources=scenario.kubernetes.locust_worker,
                **self._pod_scrape("load", m.WORKER_METRICS_PORT, "/metrics"),
            )
        )  # fmt: skip
        master_pod = self._wait_master_running()
        self._follow_master(master_pod, timeout_s=deadline)
        started = time.monotonic() + LOAD_READY_S + master.startup_s
        while self._load_started_at is None:
            if time.monotonic() > started:
                raise InfrastructureError(
                    "the Locust master never started the first phase",
                    hint=f"see {self._master_log} and the workers' logs in the report",
                )
            if self._follower is not None and not self._follower.is_alive():
                raise InfrastructureError(f"the Locust master ended before the load started: {self._master_tail()}")
            self._follower_started.wait(0.1)

    def _wait_master_running(self) -> str:
        pods = self.kube.wait_for(
            "Pod",
            self.names.namespace,
            m.run_selector(self.run_id, **{m.ROLE_LABEL: "master"}),
            lambda pods: len(pods) >= 1 and (pods[0].get("status") or {}).get("phase") in STARTED_PHASES,
            timeout_s=LOAD_READY_S,
            what="the Locust master pod",
            failed=_failed_pods,
        )
        name: str = pods[0]["metadata"]["name"]
        return name

    def _follow_master(self, pod: str, *, timeout_s: float) -> None:
        """Copy the master's log to the run dir as it is written; note when the first phase starts."""
        self._master_log = self.run_dir / "logs" / "locust-master.log"
        self._master_log.parent.mkdir(parents=True, exist_ok=True)
        self._follower_started = threading.Event()

        def follow() -> None:
            assert self._master_log is not None
            with open(self._master_log, "w") as out:
                try:
                    for line in self.kube.follow_log(self.names.namespace, pod, timeout_s=timeout_s):
                        out.write(line + "\n")
                        out.flush()
                        if self._load_started_at is None and LOAD_STARTED_MARKER in line:
                            self._load_started_at = time.monotonic()
                            self._follower_started.set()
                except Exception as err:  # the log stream ending early is reported by wait_load
                    log.warning("master log stream ended: %s", err)

        self._follower = threading.Thread(target=follow, name="locust-master-log", daemon=True)
        self._follower.start()

    def _master_tail(self) -> str:
        if self._master_log is None or not self._master_log.exists():
            return "(no log)"
        return "\n".join(self._master_log.read_text().splitlines()[-10:])

    def load_started_at(self) -> float:
        if self._load_started_at is None:
            raise InfrastructureError("the load has not started")
        return self._load_started_at

    def wait_load(self, timeout_s: float) -> LoadResult:
        if self._plan is None:
            raise InfrastructureError("the load was never started")
        problems: list[str] = []
        jobs = self.kube.wait_for(
            "Job",
            self.names.namespace,
            m.run_selector(self.run_id, **{m.COMPONENT_LABEL: "load"}),
            lambda jobs: len(jobs) == 2 and all(_job_finished(j) for j in jobs),
            timeout_s=timeout_s + self._plan.linger_s + self._plan.stop_timeout_s,
            what="the Locust Jobs",
        )
        for job in jobs:
            status = job.get("status") or {}
            if not status.get("succeeded"):
                problems.append(f"Job {job['metadata']['name']} failed: {_job_reason(job)}")
        summaries: list[WorkerSummary] = []
        pods = self.kube.list_objects(
            "Pod", self.names.namespace, m.run_selector(self.run_id, **{m.ROLE_LABEL: "worker"})
        )
        by_index = {_completion_index(p): p for p in pods}
        for i in range(self._plan.worker_count):
            pod = by_index.get(i)
            if pod is None:
                problems.append(f"worker {i} has no pod")
                continue
            text = self.kube.pod_log(self.names.namespace, pod["metadata"]["name"])
            lines = [line for line in text.splitlines() if line.startswith(SUMMARY_LOG_MARKER)]
            if not lines:
                problems.append(f"worker {i} ({pod['metadata']['name']}) logged no summary")
                continue
            try:
                summaries.append(WorkerSummary.from_dict(json.loads(lines[-1][len(SUMMARY_LOG_MARKER) :])))
            except (ValueError, KeyError, TypeError) as err:
                problems.append(f"worker {i}: unreadable summary: {err}")
        if len(summaries) != self._plan.worker_count:
            raise InfrastructureError("the Locust load did not complete cleanly:\n  " + "\n  ".join(problems))
        try:
            entries = expected_entries(self._plan, summaries)
        except ValueError as err:
            raise InfrastructureError(f"cannot tell the expected entries: {err}") from err
        return LoadResult(
            writes=sum(s.writes for s in summaries),
            errors=sum(s.errors for s in summaries),
            entries=entries,
            problems=tuple(problems),
            summaries=tuple(summaries),
        )

    # --- faults -------------------------------------------------------------------------

    @property
    def agent_namespace(self) -> str:
        return os.environ.get(AGENT_NAMESPACE_ENV) or self.settings.agent_namespace

    def _agents(self) -> tuple[list[Agent], str]:
        """The chart's chaos agents and their token; raises naming what is missing."""
        return find_agents(self.kube, self.agent_namespace, secret=os.environ.get(AGENT_SECRET_ENV) or TOKEN_SECRET)

    def start_faults(self) -> FaultInjector:
        from chaos.nemesis import Nemesis

        agents, token = self._agents()
        addresses = {a.node: self._address(self.agent_namespace, a.pod, a.host_ip, AGENT_PORT) for a in agents}
        self.nemesis = Nemesis.connect(addresses, token, self.run_id)
        return self.nemesis

    def _address(self, namespace: str, pod: str, ip: str | None, port: int) -> str:
        """Where the controller dials ``port`` of ``pod``: its IP, or a local port-forward (``reach``)."""
        if self._reach is None:
            self._reach = self._choose_reach(ip, port)
            log.info("reaching pods through the %s", self._reach.name)
        return self._reach.address(namespace, pod, ip, port)

    def _choose_reach(self, ip: str | None, port: int) -> PodReach:
        mode = self.settings.reach
        if mode == "pod-network" or (mode == "auto" and ip and reaches(ip, port)):
            return PodNetwork()
        return PortForwards(self.kube.api)

    def topology(self) -> RunTopology:
        """Every pod of the run: its netns (pod/<ns>/<name>), IP, role and the node it runs on."""
        nodes: list[NodeInfo] = []
        pods = {p["metadata"]["name"]: p for p in self._run_pods()}
        for r in self._replicas:
            pod = pods.get(r.node.rsplit("/", 1)[-1])
            nodes.append(
                NodeInfo(
                    f"{r.target}-{r.replica}", r.node, (pod_ip(pod) if pod else None) or "", "eth0", ROLE_TARGET,
                    r.target, r.replica, host=(pod or {}).get("spec", {}).get("nodeName"),
                )
            )  # fmt: skip
        for name, pod in sorted(pods.items()):
            component = pod["metadata"]["labels"].get(m.COMPONENT_LABEL)
            if component not in ("load", "prometheus"):
                continue
            role = GROUP_LOAD if component == "load" else GROUP_PROMETHEUS
            node_name = "prometheus" if role == GROUP_PROMETHEUS else name.removeprefix(self.names.prefix + "-")
            nodes.append(
                NodeInfo(
                    node_name, f"pod/{self.names.namespace}/{name}", pod_ip(pod) or "", "eth0", role,
                    host=pod.get("spec", {}).get("nodeName"),
                )
            )  # fmt: skip
        return RunTopology(self.run_id, tuple(nodes))

    # --- health and logs ----------------------------------------------------------------

    def _run_pods(self) -> list[dict[str, Any]]:
        if self._kube is None or self.owner is None:
            return []
        return self.kube.list_objects("Pod", self.names.namespace, m.run_selector(self.run_id))

    def logs(self) -> dict[str, Path]:
        """Every pod's log, copied into the run dir now (the pods go at teardown)."""
        found: dict[str, Path] = {}
        if self._master_log is not None and self._master_log.exists():
            found["locust-master"] = self._master_log
        out_dir = self.run_dir / "logs"
        out_dir.mkdir(parents=True, exist_ok=True)
        for pod in self._run_pods():
            name = pod["metadata"]["name"]
            component = _component_name(pod)
            if component in found:
                continue
            path = out_dir / f"{component.replace(':', '-')}.log"
            text = self.kube.pod_log(self.names.namespace, name)
            previous = self.kube.pod_log(self.names.namespace, name, previous=True) if _restarts(pod) else ""
            path.write_text((f"--- previous container ---\n{previous}\n--- current ---\n" if previous else "") + text)
            found[component] = path
        return found

    def exited_components(self) -> list[ComponentExit]:
        """Target containers that died (each death once: a restarted replica can die again) and Prometheus."""
        exits = []
        for pod in self._run_pods():
            labels = pod["metadata"]["labels"]
            component = labels.get(m.COMPONENT_LABEL)
            if component not in ("target", "prometheus"):
                continue
            died = container_exit(pod)
            if died is None:
                continue
            count, code = died
            name = _component_name(pod)
            if self._reported.get(name, 0) >= count:
                continue
            self._reported[name] = count
            restarted = _restarts(pod) > 0
            text = self.kube.pod_log(self.names.namespace, pod["metadata"]["name"], previous=restarted, tail=200)
            if component == "target":
                target = labels.get(m.TARGET_LABEL)
                exits.append(
                    ComponentExit(ComponentKind.TARGET, name, code, fatal_message(text), target, _replica_of(pod))
                )
            else:
                exits.append(ComponentExit(ComponentKind.PROMETHEUS, name, code, fatal_message(text)))
        return exits

    # --- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Heal faults, delete the run object and everything it owns, and wait until no pod of the run is left."""
        problems: list[str] = []
        if self.nemesis is not None:
            problems += self.nemesis.close()
            self.nemesis = None
        self._heartbeat_stop.set()
        if self._reach is not None:
            self._reach.close()
        if self._kube is None or self.owner is None:
            return problems
        problems += remove_run(self.kube, self.names)
        return problems

    # --- runs whose controller died (via the factory) -----------------------------------


def remove_run(kube: Kube, names: m.RunNames) -> list[str]:
    """Delete run ``names.run_id``: its run object (the garbage collector follows the owner references),
    then anything still labelled with it; wait until its pods are gone. Returns problems."""
    problems: list[str] = []
    selector = m.run_selector(names.run_id)
    try:
        kube.delete("ConfigMap", names.namespace, names.run_object, foreground=True)
    except InfrastructureError as err:
        problems.append(str(err))
    kinds = [*RUN_KINDS, *(["ServiceMonitor"] if kube.serves(*monitoring.MONITOR_API) else [])]
    for kind in kinds:  # not waiting for the garbage collector: a label sweep is immediate
        try:
            kube.delete_labelled(kind, names.namespace, selector)
        except InfrastructureError as err:
            problems.append(str(err))
    try:
        kube.wait_for(
            "Pod", names.namespace, selector, lambda pods: not pods, timeout_s=GONE_TIMEOUT_S,
            what=f"the pods of run {names.run_id} to go",
        )  # fmt: skip
    except InfrastructureError as err:
        problems.append(str(err))
    return problems


def scenario_errors(scenario: Scenario) -> list[str]:
    """What this backend cannot run, with what to do instead (pure)."""
    errors = []
    for target in scenario.targets:
        if target.service is None and target.go != IMAGE_GO:
            errors.append(
                f"target '{target.name}': go {target.go}: the maptarget image is built with Go {IMAGE_GO}; "
                "run this target with backend: local"
            )
        if target.service is not None and target.service.image is None:
            errors.append(f"target '{target.name}': give image: (a container image of your service)")
    return errors


def split_targets(scenario: Scenario) -> frozenset[str]:
    """Targets whose replicas each get their own StatefulSet (pure): services whose args or env differ per
    replica, and, with an existing Prometheus, every target (``replica`` must be a label of the pod's template)."""
    if scenario.existing_prometheus is not None:
        return frozenset(t.name for t in scenario.targets)
    split = set()
    for target in scenario.targets:
        if target.service is not None:
            texts = (*target.service.args, *target.service.env.values())
            if any(p in text for p in PER_POD_PLACEHOLDERS for text in texts):
                split.add(target.name)
    return frozenset(split)


def _replica_of(pod: dict[str, Any]) -> int:
    """A target pod's replica index: our label on a split target's pods, else the StatefulSet's pod index."""
    labels = pod["metadata"]["labels"]
    index = labels.get(m.REPLICA_LABEL, labels.get(m.POD_INDEX_LABEL, ""))
    return int(index) if str(index).isdigit() else -1


def _component_name(pod: dict[str, Any]) -> str:
    labels = pod["metadata"]["labels"]
    component = labels.get(m.COMPONENT_LABEL)
    if component == "target":
        return f"target:{labels.get(m.TARGET_LABEL)}:{_replica_of(pod)}"
    if component == "prometheus":
        return "prometheus"
    if labels.get(m.ROLE_LABEL) == "master":
        return "locust-master"
    return f"locust-worker-{_completion_index(pod)}"


def _completion_index(pod: dict[str, Any]) -> int:
    """An indexed Job pod's index (-1 if it has none)."""
    index = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION, "")
    return int(index) if str(index).isdigit() else -1


def _restarts(pod: dict[str, Any]) -> int:
    return sum(int(cs.get("restartCount", 0)) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def _failed_pods(pods: list[dict[str, Any]]) -> str | None:
    """A pod that cannot become ready: failed, or waiting on an image that is not there."""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            return f"pod {pod['metadata']['name']} failed: {status.get('message') or status.get('reason') or ''}"
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImageNeverPull", "InvalidImageName", "ErrImagePull", "ImagePullBackOff"):
                return f"pod {pod['metadata']['name']}: {waiting['reason']}: {waiting.get('message', '')}"
            if waiting.get("reason") == "CrashLoopBackOff":
                return f"pod {pod['metadata']['name']} keeps crashing: {waiting.get('message', '')}"
    return None


def _job_finished(job: dict[str, Any]) -> bool:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return True
    return False


def _job_reason(job: dict[str, Any]) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed":
            return f"{cond.get('reason', '')}: {cond.get('message', '')}"
    return "unknown"
