"""HTTP client for Locust users: Locust's FastHttpSession (what FastHttpUser uses) per target.

A FastHttpUser talks to one host; mapquake routes keys over several target
replicas, so each user holds one FastHttpSession per target instead, with the
same geventhttpclient connection and the same request events. Requests are
named by operation ("put", "get", "delete") so Locust's stats and the
client-side histogram group them the same way as gRPC calls. A 404 on GET or
DELETE is an answer (the key is absent), not a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from locust.contrib.fasthttp import FastHttpSession

from orchestrator.core.safety import AddressAllowList


class HttpClient:
    """The maptarget HTTP API (PUT/GET/DELETE /kv/{key}) of every target, by target index."""

    def __init__(
        self,
        targets: Sequence[str],
        environment: Any,
        user: Any,
        *,
        allowed: AddressAllowList,
        timeout_s: float = 10.0,
    ) -> None:
        for addr in targets:
            allowed.check(addr)  # never dial anything off the run's allow-list
        self._sessions = [
            FastHttpSession(
                f"http://{addr}",
                request_event=environment.events.request,
                user=user,
                network_timeout=timeout_s,
                connection_timeout=timeout_s,
                max_retries=0,
            )
            for addr in targets
        ]

    def put(self, target: int, key: str, value: bytes) -> bool:
        # Locust's hint says str or dict; geventhttpclient sends bytes as they are (the value is binary).
        resp = self._sessions[target].request("PUT", f"/kv/{key}", name="put", data=value)  # type: ignore[arg-type]
        return _ok(resp)

    def get(self, target: int, key: str) -> bool | None:
        """Whether ``key`` is present; None when the request failed."""
        with self._sessions[target].request("GET", f"/kv/{key}", name="get", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()
                return False
            return True if _ok(resp) else None

    def delete(self, target: int, key: str) -> bool:
        with self._sessions[target].request("DELETE", f"/kv/{key}", name="delete", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()
                return True
            return _ok(resp)

    def close(self) -> None:
        for session in self._sessions:
            pool = getattr(session.client, "clientpool", None)
            if pool is not None:
                pool.close()


def _ok(resp: Any) -> bool:
    return getattr(resp, "error", None) is None and 200 <= (resp.status_code or 0) < 300
