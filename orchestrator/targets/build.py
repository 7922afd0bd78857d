"""Build and run the Go programs in go_targets/: maptarget (the store) and mapload (native load).

The controller builds the binaries itself when they are missing or older than
their sources, so `mapquake` works on a fresh checkout with only Go installed.
A started target is a ``TargetProcess``: it is ready when maptarget has written
its ready file (both listeners serving), and it is stopped by its own pid with
SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.processes import read_log_tail

log = logging.getLogger(__name__)

from orchestrator.core.provenance import REPO_ROOT  # noqa: E402

GO_TARGETS_DIR = REPO_ROOT / "go_targets"
BINARIES = ("maptarget", "mapload")
#: go.mod needs Go 1.26 (the newest grpc and client_golang). Older toolchains build the same
#: sources against the last dependency versions that support them, pinned in this module file.
LEGACY_MODFILE = "go1.23.mod"
MODFILE_BELOW = (1, 26)

# How long a target may take from exec to serving, and to exit after SIGTERM.
# Module constants so tests on a slow machine can raise them.
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
_POLL_S = 0.02


def bin_dir() -> Path:
    """Where built binaries live: $MAPQUAKE_BIN_DIR, else bin/ in the repository."""
    return Path(os.environ.get("MAPQUAKE_BIN_DIR", REPO_ROOT / "bin"))


def go_command() -> str:
    go = os.environ.get("MAPQUAKE_GO") or shutil.which("go")
    if not go:
        raise InfrastructureError(
            "the Go toolchain (`go`) is not on PATH; mapquake builds its Go targets with it",
            hint="install Go 1.26 or run `make setup`; or point MAPQUAKE_GO at a go binary",
        )
    return go


def _newest_source_mtime() -> float:
    """The newest Go source maptarget and mapload build from: go_targets/ and the mapprobe module."""
    newest = 0.0
    for path in (*GO_TARGETS_DIR.rglob("*"), *(REPO_ROOT / "mapprobe").rglob("*")):
        if path.suffix in {".go", ".mod", ".sum"} and path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_built(names: Sequence[str] = BINARIES, *, go_version: str | None = None) -> dict[str, Path]:
    """Return the path of each named binary, building the stale or missing ones.

    ``go_version`` ("1.27") builds with that toolchain into bin/go<version>/; None
    uses the ``go`` on PATH and bin/ itself.
    """
    unknown = sorted(set(names) - set(BINARIES))
    if unknown:
        raise InfrastructureError(f"no Go program named {unknown} in go_targets/cmd (have {list(BINARIES)})")
    out = bin_dir()
    go, env = go_command(), dict(os.environ)
    if go_version is not None:
        from orchestrator.model.toolchains import find  # the model's toolchain finder knows every version

        toolchain = find(go_version)
        if not toolchain.version.startswith(_machine_go_prefix()):
            out = out / f"go{go_version}"
            go, env = toolchain.go, toolchain.environ()
    paths = {name: out / name for name in names}
    source_mtime = _newest_source_mtime()
    stale = [n for n, p in paths.items() if not p.exists() or p.stat().st_mtime < source_mtime]
    if stale:
        out.mkdir(parents=True, exist_ok=True)
        cmd = [go, "build", *_modfile_args(go_version), "-o", str(out) + os.sep] + [f"./cmd/{n}" for n in stale]
        log.info("building %s", " ".join(stale))
        result = subprocess.run(cmd, cwd=GO_TARGETS_DIR, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            raise InfrastructureError(
                f"building {', '.join(stale)}{f' with Go {go_version}' if go_version else ''} failed:\n"
                f"{result.stderr.strip()}",
                hint="run `make build` to see the full Go build output; go_targets builds with Go 1.26 or newer "
                f"(go.mod) and with Go 1.23 - 1.25 ({LEGACY_MODFILE})",
            )
    return paths


def _modfile_args(go_version: str | None) -> list[str]:
    if go_version is None:
        return []
    major, minor = (int(x) for x in go_version.split(".")[:2])
    return [f"-modfile={LEGACY_MODFILE}"] if (major, minor) < MODFILE_BELOW else []


def _machine_go_prefix() -> str:
    """ "go1.26" for the go on PATH: versions it builds itself need no separate toolchain."""
    result = subprocess.run([go_command(), "env", "GOVERSION"], capture_output=True, text=True, check=False)
    return ".".join(result.stdout.strip().split(".")[:2]) or "go"


ADMIN_TOKEN_ENV = "MAPTARGET_ADMIN_TOKEN"


@dataclass(frozen=True)
class TargetEndpoints:
    """Where a running maptarget serves: host:port strings as it bound them."""

    http_addr: str
    grpc_addr: str
    pid: int
    admin_token: str = field(default="", repr=False)
    """What POST /admin/gc, Stats(gc=true) and Replicate need (``Authorization: Bearer <token>``)."""

    @property
    def http_url(self) -> str:
        return f"http://{self.http_addr}"


class TargetProcess:
    """One maptarget process that this controller started and alone may stop.

    Use as a context manager: the process is stopped on every exit path.
    ``popen`` starts the process (a network namespace node's ``popen`` puts it
    inside that namespace); it is called as ``popen(argv, env=..., stdout=..., stderr=...)``.

    Its admin token (``admin_token``, or a fresh random one) reaches maptarget in the
    MAPTARGET_ADMIN_TOKEN environment variable, not on its command line; replicas of one target
    must share a token (each sends it to its peers).
    """

    def __init__(
        self,
        store: str,
        *,
        extra_args: Sequence[str] = (),
        http_addr: str = "127.0.0.1:0",
        grpc_addr: str = "127.0.0.1:0",
        log_dir: Path | None = None,
        binary: Path | None = None,
        popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
        ready_file: Path | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.store = store
        self.admin_token = admin_token or secrets.token_hex(16)
        self._binary = binary or ensure_built(["maptarget"])["maptarget"]
        self._workdir = Path(tempfile.mkdtemp(prefix="mapquake-target-"))
        self._log_dir = log_dir or self._workdir
        self._ready_file = ready_file or self._workdir / "ready.json"
        self._popen = popen
        self.log_path = self._log_dir / f"maptarget-{store}.log"
        self._args = [
            str(self._binary),
            "--store", store,
            "--http-addr", http_addr,
            "--grpc-addr", grpc_addr,
            "--ready-file", str(self._ready_file),
            *extra_args,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        self.endpoints: TargetEndpoints | None = None

    def start(self) -> TargetEndpoints:
        """Start the process and wait until its ready file says both APIs serve."""
        if self._proc is not None and self._proc.poll() is None:
            # A second process would orphan the first: stop() only knows the newest.
            raise RuntimeError(f"maptarget pid {self._proc.pid} is already running; stop() it before start()")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            env = {**os.environ, ADMIN_TOKEN_ENV: self.admin_token}
            self._proc = self._popen(self._args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise InfrastructureError(
                    f"maptarget --store {self.store} exited with code {self._proc.returncode} before serving:\n"
                    f"{self.log_tail()}"
                )
            ready = self._read_ready_file()
            if ready is not None:
                self.endpoints = ready
                return ready
            time.sleep(_POLL_S)
        self.stop()
        raise InfrastructureError(
            f"maptarget --store {self.store} did not serve within {READY_TIMEOUT_S:.0f}s:\n{self.log_tail()}"
        )

    def _read_ready_file(self) -> TargetEndpoints | None:
        try:
            data = json.loads(self._ready_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # not written yet, or written half-way
        return TargetEndpoints(
            http_addr=data["http_addr"], grpc_addr=data["grpc_addr"], pid=int(data["pid"]), admin_token=self.admin_token
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self) -> int | None:
        """SIGTERM our own pid, wait for a graceful exit, then SIGKILL. Returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("maptarget pid %d ignored SIGTERM for %.0fs; killing it", self._proc.pid, STOP_GRACE_S)
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        return read_log_tail(self.log_path, lines)

    def __enter__(self) -> TargetProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._log_dir != self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
