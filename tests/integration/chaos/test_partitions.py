"""Partitions in real namespaces: halves, one-way, drop vs reject, established connections, heal."""

from __future__ import annotations

import json

import pytest

from chaos.resolve import resolve_fault
from orchestrator.scenario.spec import build_fault
from tests.integration.chaos.conftest import ChaosNet, ping
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, needs_root]

ALL = ["kv-0", "kv-1", "kv-2", "kv-3"]


def fault(cn: ChaosNet, kind: str, index: int = 0, **params: object):  # type: ignore[no-untyped-def]
    return resolve_fault(build_fault(kind, dict(params)), cn.topo, phase="t", index=index)


def reachability(cn: ChaosNet) -> dict[tuple[str, str], str]:
    out = {}
    for src in ALL:
        for dst, result in cn.connect(src, *[d for d in ALL if d != src]).items():
            out[(src, dst)] = result
    return out


@pytest.mark.parametrize("mode", ["drop", "reject"])
def test_halves_cut_across_and_not_within(chaos_net: ChaosNet, mode: str) -> None:
    cn = chaos_net
    assert set(reachability(cn).values()) == {"ok"}
    applied = cn.nemesis.apply(fault(cn, "partition", shape="halves", among="kv", mode=mode))
    assert applied.mechanisms == [f"nft {mode}"]
    seen = reachability(cn)
    halves = [{"kv-0", "kv-1"}, {"kv-2", "kv-3"}]
    for (src, dst), result in seen.items():
        same = any(src in h and dst in h for h in halves)
        expected = "ok" if same else ("timeout" if mode == "drop" else "refused")
        assert result == expected, (src, dst, seen)
    cn.nemesis.end_phase("t")
    assert cn.tables("kv-0") == [] and set(reachability(cn).values()) == {"ok"}


def test_one_way_blocks_exactly_one_direction(chaos_net: ChaosNet) -> None:
    cn = chaos_net
    cn.nemesis.apply(fault(cn, "partition", shape="one-way", among="kv"))  # kv-0, kv-1 → kv-2, kv-3 blocked
    for src, dst in [("kv-0", "kv-2"), ("kv-2", "kv-0"), ("kv-1", "kv-0"), ("kv-3", "kv-2")]:
        cn.probe(src, "udp-send", cn.addr(dst, 7002), "50")
    got_by_2, got_by_0 = _sink_counts(cn, "kv-2"), _sink_counts(cn, "kv-0")
    assert got_by_2.get(cn.node("kv-0").address, 0) == 0  # the blocked direction: nothing arrives
    assert got_by_0.get(cn.node("kv-2").address) == 50  # the other direction: every datagram
    assert got_by_0.get(cn.node("kv-1").address) == 50  # within a side: untouched
    assert got_by_2.get(cn.node("kv-3").address) == 50
    # TCP needs both directions, so a connection either way fails (the handshake's answer is lost).
    assert cn.connect("kv-0", "kv-2") == {"kv-2": "timeout"}
    assert cn.connect("kv-2", "kv-0") == {"kv-0": "timeout"}
    cn.nemesis.end_phase("t")
    assert cn.connect("kv-0", "kv-2") == {"kv-2": "ok"}


def _sink_counts(cn: ChaosNet, node: str) -> dict[str, int]:
    import socket

    with socket.create_connection((cn.node(node).address, 7003), timeout=5) as s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    counts: dict[str, int] = json.loads(data)
    return counts


@pytest.mark.parametrize(("mode", "during", "after"), [("drop", "timeout", "ok"), ("reject", "reset", "reset")])
def test_established_connections_are_cut(chaos_net: ChaosNet, mode: str, during: str, after: str) -> None:
    """A connection opened before the fault stops carrying data; after a drop heals, TCP resumes it."""
    cn = chaos_net
    conn = cn.hold("kv-0", "kv-3")
    assert ping(conn) == "ok"
    cn.nemesis.apply(fault(cn, "partition", shape="halves", among="kv", mode=mode))
    assert ping(conn) == during
    cn.nemesis.end_phase("t")
    result = ping(conn, timeout=10)
    if mode == "drop":
        # The unanswered ping's byte is retransmitted after the heal; its echo may arrive first.
        assert result in ("ok", "timeout")
        assert ping(conn, timeout=10) == "ok"
    else:
        assert result in (after, "closed", "error:32")
    assert cn.connect("kv-0", "kv-3") == {"kv-3": "ok"}
