"""What a run's Prometheus scrapes, whichever backend placed the components: the same two jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.backends.base import ReplicaEndpoint
from orchestrator.prometheus.config import ScrapeJob, ScrapeTarget
from orchestrator.scenario.spec import ServiceSpec


def run_scrape_jobs(
    replicas: Sequence[ReplicaEndpoint], services: Mapping[str, ServiceSpec], worker_addrs: Sequence[str]
) -> list[ScrapeJob]:
    """``targets``: every replica (a service on its own metrics path); ``load``: every Locust worker."""
    targets = [
        ScrapeTarget(
            r.http_addr,
            {"target": r.target, "replica": str(r.replica)},
            metrics_path=service.metrics_path if (service := services.get(r.target)) else None,
        )
        for r in replicas
    ]
    workers = [ScrapeTarget(addr, {"worker": str(i)}) for i, addr in enumerate(worker_addrs)]
    return [ScrapeJob(name="targets", targets=targets), ScrapeJob(name="load", targets=workers)]
