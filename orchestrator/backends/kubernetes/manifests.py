"""The Kubernetes objects of one run, as plain dicts (pure: no API calls, unit-tested as data).

    ConfigMap  mapquake-run-<id>             the run object: owner of everything below
    Secret     mq-<id>-admin                 the run's admin token (maptarget's /admin/gc, Replicate)
    per target:
      Service      mq-<id>-<target>          headless: stable names <pod>.<svc> for peers and scrapes
      StatefulSet  mq-<id>-<target>          the replicas, pods mq-<id>-<target>-<i>
    ConfigMap  mq-<id>-load                  the Locust plans (and the user's locustfile)
    Service    mq-<id>-locust                headless, the master (workers dial it by name)
    Service    mq-<id>-workers               headless, the workers (Prometheus scrapes them by name)
    Job        mq-<id>-locust-master         the master: the load completes like a Job
    Job        mq-<id>-locust-workers        indexed: worker i reads plan worker-<i>.json
    ConfigMap  mq-<id>-prometheus            prometheus.yml
    Pod        mq-<id>-prometheus            the run's own Prometheus

Every object carries the run's labels and an owner reference to the run object, so deleting
the run object (or everything with its label) removes the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import __version__
from orchestrator.scenario.spec import Resources, Scenario, TargetSpec

NO_RESOURCES = Resources()
"""No requests, no limits (a caller that passes none)."""
RUN_LABEL = "mapquake.io/run"
TARGET_LABEL = "mapquake.io/target"
ROLE_LABEL = "mapquake.io/role"
REPLICA_LABEL = "mapquake.io/replica"
"""On a split target's pods; other replicas carry the StatefulSet controller's pod-index label."""
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "mapquake"
OPT_IN_LABEL = "mapquake.io/allow-runs"
"""A namespace the controller may use carries ``mapquake.io/allow-runs: "true"``."""
CONTROLLER_ANNOTATION = "mapquake.io/controller"
HEARTBEAT_ANNOTATION = "mapquake.io/heartbeat"
FIELD_MANAGER = "mapquake"
ADMIN_TOKEN_KEY = "token"

HTTP_PORT = 8080
GRPC_PORT = 9090
LOCUST_MASTER_PORT = 5557
WORKER_METRICS_PORT = 9100
PROMETHEUS_PORT = 9090
PLAN_DIR = "/etc/mapquake/load"
CLUSTER_DOMAIN = "cluster.local"


def default_images() -> dict[str, str]:
    return {"maptarget": f"mapquake/maptarget:{__version__}", "mapquake": f"mapquake/mapquake:{__version__}"}


@dataclass(frozen=True)
class RunNames:
    """Every object name of run ``run_id`` in ``namespace`` (names are DNS labels, ≤ 63 characters).

    A target in ``split`` runs one StatefulSet per replica (pods ``<target>-<i>-0``): its args
    differ per replica ({peers}, {replica}), which one shared pod template cannot say.
    """

    run_id: str
    namespace: str
    split: frozenset[str] = frozenset()

    @property
    def run_object(self) -> str:
        return f"mapquake-run-{self.run_id}"

    @property
    def prefix(self) -> str:
        return f"mq-{self.run_id}"

    @property
    def admin_secret(self) -> str:
        return f"{self.prefix}-admin"

    def target(self, target: str) -> str:
        return f"{self.prefix}-{target}"

    def statefulset(self, target: str, replica: int | None = None) -> str:
        """The target's StatefulSet, or (split) replica ``replica``'s own."""
        return self.target(target) if replica is None else f"{self.target(target)}-{replica}"

    def replica_pod(self, target: str, replica: int) -> str:
        if target in self.split:
            return f"{self.statefulset(target, replica)}-0"
        return f"{self.target(target)}-{replica}"

    def replica_host(self, target: str, replica: int) -> str:
        """The replica's stable DNS name (headless Service): what peers and Prometheus use."""
        return f"{self.replica_pod(target, replica)}.{self.target(target)}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    @property
    def load_config(self) -> str:
        return f"{self.prefix}-load"

    @property
    def master_service(self) -> str:
        return f"{self.prefix}-locust"

    @property
    def master_host(self) -> str:
        return f"{self.master_service}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    @property
    def workers_service(self) -> str:
        return f"{self.prefix}-workers"

    @property
    def master_job(self) -> str:
        return f"{self.prefix}-locust-master"

    @property
    def workers_job(self) -> str:
        return f"{self.prefix}-locust-workers"

    def worker_host(self, index: int) -> str:
        """An indexed Job's pod i has hostname <job>-<i>; with ``subdomain`` it resolves under the Service."""
        return f"{self.workers_job}-{index}.{self.workers_service}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    @property
    def prometheus(self) -> str:
        return f"{self.prefix}-prometheus"


def run_labels(run_id: str, component: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: component}


def run_selector(run_id: str, **extra: str) -> str:
    """A label selector for the run's objects (``extra``: more label=value pairs, keys with '_' → '/')."""
    parts = [f"{RUN_LABEL}={run_id}"]
    parts += [f"{key}={value}" for key, value in extra.items()]
    return ",".join(parts)


@dataclass(frozen=True)
class Owner:
    """An owner as its children's ownerReference names it (its uid comes from the API server): the
    run object, or the Locust master Job for the workers' Job."""

    name: str
    uid: str
    kind: str = "ConfigMap"
    api_version: str = "v1"

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "blockOwnerDeletion": True,
        }


def _meta(name: str, names: RunNames, component: str, owner: Owner | None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": names.namespace,
        "labels": {**run_labels(names.run_id, component), **labels},
    }
    if owner is not None:
        meta["ownerReferences"] = [owner.reference()]
    return meta


def _template_meta(labels: Mapping[str, str], annotations: Mapping[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def run_object(names: RunNames, *, scenario: str, controller: str, heartbeat: str) -> dict[str, Any]:
    """The run object: a ConfigMap every other object of the run is owned by."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            **_meta(names.run_object, names, "run", None),
            "annotations": {CONTROLLER_ANNOTATION: controller, HEARTBEAT_ANNOTATION: heartbeat},
        },
        "data": {"scenario": scenario},
    }


def admin_secret(names: RunNames, owner: Owner, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names.admin_secret, names, "target", owner),
        "type": "Opaque",
        "stringData": {ADMIN_TOKEN_KEY: token},
    }


def headless_service(
    name: str, names: RunNames, owner: Owner, component: str, selector: Mapping[str, str], ports: Mapping[str, int]
) -> dict[str, Any]:
    """A headless Service; it carries its selector's labels too (a ServiceMonitor selects it by them)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, names, component, owner, **selector),
        "spec": {
            "clusterIP": "None",
            # Peers and Prometheus need every replica's name before it is ready (replication starts at once).
            "publishNotReadyAddresses": True,
            "selector": {RUN_LABEL: names.run_id, **selector},
            "ports": [{"name": port_name, "port": port, "targetPort": port} for port_name, port in ports.items()],
        },
    }


def target_service(names: RunNames, owner: Owner, target: TargetSpec) -> dict[str, Any]:
    return headless_service(
        names.target(target.name),
        names,
        owner,
        "target",
        {TARGET_LABEL: target.name},
        {"http": HTTP_PORT, "grpc": GRPC_PORT},
    )


def _resources(resources: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resources.requests:
        out["requests"] = dict(resources.requests)
    if resources.limits:
        out["limits"] = dict(resources.limits)
    return out


def store_args(target: TargetSpec, names: RunNames) -> list[str]:
    """maptarget's flags for a demo store: the same as locally, peers by their stable names."""
    args = [
        "--store", str(target.store),
        "--http-addr", f"0.0.0.0:{HTTP_PORT}",
        "--grpc-addr", f"0.0.0.0:{GRPC_PORT}",
        "--value-type", target.value_type,
        "--shards", str(target.shards),
        "--rebuild-every", str(target.rebuild_every),
        "--ring-size", str(target.ring_size),
    ]  # fmt: skip
    if target.ring_leak:
        args.append("--ring-leak")
    if target.slice_buffer:
        args += ["--slice-buffer", str(target.slice_buffer)]
    if target.replicate is not None and target.replicas > 1:
        peers = [f"{names.replica_host(target.name, i)}:{GRPC_PORT}" for i in range(target.replicas)]
        # Every pod gets the same list; --self (expanded per pod from its name) drops its own entry.
        self_peer = f"$(POD_NAME).{names.target(target.name)}.{names.namespace}.svc.{CLUSTER_DOMAIN}:{GRPC_PORT}"
        args += ["--peers", ",".join(peers), "--self", self_peer, "--peer-queue", target.replicate.queue]
        args += ["--peer-queue-capacity", str(target.replicate.capacity)]
    return args


def target_statefulset(
    names: RunNames,
    owner: Owner,
    target: TargetSpec,
    *,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    env: Mapping[str, str],
    ready_path: str | None,
    ready_port: int,
    replica: int | None = None,
    pod_labels: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The replicas of ``target`` (or, split, replica ``replica`` alone): one pod each, stable names
    under the target's headless Service, the run's admin token in the environment. ``pod_labels`` and
    ``pod_annotations``: how a Prometheus the run does not own finds and labels the pods (monitoring.py)."""
    labels = {TARGET_LABEL: target.name}
    if replica is not None:
        labels[REPLICA_LABEL] = str(replica)
    container: dict[str, Any] = {
        "name": "target",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": list(args),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            # The chaos agent kills or pauses only processes that carry their run's id.
            {"name": "MAPQUAKE_RUN_ID", "value": names.run_id},
            {
                "name": "MAPTARGET_ADMIN_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": names.admin_secret, "key": ADMIN_TOKEN_KEY}},
            },
            *({"name": key, "value": value} for key, value in env.items()),
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
        ],
        "resources": _resources(target.resources),
    }
    probe: dict[str, Any] = (
        {"httpGet": {"path": ready_path, "port": ready_port}}
        if ready_path is not None
        else {"tcpSocket": {"port": ready_port}}
    )
    container["readinessProbe"] = {**probe, "periodSeconds": 1, "failureThreshold": 3}
    template_labels = {**(pod_labels or {}), **run_labels(names.run_id, "target"), **labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(names.statefulset(target.name, replica), names, "target", owner, **labels),
        "spec": {
            "serviceName": names.target(target.name),
            "replicas": target.replicas if replica is None else 1,
            "podManagementPolicy": "Parallel",  # replicas start together, like the local backend's
            "selector": {"matchLabels": {RUN_LABEL: names.run_id, **labels}},
            "template": {
                "metadata": _template_meta(template_labels, pod_annotations),
                "spec": {
                    "containers": [container],
                    "terminationGracePeriodSeconds": 10,
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                },
            },
        },
    }


def load_config(names: RunNames, owner: Owner, plans: Mapping[str, str]) -> dict[str, Any]:
    """The plans (``master.json``, ``worker-<i>.json``) and, if any, the user's locustfile."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.load_config, names, "load", owner),
        "data": dict(plans),
    }


def _load_pod_spec(
    names: RunNames,
    *,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    plan_file: str,
    env: Mapping[str, str],
    ports: Mapping[str, int],
    resources: Resources,
) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 15,
        "containers": [
            {
                "name": "locust",
                "image": image,
                "imagePullPolicy": pull_policy,
                "command": ["python", "-m", "workloads"],
                "args": list(args),
                "env": [
                    {"name": "MAPQUAKE_PLAN", "value": f"{PLAN_DIR}/{plan_file}"},
                    {"name": "PYTHONUNBUFFERED", "value": "1"},
                    *({"name": key, "value": value} for key, value in env.items()),
                ],
                "ports": [{"name": name, "containerPort": port} for name, port in ports.items()],
                "volumeMounts": [{"name": "load", "mountPath": PLAN_DIR, "readOnly": True}],
                "resources": _resources(resources),
            }
        ],
        "volumes": [{"name": "load", "configMap": {"name": names.load_config}}],
    }


def locust_master_job(
    names: RunNames,
    owner: Owner,
    *,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    env: Mapping[str, str],
    deadline_s: int,
    resources: Resources = NO_RESOURCES,
) -> dict[str, Any]:
    """The master: done when the phases are (``activeDeadlineSeconds`` bounds it if the controller is gone).
    ``resources``: the scenario's kubernetes.locust.master (a CPU request by default)."""
    labels = {ROLE_LABEL: "master"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(names.master_job, names, "load", owner, **labels),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s,
            "template": {
                "metadata": {"labels": {**run_labels(names.run_id, "load"), **labels}},
                "spec": _load_pod_spec(
                    names,
                    image=image,
                    pull_policy=pull_policy,
                    args=args,
                    plan_file="master.json",
                    env=env,
                    ports={"master": LOCUST_MASTER_PORT},
                    resources=resources,
                ),
            },
        },
    }


def locust_workers_job(
    names: RunNames,
    owner: Owner,
    *,
    workers: int,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    env: Mapping[str, str],
    deadline_s: int,
    pod_labels: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
    resources: Resources = NO_RESOURCES,
) -> dict[str, Any]:
    """The workers as one indexed Job owned by the master's Job (``owner``): pod i is worker i, named
    <job>-<i> under the workers' Service; deleting the master deletes them. ``resources``: the
    scenario's kubernetes.locust.worker (a CPU request by default, so a busy node cannot starve them)."""
    labels = {ROLE_LABEL: "worker"}
    spec = _load_pod_spec(
        names,
        image=image,
        pull_policy=pull_policy,
        args=args,
        plan_file="worker-{index}.json",  # workloads.plan fills {index} from JOB_COMPLETION_INDEX
        env=env,
        ports={"metrics": WORKER_METRICS_PORT},
        resources=resources,
    )
    spec["subdomain"] = names.workers_service
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(names.workers_job, names, "load", owner, **labels),
        "spec": {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s,
            "template": {
                "metadata": _template_meta(
                    {**(pod_labels or {}), **run_labels(names.run_id, "load"), **labels}, pod_annotations
                ),
                "spec": spec,
            },
        },
    }


def prometheus_config(names: RunNames, owner: Owner, config_text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.prometheus, names, "prometheus", owner),
        "data": {"prometheus.yml": config_text},
    }


def prometheus_pod(names: RunNames, owner: Owner, *, image: str, pull_policy: str) -> dict[str, Any]:
    """The run's own Prometheus (the Debian server in the mapquake image), TSDB in an emptyDir."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(names.prometheus, names, "prometheus", owner),
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "prometheus",
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": ["/usr/bin/prometheus"],
                    "args": [
                        "--config.file=/etc/prometheus/prometheus.yml",
                        "--storage.tsdb.path=/prometheus",
                        f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}",
                        "--storage.tsdb.retention.time=1d",
                    ],
                    "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
                    "readinessProbe": {
                        "httpGet": {"path": "/-/ready", "port": PROMETHEUS_PORT},
                        "periodSeconds": 1,
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
                        {"name": "data", "mountPath": "/prometheus"},
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": names.prometheus}},
                {"name": "data", "emptyDir": {}},
            ],
        },
    }


def scenario_summary(scenario: Scenario) -> str:
    """What the run object records of its scenario (one line per target; kept small)."""
    lines = [f"name: {scenario.name}", f"source: {scenario.source}"]
    lines += [f"target {t.name}: {t.replicas} replica(s)" for t in scenario.targets]
    return "\n".join(lines)
