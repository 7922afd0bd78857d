"""The delay fallback for kernels without sch_netem: a userspace TCP proxy inside the node's namespace.

Like Toxiproxy's latency toxic, but transparent: the agent starts this proxy in
the target's namespace and adds an nft ``redirect`` of every TCP connection
arriving from outside to the proxy's port (see ``chaos.engines.nft``). The proxy
reads the original destination (``SO_ORIGINAL_DST``), connects to it over
loopback, and forwards both ways; every chunk the target sends back is held for
``delay ± jitter`` (uniform), never reordered. A request/response round trip thus
gains ``delay``, as with netem on the target's egress.

Differences from netem, by construction: only TCP connections *to* the node are
delayed (not those it opens, not UDP); connection set-up is not delayed; clients
connected before the fault are reset once so they reconnect through the proxy.

Started ahead: ``FaultTable.prepare`` starts the proxies of the run's delay faults
when the run starts, idle (listening, nothing redirected to them), so applying the
fault only rewrites the nft table. A prepared proxy is stopped like an applied one
(heal, lease expiry, the agent's exit or startup sweep, ``mapquake cleanup``).

Bounded: at most ``--max-conns`` connections, exits when its parent (the agent)
is gone or after ``--max-lifetime-s``; the agent stops it when the fault heals.

The proxy process is ``chaos/engines/proxyserver.py`` (standard library only, started
with ``python -S -I`` so it is up in milliseconds); this module starts and stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.engines.command import NetnsHandle
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger, ResourceKind
from orchestrator.core.processes import read_stdout_line, start_process, stop_process

READY_TIMEOUT_S = 10.0
DEFAULT_MAX_LIFETIME_S = 6 * 3600.0
SERVER = Path(__file__).with_name("proxyserver.py")


# --- the agent's side -------------------------------------------------------------------------


@dataclass
class ProxyProcess:
    """A running delay proxy: its process, port, and the ledger label it was recorded under."""

    proc: subprocess.Popen[Any]
    port: int
    label: str
    ledger: Ledger | None

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) the proxy by its own pid; record the release."""
        stop_process(self.proc, grace_s=2.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.ledger is not None:
            self.ledger.released(ResourceKind.PROCESS, self.label)


def start(
    handle: NetnsHandle,
    delay_s: float,
    jitter_s: float,
    *,
    label: str,
    ledger: Ledger | None,
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
) -> ProxyProcess:
    """Start a proxy inside ``handle``'s namespace and wait for its port.

    Side effects: a process (recorded in ``ledger`` first when given, with the run id in its environment).
    """
    argv = handle.argv(
        sys.executable, "-S", "-I", str(SERVER),
        "--delay-ms", f"{delay_s * 1000:g}", "--jitter-ms", f"{jitter_s * 1000:g}",
        "--parent-pid", str(os.getpid()), "--max-lifetime-s", f"{max_lifetime_s:g}",
    )  # fmt: skip
    if ledger is not None:
        proc = start_process(argv, ledger=ledger, name=label, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    else:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    line, partial = read_stdout_line(proc, READY_TIMEOUT_S)
    if line is None or not line.startswith("port "):
        stop_process(proc, grace_s=1.0)
        raise InfrastructureError(
            f"delay proxy in {handle.name} did not start (exit {proc.poll()}, said {line or partial!r})"
        )
    return ProxyProcess(proc=proc, port=int(line.split()[1]), label=label, ledger=ledger)
