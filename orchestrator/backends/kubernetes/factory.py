"""The Kubernetes backend as the registry holds it: bound to one way of reaching the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.backends.base import CleanupReport, ClusterAccess, RunListing
from orchestrator.backends.kubernetes import manifests as m
from orchestrator.backends.kubernetes.backend import DEAD_AFTER_S, KubernetesBackend, remove_run
from orchestrator.backends.kubernetes.kube import Kube


@dataclass(frozen=True)
class KubernetesFactory:
    """Makes one ``KubernetesBackend`` per run; lists and removes runs in ``namespace``."""

    access: ClusterAccess = field(default_factory=ClusterAccess)
    name: str = KubernetesBackend.name

    @property
    def namespace(self) -> str:
        return self.access.namespace or "mapquake-runs"

    def __call__(self, *, run_id: str, run_dir: Path) -> KubernetesBackend:
        return KubernetesBackend(run_id=run_id, run_dir=run_dir, access=self.access)

    def _runs(self, kube: Kube) -> list[tuple[str, float | None, str]]:
        """(run id, heartbeat age in seconds or None, controller) of every run object in the namespace."""
        found = []
        selector = f"{m.MANAGED_BY_LABEL}={m.MANAGED_BY},{m.COMPONENT_LABEL}=run"
        for obj in kube.list_objects("ConfigMap", self.namespace, selector):
            meta = obj["metadata"]
            annotations = meta.get("annotations") or {}
            age = None
            try:
                beat = datetime.fromisoformat(annotations.get(m.HEARTBEAT_ANNOTATION, ""))
                age = (datetime.now(UTC) - beat).total_seconds()
            except ValueError:
                pass
            found.append((meta["labels"][m.RUN_LABEL], age, annotations.get(m.CONTROLLER_ANNOTATION, "?")))
        return found

    def list_runs(self) -> list[RunListing]:
        listings = []
        for run_id, age, controller in self._runs(Kube.connect(self.access)):
            state = "dead" if age is None or age > DEAD_AFTER_S else "alive"
            beat = "never" if age is None else f"{age:.0f}s ago"
            listings.append(
                RunListing(run_id, f"controller {controller} ({state}, heartbeat {beat}) in {self.namespace}")
            )
        return listings

    def cleanup(self, *, run_id: str | None = None, force: bool = False) -> list[CleanupReport]:
        """Remove runs whose controller stopped its heartbeat (``run_id``: only that one; ``force``: even live)."""
        kube = Kube.connect(self.access)
        reports = []
        runs = {rid: age for rid, age, _ in self._runs(kube)}
        if run_id is not None and run_id not in runs:
            runs = {run_id: None}  # no run object: still sweep whatever carries its label
        for rid, age in runs.items():
            if run_id is not None and rid != run_id:
                continue
            alive = age is not None and age <= DEAD_AFTER_S
            if alive and not force:
                continue
            names = m.RunNames(rid, self.namespace)
            before = len(kube.list_objects("Pod", self.namespace, m.run_selector(rid)))
            problems = remove_run(kube, names)
            reports.append(CleanupReport(rid, {"pods": before}, tuple(problems)))
        return reports
