"""The run ledger: write-ahead lines, replay to open resources, controller liveness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import (
    Ledger,
    ResourceKind,
    check_run_id,
    list_runs,
    new_run_id,
    parse_stat,
    pid_matches,
    pid_running,
    process_start_time,
    state_root,
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAPQUAKE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_run_ids_are_8_lowercase_hex() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert all(check_run_id(i) == i and len(i) == 8 for i in ids)
    for bad in ("ABCDEF01", "abc", "0123456789", "../../etc", "g0000000"):
        with pytest.raises(InfrastructureError, match="8 lowercase hex"):
            check_run_id(bad)


def test_state_root_honours_env(root: Path) -> None:
    assert state_root() == root
    assert root.is_dir()


def test_state_root_falls_back_when_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAPQUAKE_STATE_DIR", raising=False)
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    fallback = tmp_path / "fallback"
    monkeypatch.setattr("orchestrator.core.ledger.DEFAULT_STATE_ROOTS", (blocked / "mapquake", fallback))
    assert state_root() == fallback


def test_create_writes_opening_line_with_controller(root: Path) -> None:
    ledger = Ledger.create("0badcafe")
    lines = [json.loads(x) for x in (root / "runs" / "0badcafe" / "ledger.jsonl").read_text().splitlines()]
    assert lines[0]["op"] == "open"
    assert lines[0]["controller_pid"] == os.getpid()
    assert lines[0]["start_time"] == process_start_time(os.getpid())
    assert ledger.is_controller_alive()
    with pytest.raises(InfrastructureError, match="already has state"):
        Ledger.create("0badcafe")


def test_replay_gives_open_resources_in_order(root: Path) -> None:
    ledger = Ledger.create("00000001")
    ledger.record(ResourceKind.BRIDGE, "mqb00000001", detail={"subnet": "198.18.1.0/24"})
    ledger.record(ResourceKind.NETNS, "mq-00000001-a")
    ledger.record(ResourceKind.VETH, "mq00000001h0", netns="mq-00000001-a")
    ledger.record(ResourceKind.PROCESS, "a:sleep", netns="mq-00000001-a")
    ledger.started("a:sleep", os.getpid())
    ledger.released(ResourceKind.VETH, "mq00000001h0")

    again = Ledger.load("00000001")
    assert [(r.kind, r.name) for r in again.open_resources()] == [
        (ResourceKind.BRIDGE, "mqb00000001"),
        (ResourceKind.NETNS, "mq-00000001-a"),
        (ResourceKind.PROCESS, "a:sleep"),
    ]
    proc = again.open_resources()[2]
    assert proc.pid == os.getpid()
    assert proc.start_time == process_start_time(os.getpid())
    assert proc.netns == "mq-00000001-a"
    assert again.open_resources()[0].detail == {"subnet": "198.18.1.0/24"}


def test_recreated_after_release_is_open_again(root: Path) -> None:
    ledger = Ledger.create("00000002")
    ledger.record(ResourceKind.DIR, "/x/00000002")
    ledger.released(ResourceKind.DIR, "/x/00000002")
    assert ledger.open_resources() == []
    ledger.record(ResourceKind.DIR, "/x/00000002")
    assert [r.name for r in Ledger.load("00000002").open_resources()] == ["/x/00000002"]


def test_torn_last_line_is_ignored(root: Path) -> None:
    ledger = Ledger.create("00000003")
    ledger.record(ResourceKind.NETNS, "mq-00000003-a")
    with open(ledger.file, "a") as f:
        f.write('{"op": "create", "kind": "netns", "na')  # crash mid-write
    assert [r.name for r in Ledger.load("00000003").open_resources()] == ["mq-00000003-a"]


def test_dead_controller_is_detected(root: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.core.ledger import Ledger; Ledger.create('00000004')"],
    )
    assert child.wait(timeout=60) == 0
    ledger = Ledger.load("00000004")
    assert ledger.controller_pid == child.pid
    assert not ledger.is_controller_alive()
    runs = {r.run_id: r for r in list_runs()}
    assert not runs["00000004"].controller_alive


def test_list_runs_and_remove(root: Path) -> None:
    assert list_runs() == []
    a = Ledger.create("0000000a")
    a.record(ResourceKind.NETNS, "mq-0000000a-x")
    Ledger.create("0000000b")
    (root / "runs" / "not-a-run").mkdir()
    runs = list_runs()
    assert [r.run_id for r in runs] == ["0000000a", "0000000b"]
    assert runs[0].open_resources == 1 and runs[0].controller_alive
    a.remove()
    assert [r.run_id for r in list_runs()] == ["0000000b"]


def test_load_unknown_run_says_where_it_looked(root: Path) -> None:
    with pytest.raises(InfrastructureError, match="no ledger for run 12345678"):
        Ledger.load("12345678")


def test_parse_stat_survives_odd_comm() -> None:
    fields = ["S"] + [str(i) for i in range(4, 53)]  # fields 3..52
    text = "4242 (a) b (c)) " + " ".join(fields)
    assert parse_stat(text) == ("S", 22)
    assert parse_stat("1 (x) R") is None


def test_pid_reuse_guard() -> None:
    me = os.getpid()
    start = process_start_time(me)
    assert pid_matches(me, start) and pid_running(me, start)
    assert not pid_matches(me, (start or 0) + 1)
    assert not pid_matches(None, start) and not pid_matches(me, None)


def test_zombie_is_not_running() -> None:
    child = subprocess.Popen(["true"])
    start = process_start_time(child.pid)
    # `true` exits at once; until waited for it is a zombie: same pid and start time, not running.
    deadline = time.monotonic() + 10
    while pid_running(child.pid, start) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pid_matches(child.pid, start)
    assert not pid_running(child.pid, start)
    child.wait()
