"""A real Prometheus server per run, and a small typed client for its HTTP API.

The server is Debian's ``/usr/bin/prometheus`` (package ``prometheus``), started
by mapquake as its own process with its own configuration, storage and listen
address: the distribution's packaged service (port 9090 on the host) is never
used or touched. Everything lives in ``<run dir>/prometheus/``:
``prometheus.yml``, ``data/`` (the TSDB) and ``prometheus.log``.

It runs either on the host (listening on 127.0.0.1) or inside a node's network
namespace (listening on the node's address), so chaos can partition it from the
targets like any other group. Readiness is ``GET /-/ready`` answering 200, polled
until a deadline; ``PrometheusClient.wait_for_series`` waits, the same way, for a
query to return data. It is stopped by its own pid.

All HTTP goes through an opener without proxies: the only peers are loopback and
the run's own 198.18.0.0/15 addresses.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import InfrastructureError
from orchestrator.ledger import Ledger, ResourceKind
from orchestrator.processes import start_process, stop_process

if TYPE_CHECKING:
    from orchestrator.netns import Node

log = logging.getLogger(__name__)

PROMETHEUS_BINARY = Path(os.environ.get("MAPQUAKE_PROMETHEUS", "/usr/bin/prometheus"))
SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
HTTP_TIMEOUT_S = 10.0
NETNS_PORT = 9090  # inside a node's private namespace the port is always free
_POLL_S = 0.05
_START_ATTEMPTS = 3  # a host port picked free can be taken before Prometheus binds it

_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ALLOWED_NETS = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("198.18.0.0/15"),
)


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape: ``address`` is host:port; ``labels`` are attached to its series."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeJob:
    """A Prometheus scrape job: a name (the ``job`` label) and its targets."""

    name: str
    targets: Sequence[ScrapeTarget]
    metrics_path: str = "/metrics"


def _check_address(job: str, address: str) -> list[str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return [f"job {job!r}: target {address!r} is not host:port"]
    host = host.strip("[]")
    if host == "localhost":
        return []
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [f"job {job!r}: target host {host!r} is not an IP address (or localhost)"]
    if not any(ip in net for net in _ALLOWED_NETS):
        return [f"job {job!r}: target {address!r} is outside loopback and 198.18.0.0/15"]
    return []


def validate_jobs(jobs: Sequence[ScrapeJob]) -> list[str]:
    """Every problem with ``jobs`` (pure): duplicate names, bad label names, targets off-limits."""
    problems: list[str] = []
    seen: set[str] = set()
    for job in jobs:
        if not job.name or job.name in seen:
            problems.append(f"job name {job.name!r} is empty or repeated")
        seen.add(job.name)
        if not job.targets:
            problems.append(f"job {job.name!r} has no targets")
        for target in job.targets:
            problems += _check_address(job.name, target.address)
            for label in target.labels:
                if not _LABEL_RE.match(label) or label.startswith("__") or label in ("job", "instance"):
                    problems.append(f"job {job.name!r}: label name {label!r} is not allowed")
    return problems


def render_config(
    jobs: Sequence[ScrapeJob],
    *,
    scrape_interval: str = SCRAPE_INTERVAL,
    external_labels: Mapping[str, str] | None = None,
) -> str:
    """The prometheus.yml text for ``jobs`` (pure). Raises InfrastructureError listing every problem.

    Scrape timeout equals the interval, so a hung target costs one interval, not 10 s.
    """
    problems = validate_jobs(jobs)
    if problems:
        raise InfrastructureError(
            "invalid Prometheus scrape configuration:\n  " + "\n  ".join(problems),
            hint="targets must be host:port on loopback or a run node address (198.18.0.0/15)",
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
                "static_configs": [
                    {"targets": [t.address], **({"labels": dict(t.labels)} if t.labels else {})} for t in job.targets
                ],
            }
            for job in jobs
        ],
    }
    if external_labels:
        config["global"]["external_labels"] = dict(external_labels)
    return yaml.safe_dump(config, sort_keys=False)


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


# --- server ----------------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """A run's Prometheus process. ``start()`` → base URL; ``stop()`` on every exit path.

    ``node``: run inside that node's namespace, listening on ``<node address>:9090``;
    None: run on the host, listening on ``127.0.0.1:<port>`` (a free port if None).
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        jobs: Sequence[ScrapeJob],
        node: Node | None = None,
        port: int | None = None,
        scrape_interval: str = SCRAPE_INTERVAL,
        workdir: Path | None = None,
        binary: Path = PROMETHEUS_BINARY,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.ledger = ledger
        self.jobs = list(jobs)
        self.node = node
        self.port = port
        self.scrape_interval = scrape_interval
        self.workdir = workdir or ledger.dir / "prometheus"
        self.binary = binary
        self.extra_args = list(extra_args)
        self.config_path = self.workdir / "prometheus.yml"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "prometheus.log"
        self.listen_address: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._label = "prometheus"

    @property
    def base_url(self) -> str:
        if self.listen_address is None:
            raise InfrastructureError("Prometheus has not been started")
        return f"http://{self.listen_address}"

    @property
    def client(self) -> PrometheusClient:
        return PrometheusClient(self.base_url)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def write_config(self) -> None:
        """(Re)write prometheus.yml from ``self.jobs``. Side effect: one file in the workdir."""
        text = render_config(
            self.jobs, scrape_interval=self.scrape_interval, external_labels={"mapquake_run": self.ledger.run_id}
        )
        self.config_path.write_text(text)

    def start(self) -> str:
        """Write the config, start Prometheus, wait for ``/-/ready``. Returns the base URL.

        Side effects: the workdir (recorded in the ledger first) and one process
        (recorded, pid + start time). Raises InfrastructureError with the log tail if
        Prometheus exits or is not ready within READY_TIMEOUT_S.
        """
        if not self.binary.exists():
            raise InfrastructureError(
                f"Prometheus binary {self.binary} not found",
                hint="run `make setup` (installs Debian's prometheus package) or set MAPQUAKE_PROMETHEUS",
            )
        if self._proc is not None and self._proc.poll() is None:
            return self.base_url
        self.ledger.record(ResourceKind.DIR, str(self.workdir))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        attempts = 1 if (self.node is not None or self.port is not None) else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if self.node is not None:
                self.listen_address = f"{self.node.address}:{self.port or NETNS_PORT}"
            else:
                self.listen_address = f"127.0.0.1:{self.port or _free_loopback_port()}"
            self._spawn()
            if self._wait_ready():
                log.info(
                    "run %s: Prometheus ready at %s (pid %d)",
                    self.ledger.run_id,
                    self.base_url,
                    self.pid,
                    extra={"run_id": self.ledger.run_id},
                )
                return self.base_url
            exited = self._proc is not None and self._proc.poll() is not None
            tail = self.log_tail()
            self.stop()
            if exited and "address already in use" in tail and attempt < attempts:
                log.info("Prometheus port %s was taken; retrying on another", self.listen_address)
                continue
            raise InfrastructureError(
                f"Prometheus at {self.listen_address} "
                + ("exited before it was ready" if exited else f"was not ready within {READY_TIMEOUT_S:.0f}s")
                + f":\n{tail}",
                hint=f"full log: {self.log_path}",
            )
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        argv = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.listen_address}",
            "--storage.tsdb.retention.time=1d",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log_file:
            if self.node is not None:
                self._proc = self.node.popen(argv, name=self._label, stdout=log_file, stderr=subprocess.STDOUT)
            else:
                self._proc = start_process(
                    argv, ledger=self.ledger, name=self._label, stdout=log_file, stderr=subprocess.STDOUT
                )

    def _wait_ready(self) -> bool:
        client = PrometheusClient(self.base_url, timeout=2.0)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            if client.ready():
                return True
            time.sleep(_POLL_S)
        return False

    def reload(self, jobs: Sequence[ScrapeJob]) -> None:
        """Replace the scrape jobs: rewrite prometheus.yml and SIGHUP the server (by its pid).

        Returns once ``/api/v1/status/config`` shows every new job, or raises after READY_TIMEOUT_S.
        """
        if self._proc is None or self._proc.poll() is not None:
            raise InfrastructureError("Prometheus is not running; cannot reload its configuration")
        self.jobs = list(jobs)
        self.write_config()
        self._proc.send_signal(signal.SIGHUP)
        client = self.client
        deadline = time.monotonic() + READY_TIMEOUT_S
        wanted = {f"job_name: {job.name}" for job in self.jobs}
        while time.monotonic() < deadline:
            loaded = client.config_yaml()
            if all(w in loaded for w in wanted):
                return
            time.sleep(_POLL_S)
        raise InfrastructureError(f"Prometheus did not load the new configuration:\n{self.log_tail()}")

    def stop(self, *, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM our Prometheus by pid, then SIGKILL after ``grace_s``. Returns its exit code.

        The workdir (config, TSDB, log) stays for the report; ``cleanup_run`` or
        ``Ledger.remove`` deletes it with the run's state.
        """
        if self._proc is None:
            return None
        code = stop_process(self._proc, grace_s=grace_s)
        self.ledger.released(ResourceKind.PROCESS, self._label)
        return code

    def remove_workdir(self) -> None:
        """Delete the workdir (config, TSDB, log) of a stopped server and close it in the ledger."""
        if self._proc is not None and self._proc.poll() is None:
            raise InfrastructureError("Prometheus is still running; stop() it before removing its data")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.ledger.released(ResourceKind.DIR, str(self.workdir))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
