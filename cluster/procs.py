"""Start the cluster's daemons as recorded processes, and stop them again by pid only.

A daemon outlives the `up` command that started it (own session, output to a log file); its pid
and start time go to the state file right after the fork, so `down` from any process can end it
and never signals a pid that has since been reused.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cluster.state import ClusterState, Entry
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import pid_running, process_start_time
from orchestrator.core.processes import read_log_tail, terminate_pid


def start_daemon(state: ClusterState, name: str, argv: Sequence[str], log: Path) -> int:
    """Start ``argv`` as process ``name`` with stdout+stderr appended to ``log``; returns its pid."""
    state.record("process", name, argv0=str(argv[0]), log=str(log))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise InfrastructureError(f"could not start {name} ({argv[0]}): {exc}") from exc
    state.started(name, proc.pid, process_start_time(proc.pid))
    # The Popen object is dropped on purpose: the daemon is reaped by `reap` or, once `up` has
    # exited, by init. Popen's destructor does not kill or wait.
    return proc.pid


def running(entry: Entry) -> bool:
    return pid_running(entry.pid, entry.start_time)


def stop(entry: Entry, grace_s: float = 10.0) -> None:
    """End the recorded process (SIGTERM, then SIGKILL after ``grace_s``) and reap it if it is our child."""
    if entry.pid is not None:
        terminate_pid(entry.pid, entry.start_time, grace_s=grace_s)
        reap(entry.pid)


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a child of this process (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def exited_error(state: ClusterState, name: str) -> InfrastructureError | None:
    """An error naming ``name`` and its log tail if the recorded process is gone, else None."""
    entry = state.find("process", name)
    if entry is None or running(entry):
        return None
    log = Path(str(entry.detail.get("log", "")))
    return InfrastructureError(f"{name} exited during start-up; last lines of {log}:\n{read_log_tail(log, 25)}")
