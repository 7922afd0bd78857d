"""Reading a pod's state from its API object (pure: dicts in, facts out)."""

from __future__ import annotations

from typing import Any


def pod_ip(pod: dict[str, Any] | None) -> str | None:
    if pod is None:
        return None
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip else None


def is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True (its readiness probe passes)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def container_exit(pod: dict[str, Any]) -> tuple[int, int | None] | None:
    """How many times the pod's container has died so far and its last exit code; None if it never did.

    A StatefulSet restarts a dead container in place, so a death shows as a restart with the exit in
    ``lastState``; a pod that does not restart shows it in ``state``.
    """
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        restarts = int(cs.get("restartCount", 0))
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated is not None:
            return restarts + 1, terminated.get("exitCode")
        if restarts:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            return restarts, last.get("exitCode")
    return None
