"""Small network tools run inside namespaces by the chaos tests (``python -m tests.integration.chaos.netprobe``).

serve                 TCP echo :7000, UDP echo :7001, UDP sink :7002 (counts datagrams per source),
                      stats :7003 (TCP: answers the sink's counts as JSON); prints "ready"; bounded lifetime.
connect A:P ...       one TCP connect + echo per target; prints JSON {target: ok|timeout|refused|reset|error}
udp-echo A:P N        N datagrams, one at a time (each waits ≤ --wait s for its echo); prints received count
udp-send A:P N        N datagrams to a sink, no replies
rtt A:P N             N request/response round trips on one new TCP connection; prints JSON list of seconds
hold A:P              one TCP connection; for each stdin line "ping" sends one and prints ok|timeout|reset|closed
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import Counter

LIFETIME_S = 180.0


def _addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def serve() -> None:
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def tcp_echo() -> None:
        srv = socket.create_server(("0.0.0.0", 7000), backlog=256)

        def one(conn: socket.socket) -> None:
            with conn:
                conn.settimeout(60)
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except OSError:
                    pass

        while True:
            conn, _ = srv.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    def udp_echo() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 7001))
        while True:
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)

    def udp_sink() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 7002))
        while True:
            _, peer = s.recvfrom(2048)
            with lock:
                counts[peer[0]] += 1

    def stats() -> None:
        srv = socket.create_server(("0.0.0.0", 7003))
        while True:
            conn, _ = srv.accept()
            with conn, lock:
                conn.sendall(json.dumps(dict(counts)).encode())

    for fn in (tcp_echo, udp_echo, udp_sink, stats):
        threading.Thread(target=fn, daemon=True).start()
    time.sleep(0.05)
    print("ready", flush=True)
    time.sleep(LIFETIME_S)


def connect(targets: list[str], timeout: float) -> None:
    out = {}
    for t in targets:
        try:
            with socket.create_connection(_addr(t), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(b"x")
                out[t] = "ok" if s.recv(1) == b"x" else "closed"
        except TimeoutError:
            out[t] = "timeout"
        except ConnectionRefusedError:
            out[t] = "refused"
        except ConnectionResetError:
            out[t] = "reset"
        except OSError as err:
            out[t] = f"error:{err.errno}"
    print(json.dumps(out), flush=True)


def udp_echo(target: str, n: int, wait: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(wait)
    got = 0
    for i in range(n):
        s.sendto(str(i).encode(), _addr(target))
        try:
            while True:
                data, _ = s.recvfrom(64)
                if data == str(i).encode():
                    got += 1
                    break
        except TimeoutError:
            pass
    print(got, flush=True)


def udp_send(target: str, n: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        s.sendto(b"x", _addr(target))
        time.sleep(0.001)
    print(n, flush=True)


def rtt(target: str, n: int) -> None:
    times = []
    with socket.create_connection(_addr(target), timeout=5) as s:
        s.settimeout(5)
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(b"p")
            s.recv(1)
            times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)


def hold(target: str) -> None:
    s = socket.create_connection(_addr(target), timeout=2)
    s.settimeout(1.5)
    print("connected", flush=True)
    for line in sys.stdin:
        if line.strip() != "ping":
            break
        try:
            s.sendall(b"p")
            data = s.recv(1)
            print("ok" if data == b"p" else "closed", flush=True)
        except TimeoutError:
            print("timeout", flush=True)
        except (ConnectionResetError, BrokenPipeError):
            print("reset", flush=True)
        except OSError as err:
            print(f"error:{err.errno}", flush=True)


def main(argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    if cmd == "serve":
        serve()
    elif cmd == "connect":
        connect(args, timeout=0.7)
    elif cmd == "udp-echo":
        udp_echo(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 0.2)
    elif cmd == "udp-send":
        udp_send(args[0], int(args[1]))
    elif cmd == "rtt":
        rtt(args[0], int(args[1]))
    elif cmd == "hold":
        hold(args[0])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
