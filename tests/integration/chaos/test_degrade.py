"""netem faults measured for real: loss (nft numgen) and delay (tc netem where present, else the delay proxy)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess

import pytest

from chaos.engines import nft
from chaos.resolve import resolve_fault
from orchestrator.core.ledger import pid_running
from orchestrator.scenario.spec import PhaseSpec, build_fault
from tests.integration.chaos.conftest import ChaosNet, listening_ports, proxy_pids
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, needs_root]

DATAGRAMS = 400


def netem(cn: ChaosNet, **params: object):  # type: ignore[no-untyped-def]
    return resolve_fault(build_fault("netem", {"target": "kv", **params}), cn.topo, phase="t", index=0)


def test_loss_drops_the_configured_fraction(chaos_net: ChaosNet) -> None:
    cn = chaos_net
    target = cn.addr("kv-1", 7001)
    assert int(cn.probe("load", "udp-echo", target, "100")) == 100
    applied = cn.nemesis.apply(netem(cn, loss="20%"))
    assert applied.mechanisms == ["nft numgen loss"]
    received = int(cn.probe("load", "udp-echo", target, str(DATAGRAMS), "0.1"))
    lost = DATAGRAMS - received
    # Each echo is lost iff its request is dropped on arrival: lost ~ Binomial(400, 0.2), mean 80, sd 8.
    mean, sd = DATAGRAMS * 0.2, math.sqrt(DATAGRAMS * 0.2 * 0.8)
    assert abs(lost - mean) < 4.5 * sd, f"lost {lost} of {DATAGRAMS}"
    cn.nemesis.end_phase("t")
    assert int(cn.probe("load", "udp-echo", target, "100")) == 100


def test_delay_adds_the_configured_latency(chaos_net: ChaosNet) -> None:
    cn = chaos_net
    target = cn.addr("kv-2")
    before = statistics.median(json.loads(cn.probe("load", "rtt", target, "20")))
    applied = cn.nemesis.apply(netem(cn, delay="40ms", jitter="5ms"))
    assert applied.mechanisms == ["tc netem delay" if cn.agent.netem else "delay proxy"]
    rtts = json.loads(cn.probe("load", "rtt", target, "60"))
    added = statistics.median(rtts) - before
    assert min(rtts) >= 0.035 and 0.038 <= added <= 0.052, (before, sorted(rtts))
    assert max(rtts) < 0.045 + 0.02  # jitter is bounded (uniform ±5ms), plus scheduling slack
    cn.nemesis.end_phase("t")
    after = statistics.median(json.loads(cn.probe("load", "rtt", target, "20")))
    assert after < before + 0.005


def test_prepared_delay_listens_before_apply_and_nothing_remains_after_heal(chaos_net: ChaosNet) -> None:
    """Prepare starts one idle proxy per replica (traffic untouched); Apply only redirects to it; Heal removes all."""
    cn = chaos_net
    if cn.agent.netem:
        pytest.skip("this kernel has sch_netem: delay is a qdisc, nothing to prepare")
    target = cn.addr("kv-2")
    kv = [n for n in cn.topo.nodes if n.target == "kv"]
    before = statistics.median(json.loads(cn.probe("load", "rtt", target, "20")))
    phase = PhaseSpec("t", 10.0, None, None, (build_fault("netem", {"target": "kv", "delay": "40ms"}),))
    assert cn.nemesis.prepare([phase], cn.topo) == ["t.0"]
    prepared = proxy_pids(cn.net.run_id)
    assert sorted(prepared) == sorted(f"chaos-proxy:t.0:{n.netns}:prepared" for n in kv)
    ports = {}
    for n in kv:
        listening = listening_ports(n.netns)
        pid = prepared[f"chaos-proxy:t.0:{n.netns}:prepared"]
        assert pid in listening, (n.netns, listening)  # listening before Apply
        ports[n.netns] = listening[pid]
        assert nft.table_name(cn.net.run_id) not in cn.tables(n.name)  # nothing redirected yet
    idle = statistics.median(json.loads(cn.probe("load", "rtt", target, "20")))
    assert idle < before + 0.01, (before, idle)  # traffic untouched while prepared
    (applied,) = cn.nemesis.begin_phase(phase, cn.topo)
    assert applied.mechanisms == ["delay proxy"]
    assert proxy_pids(cn.net.run_id) == prepared  # Apply started nothing: it used the prepared proxies
    for n in kv:
        rules = _table(n.netns, cn.net.run_id)
        assert f"redirect to :{ports[n.netns]}" in rules, rules
    added = statistics.median(json.loads(cn.probe("load", "rtt", target, "40"))) - before
    assert 0.035 <= added <= 0.05, added
    cn.nemesis.end_phase(phase)
    assert proxy_pids(cn.net.run_id) == {}
    assert not any(pid_running(pid, None) for pid in prepared.values())
    for n in kv:
        assert nft.table_name(cn.net.run_id) not in cn.tables(n.name)
        assert "netem" not in cn.qdisc_kinds(n.name)
        assert not set(prepared.values()) & set(listening_ports(n.netns))
    after = statistics.median(json.loads(cn.probe("load", "rtt", target, "20")))
    assert after < before + 0.005


def _table(netns: str, run_id: str) -> str:
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "nft", "list", "table", "inet", nft.table_name(run_id)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
