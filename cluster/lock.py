"""One `up` or `down` at a time on this machine (the bridge, ports and node name are machine-wide).

Without it, a second test session starting while the first is half-way through `up` would see a
"broken" cluster and tear it down. The lock file stays (empty) in /run, like /run/xtables.lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.core.errors import InfrastructureError

LOCK_FILE = Path("/run/mapquake-cluster.lock")
# `up` may build the binaries (~20 min cold) while holding the lock.
WAIT_S = 1800.0


@contextmanager
def exclusive(wait_s: float = WAIT_S) -> Iterator[None]:
    fd = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfrastructureError(
                        f"another `python -m cluster up/down` held {LOCK_FILE} for {wait_s:.0f}s",
                        hint=f"find it with: fuser {LOCK_FILE}",
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock
