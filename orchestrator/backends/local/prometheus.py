"""The local backend's Prometheus: a real server process per run.

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

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger, ResourceKind
from orchestrator.core.processes import read_log_tail, start_process, stop_process
from orchestrator.core.safety import LOOPBACK_ONLY, AddressAllowList
from orchestrator.prometheus.client import PrometheusClient
from orchestrator.prometheus.config import SCRAPE_INTERVAL, ScrapeJob, render_config

if TYPE_CHECKING:
    from orchestrator.backends.local.network import Node

log = logging.getLogger(__name__)

PROMETHEUS_BINARY = Path(os.environ.get("MAPQUAKE_PROMETHEUS", "/usr/bin/prometheus"))
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
HTTP_TIMEOUT_S = 10.0
NETNS_PORT = 9090  # inside a node's private namespace the port is always free
_POLL_S = 0.05
_START_ATTEMPTS = 3  # a host port picked free can be taken before Prometheus binds it


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
        allowed: AddressAllowList = LOOPBACK_ONLY,
        workdir: Path | None = None,
        binary: Path = PROMETHEUS_BINARY,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.ledger = ledger
        self.jobs = list(jobs)
        self.node = node
        self.port = port
        self.scrape_interval = scrape_interval
        self.allowed = allowed
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

    def returncode(self) -> int | None:
        """Its exit code once it has stopped; None while it runs (or before it started)."""
        return self._proc.poll() if self._proc is not None else None

    def write_config(self) -> None:
        """(Re)write prometheus.yml from ``self.jobs``. Side effect: one file in the workdir."""
        text = render_config(
            self.jobs,
            allowed=self.allowed,
            scrape_interval=self.scrape_interval,
            external_labels={"mapquake_run": self.ledger.run_id},
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
        return read_log_tail(self.log_path, lines)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
