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

Bounded: at most ``--max-conns`` connections, exits when its parent (the agent)
is gone or after ``--max-lifetime-s``; the agent stops it when the fault heals.

Run: ``python -m chaos.engines.delayproxy --delay-ms 50 [--jitter-ms 5]``; it
prints ``port <n>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from chaos.engines.command import NetnsHandle
from orchestrator.errors import InfrastructureError
from orchestrator.ledger import Ledger, ResourceKind
from orchestrator.processes import start_process, stop_process

log = logging.getLogger(__name__)

SO_ORIGINAL_DST = 80
CHUNK = 65536
WATCH_INTERVAL_S = 0.2
READY_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNS = 512
DEFAULT_MAX_LIFETIME_S = 6 * 3600.0


def original_dst(sock: socket.socket) -> tuple[str, int]:
    """The address a redirected connection was meant for (netfilter's SO_ORIGINAL_DST)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack("!H", raw[2:4])[0]
    return socket.inet_ntoa(raw[4:8]), port


class DelayProxy:
    """The proxy's event loop state: delay, jitter, connection bound."""

    def __init__(self, delay_s: float, jitter_s: float, max_conns: int, seed: int | None = None) -> None:
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.max_conns = max_conns
        self.active = 0
        self.rng = random.Random(seed)

    def hold_s(self) -> float:
        return max(0.0, self.delay_s + self.rng.uniform(-self.jitter_s, self.jitter_s))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_conns:
            writer.close()
            return
        self.active += 1
        try:
            try:
                host, port = original_dst(writer.get_extra_info("socket"))
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
            except (OSError, TimeoutError):
                return
            await asyncio.gather(
                self._pump(reader, up_writer, delayed=False),
                self._pump(up_reader, writer, delayed=True),
                return_exceptions=True,
            )
            up_writer.close()
        finally:
            self.active -= 1
            writer.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, delayed: bool) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=1024)

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        if dst.can_write_eof():
                            dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.create_task(send())
        last_due = 0.0
        try:
            while True:
                data = await src.read(CHUNK)
                due = loop.time() + (self.hold_s() if delayed else 0.0)
                last_due = max(last_due, due)  # never reorder a byte stream
                await queue.put((last_due, data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.CancelledError):
            sender.cancel()


async def _serve(args: argparse.Namespace) -> None:
    proxy = DelayProxy(args.delay_ms / 1000, args.jitter_ms / 1000, args.max_conns, args.seed)
    server = await asyncio.start_server(proxy.handle, host="0.0.0.0", port=args.port, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    parent = args.parent_pid or os.getppid()
    deadline = time.monotonic() + args.max_lifetime_s
    async with server:
        while os.getppid() == parent and time.monotonic() < deadline:
            await asyncio.sleep(WATCH_INTERVAL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.engines.delayproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when our parent is no longer this pid")
    parser.add_argument("--max-conns", type=int, default=DEFAULT_MAX_CONNS)
    parser.add_argument("--max-lifetime-s", type=float, default=DEFAULT_MAX_LIFETIME_S)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


# --- the agent's side -------------------------------------------------------------------------


@dataclass
class ProxyProcess:
    """A running delay proxy: its process, port, and the ledger label it was recorded under."""

    proc: subprocess.Popen[Any]
    port: int
    label: str
    ledger: Ledger | None

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
        sys.executable, "-m", "chaos.engines.delayproxy",
        "--delay-ms", f"{delay_s * 1000:g}", "--jitter-ms", f"{jitter_s * 1000:g}",
        "--parent-pid", str(os.getpid()), "--max-lifetime-s", f"{max_lifetime_s:g}",
    )  # fmt: skip
    if ledger is not None:
        proc = start_process(argv, ledger=ledger, name=label, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    else:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    line = _read_line(proc, READY_TIMEOUT_S)
    if not line.startswith("port "):
        stop_process(proc, grace_s=1.0)
        raise InfrastructureError(f"delay proxy in {handle.name} did not start (exit {proc.poll()}, said {line!r})")
    return ProxyProcess(proc=proc, port=int(line.split()[1]), label=label, ledger=ledger)


def _read_line(proc: subprocess.Popen[Any], timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 64)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                break
    return buf.decode(errors="replace").split("\n")[0]


if __name__ == "__main__":
    sys.exit(main())
