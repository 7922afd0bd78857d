"""Start and stop a run's processes through its ledger, and only ever by their own pid.

``start_process`` records the process in the ledger before the fork, marks its
environment with ``MAPQUAKE_RUN_ID=<run id>``, and records the pid and start
time right after. ``stop_process`` ends a child we hold a Popen for;
``terminate_pid`` ends a process a dead controller left, after checking that the
pid still belongs to the process the ledger names. Nothing here ever matches
processes by name.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import RUN_ID_ENV, Ledger, ResourceKind, pid_matches, pid_running

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
_POLL_S = 0.02


def start_process(
    argv: Sequence[str],
    *,
    ledger: Ledger,
    name: str,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    **popen_kwargs: Any,
) -> subprocess.Popen[Any]:
    """Start ``argv`` (inside network namespace ``netns`` if given) as ledger resource ``name``.

    Inside a namespace it runs as ``ip netns exec <netns> argv...``; ip execs the
    program, so the returned pid is the program's own. Side effects: two ledger
    lines (intent, then pid + start time) and a new process. ``popen_kwargs`` go to
    ``subprocess.Popen`` (stdout, stderr, cwd ...). The process starts in its own
    session (``start_new_session=True`` unless given), so a Ctrl-C in the terminal
    reaches only the controller, which then tears down in order.
    """
    if not argv:
        raise InfrastructureError(f"process {name!r}: empty command line")
    full_env = dict(os.environ if env is None else env)
    full_env[RUN_ID_ENV] = ledger.run_id
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    popen_kwargs.setdefault("start_new_session", True)
    ledger.record(ResourceKind.PROCESS, name, netns=netns, detail={"argv0": str(argv[0])})
    try:
        proc: subprocess.Popen[Any] = subprocess.Popen(cmd, env=full_env, **popen_kwargs)
    except OSError as exc:
        ledger.released(ResourceKind.PROCESS, name)
        raise InfrastructureError(
            f"could not start {name} ({argv[0]}): {exc}",
            hint="is the program installed and executable?",
        ) from exc
    ledger.started(name, proc.pid)
    log.info("run %s: started %s pid %d%s", ledger.run_id, name, proc.pid, f" in {netns}" if netns else "")
    return proc


def read_log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a process's log, or "(no log)" if it never wrote one."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[Any], *, grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM our child ``proc``, wait up to ``grace_s``, then SIGKILL. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.1fs; sending SIGKILL", proc.pid, grace_s)
            proc.kill()
            proc.wait(timeout=grace_s)
    return proc.returncode


def terminate_pid(pid: int, start_time: int | None, *, grace_s: float = STOP_GRACE_S) -> bool:
    """End a process that is not our child, if (and only if) ``pid`` still has ``start_time``.

    SIGTERM, poll until it is gone or ``grace_s`` passed, then SIGKILL and poll again.
    Returns True if the process is gone, False if it was not ours (or already gone).
    """
    if pid == os.getpid() or not pid_matches(pid, start_time):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not pid_running(pid, start_time):
                return True
            time.sleep(_POLL_S)
        if sig == signal.SIGTERM:
            log.warning("pid %d ignored SIGTERM for %.1fs; sending SIGKILL", pid, grace_s)
    return not pid_running(pid, start_time)


def environ_run_id(pid: int) -> str | None:
    """The ``MAPQUAKE_RUN_ID`` in the environment ``pid`` was started with, if any."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    prefix = f"{RUN_ID_ENV}=".encode()
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def read_stdout_line(proc: subprocess.Popen[Any], timeout_s: float) -> tuple[str | None, bytes]:
    """The next line ``proc`` (opened with stdout=PIPE) writes, waiting at most ``timeout_s``.

    Returns (line without its newline, b"") or, when no whole line came before the timeout or
    EOF, (None, what did come). Reads a byte at a time so later lines stay in the pipe.
    """
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                break  # EOF: the process exited
            if chunk == b"\n":
                return buf.decode(errors="replace").rstrip("\r"), b""
            buf += chunk
    return None, buf


FATAL_MARKERS = ("fatal error:", "panic:")


def fatal_message(log_text: str) -> str:
    """The first fatal line of a Go program's output (what killed it), else its last line."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(FATAL_MARKERS):
            return line
    return lines[-1] if lines else "(no output)"
