"""netem faults measured for real: loss (nft numgen) and delay (tc netem where present, else the delay proxy)."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from chaos.resolve import resolve_fault
from orchestrator.scenario.spec import FaultSpec
from tests.integration.chaos.conftest import ChaosNet
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, needs_root]

DATAGRAMS = 400


def netem(cn: ChaosNet, **params: object):  # type: ignore[no-untyped-def]
    return resolve_fault(FaultSpec("netem", {"target": "kv", **params}), cn.topo, phase="t", index=0)


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
