"""Prepare: delay proxies started ahead, idle, under a lease; Apply takes them; Heal and expiry stop them.

Fake namespaces, runner and clock; ``delayproxy.start`` is replaced by a fake that starts nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from chaos.agent import server
from chaos.agent.ownership import Refused
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import FaultTable
from chaos.engines import delayproxy
from chaos.engines.command import CommandResult, NetnsHandle
from chaos.probe import Capabilities
from tests.unit.chaos.test_fault_table import RUN, Clock, FakeNamespaces
from tests.unit.chaos.test_nft import FakeRunner


@dataclass
class FakeProxy:
    port: int
    label: str
    alive: bool = True

    def running(self) -> bool:
        return self.alive

    def stop(self) -> None:
        self.alive = False


@dataclass
class Proxies:
    started: list[tuple[str, float, float, FakeProxy]] = field(default_factory=list)
    ports: itertools.count[int] = field(default_factory=lambda: itertools.count(40000))

    def start(self, handle: NetnsHandle, delay_s: float, jitter_s: float, *, label: str, ledger: object) -> FakeProxy:
        proxy = FakeProxy(next(self.ports), label)
        self.started.append((handle.name, delay_s, jitter_s, proxy))
        return proxy


def delay(fid: str, nodes: tuple[str, ...] = ("a", "b"), delay_s: float = 0.02, loss: float = 0.0) -> pb.Fault:
    return pb.Fault(
        id=fid,
        run_id=RUN,
        summary="d",
        netem=pb.Netem(
            nodes=[pb.Degrade(netns=f"mq-{RUN}-{n}", ifname="eth0", delay_s=delay_s, loss=loss) for n in nodes]
        ),
    )


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    proxies = Proxies()
    monkeypatch.setattr(delayproxy, "start", proxies.start)  # the module the agent's server calls
    runner = FakeRunner({"list tables": CommandResult(0, "", "")})
    clock = Clock()
    table = FaultTable(FakeNamespaces(), Capabilities(nft=True, netem=False), runner=runner, clock=clock)
    return table, runner, clock, proxies


def test_prepare_starts_idle_proxies_and_apply_only_redirects(setup) -> None:  # type: ignore[no-untyped-def]
    t, runner, _, proxies = setup
    assert t.prepare([delay("d.0")], 5.0) == (["d.0"], [])
    assert [(ns, d) for ns, d, _, _ in proxies.started] == [(f"mq-{RUN}-a", 0.02), (f"mq-{RUN}-b", 0.02)]
    assert all(p.label.endswith(":prepared") for *_, p in proxies.started)
    assert runner.calls == []  # idle: no nft rule yet, traffic untouched
    held = t.apply(delay("d.0"), 5.0)
    assert len(proxies.started) == 2  # nothing started at apply
    assert held.mechanisms == ["delay proxy"]
    scripts = [stdin or "" for _, stdin in runner.calls]
    assert any('"redirect": {"port": 40000}' in s for s in scripts)
    assert any('"redirect": {"port": 40001}' in s for s in scripts)
    assert t.list_prepared() == []
    t.heal(RUN, ["d.0"])
    assert not any(p.alive for *_, p in proxies.started)
    assert not t.holds_anything()


def test_prepared_lease_expires_without_renewal_and_renew_keeps_it(setup) -> None:  # type: ignore[no-untyped-def]
    t, runner, clock, proxies = setup
    t.prepare([delay("d.0"), delay("d.1")], 5.0)
    clock.now += 4.9
    assert t.renew(RUN, ["d.0"], 5.0) == (["d.0"], [])
    clock.now += 0.2
    assert t.reap() == [(RUN, "d.1")]
    alive = {p.label.split(":")[1]: p.alive for *_, p in proxies.started}
    assert alive == {"d.0": True, "d.1": False}
    clock.now += 5.0
    assert t.reap() == [(RUN, "d.0")]
    assert not any(p.alive for *_, p in proxies.started) and not t.holds_anything()
    assert runner.calls == []


def test_heal_drops_prepared_and_heal_of_the_run_drops_all(setup) -> None:  # type: ignore[no-untyped-def]
    t, _, _, proxies = setup
    t.prepare([delay("d.0"), delay("d.1")], 5.0)
    assert t.heal(RUN, ["d.0"]) == ([], [])  # dropped, not "healed": it was never applied
    assert [p.fault.id for p in t.list_prepared()] == ["d.1"]
    t.heal(RUN)
    assert not any(p.alive for *_, p in proxies.started) and not t.holds_anything()


def test_apply_starts_cold_what_no_longer_fits_and_stops_the_rest(setup) -> None:  # type: ignore[no-untyped-def]
    t, runner, _, proxies = setup
    t.prepare([delay("d.0", delay_s=0.02)], 5.0)
    proxies.started[0][3].alive = False  # died (e.g. its lifetime bound)
    t.apply(delay("d.0", nodes=("a",), delay_s=0.02), 5.0)
    assert len(proxies.started) == 3  # a: cold restart; b: prepared, not in the fault, stopped
    assert not proxies.started[1][3].alive and proxies.started[2][3].alive
    assert '"redirect": {"port": 40002}' in (runner.calls[-1][1] or "")
    t.heal(RUN)
    assert not any(p.alive for *_, p in proxies.started)


def test_prepare_skips_what_needs_nothing_and_refuses_foreign_namespaces(setup) -> None:  # type: ignore[no-untyped-def]
    t, _, _, proxies = setup
    loss_only = delay("l.0", delay_s=0.0, loss=0.1)
    part = pb.Fault(
        id="p.0", run_id=RUN, partition=pb.Partition(cuts=[pb.Cut(netns=f"mq-{RUN}-a", sources=["198.18.7.3"])])
    )
    assert t.prepare([loss_only, part], 5.0) == ([], ["l.0", "p.0"])
    foreign = delay("x.0")
    foreign.netem.nodes[1].netns = "mq-ffffffff-b"
    with pytest.raises(Refused):
        t.prepare([delay("d.0"), foreign], 5.0)
    assert proxies.started == [] and not t.holds_anything()  # whole or nothing


def test_prepare_is_bounded_and_skips_with_sch_netem(setup) -> None:  # type: ignore[no-untyped-def]
    t, _, _, proxies = setup
    fit = server.MAX_PREPARED_PROXIES // 8
    many = [delay(f"d.{i}", nodes=tuple(f"n{j}" for j in range(8))) for i in range(fit + 2)]
    prepared, skipped = t.prepare(many, 5.0)
    assert len(proxies.started) == 8 * fit and prepared == [f"d.{i}" for i in range(fit)]
    assert skipped == [f"d.{fit}", f"d.{fit + 1}"]
    t.heal(RUN)
    t.caps = Capabilities(nft=True, netem=True)
    assert t.prepare([delay("d.0")], 5.0) == ([], ["d.0"])


class FakeClient:
    """Records the nemesis's calls; Prepare prepares every fault it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def prepare(self, faults: list[pb.Fault], lease_s: float) -> pb.PrepareReply:
        self.calls.append(("prepare", [f.id for f in faults]))
        return pb.PrepareReply(prepared=[f.id for f in faults])

    def apply(self, fault: pb.Fault, lease_s: float) -> pb.ApplyReply:
        self.calls.append(("apply", [fault.id]))
        return pb.ApplyReply(fault_id=fault.id, mechanisms=["delay proxy"])

    def renew(self, run_id: str, ids: list[str], lease_s: float) -> pb.RenewReply:
        self.calls.append(("renew", sorted(ids)))
        return pb.RenewReply(renewed=[i for i in ids if i != "gone.0"], unknown=[i for i in ids if i == "gone.0"])

    def heal(self, run_id: str, ids: list[str] = ()) -> pb.HealReply:  # type: ignore[assignment]
        self.calls.append(("heal", list(ids)))
        return pb.HealReply(healed=list(ids))


def test_nemesis_prepares_renews_and_drops_what_its_phase_did_not_apply() -> None:
    from chaos.nemesis import Nemesis
    from chaos.resolve import NodeInfo, RunTopology
    from orchestrator.scenario.spec import PhaseSpec, build_fault

    nodes = tuple(
        NodeInfo(f"kv-{i}", f"mq-{RUN}-kv-{i}", f"198.18.7.{i + 2}", "eth0", "target", "kv", i) for i in (0, 1)
    )
    topo = RunTopology(RUN, nodes)
    slow = build_fault("netem", {"target": "kv", "delay": "20ms"})
    quick = build_fault("partition", {"shape": "halves", "among": "kv"})
    phases = [
        PhaseSpec("calm", 1.0, None, None, ()),
        PhaseSpec("slow", 1.0, None, None, (slow, quick)),
        PhaseSpec("gone", 1.0, None, None, (slow,)),
        PhaseSpec("skipped", 1.0, None, None, (slow,)),
    ]
    client = FakeClient()
    nemesis = Nemesis(client, RUN, renew_interval_s=3600)  # type: ignore[arg-type]
    try:
        assert nemesis.prepare(phases, topo) == ["slow.0", "gone.0", "skipped.0"]
        assert client.calls == [("prepare", ["slow.0", "gone.0", "skipped.0"])]  # only what has a delay
        nemesis._renew_once()
        assert client.calls[-1] == ("renew", ["gone.0", "skipped.0", "slow.0"])
        assert "gone.0" not in nemesis.prepared  # the agent dropped it: it will start cold
        assert [a.id for a in nemesis.begin_phase(phases[1], topo, skip={0})] == ["slow.1"]  # ids keep indexes
        assert [a.id for a in nemesis.begin_phase(phases[1], topo, skip={1})] == ["slow.0"]
        assert "slow.0" not in nemesis.prepared
        nemesis.end_phase("slow")
        assert client.calls[-1] == ("heal", ["slow.1", "slow.0"])  # no prepared left for this phase: no extra call
        nemesis.end_phase("skipped")  # never applied: its prepared proxies are dropped by id
        assert client.calls[-1] == ("heal", ["skipped.0"])
        n = len(client.calls)
        nemesis.end_phase("calm")
        assert len(client.calls) == n  # never an empty Heal (that would heal the whole run)
    finally:
        nemesis.close()
    assert client.calls[-1] == ("heal", []) and nemesis.prepared == {}
