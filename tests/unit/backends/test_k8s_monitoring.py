"""How an existing Prometheus finds a run's pods (backends/kubernetes/monitoring.py), as data (no cluster)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends.kubernetes import manifests as m
from orchestrator.backends.kubernetes import monitoring
from orchestrator.backends.kubernetes.backend import KubernetesBackend, split_targets
from orchestrator.core.errors import UsageError
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import Scenario
from tests.unit.backends.test_k8s_manifests import BASE, OWNER

EXISTING = "prometheus: {scrape_interval: 500ms, existing: {url: 'http://prom.monitoring:9090/', discovery: %s}}\n"


def scenario(discovery: str = "annotations", text: str = BASE) -> Scenario:
    s = load_scenario_text(text + EXISTING % discovery)
    return replace(s, kubernetes=replace(s.kubernetes, namespace="runs"))


def backend_for(s: Scenario, discovery: str) -> KubernetesBackend:
    backend = KubernetesBackend(run_id="0a1b2c3d", run_dir=Path("/nonexistent"))
    backend.configure(s)
    backend._discovery = discovery
    backend.owner = OWNER
    return backend


def template(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj["spec"]["template"]["metadata"]
    return meta


def test_the_scenario_names_the_server_and_how_it_discovers() -> None:
    existing = scenario("servicemonitor").existing_prometheus
    assert existing is not None
    assert (existing.url, existing.discovery, existing.discovery_timeout_s) == (
        "http://prom.monitoring:9090", "servicemonitor", 120.0,
    )  # fmt: skip
    assert load_scenario_text(BASE).existing_prometheus is None


def test_with_annotations_each_replica_is_its_own_statefulset_labelled_as_its_series_will_be() -> None:
    s = scenario("annotations")
    assert split_targets(s) == {"ring"}
    objects = backend_for(s, monitoring.ANNOTATIONS)._statefulsets(s.targets[0], m.default_images())
    assert [o["metadata"]["name"] for o in objects] == [f"mq-0a1b2c3d-ring-{i}" for i in range(3)]
    meta = template(objects[2])
    assert {k: meta["labels"][k] for k in ("mapquake_run", "job", "target", "replica")} == {
        "mapquake_run": "0a1b2c3d", "job": "targets", "target": "ring", "replica": "2",
    }  # fmt: skip
    assert meta["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics",
    }  # fmt: skip
    # The peers are the split pods' stable names; --self drops the pod's own.
    args = objects[2]["spec"]["template"]["spec"]["containers"][0]["args"]
    peers = args[args.index("--peers") + 1].split(",")
    assert peers[0] == f"mq-0a1b2c3d-ring-0-0.mq-0a1b2c3d-ring.runs.svc.cluster.local:{m.GRPC_PORT}"


def test_servicemonitor_discovery_labels_pods_but_does_not_annotate_them() -> None:
    s = scenario("servicemonitor")
    objects = backend_for(s, monitoring.SERVICE_MONITOR)._statefulsets(s.targets[0], m.default_images())
    meta = template(objects[0])
    assert meta["labels"]["job"] == "targets" and "annotations" not in meta


def test_the_runs_own_prometheus_leaves_pods_as_they_were() -> None:
    s = load_scenario_text(BASE)
    backend = KubernetesBackend(run_id="0a1b2c3d", run_dir=Path("/nonexistent"))
    backend.configure(s)
    backend.owner = OWNER
    (only,) = backend._statefulsets(s.targets[0], m.default_images())
    assert "job" not in template(only)["labels"] and "annotations" not in template(only)


def test_one_servicemonitor_per_scraped_service_with_the_runs_interval_and_relabelings() -> None:
    s = scenario("servicemonitor", text=BASE)
    s = replace(s, existing_prometheus=replace(s.existing_prometheus, monitor_labels={"release": "kps"}))
    backend = backend_for(s, monitoring.SERVICE_MONITOR)
    targets, workers = backend._service_monitors(s, s.existing_prometheus)  # type: ignore[arg-type]
    assert targets["kind"] == "ServiceMonitor" and targets["apiVersion"] == "monitoring.coreos.com/v1"
    assert targets["metadata"]["labels"]["release"] == "kps"
    assert targets["metadata"]["labels"][m.RUN_LABEL] == "0a1b2c3d"
    assert targets["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert targets["spec"]["selector"] == {"matchLabels": {m.RUN_LABEL: "0a1b2c3d", m.TARGET_LABEL: "ring"}}
    (endpoint,) = targets["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "500ms")
    copied = {r["targetLabel"]: r["sourceLabels"][0] for r in endpoint["relabelings"]}
    assert copied == {
        "mapquake_run": "__meta_kubernetes_pod_label_mapquake_run",
        "job": "__meta_kubernetes_pod_label_job",
        "target": "__meta_kubernetes_pod_label_target",
        "replica": "__meta_kubernetes_pod_label_replica",
    }
    (worker_endpoint,) = workers["spec"]["endpoints"]
    assert worker_endpoint["port"] == "metrics"
    assert {"targetLabel": "worker", "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_batch_kubernetes_io_job_completion_index"]} in (
        worker_endpoint["relabelings"]
    )  # fmt: skip
    # The Services carry the labels the monitors select them by.
    service = m.target_service(backend.names, OWNER, s.targets[0])
    assert service["metadata"]["labels"][m.TARGET_LABEL] == "ring"


@pytest.mark.parametrize(("seconds", "text"), [(1.0, "1s"), (0.5, "500ms"), (15, "15s"), (1.25, "1250ms")])
def test_intervals_are_written_in_whole_units(seconds: float, text: str) -> None:
    assert monitoring.interval(seconds) == text


def test_auto_discovery_picks_servicemonitors_only_where_their_crd_is_served() -> None:
    assert monitoring.resolve_discovery("auto", monitors_served=True) == monitoring.SERVICE_MONITOR
    assert monitoring.resolve_discovery("auto", monitors_served=False) == monitoring.ANNOTATIONS
    assert monitoring.resolve_discovery("annotations", monitors_served=True) == monitoring.ANNOTATIONS
    with pytest.raises(UsageError, match="does not serve"):
        monitoring.resolve_discovery("servicemonitor", monitors_served=False)


def test_a_shared_server_is_not_a_fault_target_and_has_no_node() -> None:
    s = scenario("annotations")
    backend = KubernetesBackend(run_id="0a1b2c3d", run_dir=Path("/nonexistent"))
    roles = {n.role for n in backend.planned_topology(s).nodes}
    assert "prometheus" not in roles
