"""A small typed client for a Prometheus server's HTTP API (whichever backend runs the server).

All HTTP goes through an opener without proxies. The peer is the run's own Prometheus, or (RunScopedClient) an
existing server the scenario names, of which the run sees only its own series.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.promql import RUN_LABEL, ScopeError, scope_to_run
from orchestrator.core.units import parse_duration

HTTP_TIMEOUT_S = 10.0
_POLL_S = 0.05


# --- query results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: a series' labels, the evaluation time (unix s) and the value."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: labels and (unix s, value) points in time order."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]


@dataclass(frozen=True)
class TargetHealth:
    """What Prometheus knows about one scrape target (``/api/v1/targets``)."""

    job: str
    address: str
    health: str  # up | down | unknown
    last_error: str
    labels: dict[str, str]
    scrape_interval_s: float | None = None
    """How often the server scrapes it (None from servers too old to say)."""


class PrometheusAPI(Protocol):
    """The queries a run makes of its Prometheus, whoever runs the server (PrometheusClient has them)."""

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]: ...

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]: ...

    def wait_for_series(self, expr: str, *, timeout: float = 30.0, min_series: int = 1) -> list[Sample]: ...


class PrometheusQueryError(InfrastructureError):
    """Prometheus rejected a query or could not be reached."""


# --- client ----------------------------------------------------------------------------------


class PrometheusClient:
    """Typed access to a Prometheus HTTP API at ``base_url`` (no proxies; plain urllib)."""

    def __init__(self, base_url: str, *, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with self._opener.open(url, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                body = json.load(exc)
            except (json.JSONDecodeError, ValueError):
                raise PrometheusQueryError(f"Prometheus answered {exc.code} for {path}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusQueryError(
                f"cannot reach Prometheus at {self.base_url}: {exc}",
                hint="is the run's Prometheus still running? see prometheus.log in the run directory",
            ) from exc
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"Prometheus {path} failed ({body.get('errorType', '?')}): {body.get('error', body)}",
                hint="check the PromQL expression" if "query" in path else None,
            )
        return body["data"]

    def ready(self) -> bool:
        """True if ``/-/ready`` answers 200 now."""
        try:
            with self._opener.open(f"{self.base_url}/-/ready", timeout=self.timeout) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        """Instant query. A vector gives one Sample per series; a scalar one Sample without labels."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [Sample(dict(r["metric"]), float(r["value"][0]), float(r["value"][1])) for r in result]
        if kind == "scalar":
            return [Sample({}, float(result[0]), float(result[1]))]
        raise PrometheusQueryError(
            f"query {expr!r} returned a {kind}, not an instant vector or scalar",
            hint="use query_range for a range, or wrap a range selector in a function",
        )

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]:
        """Range query from ``start`` to ``end`` (unix s) every ``step`` seconds."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        return [Series(dict(r["metric"]), [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def config_yaml(self) -> str:
        """The configuration the server has loaded (``/api/v1/status/config``)."""
        return str(self._get("/api/v1/status/config")["yaml"])

    def targets(self) -> list[TargetHealth]:
        """Active scrape targets and their health."""
        data = self._get("/api/v1/targets", {"state": "active"})
        return [
            TargetHealth(
                job=t["labels"].get("job", t.get("scrapePool", "")),
                address=t["labels"].get("instance", ""),
                health=t.get("health", "unknown"),
                last_error=t.get("lastError", ""),
                labels=dict(t["labels"]),
                scrape_interval_s=parse_duration(t["scrapeInterval"]) if t.get("scrapeInterval") else None,
            )
            for t in data["activeTargets"]
        ]

    def wait_for_series(self, expr: str, *, timeout: float = 30.0, min_series: int = 1) -> list[Sample]:
        """Poll ``expr`` until it returns at least ``min_series`` samples, or raise after ``timeout`` s.

        The error names each target's health and last scrape error.
        """
        deadline = time.monotonic() + timeout
        samples: list[Sample] = []
        while True:
            samples = self.query(expr)
            if len(samples) >= min_series:
                return samples
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        try:
            health = "; ".join(f"{t.job} {t.address}: {t.health} {t.last_error}".strip() for t in self.targets())
        except PrometheusQueryError as exc:
            health = str(exc)
        raise InfrastructureError(
            f"no data for {expr!r} after {timeout:.0f}s ({len(samples)} of {min_series} series); "
            f"targets: {health or 'none'}",
            hint="is the target up and exporting that metric, and reachable from Prometheus's namespace?",
        )


class RunScopedClient(PrometheusClient):
    """A shared server seen as if it held only run ``run_id``: every query gets ``mapquake_run="<id>"``
    on each selector (orchestrator.core.promql), and ``targets()`` lists only the run's."""

    def __init__(self, base_url: str, run_id: str, *, timeout: float = HTTP_TIMEOUT_S) -> None:
        super().__init__(base_url, timeout=timeout)
        self.run_id = run_id

    def _scoped(self, expr: str) -> str:
        try:
            return scope_to_run(expr, self.run_id)
        except ScopeError as err:
            raise PrometheusQueryError(
                f"query {expr!r} cannot be scoped to run {self.run_id}: {err}",
                hint="a shared Prometheus is queried only with the run's label on every selector",
            ) from err

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        return super().query(self._scoped(expr), at=at)

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]:
        return super().query_range(self._scoped(expr), start=start, end=end, step=step)

    def targets(self) -> list[TargetHealth]:
        return [t for t in super().targets() if t.labels.get(RUN_LABEL) == self.run_id]
