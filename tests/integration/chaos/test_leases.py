"""Leases and processes: a SIGKILLed controller's faults heal by lease; pause/kill by recorded pid; refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from chaos.agent.client import AgentClient, to_proto
from chaos.agent.pb import agent_pb2 as pb
from chaos.engines import nft
from chaos.resolve import resolve_fault
from orchestrator.backends.local.topology import topology_from_network
from orchestrator.core.ledger import ResourceKind
from orchestrator.scenario.spec import build_fault
from tests.integration.chaos.conftest import PROBE, REPO, ChaosNet, _env, listening_ports, proxy_pids, replicas_of
from tests.integration.netfixtures import needs_root, read_line

pytestmark = [pytest.mark.integration, needs_root]

LEASE_S = 5.0


def test_sigkilled_controller_heals_within_lease(chaos_net: ChaosNet, tmp_path: Path) -> None:
    cn = chaos_net
    topo = json.dumps([dataclasses.asdict(n) for n in cn.topo.nodes])
    controller = subprocess.Popen(
        [PROBE[0], "-m", "tests.integration.chaos.controller", cn.net.run_id, str(tmp_path / "ctl"), topo],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=_env(),
        start_new_session=True,
    )
    agent_pid = 0
    try:
        line = read_line(controller, 30)
        assert line.startswith("applied "), line
        agent_pid = int(line.split()[1])
        assert cn.connect("kv-0", "kv-2") == {"kv-2": "timeout"}
        table = nft.table_name(cn.net.run_id)
        assert table in cn.tables("kv-0")
        os.kill(controller.pid, signal.SIGKILL)
        killed = time.monotonic()
        controller.wait(5)
        deadline = killed + LEASE_S + 3.0
        while time.monotonic() < deadline and any(table in cn.tables(n) for n in ("kv-0", "kv-1", "kv-2", "kv-3")):
            time.sleep(0.02)
        healed_after = time.monotonic() - killed
        assert healed_after <= LEASE_S + 1.0, f"healed {healed_after:.2f}s after the SIGKILL"
        assert cn.connect("kv-0", "kv-2") == {"kv-2": "ok"}
        # With its controller gone and nothing left to hold, the agent exits by itself.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and _alive(agent_pid):
            time.sleep(0.05)
        assert not _alive(agent_pid)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(5)
        if controller.stdout is not None:
            controller.stdout.close()


def test_prepared_proxies_never_applied_are_gone_once_their_lease_expires(chaos_net: ChaosNet) -> None:
    """Prepared straight through the client (no nemesis, so no renewals): the agent stops them by lease."""
    cn = chaos_net
    if cn.agent.netem:
        pytest.skip("this kernel has sch_netem: delay is a qdisc, nothing to prepare")
    lease = 1.0
    fault = resolve_fault(build_fault("netem", {"target": "kv", "delay": "30ms"}), cn.topo, phase="idle", index=0)
    reply = cn.agent.client.prepare([to_proto(fault, cn.net.run_id, fault.key)], lease)
    prepared_at = time.monotonic()
    assert list(reply.prepared) == ["idle.0"]
    pids = proxy_pids(cn.net.run_id)
    assert len(pids) == 4
    assert all(pids[f"chaos-proxy:idle.0:{n.netns}:prepared"] in listening_ports(n.netns) for n in fault.netem)
    assert cn.agent.client.list_prepared(cn.net.run_id) == ["idle.0"] and cn.agent.client.list() == []
    deadline = prepared_at + lease + 3.0
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values()):
        time.sleep(0.02)
    gone_after = time.monotonic() - prepared_at
    assert not any(_alive(pid) for pid in pids.values())
    assert gone_after <= lease + 1.0, f"prepared proxies stopped {gone_after:.2f}s after Prepare"
    assert proxy_pids(cn.net.run_id) == {}  # released in the ledger too
    assert all(nft.table_name(cn.net.run_id) not in cn.tables(n.node) for n in fault.netem)
    assert cn.agent.client.renew(cn.net.run_id, ["idle.0"], lease).unknown == ["idle.0"]
    assert cn.agent.client.list_prepared(cn.net.run_id) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pid_of(cn: ChaosNet, label: str) -> int:
    for res in cn.net.ledger.open_resources():
        if res.kind == ResourceKind.PROCESS and res.name == label and res.pid is not None:
            return res.pid
    raise AssertionError(f"no process {label}")


def test_pause_then_heal_resumes_and_kill_is_final(chaos_net: ChaosNet) -> None:
    cn = chaos_net
    pids = {"kv-1": _pid_of(cn, "probe:kv-1"), "kv-3": _pid_of(cn, "probe:kv-3")}
    topo = topology_from_network(cn.net, replicas_of(cn.net), pids)
    pause = resolve_fault(build_fault("pause", {"target": "kv", "replica": 1}), topo, phase="t", index=0)
    applied = cn.nemesis.apply(pause)
    assert applied.mechanisms == ["SIGSTOP"]
    assert cn.connect("load", "kv-1") == {"kv-1": "timeout"}  # the kernel accepts; the stopped server never echoes
    cn.nemesis.end_phase("t")
    assert cn.connect("load", "kv-1") == {"kv-1": "ok"}
    kill = resolve_fault(build_fault("kill", {"target": "kv", "replica": 3}), topo, phase="k", index=0)
    cn.nemesis.apply(kill)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pids["kv-3"]):
        time.sleep(0.02)
    assert cn.connect("load", "kv-3") == {"kv-3": "refused"}
    cn.nemesis.end_phase("k")


def test_agent_refuses_foreign_namespaces_pids_and_bad_tokens(chaos_net: ChaosNet) -> None:
    cn = chaos_net
    fault = resolve_fault(build_fault("partition", {"shape": "halves", "among": "kv"}), cn.topo, phase="x", index=0)
    message = to_proto(fault, cn.net.run_id, "x.0")
    message.partition.cuts[0].netns = "mq-ffffffff-kv-0"  # another run's name
    with pytest.raises(grpc.RpcError) as err:
        cn.agent.client.apply(message, LEASE_S)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert nft.table_name(cn.net.run_id) not in cn.tables("kv-1")  # nothing half-applied
    stranger = to_proto(fault, "ffffffff", "x.0")
    with pytest.raises(grpc.RpcError) as err:
        cn.agent.client.apply(stranger, LEASE_S)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    signal_fault = resolve_fault(
        build_fault("kill", {"target": "kv", "replica": 0}),
        topology_from_network(cn.net, replicas_of(cn.net), {"kv-0": os.getpid()}),  # a pid the run never recorded
        phase="x",
        index=1,
    )
    with pytest.raises(grpc.RpcError) as err:
        cn.agent.client.apply(to_proto(signal_fault, cn.net.run_id, "x.1"), LEASE_S)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    wrong = AgentClient(cn.agent.client.address, "not-the-token")
    try:
        with pytest.raises(grpc.RpcError) as err:
            wrong.list()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        wrong.close()
    assert cn.agent.client.list() == []


def test_agent_startup_sweeps_its_leftovers(chaos_net: ChaosNet, tmp_path: Path) -> None:
    """A table and prepared proxies left by an earlier agent are removed when an agent for the run starts."""
    from chaos.agent.client import start_local_agent
    from chaos.engines.command import NetnsHandle

    cn = chaos_net
    handle = NetnsHandle.local(cn.node("kv-2").netns)
    nft.apply(handle, cn.net.run_id, nft.NamespaceRules(cuts=[nft.Cut("old", (cn.node("kv-0").address,), "drop")]))
    assert cn.connect("kv-0", "kv-2") == {"kv-2": "timeout"}
    delay = resolve_fault(build_fault("netem", {"target": "kv", "delay": "30ms"}), cn.topo, phase="old", index=0)
    cn.agent.client.prepare([to_proto(delay, cn.net.run_id, delay.key)], 60.0)  # proxies another agent left
    left = proxy_pids(cn.net.run_id)
    assert len(left) == (0 if cn.agent.netem else 4)
    second = start_local_agent(cn.net.ledger, tmp_path / "second", label="chaos-agent-2")
    try:
        assert nft.table_name(cn.net.run_id) not in cn.tables("kv-2")
        assert cn.connect("kv-0", "kv-2") == {"kv-2": "ok"}
        assert proxy_pids(cn.net.run_id) == {} and not any(_alive(pid) for pid in left.values())
    finally:
        second.stop()


INJECTIONS = [
    # closes the set and the rule, then adds a table of its own that a Heal of the run's table would not remove
    "198.18.7.9 } drop\n}\n}\ntable inet mqinjected {\n chain c {\n"
    "  type filter hook input priority 0; policy accept;\n  ip saddr { 198.18.7.9",
    # makes nft read a host file and print it back in its error
    '198.18.7.9 }\ninclude "/etc/hostname"\nadd rule inet x y ip saddr { 198.18.7.9',
]


@pytest.mark.parametrize("source", INJECTIONS)
def test_injected_sources_and_ids_are_refused_and_create_nothing(chaos_net: ChaosNet, source: str) -> None:
    cn = chaos_net
    fault = resolve_fault(build_fault("partition", {"shape": "halves", "among": "kv"}), cn.topo, phase="x", index=0)
    message = to_proto(fault, cn.net.run_id, "x.0")
    message.partition.cuts[0].sources.append(source)
    with pytest.raises(grpc.RpcError) as err:
        cn.agent.client.apply(message, LEASE_S)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not an IPv4 address" in (err.value.details() or "")
    hostname = Path("/etc/hostname").read_text().strip()
    assert hostname not in (err.value.details() or "").replace(repr(source), "")
    quoted = to_proto(fault, cn.net.run_id, 'x.0" } ; table inet mqinjected { "')
    with pytest.raises(grpc.RpcError) as err:
        cn.agent.client.apply(quoted, LEASE_S)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert all(cn.tables(name) == [] for name in ("kv-0", "kv-1", "kv-2", "kv-3", "load"))
    assert cn.agent.client.list() == []


def test_pause_and_kill_only_the_runs_target_in_the_named_namespace(chaos_net: ChaosNet) -> None:
    """The agent's own pid, a replica named with another replica's namespace, and a process in the namespace that
    the run did not start (no MAPQUAKE_RUN_ID) are all in the run's ledger, and all refused."""
    cn = chaos_net
    kv0, kv1 = cn.node("kv-0"), cn.node("kv-1")
    stranger = subprocess.Popen(
        ["ip", "netns", "exec", kv0.netns, "sleep", "60"],
        env={k: v for k, v in os.environ.items() if k != "MAPQUAKE_RUN_ID"},
        start_new_session=True,
    )
    cn.net.ledger.record(ResourceKind.PROCESS, "stranger", netns=kv0.netns)
    cn.net.ledger.started("stranger", stranger.pid)
    try:
        cases = {
            "own pid": (cn.agent.proc.pid, kv0.netns),
            "another replica's pid": (_pid_of(cn, "probe:kv-1"), kv0.netns),
            "no run id": (stranger.pid, kv0.netns),
        }
        for what, (pid, netns) in cases.items():
            for action in ("pause", "kill"):
                message = pb.Fault(id="s.0", run_id=cn.net.run_id, summary=what,
                                   signal=pb.Signal(action=action, netns=netns, pid=pid))  # fmt: skip
                with pytest.raises(grpc.RpcError) as err:
                    cn.agent.client.apply(message, LEASE_S)
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (what, err.value.details())
        assert cn.agent.client.list() == []  # the agent answers: it did not freeze itself
        assert _state(cn.agent.proc.pid) not in ("T", "t") and _state(stranger.pid) not in ("T", "t")
        assert cn.connect("load", "kv-1") == {"kv-1": "ok"}
        good = pb.Fault(id="s.1", run_id=cn.net.run_id, summary="pause kv-1",
                        signal=pb.Signal(action="pause", netns=kv1.netns, pid=_pid_of(cn, "probe:kv-1")))  # fmt: skip
        assert list(cn.agent.client.apply(good, LEASE_S).mechanisms) == ["SIGSTOP"]
        # A signal is delivered when the process is next scheduled: on a loaded machine the stop
        # shows in /proc a moment after kill() returned.
        assert _state_becomes(_pid_of(cn, "probe:kv-1"), lambda state: state == "T")
        cn.agent.client.heal(cn.net.run_id, ["s.1"])
        assert _state_becomes(_pid_of(cn, "probe:kv-1"), lambda state: state != "T")
    finally:
        stranger.kill()
        stranger.wait(5)
        cn.net.ledger.released(ResourceKind.PROCESS, "stranger")


def _state_becomes(pid: int, wanted: Callable[[str], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not wanted(_state(pid)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
