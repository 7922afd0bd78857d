"""Client-side metrics of one Locust worker, in Prometheus form.

Locust's own stats round response times to about two significant digits in
whole milliseconds, which hides sub-millisecond map operations. Each worker
therefore keeps its own histogram with buckets from 10 µs to ~10 s and serves
it on its own port; Prometheus scrapes every worker and sums the buckets, which
merges the workers exactly. The worker label comes from the scrape config, not
from the metric.

No locust import here: the registry is private to this object (no global
state), so tests and the controller can build one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server

from orchestrator.core.safety import split_host_port

# 10 µs · 2^(k/2) for k = 0..40: 41 bounds from 10 µs to 10.49 s, two per octave.
LATENCY_BUCKETS: tuple[float, ...] = tuple(10e-6 * 2 ** (k / 2) for k in range(41))
OPS: tuple[str, ...] = ("put", "batch_put", "put_stream", "get", "delete")


class ClientMetrics:
    """The histogram and counters one worker exports."""

    def __init__(self, protocol: str, registry: CollectorRegistry | None = None) -> None:
        self.protocol = protocol
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "mapquake_client_request_seconds",
            "Client-side latency of one request to a target, by operation and protocol.",
            ["op", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.writes = Counter(
            "mapquake_client_writes",
            "Map writes a target acknowledged (each entry of a BatchPut or PutStream counts once).",
            registry=self.registry,
        )
        self.errors = Counter(
            "mapquake_client_errors",
            "Requests that failed or timed out, by operation.",
            ["op"],
            registry=self.registry,
        )
        for op in OPS:  # the zero series exist from the start, so rate() has a first sample
            self.request_seconds.labels(op=op, protocol=protocol)
            self.errors.labels(op=op)

    def observe(self, op: str, seconds: float, *, failed: bool = False) -> None:
        self.request_seconds.labels(op=op, protocol=self.protocol).observe(seconds)
        if failed:
            self.errors.labels(op=op).inc()

    def add_writes(self, n: int) -> None:
        if n:
            self.writes.inc(n)

    def serve(self, addr: str) -> None:
        """Serve /metrics on ``addr`` (host:port) from a background thread (a greenlet under gevent)."""
        host, port = split_host_port(addr)
        start_http_server(port, addr=host, registry=self.registry)

    def exposition(self) -> bytes:
        """The text exposition, as a scrape would see it now."""
        return generate_latest(self.registry)
