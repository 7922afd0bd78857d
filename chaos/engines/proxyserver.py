"""The delay proxy process itself: standard library only, so it starts in milliseconds.

Run as a script with ``python -S -I chaos/engines/proxyserver.py --delay-ms 50 [--jitter-ms 5]``
(``chaos.engines.delayproxy.start`` does this inside the target's namespace); it prints
``port <n>`` once listening. See ``chaos.engines.delayproxy`` for what it does and why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80
CHUNK = 65536
WATCH_INTERVAL_S = 0.2
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
                sock = writer.get_extra_info("socket")
                host, port = original_dst(sock)
                if (host, port) == sock.getsockname()[:2]:
                    return  # not redirected (someone dialled the proxy's own port): never connect to ourselves
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
    parser = argparse.ArgumentParser(prog="proxyserver.py", description="mapquake delay proxy")
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


if __name__ == "__main__":
    sys.exit(main())
