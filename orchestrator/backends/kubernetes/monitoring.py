"""How a Prometheus the run does not own finds the run's pods (``prometheus.existing``), as pure data.

Either way the run's series end up with the labels the run's own server gives them (``job``,
``target``, ``replica``) plus ``mapquake_run``, so every query the run makes is the same one,
scoped to the run (orchestrator.core.promql). The labels start as plain pod labels:

- ``annotations``: each scraped pod also carries ``prometheus.io/scrape``, ``/port`` and ``/path``.
  The kubernetes-pods job most servers already have (keep on the annotation, take its port and
  path, ``labelmap`` the pod's labels: Prometheus's example configuration and the
  prometheus-community chart) turns the plain pod labels into the series' labels. ``replica`` must
  then be a label of the pod's own template, so every target runs one StatefulSet per replica
  (RunNames.split). Workers are told apart by their ``pod`` label only: an indexed Job's pods share
  one template.
- ``servicemonitor``: one ServiceMonitor per scraped Service (the Prometheus Operator's CRD), with
  the scenario's interval and relabelings that copy the same pod labels, and ``worker`` from the
  indexed Job's completion-index label. ``monitor_labels`` lets the operator's
  serviceMonitorSelector pick them up. The run object owns them, like everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.backends.kubernetes.manifests import Owner, RunNames, run_labels
from orchestrator.core.errors import UsageError
from orchestrator.core.promql import RUN_LABEL

ANNOTATIONS = "annotations"
SERVICE_MONITOR = "servicemonitor"
MONITOR_API = ("monitoring.coreos.com", "v1", "servicemonitors")
"""The ServiceMonitor CRD's group, version and plural."""
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
"""Set by the Job controller on an indexed Job's pods (Kubernetes ≥ 1.28)."""
SCRAPE_ANNOTATIONS = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")


def resolve_discovery(mode: str, *, monitors_served: bool) -> str:
    """The discovery a run uses: ``auto`` picks ServiceMonitors if the cluster serves their CRD."""
    if mode == "auto":
        return SERVICE_MONITOR if monitors_served else ANNOTATIONS
    if mode == SERVICE_MONITOR and not monitors_served:
        raise UsageError(
            "prometheus.existing.discovery is servicemonitor, but this cluster does not serve "
            "monitoring.coreos.com/v1 servicemonitors (the Prometheus Operator's CRDs)",
            hint="install the Prometheus Operator, or set discovery: annotations",
        )
    return mode


def series_labels(run_id: str, job: str, *, target: str | None = None, replica: int | None = None) -> dict[str, str]:
    """Plain pod labels that become the series' labels: what the run's own server would attach."""
    labels = {RUN_LABEL: run_id, "job": job}
    if target is not None:
        labels["target"] = target
    if replica is not None:
        labels["replica"] = str(replica)
    return labels


def scrape_annotations(port: int, path: str) -> dict[str, str]:
    """What a kubernetes-pods job keeps, and where it scrapes."""
    return dict(zip(SCRAPE_ANNOTATIONS, ("true", str(port), path), strict=True))


def interval(seconds: float) -> str:
    """A duration the operator's CRD accepts (whole units: 1s, 500ms, never 0.5s)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"sourceLabels": [f"__meta_kubernetes_pod_label_{source}"], "targetLabel": target, "action": "replace"}


def service_monitor(
    names: RunNames,
    owner: Owner,
    *,
    name: str,
    component: str,
    service_labels: Mapping[str, str],
    port: str,
    path: str,
    interval_s: float,
    labels: Mapping[str, str],
    workers: bool = False,
) -> dict[str, Any]:
    """A ServiceMonitor for the run's Service with ``service_labels``: scrape ``port``/``path`` of its pods."""
    relabelings = [_copy(key, key) for key in (RUN_LABEL, "job", "target", "replica")]
    if workers:
        relabelings.append(_copy(_sanitized(COMPLETION_INDEX_LABEL), "worker"))
    return {
        "apiVersion": "/".join(MONITOR_API[:2]),
        "kind": "ServiceMonitor",
        "metadata": {
            "name": name,
            "namespace": names.namespace,
            "labels": {**labels, **run_labels(names.run_id, component)},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "selector": {"matchLabels": dict(service_labels)},
            "endpoints": [
                {
                    "port": port,
                    "path": path,
                    "interval": interval(interval_s),
                    "scrapeTimeout": interval(interval_s),
                    "relabelings": relabelings,
                }
            ],
        },
    }


def _sanitized(label: str) -> str:
    """A Kubernetes label key as Prometheus's service discovery spells it (non-word characters to _)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in label)
