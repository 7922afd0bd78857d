"""Prometheus scrape configuration: the jobs a run scrapes, rendered to prometheus.yml (pure).

Every target address must be on the run's address allow-list (orchestrator.core.safety), which the
backend supplies: Prometheus never scrapes anything the run did not create.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.safety import LOOPBACK_ONLY, AddressAllowList, UnsafeAddressError

SCRAPE_INTERVAL = "1s"
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape: ``address`` is host:port; ``labels`` are attached to its series."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str | None = None
    """Scrape this path instead of the job's (a user's service may serve metrics elsewhere)."""


@dataclass(frozen=True)
class ScrapeJob:
    """A Prometheus scrape job: a name (the ``job`` label) and its targets."""

    name: str
    targets: Sequence[ScrapeTarget]
    metrics_path: str = "/metrics"


def _check_address(job: str, address: str, allowed: AddressAllowList) -> list[str]:
    try:
        allowed.check(address)
    except UnsafeAddressError:
        return [f"job {job!r}: target {address!r} is outside {allowed.describe()}"]
    except ValueError:
        return [f"job {job!r}: target {address!r} is not host:port"]
    return []


def _labels(target: ScrapeTarget) -> dict[str, Any]:
    # Prometheus takes a target's metrics path from its __metrics_path__ label.
    labels = {**target.labels, **({"__metrics_path__": target.metrics_path} if target.metrics_path else {})}
    return {"labels": labels} if labels else {}


def validate_jobs(jobs: Sequence[ScrapeJob], allowed: AddressAllowList = LOOPBACK_ONLY) -> list[str]:
    """Every problem with ``jobs`` (pure): duplicate names, bad label names, targets off ``allowed``."""
    problems: list[str] = []
    seen: set[str] = set()
    for job in jobs:
        if not job.name or job.name in seen:
            problems.append(f"job name {job.name!r} is empty or repeated")
        seen.add(job.name)
        if not job.targets:
            problems.append(f"job {job.name!r} has no targets")
        for target in job.targets:
            problems += _check_address(job.name, target.address, allowed)
            for label in target.labels:
                if not _LABEL_RE.match(label) or label.startswith("__") or label in ("job", "instance"):
                    problems.append(f"job {job.name!r}: label name {label!r} is not allowed")
    return problems


def render_config(
    jobs: Sequence[ScrapeJob],
    *,
    allowed: AddressAllowList = LOOPBACK_ONLY,
    scrape_interval: str = SCRAPE_INTERVAL,
    external_labels: Mapping[str, str] | None = None,
) -> str:
    """The prometheus.yml text for ``jobs`` (pure). Raises InfrastructureError listing every problem.

    Scrape timeout equals the interval, so a hung target costs one interval, not 10 s.
    """
    problems = validate_jobs(jobs, allowed)
    if problems:
        raise InfrastructureError(
            "invalid Prometheus scrape configuration:\n  " + "\n  ".join(problems),
            hint=f"targets must be host:port on {allowed.describe()}",
        )
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": job.name,
                "metrics_path": job.metrics_path,
                "static_configs": [{"targets": [t.address], **_labels(t)} for t in job.targets],
            }
            for job in jobs
        ],
    }
    if external_labels:
        config["global"]["external_labels"] = dict(external_labels)
    return yaml.safe_dump(config, sort_keys=False)
