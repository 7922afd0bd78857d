"""Routing by node: a fault's rules go to the agent of the node each pod runs on (NodeInfo.host), under one id;
heals, renewals and close reach every agent holding a part; a node without an agent is a clear error."""

from __future__ import annotations

import grpc
import pytest

from chaos.agent.client import to_proto
from chaos.agent.pb import agent_pb2 as pb
from chaos.nemesis import Nemesis
from chaos.resolve import NodeInfo, RunTopology, resolve_fault
from chaos.routing import split_by_host
from orchestrator.core.errors import InfrastructureError
from orchestrator.scenario.spec import build_fault

RUN = "0a0b0c0d"


def topo(hosts: list[str | None]) -> RunTopology:
    return RunTopology(
        RUN,
        tuple(
            NodeInfo(f"kv-{i}", f"pod/mq/kv-{i}", f"198.19.0.{i + 10}", "eth0", "target", "kv", i, host=h)
            for i, h in enumerate(hosts)
        ),
    )


HALVES = build_fault("partition", {"shape": "halves", "among": "kv"})


class RecordingAgent:
    """One agent: records what it is sent; forgets faults when told to (a lease expired there)."""

    def __init__(self) -> None:
        self.applied: dict[str, pb.Fault] = {}
        self.calls: list[tuple[str, list[str]]] = []
        self.forget: set[str] = set()
        self.closed = False

    def apply(self, fault: pb.Fault, lease_s: float) -> pb.ApplyReply:
        self.applied[fault.id] = fault
        self.calls.append(("apply", [fault.id]))
        return pb.ApplyReply(fault_id=fault.id, mechanisms=["nft drop"])

    def renew(self, run_id: str, ids: list[str], lease_s: float) -> pb.RenewReply:
        self.calls.append(("renew", list(ids)))
        return pb.RenewReply(
            renewed=[i for i in ids if i not in self.forget], unknown=[i for i in ids if i in self.forget]
        )

    def heal(self, run_id: str, ids: list[str] = ()) -> pb.HealReply:  # type: ignore[assignment]
        self.calls.append(("heal", list(ids)))
        return pb.HealReply(healed=list(ids))

    def close(self) -> None:
        self.closed = True


def cut_namespaces(fault: pb.Fault) -> list[str]:
    return [c.netns for c in fault.partition.cuts]


def test_split_keeps_each_hosts_cuts_in_order_under_one_key() -> None:
    fault = resolve_fault(HALVES, topo(["a", "b", "a", "b"]), phase="p", index=0)
    parts = split_by_host(fault, lambda h: h)
    assert list(parts) == ["a", "b"]
    assert [c.node for c in parts["a"].cuts] == ["kv-0", "kv-2"]
    assert [c.node for c in parts["b"].cuts] == ["kv-1", "kv-3"]
    assert {p.key for p in parts.values()} == {"p.0"} and all(p.summary == fault.summary for p in parts.values())
    assert split_by_host(fault, lambda h: "only") == {"only": fault}  # one agent: the fault unchanged


def test_nemesis_sends_each_agent_its_pods_rules_and_heals_on_both() -> None:
    a, b = RecordingAgent(), RecordingAgent()
    nemesis = Nemesis(None, RUN, agents={"a": a, "b": b}, renew_interval_s=3600)  # type: ignore[dict-item]
    try:
        applied = nemesis.apply(resolve_fault(HALVES, topo(["a", "b", "a", "b"]), phase="p", index=0))
        assert applied.hosts == ("a", "b") and applied.mechanisms == ["nft drop"]
        assert cut_namespaces(a.applied["p.0"]) == ["pod/mq/kv-0", "pod/mq/kv-2"]
        assert cut_namespaces(b.applied["p.0"]) == ["pod/mq/kv-1", "pod/mq/kv-3"]
        nemesis._renew_once()
        assert a.calls[-1] == b.calls[-1] == ("renew", ["p.0"])
        nemesis.end_phase("p")
        assert a.calls[-1] == b.calls[-1] == ("heal", ["p.0"])
        one = nemesis.apply(resolve_fault(HALVES, topo(["a", "a"]), phase="q", index=0))
        assert one.hosts == ("a",) and "q.0" not in b.applied  # b's pods untouched: b is not called
        b.calls.clear()
        nemesis._renew_once()
        assert b.calls == [] and a.calls[-1] == ("renew", ["q.0"])
        a.forget.add("q.0")  # its lease expired on a
        nemesis._renew_once()
        assert one.heal_reason == "lease-expired"
    finally:
        nemesis.close()
    assert a.calls[-1] == b.calls[-1] == ("heal", [])  # close heals the whole run on every agent


def test_a_pod_on_a_node_without_an_agent_is_refused_before_anything_applies() -> None:
    a = RecordingAgent()
    nemesis = Nemesis(None, RUN, agents={"a": a}, renew_interval_s=3600)  # type: ignore[dict-item]
    try:
        with pytest.raises(InfrastructureError, match="no chaos agent for node c \\(agents on: a\\)"):
            nemesis.apply(resolve_fault(HALVES, topo(["a", "c"]), phase="p", index=0))
        assert a.calls == []
        nemesis.apply(resolve_fault(HALVES, topo([None, None]), phase="p", index=1))  # no hosts, one agent: it
        assert a.calls == [("apply", ["p.1"])]
    finally:
        nemesis.close()


def test_connect_builds_token_clients_and_close_closes_only_its_channels() -> None:
    nemesis = Nemesis.connect({"node-a": "127.0.0.1:9", "node-b": "127.0.0.1:10"}, "t" * 32, RUN)
    assert sorted(nemesis.agents) == ["node-a", "node-b"]  # type: ignore[type-var]
    assert nemesis.agents["node-a"].address == "127.0.0.1:9"
    nemesis._stop.set()
    nemesis._thread.join()
    for client in nemesis.agents.values():
        client.close()
    with pytest.raises(InfrastructureError, match="no chaos agent to connect to"):
        Nemesis.connect({}, "t" * 32, RUN)


def test_signal_on_kubernetes_sends_pid_zero_locally_a_pid_is_required() -> None:
    kill = build_fault("kill", {"target": "kv", "replica": 1})
    on_k8s = resolve_fault(kill, topo(["a", "b"]), phase="p", index=0)
    assert on_k8s.signal is not None and on_k8s.signal.host == "b"
    assert to_proto(on_k8s, RUN, "p.0").signal.pid == 0
    local = resolve_fault(kill, topo([None, None]), phase="p", index=0)
    with pytest.raises(InfrastructureError, match="no pid known"):
        to_proto(local, RUN, "p.0")


class Denied(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.PERMISSION_DENIED

    def details(self) -> str:
        return "pod/mq/kv-1 is not labelled mapquake.io/run=0a0b0c0d"


class RefusingAgent(RecordingAgent):
    def apply(self, fault: pb.Fault, lease_s: float) -> pb.ApplyReply:
        self.calls.append(("apply", [fault.id]))
        raise Denied()


def test_one_agent_refusing_heals_the_part_another_applied() -> None:
    a, b = RecordingAgent(), RefusingAgent()
    nemesis = Nemesis(None, RUN, agents={"a": a, "b": b}, renew_interval_s=3600)  # type: ignore[dict-item]
    try:
        with pytest.raises(InfrastructureError, match=r"on node b refused p\.0 .*PERMISSION_DENIED: pod/mq/kv-1"):
            nemesis.apply(resolve_fault(HALVES, topo(["a", "b"]), phase="p", index=0))
        assert a.calls == [("apply", ["p.0"]), ("heal", ["p.0"])]  # all of it or none of it
        assert nemesis.active() == []
    finally:
        nemesis.close()
