"""The controller's side of the agent: a token-carrying gRPC client, and starting a local agent process.

``to_proto`` turns a ``ResolvedFault`` into the agent's ``Fault`` message.
``start_local_agent`` starts ``python -m chaos.agent`` as a helper process of the
run (recorded in its ledger first, in its own session, so a SIGKILL of the
controller leaves the agent alive to heal by lease).
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.pb import agent_pb2_grpc as pb_grpc
from chaos.resolve import ResolvedFault
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger, ResourceKind
from orchestrator.core.processes import start_process, stop_process

RPC_TIMEOUT_S = 5.0
PREPARE_TIMEOUT_S = 60.0  # starts a process per delayed node of the whole timeline (at most 32 per run)
AGENT_READY_TIMEOUT_S = 20.0


def to_proto(fault: ResolvedFault, run_id: str, fault_id: str) -> pb.Fault:
    """The agent message for ``fault``. Pure."""
    msg = pb.Fault(id=fault_id, run_id=run_id, summary=fault.summary)
    if fault.kind == "partition":
        mode = fault.cuts[0].mode if fault.cuts else "drop"
        msg.partition.CopyFrom(
            pb.Partition(mode=mode, cuts=[pb.Cut(netns=c.netns, sources=list(c.sources)) for c in fault.cuts])
        )
    elif fault.kind == "netem":
        msg.netem.CopyFrom(
            pb.Netem(
                nodes=[
                    pb.Degrade(netns=n.netns, ifname=n.ifname, delay_s=n.delay_s, jitter_s=n.jitter_s, loss=n.loss)
                    for n in fault.netem
                ]
            )
        )
    elif fault.signal is not None:
        if fault.signal.pid is None and fault.signal.host is None:
            raise InfrastructureError(f"{fault.key}: no pid known for {fault.signal.node}")
        pid = fault.signal.pid or 0  # on Kubernetes 0: the agent signals the pod's main process
        msg.signal.CopyFrom(pb.Signal(action=fault.signal.action, netns=fault.signal.netns, pid=pid))
    return msg


class AgentClient:
    """Calls one agent with its token; every call is bounded by ``timeout_s``. Raises grpc.RpcError."""

    def __init__(self, address: str, token: str, *, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._meta = (("authorization", f"Bearer {token}"),)
        self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.ChaosAgentStub(self._channel)

    def prepare(
        self, faults: Iterable[pb.Fault], lease_s: float, *, timeout_s: float = PREPARE_TIMEOUT_S
    ) -> pb.PrepareReply:
        """Have the agent start ahead, idle, what applying ``faults`` needs (delay proxies). Held under lease."""
        req = pb.PrepareRequest(faults=list(faults), lease_s=lease_s)
        reply: pb.PrepareReply = self._stub.Prepare(req, timeout=timeout_s, metadata=self._meta)
        return reply

    def apply(self, fault: pb.Fault, lease_s: float) -> pb.ApplyReply:
        """Apply (idempotent: a known id is renewed). Side effect on the agent: the fault's rules."""
        reply: pb.ApplyReply = self._stub.Apply(
            pb.ApplyRequest(fault=fault, lease_s=lease_s), timeout=self.timeout_s, metadata=self._meta
        )
        return reply

    def renew(self, run_id: str, fault_ids: Iterable[str], lease_s: float) -> pb.RenewReply:
        req = pb.RenewRequest(run_id=run_id, fault_ids=list(fault_ids), lease_s=lease_s)
        reply: pb.RenewReply = self._stub.Renew(req, timeout=self.timeout_s, metadata=self._meta)
        return reply

    def heal(self, run_id: str, fault_ids: Iterable[str] = ()) -> pb.HealReply:
        """Heal those faults (all of the run when none are given)."""
        req = pb.HealRequest(run_id=run_id, fault_ids=list(fault_ids))
        reply: pb.HealReply = self._stub.Heal(req, timeout=self.timeout_s, metadata=self._meta)
        return reply

    def list(self, run_id: str = "") -> list[pb.FaultStatus]:
        return list(self._list(run_id).faults)

    def list_prepared(self, run_id: str = "") -> builtins.list[str]:
        """Ids of the faults prepared and not yet applied."""
        return list(self._list(run_id).prepared)

    def _list(self, run_id: str) -> pb.ListReply:
        request = pb.ListRequest(run_id=run_id)
        reply: pb.ListReply = self._stub.List(request, timeout=self.timeout_s, metadata=self._meta)
        return reply

    def close(self) -> None:
        self._channel.close()


@dataclass
class AgentProcess:
    """A local agent started by ``start_local_agent``: its process, port, capabilities and a client."""

    proc: subprocess.Popen[Any]
    port: int
    netem: bool
    nft: bool
    client: AgentClient
    ledger: Ledger
    label: str

    def stop(self) -> int:
        """SIGTERM the agent (it heals everything it holds first) by its pid; record the release."""
        self.client.close()
        code = stop_process(self.proc, grace_s=10.0)
        self.ledger.released(ResourceKind.PROCESS, self.label)
        return code


def start_local_agent(ledger: Ledger, work_dir: Path, *, label: str = "chaos-agent") -> AgentProcess:
    """Start the agent for ``ledger``'s run on 127.0.0.1 and wait until it serves.

    Side effects: ``work_dir/agent.token`` (0600), ``agent.ready.json``, ``agent.log``, and
    a process recorded in the ledger. The agent exits by itself once this process is gone
    and its faults have healed.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    token_file = work_dir / "agent.token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    ready = work_dir / "agent.ready.json"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "chaos.agent", "--run", ledger.run_id, "--token-file", str(token_file),
        "--ready-file", str(ready), "--controller-pid", str(os.getpid()),
    ]  # fmt: skip
    with open(work_dir / "agent.log", "ab") as log_file:
        proc = start_process(argv, ledger=ledger, name=label, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready.exists():
            info = json.loads(ready.read_text())
            client = AgentClient(f"127.0.0.1:{info['port']}", token)
            return AgentProcess(proc, info["port"], info["netem"], info["nft"], client, ledger, label)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stop_process(proc, grace_s=2.0)
    ledger.released(ResourceKind.PROCESS, label)
    tail = (work_dir / "agent.log").read_text(errors="replace")[-2000:]
    raise InfrastructureError(f"the chaos agent did not start (exit {proc.poll()}):\n{tail}")
