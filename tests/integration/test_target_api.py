"""maptarget for real: both APIs, metrics and the GC endpoint, driven by mapload and by grpcio stubs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.safety import LOOPBACK_ONLY
from orchestrator.targets.admin import collect_garbage, scrape
from orchestrator.targets.build import REPO_ROOT, TargetProcess
from orchestrator.targets.mapload import LoadPlan, run_load
from workloads.pb import store_pb2, store_pb2_grpc

pytestmark = pytest.mark.integration


def _metrics_lines(http_addr: str) -> list[str]:
    with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=10) as resp:
        return resp.read().decode().splitlines()


def test_mapload_grpc_fills_syncmap_exactly(start_target: Callable[..., TargetProcess]) -> None:
    target = start_target("syncmap")
    assert target.endpoints is not None
    summary = run_load(
        LoadPlan(
            addr=target.endpoints.grpc_addr,
            allowed=LOOPBACK_ONLY,
            protocol="grpc",
            ops=100_000,
            keys="sequential",
            key_space=100_000,
            concurrency=4,
            batch=100,
        )
    )
    assert summary.ops == 100_000
    assert summary.errors == 0
    # The exposition line itself, unlabelled, exactly as operators grep for it.
    assert "mapquake_store_entries 100000" in _metrics_lines(target.endpoints.http_addr)
    heap = collect_garbage(target.endpoints.http_addr, target.endpoints.admin_token)
    assert heap.entries == 100_000
    # A 100k-entry sync.Map of [32]byte values costs well over 10 MB on any Go version.
    assert heap.live_bytes > 10_000_000
    assert heap.go_type.startswith("sync.Map[string]")


def test_mapload_refuses_an_address_off_the_allow_list() -> None:
    # No target needed: mapload checks the address before it builds a client, so nothing is sent.
    with pytest.raises(InfrastructureError, match=r"mapload only sends to loopback \(see --allow\), not 198.18.0.1"):
        run_load(LoadPlan(addr="198.18.0.1:9090", allowed=LOOPBACK_ONLY, ops=1, duration_s=1))


def test_python_grpc_client_through_the_stubs(start_target: Callable[..., TargetProcess]) -> None:
    target = start_target("mutexmap", "--value-type", "[]byte")
    assert target.endpoints is not None
    with grpc.insecure_channel(target.endpoints.grpc_addr) as channel:
        stub = store_pb2_grpc.MapStoreStub(channel)
        stub.Put(store_pb2.PutRequest(key="alpha", value=b"one"), timeout=10)
        got = stub.Get(store_pb2.GetRequest(key="alpha"), timeout=10)
        assert (got.found, got.value) == (True, b"one")
        assert stub.Get(store_pb2.GetRequest(key="missing"), timeout=10).found is False

        batch = store_pb2.BatchPutRequest(
            entries=[store_pb2.PutRequest(key=f"k{i}", value=b"v" * 16) for i in range(1000)]
        )
        assert stub.BatchPut(batch, timeout=10).written == 1000

        stream = (store_pb2.PutRequest(key=f"s{i}", value=b"x") for i in range(500))
        assert stub.PutStream(stream, timeout=10).written == 500

        assert stub.Delete(store_pb2.DeleteRequest(key="alpha"), timeout=10).existed is True
        assert stub.Delete(store_pb2.DeleteRequest(key="alpha"), timeout=10).existed is False

        # Stats(gc=true) runs a GC: an admin call, refused without the target's token.
        with pytest.raises(grpc.RpcError) as refused:
            stub.Stats(store_pb2.StatsRequest(gc=True), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        auth = (("authorization", f"Bearer {target.endpoints.admin_token}"),)
        stats = stub.Stats(store_pb2.StatsRequest(gc=True), timeout=10, metadata=auth)
    assert stats.entries == 1500
    assert stats.high_water == 1501
    assert stats.store == "mutexmap"
    assert stats.go_type == "map[string][]byte"
    assert stats.live_bytes > 0
    assert stats.go_version.startswith("go1.")
    # The HTTP side sees the same store.
    assert collect_garbage(target.endpoints.http_addr, target.endpoints.admin_token).entries == 1500
    assert scrape(target.endpoints.http_addr)["mapquake_store_entries"] == 1500


def test_http_api_round_trip(start_target: Callable[..., TargetProcess]) -> None:
    target = start_target("structmap", "--value-type", "int64")
    assert target.endpoints is not None
    base = target.endpoints.http_url

    def call(method: str, path: str, body: bytes | None = None, token: str = "") -> tuple[int, bytes]:
        req = urllib.request.Request(base + path, data=body, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    assert call("PUT", "/kv/answer", b"42")[0] in (200, 201, 204)
    assert call("GET", "/kv/answer") == (200, b"42")
    assert call("GET", "/kv/nothing")[0] == 404
    status, body = call("PUT", "/kv/bad", b"not-a-number")
    assert status == 400
    assert b"int64" in body  # the error says what the value should have been
    assert call("DELETE", "/kv/answer")[0] in (200, 204)
    assert call("GET", "/kv/answer")[0] == 404
    assert call("GET", "/healthz")[0] == 200
    assert call("POST", "/admin/gc")[0] == 401  # admin needs the target's token
    assert call("POST", "/admin/gc", token="not-the-token")[0] == 401
    gc = json.loads(call("POST", "/admin/gc", token=target.endpoints.admin_token)[1])
    assert {"live_bytes", "heap_objects", "goroutines", "entries"} <= gc.keys()
    assert gc["entries"] == 0


def test_target_stops_cleanly_on_sigterm(start_target: Callable[..., TargetProcess]) -> None:
    target = start_target("ringbuffer")
    assert target.stop() == 0


def test_bad_flag_is_a_clear_error(go_binaries: dict[str, Path]) -> None:
    result = subprocess.run(
        [str(go_binaries["maptarget"]), "--store", "nosuchstore"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "nosuchstore" in result.stderr
    assert "syncmap" in result.stderr  # it lists what is allowed
    assert "goroutine" not in result.stderr  # no Go stack dump


def test_smoke_command_end_to_end(go_binaries: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "smoke", "--ops", "20000", "--key-space", "5000", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["entries"] == report["expected_entries"] == 5000
    assert report["metrics_entries"] == 5000
    assert report["live_bytes_delta"] > 0
