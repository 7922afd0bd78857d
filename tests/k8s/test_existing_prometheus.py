"""`prometheus.existing` on the real node: a shared Prometheus that finds the run's pods itself.

The shared server is a real upstream Prometheus (cluster/build-monitoring.sh; Debian's server has no
Kubernetes discovery) in a pod with the usual kubernetes-pods scrape job: Kubernetes service
discovery through the API server, keep pods annotated prometheus.io/scrape, their port and path
from the annotations, a labelmap of the pods' labels. It also scrapes a decoy pod labelled like a
target of another run, so a query that was not scoped to the run would see it. The ServiceMonitor
test runs the real Prometheus Operator (a host process) and the Prometheus resource it manages.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from orchestrator.backends.base import ClusterAccess
from orchestrator.backends.kubernetes.kube import Kube
from orchestrator.backends.kubernetes.pods import is_ready, pod_ip
from tests.k8s.runs import (
    REPO,
    Images,
    core_api,
    load_fell_short,
    mapquake_run,
    run_objects,
    verdicts,
    wait_namespace_gone,
)

pytestmark = pytest.mark.integration

API_SERVER = {"KUBERNETES_SERVICE_HOST": "198.19.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
"""No kube-proxy on the test node: in-cluster clients dial the API server's own address."""
DECOY_RUN = "decoy0"


def kubernetes_pods_job(namespace: str) -> dict[str, Any]:
    """The scrape job most Prometheus installs have for annotated pods (as in Prometheus's example config)."""
    return {
        "job_name": "kubernetes-pods",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep",
             "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "drop", "regex": "Pending|Succeeded|Failed"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "action": "replace",
             "target_label": "__metrics_path__", "regex": "(.+)"},
            {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
             "action": "replace", "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2",
             "target_label": "__address__"},
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }  # fmt: skip


@dataclass(frozen=True)
class MonitoringImages:
    prometheus: str
    config_reloader: str


@pytest.fixture(scope="session")
def monitoring_images(k8s_cluster: Any) -> MonitoringImages:
    """Upstream Prometheus and the operator's config reloader, as images on the node."""
    from cluster import images

    built = {name: images.build_one(name, images.DEFAULT_OUT) for name in ("prometheus", "config-reloader")}
    k8s_cluster.load_images([b.tar for b in built.values()])
    return MonitoringImages(built["prometheus"].ref, built["config-reloader"].ref)


def _wait_ready(kube: Kube, namespace: str, selector: str, what: str) -> dict[str, Any]:
    pods = kube.wait_for(
        "Pod", namespace, selector, lambda pods: len(pods) == 1 and is_ready(pods[0]), timeout_s=120, what=what
    )
    return pods[0]


@pytest.fixture
def shared_prometheus(k8s_cluster: Any, monitoring_images: MonitoringImages, run_namespace: str) -> Iterator[str]:
    """A Prometheus in its own namespace allowed to discover pods in ``run_namespace``; yields its URL."""
    api = k8s_cluster.api()
    core, rbac = core_api(k8s_cluster), client.RbacAuthorizationV1Api(api)
    monitoring = f"mq-monitoring-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=monitoring)))
    try:
        core.create_namespaced_service_account(monitoring, {"metadata": {"name": "prometheus"}})
        rbac.create_namespaced_role(run_namespace, {
            "metadata": {"name": "shared-prometheus"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        })  # fmt: skip
        rbac.create_namespaced_role_binding(run_namespace, {
            "metadata": {"name": "shared-prometheus"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shared-prometheus"},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": monitoring}],
        })  # fmt: skip
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [kubernetes_pods_job(run_namespace)],
        }
        core.create_namespaced_config_map(
            monitoring, {"metadata": {"name": "prometheus"}, "data": {"prometheus.yml": yaml.safe_dump(config)}}
        )
        core.create_namespaced_pod(monitoring, {
            "metadata": {"name": "prometheus", "labels": {"app": "shared-prometheus"}},
            "spec": {
                "serviceAccountName": "prometheus",
                "containers": [{
                    "name": "prometheus", "image": monitoring_images.prometheus, "imagePullPolicy": "Never",
                    "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                             "--web.listen-address=0.0.0.0:9090"],
                    "env": [{"name": k, "value": v} for k, v in API_SERVER.items()],
                    "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9090}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                                     {"name": "data", "mountPath": "/prometheus"}],
                }],
                "volumes": [{"name": "config", "configMap": {"name": "prometheus"}}, {"name": "data", "emptyDir": {}}],
            },
        })  # fmt: skip
        kube = Kube.connect(ClusterAccess(kubeconfig=k8s_cluster.kubeconfig))
        pod = _wait_ready(kube, monitoring, "app=shared-prometheus", "the shared Prometheus")
        yield f"http://{pod_ip(pod)}:9090"
    finally:
        core.delete_namespace(monitoring)
        wait_namespace_gone(core, monitoring)
        api.close()


@pytest.fixture
def decoy(k8s_cluster: Any, k8s_images: Images, run_namespace: str) -> Iterator[None]:
    """A maptarget pod labelled as a target of another run, annotated for the shared server."""
    core = core_api(k8s_cluster)
    labels = {"mapquake_run": DECOY_RUN, "job": "targets", "target": "decoy", "replica": "0", "app": "decoy"}
    core.create_namespaced_pod(run_namespace, {
        "metadata": {"name": "decoy", "labels": labels, "annotations": {
            "prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}},
        "spec": {"containers": [{
            "name": "target", "image": k8s_images.maptarget, "imagePullPolicy": "Never",
            "args": ["--store", "mutexmap", "--http-addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:9090"],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        }]},
    })  # fmt: skip
    kube = Kube.connect(ClusterAccess(kubeconfig=k8s_cluster.kubeconfig))
    _wait_ready(kube, run_namespace, "app=decoy", "the decoy target")
    try:
        yield
    finally:
        core.delete_namespaced_pod("decoy", run_namespace, grace_period_seconds=0)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


def wait_query(url: str, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """``expr``'s result once it is not empty (the server discovers and scrapes within seconds)."""
    deadline = time.monotonic() + timeout_s
    while not (result := query(url, expr)):
        assert time.monotonic() < deadline, f"{expr} is still empty after {timeout_s:.0f} s"
        time.sleep(0.2)  # polls the server's answer; ends as soon as it has the series
    return result


def test_a_shared_prometheus_finding_pods_by_annotations_gives_the_same_verdicts_and_only_the_runs_series(
    k8s_cluster: Any,
    k8s_images: Images,
    chaos_agents: str,
    run_namespace: str,
    shared_prometheus: str,
    decoy: None,
    tmp_path: Path,
) -> None:
    # The decoy is scraped before the run starts: an unscoped `up{job="targets"}` would count it.
    wait_query(shared_prometheus, f'up{{mapquake_run="{DECOY_RUN}"}} == 1')
    done, report = mapquake_run(
        k8s_cluster, k8s_images, run_namespace, "ringbuffer-partition.yaml",
        "--set", f"prometheus.existing.url={shared_prometheus}", "--set", "prometheus.existing.discovery=auto",
        tmp_path=tmp_path,
    )  # fmt: skip
    # A paced scenario: a starved CI node makes it inconclusive naming the shortfall, by design.
    short = load_fell_short(report)
    assert done.returncode == (4 if short else 0), done.stdout[-3000:] + done.stderr[-3000:]
    if not short:
        assert set(verdicts(report).values()) == {"pass"}, verdicts(report)
    run_id = report["run_id"]
    (note,) = [e for e in report["timeline"]["events"] if e["name"] == "prometheus-sources"]
    sources = note["data"]["sources"]
    assert [s for s in sources if s.get("job") == "targets"] == [
        {"job": "targets", "target": "ring", "replica": str(i)} for i in range(3)
    ]
    assert {"job": "load"} in sources
    assert not [s for s in sources if s.get("target") == "decoy"]
    # The shared server holds the run's series under its label, and no object of the run is left.
    scraped = query(shared_prometheus, f'count by (job) (last_over_time(up{{mapquake_run="{run_id}"}}[10m]))')
    assert {r["metric"]["job"]: int(r["value"][1]) for r in scraped} == {"targets": 3, "load": 1}
    assert run_objects(k8s_cluster, run_namespace) == []


def test_a_shared_prometheus_that_cannot_see_the_run_is_named_and_the_run_leaves_nothing(
    k8s_cluster: Any, k8s_images: Images, run_namespace: str, shared_prometheus: str, tmp_path: Path
) -> None:
    """ServiceMonitor discovery asked for on a cluster without the operator's CRD: refused before anything."""
    done, _ = mapquake_run(
        k8s_cluster, k8s_images, run_namespace, "quickstart.yaml",
        "--set", f"prometheus.existing.url={shared_prometheus}",
        "--set", "prometheus.existing.discovery=servicemonitor", tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "does not serve" in done.stderr and "servicemonitors" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_objects(k8s_cluster, run_namespace) == []


# --- ServiceMonitors, with the real Prometheus Operator ------------------------------------------

OPERATOR_LABEL = "operator.prometheus.io/name"
MONITOR_LABELS = {"release": "shared"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _CrdLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus the YAML 1.1 ``=`` (value) scalar one of the operator's CRDs holds."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _wait_established(ext: client.ApiextensionsV1Api, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            assert time.monotonic() < deadline, f"CRD {name} not established after 60 s"
            time.sleep(0.2)  # a CRD's condition is set within a second; no watch helper for CRDs here


def _remove_crds(ext: client.ApiextensionsV1Api, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(client.ApiException):
            ext.delete_custom_resource_definition(name)
    deadline = time.monotonic() + 120
    for name in names:
        while time.monotonic() < deadline:
            try:
                ext.read_custom_resource_definition(name)
            except client.ApiException as err:
                if err.status == 404:
                    break
                raise
            time.sleep(0.5)  # deletion waits for the CRD's objects to go; its end is its absence
        else:
            raise AssertionError(f"CRD {name} still there after 120 s")


@pytest.fixture
def operator_prometheus(
    k8s_cluster: Any, monitoring_images: MonitoringImages, run_namespace: str, tmp_path: Path
) -> Iterator[str]:
    """The Prometheus Operator (a host process, like the control plane) with its CRDs, and a Prometheus
    resource selecting ServiceMonitors labelled release=shared in ``run_namespace``; yields its URL."""
    from cluster import images

    binaries = images.monitoring_binaries(REPO)
    api = k8s_cluster.api()
    ext, core, rbac = client.ApiextensionsV1Api(api), core_api(k8s_cluster), client.RbacAuthorizationV1Api(api)
    crds = [yaml.load(p.read_text(), Loader=_CrdLoader) for p in sorted((binaries / "crds").glob("*.yaml"))]
    names = [crd["metadata"]["name"] for crd in crds]
    monitoring = f"mq-monitoring-{secrets.token_hex(3)}"
    operator: subprocess.Popen[bytes] | None = None
    try:
        for crd in crds:
            ext.create_custom_resource_definition(crd)
        _wait_established(ext, names)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=monitoring)))
        core.create_namespaced_service_account(monitoring, {"metadata": {"name": "prometheus"}})
        rbac.create_namespaced_role(run_namespace, {
            "metadata": {"name": "shared-prometheus"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            ],
        })  # fmt: skip
        rbac.create_namespaced_role_binding(run_namespace, {
            "metadata": {"name": "shared-prometheus"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shared-prometheus"},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": monitoring}],
        })  # fmt: skip
        pki = k8s_cluster.paths.pki
        log = (tmp_path / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                str(binaries / "operator"), "--apiserver=https://198.19.0.1:6443", f"--ca-file={pki / 'ca.crt'}",
                f"--cert-file={pki / 'admin.crt'}", f"--key-file={pki / 'admin.key'}",
                f"--prometheus-config-reloader={monitoring_images.config_reloader}",
                f"--namespaces={monitoring},{run_namespace}",
                f"--web.listen-address=127.0.0.1:{_free_port()}",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "monitoring.coreos.com", "v1", monitoring, "prometheuses", {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": "shared", "namespace": monitoring},
                "spec": {
                    "image": monitoring_images.prometheus, "version": "v3.5.0", "replicas": 1,
                    "serviceAccountName": "prometheus",
                    "serviceMonitorSelector": {"matchLabels": MONITOR_LABELS},
                    "serviceMonitorNamespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": run_namespace}},
                    # The run's ServiceMonitors bring their own interval (the scenario's, 1 s).
                    "scrapeInterval": "30s",
                    # No kube-proxy here: the server dials the API server's own address (API_SERVER).
                    "containers": [{"name": "prometheus",
                                    "env": [{"name": k, "value": v} for k, v in API_SERVER.items()]}],
                },
            },
        )  # fmt: skip
        kube = Kube.connect(ClusterAccess(kubeconfig=k8s_cluster.kubeconfig))
        pod = _wait_ready(kube, monitoring, f"{OPERATOR_LABEL}=shared", "the operator's Prometheus")
        yield f"http://{pod_ip(pod)}:9090"
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(monitoring)
            wait_namespace_gone(core, monitoring)
        _remove_crds(ext, names)
        api.close()


def test_servicemonitors_through_the_real_operator_give_the_same_verdicts_and_label_each_worker(
    k8s_cluster: Any, k8s_images: Images, run_namespace: str, operator_prometheus: str, tmp_path: Path
) -> None:
    done, report = mapquake_run(
        k8s_cluster, k8s_images, run_namespace, "quickstart.yaml",
        "--set", f"prometheus.existing.url={operator_prometheus}",
        "--set", "prometheus.existing.monitor_labels.release=shared",
        # the operator rewrites the config Secret, the kubelet refreshes the volume: about a minute
        "--set", "prometheus.existing.discovery_timeout=4m", tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert verdicts(report) == {"heap-matches-model": "pass", "p99-write-latency": "pass", "no-crash": "pass"}
    (note,) = [e for e in report["timeline"]["events"] if e["name"] == "prometheus-sources"]
    assert note["data"]["sources"] == [
        {"job": "load", "worker": "0"},
        {"job": "targets", "replica": "0", "target": "kv"},
    ]
    run_id = report["run_id"]
    # The run's own interval, not the server's 30 s: Prometheus saw many scrapes in one run.
    scrapes = query(operator_prometheus, f'count_over_time(up{{mapquake_run="{run_id}", job="targets"}}[10m])')
    assert int(scrapes[0]["value"][1]) > 20
    monitors = client.CustomObjectsApi(k8s_cluster.api()).list_namespaced_custom_object(
        "monitoring.coreos.com", "v1", run_namespace, "servicemonitors"
    )
    assert monitors["items"] == []  # owned by the run object: gone with the run
    assert run_objects(k8s_cluster, run_namespace) == []
