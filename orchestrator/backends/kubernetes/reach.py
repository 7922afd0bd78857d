"""How the controller reaches a pod's port: directly on the pod network, or through a port-forward.

On a node, in a pod or over a route into the pod CIDR, the controller dials pod IPs. From a
laptop it usually cannot: then each (pod, port) it needs gets a listener on 127.0.0.1 whose every
connection is a new port-forward through the API server (what ``kubectl port-forward`` does), by
pod name, so a replica that restarts is reached again. ``reach: auto`` (the default) tries the pod
network first, with a short connect, and falls back to port-forwards.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from typing import Any, Protocol

from kubernetes import client
from kubernetes.stream import portforward

from orchestrator.core.errors import InfrastructureError

log = logging.getLogger(__name__)

CONNECT_PROBE_S = 1.5
_CHUNK = 65536


class PodReach(Protocol):
    """``address(namespace, pod, ip, port)``: the "host:port" the controller dials for ``port`` of ``pod``."""

    name: str

    def address(self, namespace: str, pod: str, ip: str | None, port: int) -> str: ...

    def close(self) -> None: ...


class PodNetwork:
    """The controller is on the pod network: a pod's port is its IP and port."""

    name = "pod-network"

    def address(self, namespace: str, pod: str, ip: str | None, port: int) -> str:
        if not ip:
            raise InfrastructureError(f"pod {pod} has no IP right now")
        return f"{ip}:{port}"

    def close(self) -> None:
        pass


def reaches(ip: str, port: int, timeout_s: float = CONNECT_PROBE_S) -> bool:
    """Whether a TCP connection to ip:port opens from here within ``timeout_s``."""
    try:
        with socket.create_connection((ip, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class PortForwards:
    """One local listener per (pod, port); each accepted connection is a fresh port-forward."""

    name = "port-forward"

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self._listeners: dict[tuple[str, str, int], socket.socket] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def address(self, namespace: str, pod: str, ip: str | None, port: int) -> str:
        with self._lock:
            listener = self._listeners.get((namespace, pod, port))
            if listener is None:
                listener = socket.create_server(("127.0.0.1", 0))
                self._listeners[(namespace, pod, port)] = listener
                threading.Thread(
                    target=self._accept,
                    args=(listener, namespace, pod, port),
                    name=f"port-forward {namespace}/{pod}:{port}",
                    daemon=True,
                ).start()
            host, local_port = listener.getsockname()[:2]
            return f"{host}:{local_port}"

    def _accept(self, listener: socket.socket, namespace: str, pod: str, port: int) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn, namespace, pod, port), daemon=True).start()

    def _serve(self, conn: socket.socket, namespace: str, pod: str, port: int) -> None:
        try:
            forward: Any = portforward(
                self.core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
            )
        except Exception as err:  # the pod is gone or the API refused: the client sees a closed connection
            log.warning("port-forward to %s:%d failed: %s", pod, port, err)
            conn.close()
            return
        remote = forward.socket(port)
        remote.setblocking(True)
        try:
            _pipe(conn, remote)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            forward.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for listener in self._listeners.values():
                with contextlib.suppress(OSError):
                    listener.close()
            self._listeners.clear()


def _pipe(a: Any, b: Any) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 60.0)
        if not readable:
            continue
        for source in readable:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                return
            if not data:
                return
            peers[source].sendall(data)
