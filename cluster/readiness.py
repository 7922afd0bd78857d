"""Wait for a condition with a deadline (never a fixed sleep), failing early if a process died."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from orchestrator.core.errors import InfrastructureError

POLL_S = 0.1


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, *, died: Callable[[], Exception | None] | None = None
) -> float:
    """Poll ``check`` until it is true; returns the seconds waited.

    ``died`` is asked on every round and, if it returns an error (say, the process we wait for
    exited), that error is raised at once instead of waiting out the deadline.
    """
    start = time.monotonic()
    while True:
        if died is not None and (err := died()) is not None:
            raise err
        try:
            if check():
                return time.monotonic() - start
        except OSError:
            pass
        if time.monotonic() - start > timeout_s:
            raise InfrastructureError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)


def https_ok(url: str, ca: Path | None = None, cert: tuple[Path, Path] | None = None) -> bool:
    """True if GET ``url`` answers 200. Without ``ca`` the server certificate is not checked
    (used only for the components' own /healthz on 127.0.0.1)."""
    if ca:
        ctx = ssl.create_default_context(cafile=str(ca))
    else:  # the controller-manager and scheduler serve a self-signed certificate made at start
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return http_ok(url, ctx)


def http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False
