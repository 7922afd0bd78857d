"""A real Prometheus (Debian's /usr/bin/prometheus) scraping real exporters.

On the host it scrapes a prometheus_client exporter on 127.0.0.1; inside a run
network it runs in one node's namespace and scrapes an exporter in another node.
Every server is stopped by pid and every namespace removed, pass or fail.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from orchestrator.backends.local.network import LocalNetwork
from orchestrator.backends.local.prometheus import PROMETHEUS_BINARY, PrometheusServer
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger, ResourceKind, new_run_id, pid_matches, process_start_time
from orchestrator.core.safety import LOCAL_RUN
from orchestrator.prometheus.client import PrometheusQueryError
from orchestrator.prometheus.config import ScrapeJob, ScrapeTarget
from orchestrator.targets.admin import TargetAdminClient, collect_garbage, warm_up
from orchestrator.targets.build import TargetProcess
from tests.integration.netfixtures import make_network, needs_root, read_line, state_dir

__all__ = ["make_network", "state_dir"]  # fixtures used by name

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not PROMETHEUS_BINARY.exists(), reason=f"{PROMETHEUS_BINARY} missing: run `make setup`"),
]


@pytest.fixture
def exporter() -> Iterator[str]:
    """A prometheus_client exporter on 127.0.0.1 (port 0) with mapquake_test_value 42; yields host:port."""
    registry = CollectorRegistry()
    Gauge("mapquake_test_value", "a constant for the scrape test", registry=registry).set(42)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def start_prometheus(state_dir: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start Prometheus servers; each is stopped (by pid) at the end, pass or fail."""
    started: list[PrometheusServer] = []

    def start(**kwargs: object) -> PrometheusServer:
        kwargs.setdefault("allowed", LOCAL_RUN)
        server = PrometheusServer(**kwargs)  # type: ignore[arg-type]
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop(grace_s=5)


def test_host_prometheus_scrapes_a_loopback_exporter(
    exporter: str, start_prometheus: Callable[..., PrometheusServer]
) -> None:
    ledger = Ledger.create(new_run_id())
    job = ScrapeJob("exporter", [ScrapeTarget(exporter, {"target": "cache", "replica": "0"})])
    prom = start_prometheus(ledger=ledger, jobs=[job])
    assert prom.base_url.startswith("http://127.0.0.1:")
    client = prom.client

    [sample] = client.wait_for_series('mapquake_test_value{job="exporter"}', timeout=60)
    assert sample.value == 42.0
    assert sample.labels["target"] == "cache" and sample.labels["replica"] == "0"
    assert sample.labels["instance"] == exporter

    [target] = client.targets()
    assert (target.job, target.address, target.health) == ("exporter", exporter, "up")

    now = time.time()
    # at least two scrapes (1 s interval) of `up` are stored
    client.wait_for_series("count_over_time(up[1m]) >= 2", timeout=60)
    [series] = client.query_range("mapquake_test_value", start=now - 30, end=now + 1, step=1)
    assert series.values and set(series.values) == {42.0}
    assert [s.value for s in client.query("1 + 1")] == [2.0]  # a scalar
    with pytest.raises(PrometheusQueryError, match="bad_data"):
        client.query("sum(")

    pid = prom.pid
    assert pid is not None
    start = process_start_time(pid)
    assert prom.stop(grace_s=10) == 0
    assert not pid_matches(pid, start)
    assert ResourceKind.PROCESS not in {r.kind for r in ledger.open_resources()}
    assert prom.config_path.exists() and (prom.data_dir / "wal").is_dir()  # kept for the report
    prom.remove_workdir()
    assert ledger.open_resources() == []
    ledger.remove()


def test_wait_for_series_gives_up_at_its_deadline_and_says_why(
    start_prometheus: Callable[..., PrometheusServer],
) -> None:
    ledger = Ledger.create(new_run_id())
    # a loopback port nothing listens on: the target is down
    prom = start_prometheus(ledger=ledger, jobs=[ScrapeJob("nothing", [ScrapeTarget("127.0.0.1:9")])])
    prom.client.wait_for_series('up{job="nothing"} == 0', timeout=60)  # scraped once, and down
    begin = time.monotonic()
    with pytest.raises(InfrastructureError, match="no data for 'mapquake_absent_metric'") as info:
        prom.client.wait_for_series("mapquake_absent_metric", timeout=2)
    assert time.monotonic() - begin < 15
    assert "targets: nothing 127.0.0.1:9: down" in str(info.value)
    assert "connection refused" in str(info.value)


def test_bad_config_is_refused_before_starting(state_dir: Path) -> None:
    ledger = Ledger.create(new_run_id())
    prom = PrometheusServer(ledger=ledger, jobs=[ScrapeJob("x", [ScrapeTarget("8.8.8.8:53")])])
    with pytest.raises(InfrastructureError, match="outside loopback"):
        prom.start()
    assert prom.pid is None


EXPORTER_IN_NODE = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry, Gauge, start_http_server
    registry = CollectorRegistry()
    Gauge("mapquake_store_entries", "entries", registry=registry).set(1234)
    server, thread = start_http_server(8000, addr=sys.argv[1], registry=registry)
    print("serving", flush=True)
    thread.join(timeout=300)  # bounded; the test stops us long before
    """
)


@needs_root
def test_prometheus_in_a_node_scrapes_another_node(
    make_network: Callable[[], LocalNetwork], start_prometheus: Callable[..., PrometheusServer]
) -> None:
    net = make_network()
    prom_node, target_node = net.add_node("prom"), net.add_node("cache-0")
    exporter_proc = target_node.popen(
        [sys.executable, "-c", EXPORTER_IN_NODE, target_node.address], stdout=subprocess.PIPE
    )
    assert read_line(exporter_proc, timeout=60) == "serving"

    job = ScrapeJob("maptarget", [ScrapeTarget(f"{target_node.address}:8000", {"target": "cache", "replica": "0"})])
    prom = start_prometheus(ledger=net.ledger, jobs=[job], node=prom_node)
    assert prom.base_url == f"http://{prom_node.address}:9090"  # reached from the host over the bridge
    [sample] = prom.client.wait_for_series("mapquake_store_entries", timeout=60)
    assert sample.value == 1234.0
    assert sample.labels["instance"] == f"{target_node.address}:8000"

    # the same series through reload(): a second job shows up without restarting
    pid = prom.pid
    prom.reload([job, ScrapeJob("self", [ScrapeTarget(f"{prom_node.address}:9090")])])
    prom.client.wait_for_series('up{job="self"} == 1', timeout=60)
    assert prom.pid == pid

    assert prom.stop(grace_s=10) == 0
    exporter_proc.send_signal(signal.SIGTERM)
    exporter_proc.wait(timeout=10)


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pid {proc.pid} exited with {proc.returncode} before writing {path}")
        if path.exists() and path.stat().st_size:
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout}s")


@needs_root
def test_prometheus_scrapes_a_maptarget_replica_in_its_namespace(
    go_binaries: dict[str, Path],
    make_network: Callable[[], LocalNetwork],
    start_prometheus: Callable[..., PrometheusServer],
    tmp_path: Path,
) -> None:
    net = make_network()
    prom_node, replica = net.add_node("prom"), net.add_node("cache-0")
    ready = tmp_path / "ready.json"
    argv = [
        str(go_binaries["maptarget"]),
        "--store", "syncmap",
        "--http-addr", f"{replica.address}:8080",
        "--grpc-addr", f"{replica.address}:9091",
        "--ready-file", str(ready),
        "--admin-token", "prometheus-test-token",
    ]  # fmt: skip
    with open(tmp_path / "maptarget.log", "wb") as log_file:
        target = replica.popen(argv, name="cache-0", stdout=log_file, stderr=subprocess.STDOUT)
    assert f'"{replica.address}:8080"' in _wait_for_file(ready, target, timeout=60)

    job = ScrapeJob("maptarget", [ScrapeTarget(f"{replica.address}:8080", {"target": "cache", "replica": "0"})])
    prom = start_prometheus(ledger=net.ledger, jobs=[job], node=prom_node)
    [info] = prom.client.wait_for_series('mapquake_build_info{target="cache"}', timeout=60)
    assert info.labels["store"] == "syncmap" and info.labels["replica"] == "0"
    # the controller, on the host, reaches the replica over the bridge; after a GC the live heap is known
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    gc_request = urllib.request.Request(f"http://{replica.address}:8080/admin/gc", method="POST")
    gc_request.add_header("Authorization", "Bearer prometheus-test-token")
    with opener.open(gc_request, timeout=10):
        pass
    [heap] = prom.client.wait_for_series("go_gc_heap_live_bytes > 0", timeout=60)
    assert heap.labels["instance"] == f"{replica.address}:8080"

    prom.stop(grace_s=10)
    target.send_signal(signal.SIGTERM)
    assert target.wait(timeout=30) == 0


def test_a_baseline_before_prometheus_scraped_already_holds_what_its_scrapes_set_up(
    start_target: Callable[..., TargetProcess], start_prometheus: Callable[..., PrometheusServer]
) -> None:
    """The load need not wait for Prometheus's first scrape (orchestrator/run/first_scrape.py): the
    controller's own warm-up scrape (connection held, as Prometheus holds its own) sets up what that
    scrape would. Side by side, three targets each (one heap sample varies by ~10 KiB on a busy
    machine): the heap a real Prometheus's scrapes add after a baseline taken with the metrics
    warm-up, and after one taken with the gRPC warm-up alone (typically 43-51 KiB)."""
    with_metrics = [start_target("syncmap") for _ in range(3)]
    grpc_only = [start_target("syncmap") for _ in range(3)]
    baselines = {}
    for target in [*with_metrics, *grpc_only]:
        ends = target.endpoints
        admin = TargetAdminClient(ends.http_addr, ends.grpc_addr, ends.admin_token)
        if target in with_metrics:
            with admin.warmed_up(hold_scrape=True):
                baselines[target] = admin.settled_heap(peers=0)[0].live_bytes
        else:
            warm_up(ends.grpc_addr)
            baselines[target] = admin.settled_heap(peers=0)[0].live_bytes
    job = ScrapeJob(
        "targets",
        [ScrapeTarget(t.endpoints.http_addr, {"target": "kv", "replica": str(i)}) for i, t in enumerate(baselines)],
    )
    prom = start_prometheus(ledger=Ledger.create(new_run_id()), jobs=[job])
    prom.client.wait_for_series('count_over_time(up{job="targets"}[1m]) >= 3', timeout=60, min_series=len(baselines))

    def added(targets: list[TargetProcess]) -> float:
        return statistics.median(
            collect_garbage(t.endpoints.http_addr, t.endpoints.admin_token).live_bytes - baselines[t] for t in targets
        )

    with_scrape, without = added(with_metrics), added(grpc_only)
    # Measured 10-19 KiB with it (the runtime's own growth, there either way).
    assert with_scrape < 24 * 1024 and with_scrape < without, (with_scrape, without)
