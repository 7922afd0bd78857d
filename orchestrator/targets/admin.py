"""Talk to a running maptarget over its admin API: heap after GC (HTTP), warm-up (gRPC), /metrics.

Only loopback and mapquake's own namespace addresses are ever dialled; the
callers get those addresses from processes they started.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core.errors import InfrastructureError
from orchestrator.journal import HeapSample

HTTP_TIMEOUT_S = 30.0


def _request(url: str, *, method: str = "GET", admin_token: str = "") -> bytes:
    req = urllib.request.Request(url, method=method)
    if admin_token:
        req.add_header("Authorization", f"Bearer {admin_token}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as err:
        raise InfrastructureError(f"{method} {url} failed: {err}") from err


def collect_garbage(http_addr: str, admin_token: str) -> HeapSample:
    """Run runtime.GC() in the target and return its exact live heap (``admin_token``: the target's)."""
    raw = _request(f"http://{http_addr}/admin/gc", method="POST", admin_token=admin_token)
    try:
        data = json.loads(raw)
        return HeapSample(
            live_bytes=int(data["live_bytes"]),
            heap_objects=int(data["heap_objects"]),
            goroutines=int(data["goroutines"]),
            entries=int(data["entries"]),
            high_water=int(data.get("high_water", data["entries"])),
            total_alloc_bytes=int(data.get("total_alloc_bytes", 0)),
            go_version=str(data.get("go_version", "")),
            store=str(data.get("store", "")),
            go_type=str(data.get("go_type", "")),
            http_connections=int(data.get("http_connections", 0)),
            grpc_connections=int(data.get("grpc_connections", 0)),
            replication_backlog=tuple(int(p["backlog"]) for p in data.get("replication") or ()),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise InfrastructureError(f"POST http://{http_addr}/admin/gc answered unexpected JSON: {raw[:200]!r}") from err


# A settled target has no gRPC client and at most two HTTP ones: Prometheus's keep-alive scrape
# connection and the /admin/gc request asking.
SETTLED_HTTP_CONNECTIONS = 2
SETTLE_TIMEOUT_S = 10.0


def settled_heap(
    http_addr: str,
    admin_token: str,
    *,
    peers: int = 0,
    http_connections: int = SETTLED_HTTP_CONNECTIONS,
    timeout_s: float = SETTLE_TIMEOUT_S,
) -> tuple[HeapSample, bool]:
    """The exact heap once the load's connections have closed (each holds transport buffers).

    Polls /admin/gc until at most ``peers`` gRPC connections (the replicas' own replication links)
    and ``http_connections`` HTTP connections are open, up to ``timeout_s``; returns the last
    sample and whether it settled.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        sample = collect_garbage(http_addr, admin_token)
        settled = sample.grpc_connections <= peers and sample.http_connections <= http_connections
        if settled or time.monotonic() >= deadline:
            return sample, settled
        time.sleep(0.05)


PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""The Accept header Prometheus 2.x scrapes with: the handler answers in the format it will use."""


@contextlib.contextmanager
def scrape_connection(http_addr: str, path: str = "/metrics", *, hold: bool = True) -> Iterator[None]:
    """GET ``path`` as Prometheus scrapes it; with ``hold``, keep the connection open until the block
    ends, as Prometheus keeps its keep-alive scrape connection.

    The first scrape of a Go server sets up state it keeps (the Go collector's runtime/metrics
    buffers, the handler's label values, the open connection's buffers): about 35 KiB. A baseline
    taken inside the block has them, so they are not charged to the map whether or not Prometheus
    has scraped yet. Hold it only while Prometheus has not connected: otherwise the baseline would
    count two scrape connections where the final sample counts one.
    """
    connection = http.client.HTTPConnection(http_addr, timeout=HTTP_TIMEOUT_S)
    try:
        connection.request("GET", path, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise InfrastructureError(f"GET http://{http_addr}{path} answered {response.status} {response.reason}")
    except (http.client.HTTPException, OSError) as err:
        connection.close()
        raise InfrastructureError(f"GET http://{http_addr}{path} failed: {err}") from err
    if not hold:
        connection.close()
    try:
        yield
    finally:
        connection.close()


def scrape_samples(http_addr: str, path: str = "/metrics") -> list[tuple[str, dict[str, str], float]]:
    """Fetch ``path`` (Prometheus text format) and return every sample as (name, labels, value)."""
    text = _request(f"http://{http_addr}{path}").decode()
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def scrape(http_addr: str, path: str = "/metrics") -> dict[str, float]:
    """Fetch /metrics and return {series: value}, series written as name{label="v",...}."""
    samples: dict[str, float] = {}
    for name, labels, value in scrape_samples(http_addr, path):
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        samples[f"{name}{{{text}}}" if text else name] = value
    return samples


WARM_UP_KEY = "mapquake-warm-up"  # not a workload key name (those are k + 15 digits)


def warm_up(grpc_addr: str) -> None:
    """Exercise every gRPC write path once and leave the store empty again (a Get, a one-entry BatchPut
    and PutStream of a key that is then deleted, Stats), so the server's one-time allocations
    (transport, codec and pool set-up: tens of KiB) are in the baseline heap, not charged to the map.
    The map keeps the one small group it grew for that key: under 0.5 KiB, counted in the baseline."""
    import grpc

    from workloads.pb import store_pb2, store_pb2_grpc

    try:
        with grpc.insecure_channel(grpc_addr) as channel:
            stub = store_pb2_grpc.MapStoreStub(channel)
            stub.Get(store_pb2.GetRequest(key=WARM_UP_KEY), timeout=HTTP_TIMEOUT_S)
            # One real write (then deleted): decoding a non-empty batch sets up per-message state once.
            entry = store_pb2.PutRequest(key=WARM_UP_KEY, value=b"0")  # "0" decodes under every value type
            stub.BatchPut(store_pb2.BatchPutRequest(entries=[entry]), timeout=HTTP_TIMEOUT_S)
            stub.PutStream(iter([entry]), timeout=HTTP_TIMEOUT_S)
            stub.Delete(store_pb2.DeleteRequest(key=WARM_UP_KEY), timeout=HTTP_TIMEOUT_S)
            stub.Stats(store_pb2.StatsRequest(gc=False), timeout=HTTP_TIMEOUT_S)
    except grpc.RpcError as err:
        raise InfrastructureError(f"gRPC warm-up of {grpc_addr} failed: {err}") from err


class TargetAdminClient:
    """One replica's admin endpoints, reached directly (the backend says the controller can)."""

    def __init__(self, http_addr: str, grpc_addr: str, admin_token: str) -> None:
        self.http_addr = http_addr
        self.grpc_addr = grpc_addr
        self._admin_token = admin_token
        self._held_connections = 0

    @contextlib.contextmanager
    def warmed_up(self, *, hold_scrape: bool) -> Iterator[TargetAdminClient]:
        warm_up(self.grpc_addr)
        with scrape_connection(self.http_addr, hold=hold_scrape):
            self._held_connections = int(hold_scrape)
            try:
                yield self
            finally:
                self._held_connections = 0

    def heap(self) -> HeapSample:
        return collect_garbage(self.http_addr, self._admin_token)

    def settled_heap(self, *, peers: int) -> tuple[HeapSample, bool]:
        allowed = SETTLED_HTTP_CONNECTIONS + self._held_connections  # the warm-up's stands in for Prometheus's
        return settled_heap(self.http_addr, self._admin_token, peers=peers, http_connections=allowed)
