"""Scenario faults → concrete rules for one run: pure, no I/O.

``resolve_fault`` turns a ``FaultSpec`` (what the scenario says) and a
``RunTopology`` (which node has which address, namespace, pid) into a
``ResolvedFault``: the nodes' grudge, per-namespace drop/reject rules on source
addresses, per-node netem settings, or a signal for one replica's pid. The
nemesis sends these to the chaos agent; ``describe_timeline`` prints them for
``mapquake run --dry-run``.

The topology comes from the backend (orchestrator/backends/local/topology.py lays out the
local one); nothing here knows how a backend names its nodes, namespaces or addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from chaos import topology
from chaos.probe import Capabilities
from chaos.schedule import FaultId, PhaseFaults, fault_schedule
from orchestrator.core.errors import UsageError
from orchestrator.scenario.spec import (
    FaultSpec,
    KillFault,
    NetemFault,
    PartitionAmong,
    PartitionFault,
    PartitionGroups,
    PauseFault,
    PhaseSpec,
    Scenario,
)

GROUP_TARGETS = "targets"
GROUP_LOAD = "load"
GROUP_PROMETHEUS = "prometheus"
ROLE_TARGET = "target"


@dataclass(frozen=True)
class NodeInfo:
    """One node of a run: its namespace, address, interface, role and (for a replica) target and pid.

    ``host`` is the machine whose chaos agent reaches the node's namespace: on Kubernetes the node
    (``spec.nodeName``) its pod runs on, a key of ``Nemesis.connect``'s agents; None for the one
    local agent. ``pid`` may stay None on Kubernetes (the agent finds the pod's main process).
    """

    name: str
    netns: str
    address: str
    ifname: str
    role: str  # target | load | prometheus
    target: str | None = None
    replica: int | None = None
    pid: int | None = None
    host: str | None = None


@dataclass(frozen=True)
class RunTopology:
    """The nodes of one run, in creation order (replicas of a target in replica order)."""

    run_id: str
    nodes: tuple[NodeInfo, ...]
    note: str = ""
    """How to read it, when its addresses are only illustrative (a planned topology, for --dry-run)."""

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        raise UsageError(f"run {self.run_id} has no node named '{name}' (nodes: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def replicas(self, target: str) -> list[NodeInfo]:
        found = sorted((n for n in self.nodes if n.role == ROLE_TARGET and n.target == target), key=_replica_key)
        if not found:
            targets = sorted({n.target for n in self.nodes if n.target})
            raise UsageError(f"no target named '{target}' in this run (targets: {', '.join(targets)})")
        return found

    def group(self, name: str) -> list[NodeInfo]:
        """Members of a partition group: targets, load, prometheus, or a target name."""
        if name == GROUP_TARGETS:
            return [n for n in self.nodes if n.role == ROLE_TARGET]
        if name in (GROUP_LOAD, GROUP_PROMETHEUS):
            found = [n for n in self.nodes if n.role == name]
            if not found:
                raise UsageError(f"this run has no '{name}' node")
            return found
        return self.replicas(name)


def _replica_key(n: NodeInfo) -> int:
    return n.replica if n.replica is not None else -1


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CutRule:
    """In namespace ``netns`` (node ``node``), refuse packets from ``sources`` (addresses of ``from_nodes``)."""

    node: str
    netns: str
    sources: tuple[str, ...]
    from_nodes: tuple[str, ...]
    mode: str  # drop | reject
    host: str | None = None  # whose agent applies it (NodeInfo.host)


@dataclass(frozen=True)
class NetemRule:
    """Degrade one node: packets arriving at it are lost with ``loss`` (0..1); what it sends is delayed."""

    node: str
    netns: str
    ifname: str
    address: str
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    host: str | None = None  # whose agent applies it (NodeInfo.host)


@dataclass(frozen=True)
class SignalRule:
    """Kill (SIGKILL, permanent) or pause (SIGSTOP until heal, then SIGCONT) one replica's process."""

    action: str  # kill | pause
    node: str
    netns: str
    target: str
    replica: int
    pid: int | None
    host: str | None = None  # whose agent sends it (NodeInfo.host)


@dataclass(frozen=True)
class ResolvedFault:
    """One scenario fault made concrete for one run.

    ``key`` is stable across runs (phase name + index); ``grudge`` uses node names;
    ``heal_after_s`` is set when the fault ends before its phase (pause ``for``).
    """

    key: str
    """The agent's id for it: "<phase>.<index>"."""
    index: int
    """Its index in the phase's faults (with ``phase``, its ``FaultId``)."""
    phase: str
    kind: str
    summary: str
    grudge: topology.Grudge = field(default_factory=dict)
    cuts: tuple[CutRule, ...] = ()
    netem: tuple[NetemRule, ...] = ()
    signal: SignalRule | None = None
    heal_after_s: float | None = None

    def namespaces(self) -> list[str]:
        names = [c.netns for c in self.cuts] + [n.netns for n in self.netem]
        if self.signal is not None:
            names.append(self.signal.netns)
        return sorted(set(names))


def grudge_cuts(grudge: topology.Grudge, topo: RunTopology, mode: str) -> tuple[CutRule, ...]:
    """One CutRule per node holding a grudge, sources as addresses, in topology order."""
    order = topo.names()
    cuts = []
    for name in order:
        if name not in grudge:
            continue
        node = topo.node(name)
        from_nodes = tuple(sorted(grudge[name], key=order.index))
        cuts.append(
            CutRule(
                node=name,
                netns=node.netns,
                sources=tuple(topo.node(s).address for s in from_nodes),
                from_nodes=from_nodes,
                mode=mode,
                host=node.host,
            )
        )
    return tuple(cuts)


def resolve_fault(fault: FaultSpec, topo: RunTopology, *, phase: str, index: int) -> ResolvedFault:
    """Make one scenario fault concrete for ``topo``. Raises UsageError for what cannot apply to it.

    What the schema and validate.py guarantee (a mode, among or groups, a shape among replicas)
    the fault's type already says; what is refused here depends on the run, or on no rule there.
    """
    key = f"{phase}.{index}"
    match fault:
        case PartitionAmong() | PartitionGroups():
            grudge, where = _partition_grudge(fault, topo, key)
            return ResolvedFault(
                key=key,
                index=index,
                phase=phase,
                kind=fault.kind,
                summary=f"partition {where}, {fault.mode}",
                grudge=grudge,
                cuts=grudge_cuts(grudge, topo, fault.mode),
            )
        case NetemFault():
            return _resolve_netem(fault, topo, key=key, phase=phase, index=index)
        case KillFault() | PauseFault():
            return _resolve_signal(fault, topo, key=key, phase=phase, index=index)
        case _:
            assert_never(fault)


def _partition_grudge(fault: PartitionFault, topo: RunTopology, key: str) -> tuple[topology.Grudge, str]:
    """The partition's grudge on ``topo``, and where it cuts, in words."""
    if isinstance(fault, PartitionAmong):
        names = [n.name for n in topo.replicas(fault.among)]
        try:
            grudge = topology.shape_grudge(fault.shape, names)
        except ValueError as err:  # too few replicas for the shape in this run
            raise UsageError(f"{key}: {err}") from None
        return grudge, f"among {fault.among} ({fault.shape})"
    a_name, b_name = fault.groups
    a = [n.name for n in topo.group(a_name)]
    b = [n.name for n in topo.group(b_name)]
    if set(a) & set(b):
        raise UsageError(f"{key}: groups '{a_name}' and '{b_name}' overlap ({', '.join(sorted(set(a) & set(b)))})")
    if fault.shape not in (None, "one-way", "halves"):
        raise UsageError(f"{key}: between groups the shape is one-way or omitted (both ways), not '{fault.shape}'")
    if fault.shape == "one-way":
        return topology.one_way_grudge(a, b), f"{a_name} → {b_name} (one-way)"
    return topology.complete_grudge([a, b]), f"{a_name} ⟷ {b_name}"


def _resolve_netem(fault: NetemFault, topo: RunTopology, *, key: str, phase: str, index: int) -> ResolvedFault:
    delay = fault.delay.seconds if fault.delay is not None else 0.0
    jitter = fault.jitter.seconds if fault.jitter is not None else 0.0
    loss = fault.loss.fraction if fault.loss is not None else 0.0
    if loss > 1.0:  # the schema's pattern allows any percentage
        raise UsageError(f"{key}: loss {fault.loss} is not between 0% and 100%")
    rules = tuple(
        NetemRule(
            node=n.name,
            netns=n.netns,
            ifname=n.ifname,
            address=n.address,
            delay_s=delay,
            jitter_s=jitter,
            loss=loss,
            host=n.host,
        )
        for n in topo.replicas(fault.target)
    )
    parts = [f"delay {delay * 1000:g}ms" + (f" ±{jitter * 1000:g}ms" if jitter else "")] if delay else []
    parts += [f"loss {loss * 100:g}%"] if loss else []
    return ResolvedFault(
        key=key,
        index=index,
        phase=phase,
        kind=fault.kind,
        summary=f"netem {fault.target}: {', '.join(parts)}",
        netem=rules,
    )


def _resolve_signal(
    fault: KillFault | PauseFault, topo: RunTopology, *, key: str, phase: str, index: int
) -> ResolvedFault:
    nodes = topo.replicas(fault.target)
    if fault.replica >= len(nodes):
        raise UsageError(f"{key}: target '{fault.target}' has {len(nodes)} replica(s); no replica {fault.replica}")
    node = nodes[fault.replica]
    resume_after = fault.resume_after if isinstance(fault, PauseFault) else None
    return ResolvedFault(
        key=key,
        index=index,
        phase=phase,
        kind=fault.kind,
        summary=f"{fault.kind} {fault.target} replica {fault.replica}"
        + (f" for {resume_after}" if resume_after is not None and resume_after.seconds else ""),
        signal=SignalRule(
            action=fault.kind,
            node=node.name,
            netns=node.netns,
            target=fault.target,
            replica=fault.replica,
            pid=node.pid,
            host=node.host,
        ),
        heal_after_s=None if resume_after is None else resume_after.seconds,
    )


def resolve_phase(phase: PhaseSpec, topo: RunTopology) -> list[ResolvedFault]:
    """Every fault of ``phase``, resolved, in scenario order."""
    return [resolve_fault(f, topo, phase=phase.name, index=i) for i, f in enumerate(phase.faults)]


def mechanisms_for(fault: ResolvedFault, caps: Capabilities) -> list[str]:
    """Which mechanism each part of ``fault`` will use on a kernel with ``caps``."""
    out = []
    if fault.kind == "partition":
        mode = fault.cuts[0].mode if fault.cuts else "drop"
        what = "drop" if mode == "drop" else "reject (tcp reset, icmp admin-prohibited)"
        out.append(f"nftables {what} on input, one table per run" + ("" if caps.nft else " — UNAVAILABLE: nft missing"))
    elif fault.kind == "netem":
        rule = fault.netem[0] if fault.netem else None
        if rule is not None and rule.loss:
            out.append("loss: nftables numgen random" + ("" if caps.nft else " — UNAVAILABLE: nft missing"))
        if rule is not None and rule.delay_s:
            out.append(f"delay: {caps.delay_mechanism}")
    elif fault.kind == "kill":
        out.append("SIGKILL to the replica's recorded pid")
    elif fault.kind == "pause":
        out.append("SIGSTOP to the replica's recorded pid, SIGCONT at heal")
    return out


def describe_fault(fault: ResolvedFault, topo: RunTopology, capabilities: Capabilities | None = None) -> list[str]:
    """Human lines for one resolved fault: its summary, the mechanism, and each concrete rule."""
    lines = [fault.summary]
    if capabilities is not None:
        lines += [f"  mechanism: {m}" for m in mechanisms_for(fault, capabilities)]
    for cut in fault.cuts:
        sources = ", ".join(f"{n} {a}" for n, a in zip(cut.from_nodes, cut.sources, strict=True))
        lines.append(f"  {cut.node} ({cut.netns}): {cut.mode} from {sources}")
    for rule in fault.netem:
        bits = []
        if rule.delay_s:
            bits.append(f"delay {rule.delay_s * 1000:g}ms" + (f" ±{rule.jitter_s * 1000:g}ms" if rule.jitter_s else ""))
        if rule.loss:
            bits.append(f"loss {rule.loss * 100:g}% of packets arriving")
        lines.append(f"  {rule.node} {rule.address} ({rule.netns}): {', '.join(bits)}")
    if fault.signal is not None:
        s = fault.signal
        pid = f"pid {s.pid}" if s.pid is not None else "pid known at run time"
        what = "SIGKILL" if s.action == "kill" else "SIGSTOP, SIGCONT at heal"
        lines.append(f"  {s.node} ({s.netns}, {pid}): {what}")
    return lines


def describe_timeline(scenario: Scenario, topo: RunTopology, capabilities: Capabilities | None = None) -> str:
    """The phase timeline with every fault resolved to concrete rules on ``topo`` (for ``--dry-run``).

    When each fault is applied and healed comes from ``chaos.schedule.fault_schedule``, the rule the
    run follows. With ``capabilities`` (a kernel probe), each fault also names the mechanism used.
    """
    out: list[str] = []
    t = 0.0
    phases = scenario.phases
    for index, (phase, plan) in enumerate(zip(phases, fault_schedule(phases), strict=True)):
        out.append(f"{_clock(t)}–{_clock(t + phase.duration_s)}  {phase.name}")
        following = phases[index + 1].name if index + 1 < len(phases) else None
        for i, fault in enumerate(resolve_phase(phase, topo)):
            carried = plan.carried.get(i)
            heal = _heal_text(fault, carried or FaultId(phase.name, i), plan, following)
            if carried is not None:
                out.append(f"    {fault.summary}  [still in place from {carried.phase}]  [heal: {heal}]")
                continue
            lines = describe_fault(fault, topo, capabilities)
            out.append(f"    {lines[0]}  [heal: {heal}]")
            out += [f"    {line}" for line in lines[1:]]
        t += phase.duration_s
    return "\n".join(out)


def _heal_text(fault: ResolvedFault, fid: FaultId, plan: PhaseFaults, following: str | None) -> str:
    """When the fault in place as ``fid`` during ``plan``'s phase heals, in words."""
    if fault.kind == "kill":
        return "never (a killed replica stays down)"
    if fid in plan.continues:
        return f"continues into {following}"
    return "phase end" if fault.heal_after_s is None else f"+{fault.heal_after_s:g}s"


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:04.1f}"
