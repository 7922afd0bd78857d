"""A run network of four replicas (kv-0..kv-3) plus a load node, each serving netprobe, and a real agent.

Every test's network, processes, agent, delay proxies, nft tables and qdiscs are removed
by finalizers, pass or fail; the fixture then asserts that nothing of the run is left.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaos.agent.client import AgentProcess, start_local_agent
from chaos.agent.server import PROXY_LABEL_PREFIX
from chaos.engines import nft
from chaos.engines.command import NetnsHandle
from chaos.nemesis import Nemesis
from chaos.resolve import RunTopology
from orchestrator.backends.local.network import LocalNetwork, Node
from orchestrator.backends.local.topology import topology_from_network
from orchestrator.core.ledger import Ledger, pid_running
from tests.integration.netfixtures import make_network, read_line, state_dir  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
PROBE = [sys.executable, "-m", "tests.integration.chaos.netprobe"]
NODES = ("kv-0", "kv-1", "kv-2", "kv-3", "load")


@dataclass
class ChaosNet:
    net: LocalNetwork
    agent: AgentProcess
    nemesis: Nemesis
    topo: RunTopology

    def node(self, name: str) -> Node:
        return self.net.nodes[name]

    def addr(self, name: str, port: int = 7000) -> str:
        return f"{self.node(name).address}:{port}"

    def probe(self, node: str, *args: str, timeout: float = 60.0) -> str:
        done = self.node(node).run([*PROBE, *args], timeout=timeout, env=_env())
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def connect(self, src: str, *dsts: str) -> dict[str, str]:
        out = json.loads(self.probe(src, "connect", *(self.addr(d) for d in dsts)))
        return {d: out[self.addr(d)] for d in dsts}

    def tables(self, node: str) -> list[str]:
        return nft.list_tables(NetnsHandle.local(self.node(node).netns))

    def qdisc_kinds(self, node: str) -> list[str]:
        n = self.node(node)
        done = subprocess.run(
            ["tc", "-n", n.netns, "-j", "qdisc", "show", "dev", n.ifname], capture_output=True, text=True, timeout=10
        )
        return [q["kind"] for q in json.loads(done.stdout or "[]")]

    def hold(self, src: str, dst: str) -> subprocess.Popen[Any]:
        proc = self.node(src).popen(
            [*PROBE, "hold", self.addr(dst)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=_env(),
        )
        assert read_line(proc, 10) == "connected"
        return proc


def proxy_pids(run_id: str) -> dict[str, int]:
    """Delay proxies the run's ledger (as the agent wrote it) holds open and that still run: label → pid."""
    return {
        r.name: r.pid
        for r in Ledger.load(run_id).open_resources()
        if r.name.startswith(PROXY_LABEL_PREFIX) and r.pid is not None and pid_running(r.pid, r.start_time)
    }


def listening_ports(netns: str) -> dict[int, int]:
    """TCP ports listening inside ``netns``: pid → port (read with ss, nothing changed)."""
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "ss", "-Hltnp"], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr
    out = {}
    for line in done.stdout.splitlines():
        port = int(line.split()[3].rsplit(":", 1)[1])
        for pid in re.findall(r"pid=(\d+)", line):
            out[int(pid)] = port
    return out


def ping(proc: subprocess.Popen[Any], timeout: float = 5.0) -> str:
    assert proc.stdin is not None
    proc.stdin.write(b"ping\n")
    proc.stdin.flush()
    return read_line(proc, timeout)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def replicas_of(net: LocalNetwork) -> dict[str, tuple[str, int]]:
    """Node name -> (target, replica) for the kv-<i> nodes these tests make."""
    return {name: ("kv", int(name.split("-")[1])) for name in net.nodes if name.startswith("kv-")}


@pytest.fixture
def chaos_net(make_network: Callable[[], LocalNetwork], tmp_path: Path) -> Iterator[ChaosNet]:  # noqa: F811
    net = make_network()
    for name in NODES:
        node = net.add_node(name)
        proc = node.popen([*PROBE, "serve"], stdout=subprocess.PIPE, cwd=REPO, env=_env(), name=f"probe:{name}")
        assert read_line(proc, 15) == "ready"
    agent = start_local_agent(net.ledger, tmp_path / "agent")
    nemesis = Nemesis(agent.client, net.run_id, agent=agent, lease_s=5.0)
    cn = ChaosNet(net=net, agent=agent, nemesis=nemesis, topo=topology_from_network(net, replicas_of(net)))
    try:
        yield cn
    finally:
        problems = nemesis.close()
        left = {name: cn.tables(name) for name in NODES}
        qdiscs = {name: cn.qdisc_kinds(name) for name in NODES}
        proxies = proxy_pids(net.run_id)
        assert problems == []
        assert proxies == {}, "delay proxies outlived close()"
        assert agent.proc.poll() is not None, "the agent outlived close()"
        assert all(nft.table_name(net.run_id) not in t for t in left.values()), left
        assert all("netem" not in q for q in qdiscs.values()), qdiscs
