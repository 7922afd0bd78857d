"""What the agent refuses: malformed leases, ids, addresses and netem settings → INVALID_ARGUMENT, nothing done.

Fake namespaces and runner (nothing reaches a kernel); the gRPC checks go through a real
server on 127.0.0.1 with the real client, so the status codes are the ones a caller sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest

from chaos.agent import validate
from chaos.agent.client import AgentClient
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import MAX_LEASE_S, Agent, FaultTable
from chaos.probe import Capabilities
from tests.unit.chaos.test_fault_table import RUN, Clock, FakeNamespaces, partition
from tests.unit.chaos.test_nft import FakeRunner

BAD_LEASES = [math.nan, -math.nan, math.inf, -math.inf, 0.0, -5.0]


@pytest.fixture
def table() -> tuple[FaultTable, FakeRunner, Clock]:
    runner, clock = FakeRunner(), Clock()
    return FaultTable(FakeNamespaces(), Capabilities(nft=True, netem=False), runner=runner, clock=clock), runner, clock


@pytest.fixture
def agent(table: tuple[FaultTable, FakeRunner, Clock]) -> Iterator[tuple[AgentClient, FaultTable, FakeRunner]]:
    t, runner, _ = table
    served = Agent(t, "tok")
    served.start()
    client = AgentClient(f"127.0.0.1:{served.port}", "tok")
    try:
        yield client, t, runner
    finally:
        client.close()
        served.stop()


def degrade(**settings: float) -> pb.Fault:
    node = pb.Degrade(netns=f"mq-{RUN}-a", ifname="eth0", **settings)
    return pb.Fault(id="n.0", run_id=RUN, summary="d", netem=pb.Netem(nodes=[node]))


def _code(call) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


# --- item 1: leases ---------------------------------------------------------------------------


@pytest.mark.parametrize("lease", BAD_LEASES)
def test_apply_renew_prepare_refuse_non_finite_and_non_positive_leases(table, lease: float) -> None:  # type: ignore[no-untyped-def]
    t, runner, _ = table
    with pytest.raises(validate.Invalid, match="lease_s must be a finite number of seconds > 0"):
        t.apply(partition("p.0"), lease)
    assert t.list() == [] and runner.calls == []
    t.apply(partition("p.1"), 5.0)
    with pytest.raises(validate.Invalid, match="lease_s"):
        t.renew(RUN, ["p.1"], lease)
    with pytest.raises(validate.Invalid, match="lease_s"):
        t.prepare([partition("p.2")], lease)
    assert t.faults[(RUN, "p.1")].expires_at == t.clock() + 5.0  # the refused renewal changed nothing


def test_a_long_lease_is_cut_to_the_upper_bound(table) -> None:  # type: ignore[no-untyped-def]
    t, _, clock = table
    assert t.apply(partition("p.0"), 1e9).expires_at == clock.now + MAX_LEASE_S
    assert t.renew(RUN, ["p.0"], 1e9) == (["p.0"], [])
    assert t.faults[(RUN, "p.0")].expires_at == clock.now + MAX_LEASE_S


def test_nan_lease_is_invalid_argument_over_grpc(agent) -> None:  # type: ignore[no-untyped-def]
    client, _, runner = agent
    code, details = _code(lambda: client.apply(partition("p.0"), math.nan))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "lease_s" in details and "nan" in details
    code, _ = _code(lambda: client.renew(RUN, ["p.0"], -5.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = _code(lambda: client.prepare([partition("p.0")], 0.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert client.list() == [] and runner.calls == []
    assert client.apply(partition("p.0"), 5.0).expires_in_s == pytest.approx(5.0)


# --- item 2: what could reach nft -------------------------------------------------------------

INJECTED_SOURCES = [
    "198.18.7.3 } drop; }; table inet evil { chain c { type filter hook input priority 0; policy drop; } }; #",
    '198.18.7.3 }\ninclude "/etc/hostname"\n#',
    "198.18.7.3, 0.0.0.0/0",
    "10.0.0.0/8",
    "::1",
    "",
    "198.18.7.256",
    "198.018.7.3",
]


@pytest.mark.parametrize("source", INJECTED_SOURCES)
def test_a_source_that_is_not_an_ipv4_address_is_refused(agent, source: str) -> None:  # type: ignore[no-untyped-def]
    client, _, runner = agent
    fault = partition("p.0")
    fault.partition.cuts[0].sources.append(source)
    code, details = _code(lambda: client.apply(fault, 5.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "is not an IPv4 address" in details
    assert runner.calls == [] and client.list() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 'p.0" ; delete table inet x ; "'),
        ("id", "p 0"),
        ("id", ""),
        ("id", "x" * 65),
        ("run_id", "0a0b0c0d; flush ruleset"),
        ("run_id", "0A0B0C0D"),
        ("summary", "line\nbreak"),
    ],
)
def test_ids_and_text_outside_their_patterns_are_refused(agent, field: str, value: str) -> None:  # type: ignore[no-untyped-def]
    client, _, runner = agent
    fault = partition("p.0")
    setattr(fault, field, value)
    code, _ = _code(lambda: client.apply(fault, 5.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert runner.calls == [] and client.list() == []


def test_renew_and_heal_check_their_ids(agent) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = agent
    assert _code(lambda: client.renew(RUN, ['x"y'], 5.0))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: client.heal("../etc", []))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_namespace_mode_ifname_and_pid_are_refused(table) -> None:  # type: ignore[no-untyped-def]
    t, runner, _ = table
    with pytest.raises(validate.Invalid, match="namespace"):
        t.apply(partition("p.0", netns="mq-0a0b0c0d-../../proc/1/ns/net"), 5.0)
    bad_mode = partition("p.0")
    bad_mode.partition.mode = "accept"
    with pytest.raises(validate.Invalid, match="mode"):
        t.apply(bad_mode, 5.0)
    bad_if = degrade(delay_s=0.05)
    bad_if.netem.nodes[0].ifname = "eth0 root"
    with pytest.raises(validate.Invalid, match="interface"):
        t.apply(bad_if, 5.0)
    for pid in (1, -1, 1 << 40):  # 0 is valid: "the pod's main process", refused by a local agent
        sig = pb.Fault(id="k.0", run_id=RUN, signal=pb.Signal(action="kill", netns=f"mq-{RUN}-a", pid=pid))
        with pytest.raises(validate.Invalid, match="pid"):
            t.apply(sig, 5.0)
    assert runner.calls == [] and t.list() == []


def test_prepare_is_checked_whole_before_anything_starts(table) -> None:  # type: ignore[no-untyped-def]
    t, runner, _ = table
    bad = partition("p.1")
    bad.partition.cuts[0].sources[0] = '198.18.7.3 } ; include "/etc/shadow"'
    with pytest.raises(validate.Invalid):
        t.prepare([degrade(delay_s=0.05), bad], 5.0)
    assert runner.calls == [] and not t.holds_anything()


# --- item 3: netem ranges ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"loss": 1e308},
        {"loss": math.nan},
        {"loss": math.inf},
        {"loss": -0.1},
        {"loss": 1.01},
        {"delay_s": math.nan},
        {"delay_s": math.inf},
        {"delay_s": -0.01},
        {"delay_s": 1e308},
        {"delay_s": 0.05, "jitter_s": math.nan},
        {"delay_s": 0.05, "jitter_s": -0.001},
        {"delay_s": 0.05, "jitter_s": 1e9},
    ],
)
def test_netem_settings_out_of_range_are_invalid_argument(agent, settings: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    client, _, runner = agent
    code, details = _code(lambda: client.apply(degrade(**settings), 5.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert "must be finite" in details
    assert runner.calls == [] and client.list() == []


def test_netem_settings_in_range_are_applied(table) -> None:  # type: ignore[no-untyped-def]
    t, _, _ = table
    assert t.apply(degrade(loss=1.0), 5.0).mechanisms == ["nft numgen loss"]
    assert t.apply(pb.Fault(id="n.1", run_id=RUN, netem=degrade(loss=0.0).netem), 5.0).mechanisms == []


def test_the_agent_will_not_start_for_a_malformed_run_id(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from chaos.agent import __main__ as entry

    monkeypatch.setattr(entry, "probe_kernel", lambda: pytest.fail("probed before checking --run"))
    token = tmp_path / "token"
    token.write_text("t" * 32)
    argv = ["--token-file", str(token), "--ready-file", str(tmp_path / "ready")]
    assert entry.main(["--run", RUN, "--run", "0a0b0c0d {}\ninclude x", *argv]) == 2
    assert not (tmp_path / "ready").exists()
