"""The agent's fault table: leases on a fake clock, idempotent calls, refusals (fake namespaces and runner)."""

from __future__ import annotations

import json

import pytest

from chaos.agent.ownership import OwnedProcess, Refused
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import FaultTable
from chaos.engines.command import CommandResult, NetnsHandle
from chaos.probe import Capabilities
from tests.unit.chaos.test_nft import DELETE_DOCUMENT, FakeRunner, rule_lines, saddr

RUN = "0a0b0c0d"


class FakeNamespaces:
    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        if run_id != RUN or not netns.startswith(f"mq-{RUN}-"):
            raise Refused(f"{netns} is not ours")
        return NetnsHandle.local(netns)

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        raise Refused("no processes here")

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        return []

    def processes(self, run_id: str) -> list[OwnedProcess]:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def partition(fid: str, netns: str = f"mq-{RUN}-a") -> pb.Fault:
    return pb.Fault(
        id=fid,
        run_id=RUN,
        summary="p",
        partition=pb.Partition(mode="drop", cuts=[pb.Cut(netns=netns, sources=["198.18.7.3"])]),
    )


@pytest.fixture
def table() -> tuple[FaultTable, FakeRunner, Clock]:
    runner = FakeRunner({"list tables": CommandResult(0, "table inet mapquake_0a0b0c0d\n", "")})
    clock = Clock()
    return FaultTable(FakeNamespaces(), Capabilities(nft=True, netem=False), runner=runner, clock=clock), runner, clock


def test_lease_expiry_heals(table) -> None:  # type: ignore[no-untyped-def]
    t, runner, clock = table
    held = t.apply(partition("p.0"), 5.0)
    assert held.mechanisms == ["nft drop"]
    assert runner.calls[-1][0][-4:] == ["nft", "-j", "-f", "-"]
    assert rule_lines(runner.calls[-1][1]) == [("input", "p.0", [saddr("198.18.7.3"), {"drop": None}])]
    clock.now += 4.9
    assert t.reap() == []
    assert t.renew(RUN, ["p.0", "gone"], 5.0) == (["p.0"], ["gone"])
    clock.now += 4.9
    assert t.reap() == []
    clock.now += 0.2
    assert t.reap() == [(RUN, "p.0")]
    assert t.list() == []
    assert json.loads(runner.calls[-1][1] or "") == DELETE_DOCUMENT
    assert t.healed_log[-1][3] == "lease-expired"


def test_apply_is_idempotent_and_heal_of_one_keeps_the_other(table) -> None:  # type: ignore[no-untyped-def]
    t, runner, _ = table
    t.apply(partition("p.0"), 5.0)
    t.apply(partition("p.1"), 5.0)
    n = len(runner.calls)
    t.apply(partition("p.0"), 5.0)  # renews, sends nothing
    assert len(runner.calls) == n
    assert t.heal(RUN, ["p.0"]) == (["p.0"], [])
    assert [comment for _, comment, _ in rule_lines(runner.calls[-1][1])] == ["p.1"]
    assert t.heal(RUN, ["p.0"]) == ([], [])


def test_refuses_foreign_namespaces(table) -> None:  # type: ignore[no-untyped-def]
    t, runner, _ = table
    with pytest.raises(Refused):
        t.apply(partition("p.0", netns="mq-ffffffff-a"), 5.0)
    with pytest.raises(Refused):
        t.apply(partition("p.0", netns="docker0ns"), 5.0)
    assert t.list() == [] and runner.calls == []
