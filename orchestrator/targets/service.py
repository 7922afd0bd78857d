"""The user's own service as a target: build it, run a replica, know when it serves, sample its heap.

A service is whatever the scenario's ``build:`` or ``command:`` says, with the addresses mapquake
assigned put in for the placeholders. It serves HTTP on ``{http_addr}`` (metrics there, at the
target's metrics path) and may serve gRPC on ``{grpc_addr}``. Its heap is sampled through
mapprobe's GC handler when the scenario names one (``gc_path``: exact, the handler runs GC
twice) or else read from its own /metrics: mapquake_heap_live_bytes (mapprobe exports it with any
registration) or go_gc_heap_live_bytes, both the heap marked live by the last GC (approximate).
go_memstats_heap_alloc_bytes is never a heap sample: it counts the garbage not yet collected, which
on a busy service is megabytes that no map explains.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.processes import read_log_tail, stop_process
from orchestrator.core.safety import split_host_port
from orchestrator.journal import HeapSample, HeapSource, MapReading
from orchestrator.scenario.spec import ServiceSpec, TargetSpec
from orchestrator.scenario.userparts import expand
from orchestrator.targets.admin import scrape_connection, scrape_samples

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
HTTP_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 600.0
_POLL_S = 0.1
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def build_service(target: TargetSpec, out_dir: Path, go: str, env: Mapping[str, str]) -> Path:
    """``go build`` the target's main package (in its own module) into ``out_dir``; the binary's path.

    ``go`` and ``env`` are the toolchain for the target's Go version. Raises InfrastructureError
    naming the target and carrying the compiler's output.
    """
    assert target.service is not None and target.service.build is not None
    binary = out_dir / target.name
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=target.service.build,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InfrastructureError(f"building target '{target.name}' took over {BUILD_TIMEOUT_S:.0f}s") from None
    if result.returncode != 0:
        raise InfrastructureError(
            f"building target '{target.name}' ({target.service.build}) with Go {target.go} failed:\n"
            f"{result.stderr.strip()[-4000:]}",
            hint=f"try `cd {target.service.build} && go build .`",
        )
    return binary


def service_argv(service: ServiceSpec, binary: Path | None, values: Mapping[str, str]) -> list[str]:
    """The argv of one replica: the built binary and its args, or the command; placeholders expanded."""
    if binary is not None:
        return [str(binary), *(expand(a, values) for a in service.args)]
    assert service.command is not None
    argv = [expand(a, values) for a in service.command]
    if "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = str(Path(service.workdir) / argv[0])  # a relative program is the scenario's, like its paths
    return argv


class ServiceProcess:
    """One replica of a service, started by ``popen`` (inside its namespace) and stopped by its pid."""

    def __init__(
        self,
        target: TargetSpec,
        replica: int,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        http_addr: str,
        grpc_addr: str,
        log_path: Path,
        popen: Callable[..., subprocess.Popen[bytes]],
        placeholders: Mapping[str, str],
    ) -> None:
        assert target.service is not None
        self.target = target
        self.replica = replica
        self.argv = list(argv)
        self.env = dict(env)
        self.http_addr = http_addr
        self.grpc_addr = grpc_addr
        self.log_path = log_path
        self._popen = popen
        self._placeholders = dict(placeholders)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return f"target '{self.target.name}' replica {self.replica}"

    def start(self) -> None:
        """Start it and return once its readiness probe passes; else stop it and raise, saying why."""
        assert self.target.service is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            try:
                self._proc = self._popen(
                    self.argv,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.target.service.workdir,
                )
            except OSError as err:
                raise InfrastructureError(f"{self.label}: cannot start {self.argv[0]}: {err}") from None
        timeout_s = self.target.service.ready.timeout_s
        deadline = time.monotonic() + timeout_s
        last = "not tried yet"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise InfrastructureError(
                    f"{self.label} exited with code {code} before it was ready ({' '.join(self.argv)}):\n"
                    f"{self.log_tail()}",
                    hint=f"full log: {self.log_path}",
                )
            ready, last = self._probe()
            if ready:
                return
            time.sleep(_POLL_S)
        self.stop()
        raise InfrastructureError(
            f"{self.label} was not ready within {timeout_s:g}s: {last}\n{self.log_tail()}",
            hint=f"it must listen on the address mapquake assigns: {{http_addr}} = {self.http_addr} "
            f"(and {{grpc_addr}} = {self.grpc_addr}); pass them in args, command or env",
        )

    def _probe(self) -> tuple[bool, str]:
        """(ready, what the probe saw)."""
        assert self.target.service is not None
        ready = self.target.service.ready
        if ready.tcp is not None:
            addr = self.http_addr if ready.tcp == "http" else self.grpc_addr
            host, port = split_host_port(addr)
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return True, f"{addr} accepts connections"
            except OSError as err:
                return False, f"connect {addr}: {err}"
        url = f"http://{self.http_addr}{ready.http or self.target.service.metrics_path}"
        try:
            with _OPENER.open(url, timeout=2.0) as resp:
                return 200 <= resp.status < 300, f"GET {url}: {resp.status}"
        except urllib.error.HTTPError as err:
            return False, f"GET {url}: {err.code}"
        except (urllib.error.URLError, OSError) as err:
            return False, f"GET {url}: {getattr(err, 'reason', err)}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self) -> int | None:
        """SIGTERM our own pid, then SIGKILL after STOP_GRACE_S. Returns the exit code."""
        return stop_process(self._proc, grace_s=STOP_GRACE_S) if self._proc is not None else None

    def log_tail(self, lines: int = 20) -> str:
        return read_log_tail(self.log_path, lines)


# --- heap samples -------------------------------------------------------------------------------


def maps_from_gc_json(data: Mapping[str, Any]) -> tuple[MapReading, ...]:
    """mapprobe's GC handler lists each registered map; maptarget's own answer has one store."""
    readings = []
    for m in data.get("maps") or ():
        owned = m.get("owned") or {}
        readings.append(
            MapReading(
                map=str(m.get("map", "")),
                entries=int(m["entries"]),
                high_water=int(m.get("high_water", m["entries"])),
                go_type=str(m.get("go_type", "")),
                owned_key_bytes=float(owned["key_bytes_per_entry"]) if owned else None,
                owned_value_bytes=float(owned["value_bytes_per_entry"]) if owned else None,
                owned_sampled=int(owned.get("sampled", 0)) if owned else 0,
            )
        )
    return tuple(readings)


def maps_from_metrics(samples: Sequence[tuple[str, dict[str, str], float]]) -> tuple[MapReading, ...]:
    """The mapprobe series of one /metrics scrape, by ``map`` label."""
    found: dict[str, dict[str, Any]] = {}
    for name, labels, value in samples:
        entry = found.setdefault(labels.get("map", ""), {})
        if name == "mapquake_store_entries":
            entry["entries"] = int(value)
        elif name == "mapquake_store_high_water_entries":
            entry["high_water"] = int(value)
        elif name == "mapquake_store_info":
            entry["go_type"] = labels.get("go_type", "")
        elif name == "mapquake_store_entry_owned_bytes" and labels.get("part") in ("key", "value"):
            entry[f"owned_{labels['part']}"] = value
        elif name == "mapquake_store_entry_owned_sampled_entries":
            entry["owned_sampled"] = int(value)
    return tuple(
        MapReading(
            m,
            int(e["entries"]),
            int(e.get("high_water", e["entries"])),
            str(e["go_type"]),
            owned_key_bytes=e.get("owned_key"),
            owned_value_bytes=e.get("owned_value"),
            owned_sampled=int(e.get("owned_sampled", 0)),
        )
        for m, e in sorted(found.items())
        if "entries" in e and "go_type" in e
    )


def live_heap_from_metrics(samples: Sequence[tuple[str, dict[str, str], float]]) -> tuple[int, HeapSource]:
    """The live heap a /metrics scrape reports, and which series it came from (HeapSource.NONE: none).

    mapquake_heap_live_bytes comes once per mapprobe registration, under that registration's labels;
    every copy is the same process-wide figure, so any one will do.
    """
    for name, _labels, value in samples:
        if name == "mapquake_heap_live_bytes":
            return int(value), HeapSource.MAPPROBE_LIVE
    for name, labels, value in samples:
        if name == "go_gc_heap_live_bytes" and not labels:
            return int(value), HeapSource.GO_COLLECTOR_LIVE
    return 0, HeapSource.NONE


class ServiceAdmin:
    """Heap samples of one service replica: mapprobe's GC handler if it has one, else its /metrics."""

    def __init__(self, service: ServiceSpec, http_addr: str) -> None:
        self.service = service
        self.http_addr = http_addr

    @contextlib.contextmanager
    def warmed_up(self, *, hold_scrape: bool) -> Iterator[ServiceAdmin]:
        """A service's own paths are the user's to warm up; its metrics path is scraped once here."""
        with scrape_connection(self.http_addr, self.service.metrics_path, hold=hold_scrape):
            yield self

    def heap(self) -> HeapSample:
        if self.service.gc_path is not None:
            return self._gc()
        return self._from_metrics()

    def settled_heap(self, *, peers: int) -> tuple[HeapSample, bool]:
        # A service does not count its connections for us: the sample is taken as it is.
        return self.heap(), False

    def _gc(self) -> HeapSample:
        url = f"http://{self.http_addr}{self.service.gc_path}"
        request = urllib.request.Request(url, method="POST")
        try:
            with _OPENER.open(request, timeout=HTTP_TIMEOUT_S) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as err:
            raise InfrastructureError(f"POST {url} failed: {err}", hint="is gc_path mapprobe's GC handler?") from err
        try:
            data = json.loads(raw)
            return HeapSample(
                live_bytes=int(data["live_bytes"]),
                entries=int(data.get("entries", 0)),
                high_water=int(data.get("high_water", data.get("entries", 0))),
                goroutines=int(data.get("goroutines", 0)),
                go_version=str(data.get("go_version", "")),
                go_type=str(data.get("go_type", "")),
                heap_objects=int(data.get("heap_objects", 0)),
                total_alloc_bytes=int(data.get("total_alloc_bytes", 0)),
                maps=maps_from_gc_json(data),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise InfrastructureError(
                f"POST {url} answered what mapprobe's GC handler does not: {raw[:200]!r}"
            ) from err

    def _from_metrics(self) -> HeapSample:
        samples = scrape_samples(self.http_addr, self.service.metrics_path)
        values = {name: value for name, labels, value in samples if not labels}
        # No live-heap figure is not a failed sample: the maps are still read (the run can go on, its
        # other checks can still decide), and the model check says inconclusive with the fix.
        live, source = live_heap_from_metrics(samples)
        goal = next((int(v) for name, _labels, v in samples if name == "mapquake_heap_goal_bytes"), 0)
        version = next((labels.get("version", "") for name, labels, _ in samples if name == "go_info"), "")
        return HeapSample(
            live_bytes=live,
            entries=0,
            high_water=0,
            goroutines=int(values.get("go_goroutines", 0)),
            go_version=version,
            go_type="",
            maps=maps_from_metrics(samples),
            approximate=True,
            source=source,
            gc_headroom_bytes=max(0, goal - live) if goal else 0,
        )
