"""A real Locust master and workers (subprocesses) drive real maptarget processes; the counts must be exact."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.backends.local.locust import MASTER_EXIT_GRACE_S, LocustCluster
from orchestrator.targets.admin import collect_garbage
from orchestrator.targets.build import TargetProcess
from workloads.keyspace import KeySpec
from workloads.plan import GATE_WAITING_MARKER, LOAD_STARTED_MARKER, Phase, WorkloadPlan

pytestmark = pytest.mark.integration


def _sample_sum(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _assert_all_gone(cluster: LocustCluster) -> None:
    for p in cluster.processes:
        assert p.proc.returncode is not None, f"{p.role} pid {p.pid} still running"
        assert not Path(f"/proc/{p.pid}").exists() or _is_other_process(p.pid), p.role


def _is_other_process(pid: int) -> bool:
    """A reaped pid may be reused by an unrelated process; only ours would run locust."""
    try:
        return b"locust" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def test_master_and_two_workers_fill_a_target_exactly(
    start_target: Callable[..., TargetProcess], tmp_path: Path
) -> None:
    target = start_target("syncmap", "--value-type", "[32]byte")
    assert target.endpoints is not None
    plan = WorkloadPlan(
        user="MapWriteUser",
        protocol="grpc",
        targets=(target.endpoints.grpc_addr,),
        keys=KeySpec(space=50_000, distribution="zipf", s=1.1, seed=7),
        phases=(Phase("flat-out", 4, users=2), Phase("throttled", 4, users=4, rate=80.0)),
        value_type="[32]byte",
        write_mode="batch",
        batch=50,
        max_ops_per_worker=2_000_000,
        linger_s=1.5,  # workers serve their final metrics a little after the load stopped
    )
    cluster = LocustCluster(plan, workers=2, work_dir=tmp_path / "load")
    with cluster:
        result = cluster.run()
    _assert_all_gone(cluster)
    result.check()

    assert [s.worker_index for s in sorted(result.summaries, key=lambda s: s.worker_index)] == [0, 1]
    assert result.errors == 0
    expected = result.expected()
    assert expected.exact
    assert result.writes == sum(s.draws for s in result.summaries) > 1000
    # far more map writes than requests: every request is a BatchPut of 50
    assert result.writes == 50 * sum(s.requests for s in result.summaries)
    assert collect_garbage(target.endpoints.http_addr, target.endpoints.admin_token).entries == expected.expected[0]

    for i in (0, 1):
        served = result.last_metrics[i]
        assert "mapquake_client_request_seconds_bucket" in served
        assert _sample_sum(served, "mapquake_client_request_seconds_count", op="batch_put", protocol="grpc") > 0
        assert (
            _sample_sum(served, "mapquake_client_writes_total") == result.summaries[i].writes
        )  # final, thanks to linger
        final = (tmp_path / "load" / f"summary-worker-{i}.prom").read_text()
        assert _sample_sum(final, "mapquake_client_writes_total") == result.summaries[i].writes
    assert {"stats", "stats_history"} <= set(result.csv_files)
    assert "batch_put" in result.csv_files["stats"].read_text()


def test_the_load_has_ended_when_every_worker_reported_while_they_linger_for_the_last_scrape(
    start_target: Callable[..., TargetProcess], tmp_path: Path
) -> None:
    target = start_target("mutexmap", "--value-type", "[32]byte")
    assert target.endpoints is not None
    plan = WorkloadPlan(
        user="MapWriteUser", protocol="grpc", targets=(target.endpoints.grpc_addr,),
        keys=KeySpec(space=1000, distribution="sequential", seed=1), phases=(Phase("p", 2, users=2),),
        value_type="[32]byte", write_mode="batch", batch=10, max_ops_per_worker=100_000, linger_s=30.0,
    )  # fmt: skip
    cluster = LocustCluster(plan, workers=1, work_dir=tmp_path / "load")
    with cluster:
        cluster.start()
        result = cluster.wait(leave_lingering=True)
        master, worker = cluster.processes
        assert worker.proc.poll() is None  # the worker lingers (30 s), serving its final metrics
        # The master finishes its shutdown by itself, with its CSVs written.
        assert master.proc.wait(timeout=MASTER_EXIT_GRACE_S) == 0
        assert "batch_put" in (tmp_path / "load" / "locust_stats.csv").read_text()
        result.check()
        assert result.writes == result.summaries[0].draws > 0
        requests = result.summaries[0].requests
        labels = {"op": "batch_put", "protocol": "grpc"}
        # What it serves now is final (the count of its summary); so is the exposition written with it.
        served = cluster.scrape_workers()[0]
        assert _sample_sum(served, "mapquake_client_request_seconds_count", **labels) == requests
        assert _sample_sum(result.last_metrics[0], "mapquake_client_request_seconds_count", **labels) == requests
    _assert_all_gone(cluster)  # stop() (the backend's teardown) ended the lingering worker


def test_a_gated_start_sends_nothing_until_released(start_target: Callable[..., TargetProcess], tmp_path: Path) -> None:
    target = start_target("mutexmap", "--value-type", "[32]byte")
    assert target.endpoints is not None
    plan = WorkloadPlan(
        user="MapWriteUser", protocol="grpc", targets=(target.endpoints.grpc_addr,),
        keys=KeySpec(space=1000, distribution="sequential", seed=1), phases=(Phase("p", 2, users=2),),
        value_type="[32]byte", write_mode="batch", batch=10, max_ops_per_worker=100_000,
    )  # fmt: skip
    cluster = LocustCluster(plan, workers=2, work_dir=tmp_path / "load")
    with cluster:
        cluster.start(gated=True)  # returns once both workers joined the waiting master
        assert cluster.load_started_at is None
        assert all(p.proc.poll() is None for p in cluster.processes)
        # Held: the master's log says it waits, and the target has seen no write.
        assert GATE_WAITING_MARKER in (tmp_path / "load" / "master.log").read_text()
        assert LOAD_STARTED_MARKER not in (tmp_path / "load" / "master.log").read_text()
        admin = target.endpoints
        assert collect_garbage(admin.http_addr, admin.admin_token).entries == 0
        released = time.monotonic()
        cluster.release()
        assert cluster.load_started_at is not None and cluster.load_started_at >= released
        result = cluster.wait()
    result.check()
    assert result.writes > 0
    assert collect_garbage(admin.http_addr, admin.admin_token).entries == result.expected().expected[0]


def test_http_keys_are_routed_over_unreplicated_targets(
    start_target: Callable[..., TargetProcess], tmp_path: Path
) -> None:
    targets = [start_target("mutexmap", "--value-type", "int64") for _ in range(2)]
    plan = WorkloadPlan(
        user="SyncMapChurnUser",
        protocol="http",
        targets=tuple(t.endpoints.http_addr for t in targets if t.endpoints),
        keys=KeySpec(space=4_000, distribution="uniform", seed=3),
        phases=(Phase("churn", 3, users=3),),
        value_type="int64",
        max_ops_per_worker=3_000,
    )
    cluster = LocustCluster(plan, workers=1, work_dir=tmp_path / "load")
    result = cluster.run()
    _assert_all_gone(cluster)
    result.check()
    (summary,) = result.summaries
    assert summary.draws > 0 and summary.reads == summary.draws and summary.errors == 0
    assert summary.writes < summary.draws  # some LoadOrStore calls hit an existing key
    expected = result.expected()
    assert expected.exact
    entries = [collect_garbage(t.endpoints.http_addr, t.endpoints.admin_token).entries for t in targets if t.endpoints]
    assert entries == expected.expected
    assert all(n > 0 for n in entries)


def test_stop_mid_run_ends_every_process_and_keeps_the_summaries(
    start_target: Callable[..., TargetProcess], tmp_path: Path
) -> None:
    target = start_target("mutexmap")
    assert target.endpoints is not None
    plan = WorkloadPlan(
        user="DeleteChurnUser",
        protocol="grpc",
        targets=(target.endpoints.grpc_addr,),
        keys=KeySpec(space=10_000, live=1_000),
        phases=(Phase("long", 600, users=2),),
    )
    cluster = LocustCluster(plan, workers=2, work_dir=tmp_path / "load")
    with cluster:
        cluster.start()
        assert cluster.load_started_at is not None  # start() returns once the first phase began
        pids = [p.pid for p in cluster.processes]
        assert all(os.path.exists(f"/proc/{pid}") for pid in pids)
    # __exit__ stopped everything by pid (SIGTERM: workers stop their users and write summaries)
    _assert_all_gone(cluster)
    for i in (0, 1):
        assert (tmp_path / "load" / f"summary-worker-{i}.json").exists()


def test_a_target_dying_mid_run_is_counted_not_fatal(
    start_target: Callable[..., TargetProcess], tmp_path: Path
) -> None:
    target = start_target("mutexmap")
    assert target.endpoints is not None
    plan = WorkloadPlan(
        user="MapWriteUser",
        protocol="grpc",
        targets=(target.endpoints.grpc_addr,),
        keys=KeySpec(space=100_000, distribution="uniform"),
        phases=(Phase("load", 4, users=2),),
        write_mode="stream",
        batch=20,
        request_timeout_s=2.0,
    )
    cluster = LocustCluster(plan, workers=1, work_dir=tmp_path / "load")
    with cluster:
        cluster.start()
        deadline = time.monotonic() + 10
        while _sample_sum(cluster.last_metrics.get(0, ""), "mapquake_client_writes_total") == 0:
            assert time.monotonic() < deadline, "no write acknowledged within 10s"
            cluster.scrape_workers()
            time.sleep(0.05)
        target.stop()  # the target goes away under load
        result = cluster.wait()
    _assert_all_gone(cluster)
    result.check()  # the load itself ended cleanly
    (summary,) = result.summaries
    assert summary.writes > 0
    assert summary.errors > 0 and summary.errors_by_op.get("put_stream", 0) == summary.errors
    assert summary.uncertain > 0
    expected = result.expected()
    assert not expected.exact and expected.low[0] < expected.high[0]
