"""Kill and pause a replica by its recorded pid (and start time, so a reused pid is never hit)."""

from __future__ import annotations

import os
import signal

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import pid_running


def _send(pid: int, start_time: int | None, sig: signal.Signals) -> bool:
    """Signal ``pid`` through a pidfd opened before the start-time check, so a pid reused in between is not hit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if not pid_running(pid, start_time):
            return False
        signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)
    return True


def kill(pid: int, start_time: int | None) -> None:
    """SIGKILL ``pid`` if it is still the recorded process. Raises if it is not running."""
    if not _send(pid, start_time, signal.SIGKILL):
        raise InfrastructureError(f"pid {pid} is not running (or is no longer the recorded process)")


def pause(pid: int, start_time: int | None) -> None:
    """SIGSTOP ``pid`` (the recorded process). Raises if it is not running."""
    if not _send(pid, start_time, signal.SIGSTOP):
        raise InfrastructureError(f"pid {pid} is not running (or is no longer the recorded process)")


def resume(pid: int, start_time: int | None) -> bool:
    """SIGCONT ``pid`` if it still is the recorded process; True if sent. Always safe to call."""
    return _send(pid, start_time, signal.SIGCONT)
