"""The workload plan: validation, the address allow-list on targets, JSON, expected entries, metrics."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core.safety import LOCAL_RUN, LOOPBACK_ONLY, AddressAllowList
from workloads.keyspace import KeySpec
from workloads.metrics import LATENCY_BUCKETS, ClientMetrics
from workloads.plan import (
    ExpectedEntries,
    Phase,
    WorkerSummary,
    WorkloadPlan,
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


def target_errors(addr: str, allowed: AddressAllowList | None = None) -> list[str]:
    plan = make_plan(targets=(addr,)) if allowed is None else make_plan(targets=(addr,), allowed=allowed)
    return [e for e in plan.errors() if e.startswith("targets[0]")]


def test_the_default_list_is_loopback_only() -> None:
    assert make_plan().allowed == LOOPBACK_ONLY


@pytest.mark.parametrize("addr", ["127.0.0.1:80", "127.9.9.9:1", "[::1]:9090", "localhost:8080"])
def test_loopback_is_allowed_by_default(addr: str) -> None:
    assert target_errors(addr) == []


@pytest.mark.parametrize(
    "addr", ["10.0.0.1:80", "8.8.8.8:53", "198.18.0.5:9090", "[2001:db8::1]:80", "example.com:80", "cache-0:9090"]
)
def test_anything_else_is_refused_by_default(addr: str) -> None:
    assert target_errors(addr) == [
        f"targets[0]: {addr!r} is outside loopback; mapquake only sends traffic to what the run created"
    ]


def test_a_run_network_is_refused_by_default_and_allowed_when_the_backend_lists_it() -> None:
    assert target_errors("198.18.0.5:9090") != []
    for addr in ("198.18.0.5:9090", "198.19.255.254:1", "127.0.0.1:80"):
        assert target_errors(addr, LOCAL_RUN) == []
    for addr in ("198.20.0.1:80", "198.17.255.255:80", "10.0.0.1:80", "example.com:80"):
        assert "outside loopback or 198.18.0.0/15" in target_errors(addr, LOCAL_RUN)[0]


def test_a_listed_name_is_allowed() -> None:
    allowed = AddressAllowList.of("127.0.0.0/8", "10.244.0.0/16", names=("cache-0.mq-run.svc",))
    assert target_errors("cache-0.mq-run.svc:9090", allowed) == []
    assert target_errors("CACHE-0.mq-run.svc.:9090", allowed) == []
    assert target_errors("10.244.3.7:9090", allowed) == []
    assert target_errors("cache-1.mq-run.svc:9090", allowed) != []


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", ":80"])
def test_malformed_addresses(addr: str) -> None:
    assert "not host:port" in target_errors(addr)[0]


def test_the_allow_list_travels_with_the_plan(tmp_path: Path) -> None:
    allowed = AddressAllowList.of("127.0.0.0/8", "::1/128", "10.244.0.0/16", names=("cache-0.mq-run.svc",))
    plan = make_plan(targets=("cache-0.mq-run.svc:9090", "10.244.1.2:9090"), allowed=allowed)
    back = WorkloadPlan.read(plan.write(tmp_path / "p.json"))
    assert back.allowed == allowed and back.errors() == []
    assert back.for_worker(0, metrics_addr=None, summary_path=tmp_path / "s.json").allowed == allowed


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
        "targets[0]: '10.1.2.3:80' is outside loopback",
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


def test_workloads_import_nothing_of_the_orchestrator_but_its_core() -> None:
    """Workers run the workloads package; of the controller they may use only orchestrator.core (cheap, pure)."""
    for path in sorted((Path(__file__).resolve().parents[2] / "workloads").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] != "orchestrator" or name.startswith("orchestrator.core."), (path, name)
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import orchestrator.core.safety\n"
        "new = set(sys.modules) - before\n"
        "bad = sorted(m for m in new if m.split('.')[0] not in (*sys.stdlib_module_names, 'orchestrator'))\n"
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
