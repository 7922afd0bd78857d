"""Kill/pause only the run's target in the named namespace: checked on a fake /proc before any signal.

``check_target`` reads ``<proc>/<pid>/ns/net`` (compared with the namespace's file by device and
inode), ``environ`` (MAPQUAKE_RUN_ID) and ``stat`` (state, start time); the fault table calls it
with the handle of the namespace the signal names. The real-process version is
tests/integration/chaos/test_leases.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos.agent import server
from chaos.agent.ownership import OwnedProcess, Refused, check_target
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import FaultTable
from chaos.engines.command import NetnsHandle
from chaos.probe import Capabilities
from tests.unit.chaos.test_fault_table import RUN, Clock, FakeNamespaces
from tests.unit.chaos.test_nft import FakeRunner

PID, START = 4321, 777


def fake_process(proc: Path, pid: int, netns_file: Path, *, env: bytes, state: str = "S", start: int = START) -> None:
    base = proc / str(pid)
    (base / "ns").mkdir(parents=True)
    os.link(netns_file, base / "ns" / "net")  # same inode: "in that namespace"
    (base / "environ").write_bytes(env)
    (base / "stat").write_text(f"{pid} (tar get) {state} " + " ".join(["0"] * 18) + f" {start} 0 0\n")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(/proc, the named namespace's file, another namespace's file)."""
    proc, ns = tmp_path / "proc", tmp_path / "netns"
    ns.mkdir()
    named, other = ns / f"mq-{RUN}-a", ns / "other"
    named.write_text("")
    other.write_text("")
    return proc, named, other


OWNED = OwnedProcess(pid=PID, start_time=START, label="probe:a")
ENV = b"PATH=/bin\0MAPQUAKE_RUN_ID=" + RUN.encode() + b"\0HOME=/root\0"


def test_the_runs_target_in_its_namespace_passes(tree) -> None:  # type: ignore[no-untyped-def]
    proc, named, _ = tree
    fake_process(proc, PID, named, env=ENV)
    check_target(RUN, OWNED, str(named), proc=proc, own_pids=(1000, 999))
    check_target(RUN, OwnedProcess(PID, None, "k8s"), str(named), proc=proc, own_pids=(1000, 999))


def test_a_process_in_another_namespace_is_refused(tree) -> None:  # type: ignore[no-untyped-def]
    proc, named, other = tree
    fake_process(proc, PID, other, env=ENV)  # e.g. Prometheus, in the host's namespace
    with pytest.raises(Refused, match="not in the named namespace"):
        check_target(RUN, OWNED, str(named), proc=proc, own_pids=(1000, 999))


def test_the_agent_and_its_parent_are_never_signalled(tree) -> None:  # type: ignore[no-untyped-def]
    proc, named, _ = tree
    fake_process(proc, PID, named, env=ENV)
    for own in ((PID, 999), (1000, PID)):
        with pytest.raises(Refused, match="the agent itself"):
            check_target(RUN, OWNED, str(named), proc=proc, own_pids=own)
    with pytest.raises(Refused, match="the agent itself"):
        check_target(RUN, OwnedProcess(os.getpid(), START, "agent"), str(named), proc=proc)  # default: this process
    with pytest.raises(Refused, match="the agent itself"):
        check_target(RUN, OwnedProcess(os.getppid(), START, "agent"), str(named), proc=proc)
    with pytest.raises(Refused, match="init"):
        check_target(RUN, OwnedProcess(1, START, "init"), str(named), proc=proc)


@pytest.mark.parametrize(
    "env", [b"PATH=/bin\0", b"MAPQUAKE_RUN_ID=ffffffff\0", b"MAPQUAKE_RUN_ID=" + RUN.encode() + b"x\0", b""]
)
def test_a_process_without_the_run_id_in_its_environment_is_refused(tree, env: bytes) -> None:  # type: ignore[no-untyped-def]
    proc, named, _ = tree
    fake_process(proc, PID, named, env=env)
    with pytest.raises(Refused, match="does not carry MAPQUAKE_RUN_ID"):
        check_target(RUN, OWNED, str(named), proc=proc, own_pids=(1000, 999))


def test_a_different_start_time_or_a_zombie_or_a_gone_pid_is_refused(tree) -> None:  # type: ignore[no-untyped-def]
    proc, named, _ = tree
    fake_process(proc, PID, named, env=ENV, start=START + 1)  # the pid was reused
    with pytest.raises(Refused, match="not at the recorded"):
        check_target(RUN, OWNED, str(named), proc=proc, own_pids=(1000, 999))
    fake_process(proc, PID + 1, named, env=ENV, state="Z")
    with pytest.raises(Refused, match="not running"):
        check_target(RUN, OwnedProcess(PID + 1, START, "z"), str(named), proc=proc, own_pids=(1000, 999))
    with pytest.raises(Refused, match="cannot compare"):
        check_target(RUN, OwnedProcess(PID + 2, START, "gone"), str(named), proc=proc, own_pids=(1000, 999))


class RecordingNamespaces(FakeNamespaces):
    """The ledger says yes to every pid; what is checked is the live process."""

    def __init__(self, named: Path) -> None:
        self.named = named

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        super().handle(run_id, netns)
        return NetnsHandle(name=netns, prefix=("nsenter", f"--net={self.named}"))

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        return OwnedProcess(pid=pid, start_time=START, label="ledger says so")


def test_the_fault_table_checks_the_live_process_before_pausing(tree, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    proc, named, other = tree
    fake_process(proc, PID, named, env=ENV)
    fake_process(proc, PID + 1, other, env=ENV)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(server.process, "pause", lambda pid, start: sent.append(("pause", pid)))
    monkeypatch.setattr(server.process, "kill", lambda pid, start: sent.append(("kill", pid)))
    monkeypatch.setattr(server.process, "resume", lambda pid, start: sent.append(("resume", pid)) or True)
    t = FaultTable(RecordingNamespaces(named), Capabilities(nft=True, netem=False), runner=FakeRunner(), clock=Clock(),
                   proc=proc)  # fmt: skip

    def signal(fid: str, action: str, pid: int) -> pb.Fault:
        return pb.Fault(id=fid, run_id=RUN, signal=pb.Signal(action=action, netns=f"mq-{RUN}-a", pid=pid))

    for fid, pid in (("s.0", PID + 1), ("s.1", os.getpid()), ("s.2", os.getppid())):
        for action in ("pause", "kill"):
            with pytest.raises(Refused):
                t.apply(signal(fid, action, pid), 5.0)
    assert sent == [] and t.list() == []
    assert t.apply(signal("s.3", "pause", PID), 5.0).mechanisms == ["SIGSTOP"]
    t.heal(RUN)
    assert sent == [("pause", PID), ("resume", PID)]
