"""Test sessions sharing one cluster: who uses it, and whether the last one out takes it down.

Several pytest sessions (say, two worktrees' test runs) may ask for the cluster in the same state
dir at once. Each live session is listed in the state file (pid and start time); the cluster is
taken down only by the last session to leave, and only if a session started it (a cluster
started by `python -m cluster up` stays up). Callers hold the machine's cluster lock.
"""

from __future__ import annotations

import os

from cluster.state import ClusterState
from orchestrator.core.ledger import pid_running, process_start_time

USERS = "session_users"
STARTED_BY_SESSION = "started_by_session"


def live_users(state: ClusterState) -> list[tuple[int, int]]:
    users = [(int(pid), int(start)) for pid, start in state.info.get(USERS, [])]
    return [(pid, start) for pid, start in users if pid_running(pid, start)]


def other_users(state: ClusterState) -> list[int]:
    return [pid for pid, _ in live_users(state) if pid != os.getpid()]


def register(state: ClusterState, *, started_here: bool) -> None:
    me = (os.getpid(), process_start_time(os.getpid()) or 0)
    state.info[USERS] = [[pid, start] for pid, start in live_users(state) if pid != me[0]] + [list(me)]
    if started_here:
        state.info[STARTED_BY_SESSION] = True
    state.save()


def unregister(state: ClusterState) -> bool:
    """Drop this process from the users; True if the cluster should now be taken down."""
    if not state.entries:
        return False
    remaining = [[pid, start] for pid, start in live_users(state) if pid != os.getpid()]
    state.info[USERS] = remaining
    state.save()
    return not remaining and bool(state.info.get(STARTED_BY_SESSION))
