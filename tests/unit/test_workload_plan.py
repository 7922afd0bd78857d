"""The workload plan: validation, the safety rule on target addresses, JSON, expected entries, metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workloads.keyspace import KeySpec
from workloads.metrics import LATENCY_BUCKETS, ClientMetrics
from workloads.plan import (
    ExpectedEntries,
    Phase,
    UnsafeTargetError,
    WorkerSummary,
    WorkloadPlan,
    check_target_address,
    expected_entries,
    value_bytes,
)


def make_plan(**overrides: object) -> WorkloadPlan:
    base: dict[str, object] = {
        "user": "MapWriteUser",
        "protocol": "grpc",
        "targets": ("127.0.0.1:9090",),
        "keys": KeySpec(space=1000),
        "phases": (Phase("a", 5, users=2),),
        "worker_count": 2,
        "batch": 10,
    }
    base.update(overrides)
    return WorkloadPlan(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "addr", ["127.0.0.1:80", "127.9.9.9:1", "[::1]:9090", "198.18.0.5:9090", "198.19.255.254:1", "localhost:8080"]
)
def test_loopback_and_mapquake_namespaces_are_allowed(addr: str) -> None:
    assert check_target_address(addr) == addr


@pytest.mark.parametrize(
    "addr", ["10.0.0.1:80", "8.8.8.8:53", "198.20.0.1:80", "198.17.255.255:80", "[2001:db8::1]:80", "example.com:80"]
)
def test_anything_else_is_refused(addr: str) -> None:
    with pytest.raises(UnsafeTargetError):
        check_target_address(addr)


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", ":80"])
def test_malformed_addresses(addr: str) -> None:
    with pytest.raises(ValueError, match="not host:port"):
        check_target_address(addr)


def test_a_valid_plan_has_no_errors_and_round_trips(tmp_path: Path) -> None:
    plan = make_plan(phases=(Phase("a", 5, users=2), Phase("b", 2.5, users=0, rate=100.0)), extra={"run": "x"})
    assert plan.errors() == []
    path = plan.for_worker(1, metrics_addr="127.0.0.1:9100", summary_path=tmp_path / "s.json").write(
        tmp_path / "p.json"
    )
    back = WorkloadPlan.read(path)
    assert back.worker_index == 1 and back.metrics_addr == "127.0.0.1:9100"
    assert back == plan.for_worker(1, metrics_addr="127.0.0.1:9100", summary_path=tmp_path / "s.json")
    assert back.load_s == 7.5
    assert back.deadline_s == back.startup_s + 7.5 + back.stop_timeout_s + back.linger_s + back.cap_s


def test_every_error_is_listed_with_its_field() -> None:
    plan = make_plan(
        user="Nope",
        protocol="http",
        targets=("10.1.2.3:80",),
        phases=(Phase("", -1, users=-2, rate=0),),
        value_type="float64",
        batch=4,
        read_ratio=2,
        max_ops_per_worker=0,
    )
    errors = "\n".join(plan.errors())
    for fragment in (
        "user: unknown user class 'Nope'",
        "targets[0]: target '10.1.2.3:80' is outside loopback",
        "phases[0].name",
        "phases[0].duration_s",
        "phases[0].users",
        "phases[0].rate",
        "value_type: unknown value type 'float64'",
        "batch: HTTP writes one key per request",
        "read_ratio",
        "max_ops_per_worker",
    ):
        assert fragment in errors
    with pytest.raises(ValueError, match="invalid workload plan"):
        plan.validate()


def test_key_space_must_fit_the_workers() -> None:
    assert "keys.space: 1 keys cannot give each of 2 workers" in "\n".join(make_plan(keys=KeySpec(space=1)).errors())
    churn = make_plan(user="DeleteChurnUser", keys=KeySpec(space=100, live=50), worker_count=3)
    assert any("at least twice keys.live" in e for e in churn.errors())
    assert make_plan(user="DeleteChurnUser", keys=KeySpec(space=100, live=40), worker_count=2).errors() == []


def test_values() -> None:
    assert value_bytes("int64", 32) == b"42"
    assert len(value_bytes("[128]byte", 32)) == 128
    assert len(value_bytes("[]byte", 100)) == 100
    assert value_bytes("string", 0) == b""


def summary(worker: int, draws: int, uncertain: list[int]) -> WorkerSummary:
    return WorkerSummary(
        worker_index=worker,
        worker_count=2,
        user="MapWriteUser",
        protocol="grpc",
        draws=draws,
        writes=draws,
        writes_per_target=[draws],
        uncertain_per_target=uncertain,
    )


def test_expected_entries_exact_and_bounded() -> None:
    plan = make_plan()
    exact = expected_entries(plan, [summary(1, 300, [0]), summary(0, 200, [0])])
    assert exact == ExpectedEntries(expected=[500], low=[500], high=[500], exact=True)
    bounded = expected_entries(plan, [summary(0, 200, [3]), summary(1, 300, [4])])
    assert bounded == ExpectedEntries(expected=[500], low=[493], high=[500], exact=False)
    churn = make_plan(user="DeleteChurnUser", keys=KeySpec(space=1000, live=100))
    assert expected_entries(churn, [summary(0, 1000, [2]), summary(1, 10, [0])]) == ExpectedEntries(
        expected=[60], low=[58], high=[62], exact=False
    )
    with pytest.raises(ValueError, match="one summary per worker"):
        expected_entries(plan, [summary(0, 1, [0])])


def test_client_metrics_exposition() -> None:
    metrics = ClientMetrics("grpc")
    metrics.observe("batch_put", 0.000_25)
    metrics.observe("get", 0.2, failed=True)
    metrics.add_writes(100)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    hist = families["mapquake_client_request_seconds"]
    buckets = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["op"] == "batch_put"]
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert LATENCY_BUCKETS[0] == pytest.approx(10e-6) and 10 < LATENCY_BUCKETS[-1] < 11
    assert all(s.labels["protocol"] == "grpc" for s in buckets)
    le_300us = next(s for s in buckets if float(s.labels["le"]) >= 0.00025)
    assert le_300us.value == 1
    assert families["mapquake_client_writes"].samples[0].value == 100
    errors = {s.labels["op"]: s.value for s in families["mapquake_client_errors"].samples if s.name.endswith("_total")}
    assert errors == {"put": 0, "batch_put": 0, "put_stream": 0, "get": 1, "delete": 0}


def test_the_controller_side_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, orchestrator.backends.local.locust, workloads.plan, workloads.keyspace\n"
        "import workloads.shape, workloads.metrics\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent', 'grpc'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_locust_cluster_command_lines(tmp_path: Path) -> None:
    from orchestrator.backends.local.locust import LOCUSTFILE, LocustCluster

    cluster = LocustCluster(make_plan(), workers=2, work_dir=tmp_path, master_port=15557)
    master = cluster.master_argv()
    assert master[:3] == [sys.executable, "-m", "locust"] and str(LOCUSTFILE) in master
    for flag in ("--master", "--headless", "--csv", "--stop-timeout", "--run-time"):
        assert flag in master
    assert master[master.index("--expect-workers") + 1] == "2"
    assert master[master.index("--master-bind-port") + 1] == "15557"
    assert master[-1] == "MapWriteUser"
    worker = cluster.worker_argv(1)
    assert worker[worker.index("--master-host") + 1] == "127.0.0.1" and "--worker" in worker
    assert [p.worker_index for p in cluster.worker_plans] == [0, 1]
    assert len(set(cluster.metrics_addrs)) == 2


def test_locust_cluster_refuses_an_invalid_plan(tmp_path: Path) -> None:
    from orchestrator.backends.local.locust import LocustCluster
    from orchestrator.core.errors import UsageError

    with pytest.raises(UsageError, match="outside loopback"):
        LocustCluster(make_plan(targets=("192.168.1.1:9090",)), workers=1, work_dir=tmp_path)
