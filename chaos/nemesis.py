"""The controller's side of chaos: apply each phase's faults through the agent, keep their leases, heal.

    nemesis = Nemesis.start_local(ledger, work_dir)        # starts the agent helper process
    # or, on Kubernetes: agents already running, one per node (the DaemonSet), reached by gRPC:
    nemesis = Nemesis.connect({"node-a": "198.19.0.1:7070"}, token, run_id)
    nemesis.prepare(scenario.phases, topology)             # starts slow things ahead (delay proxies), idle
    plan = fault_schedule(scenario.phases)[i]               # chaos.schedule: what applies, carries, heals
    applied = nemesis.apply_faults(phase, plan.apply, topology, scheduled_at=boundary)
    ...                                                    # a thread renews leases meanwhile
    nemesis.heal_faults(plan.heal, phase=phase.name)       # at the phase's end
    nemesis.close()                                        # heals everything, stops the agent

``begin_phase``/``end_phase`` apply and heal one phase's faults alone (tests and tools).

Every fault gets an ``AppliedFault`` record with its schedule, applied and healed
times on time.monotonic() and wall time, the mechanisms the agent used, and why
it healed (phase-end, for-elapsed, lease-expired, close). If this process dies,
the renewals stop and the agent heals every fault within its lease.

With several agents (``connect``), each fault is split by the host of the nodes it touches
(``NodeInfo.host``, ``chaos.routing``): every agent gets the part in the pods of its node, under
the same fault id, and heals, renewals and prepares go to the agents holding each fault.

``prepare`` is optional and changes no traffic: it lets a fault whose mechanism is
slow to start (the delay proxy, on kernels without sch_netem) land as fast as a
partition. Prepared faults are renewed like applied ones until their phase applies
them; a phase that ends without applying its prepared faults drops them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from chaos.agent.client import RPC_TIMEOUT_S, AgentClient, AgentProcess, start_local_agent, to_proto
from chaos.resolve import ResolvedFault, RunTopology, resolve_fault, resolve_phase
from chaos.routing import split_by_host
from chaos.schedule import FaultId
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger
from orchestrator.scenario.spec import PhaseSpec

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 5.0
RENEW_INTERVAL_S = 1.0

Host = str | None
"""Which agent: a Kubernetes node name (``NodeInfo.host``), or None for the one local agent."""


@dataclass
class AppliedFault:
    """One fault as it happened. Times: ``*_mono`` on time.monotonic(), ``*_wall`` on time.time()."""

    id: str
    phase: str
    kind: str
    summary: str
    resolved: ResolvedFault
    scheduled_mono: float
    applied_mono: float
    applied_wall: float
    mechanisms: list[str] = field(default_factory=list)
    heal_due_mono: float | None = None
    healed_mono: float | None = None
    healed_wall: float | None = None
    heal_reason: str | None = None
    healing: bool = field(default=False, repr=False)  # a heal is in flight: renewals leave it alone
    hosts: tuple[Host, ...] = (None,)
    """The agents holding (a part of) it."""

    @property
    def fault_id(self) -> FaultId:
        return FaultId(self.resolved.phase, self.resolved.index)

    @property
    def lateness_s(self) -> float:
        """How long after its scheduled time the fault was in place."""
        return self.applied_mono - self.scheduled_mono

    @property
    def active(self) -> bool:
        return self.healed_mono is None

    def journal_data(self) -> dict[str, Any]:
        """A JSON-able summary for the run journal and report."""
        return {
            "id": self.id,
            "phase": self.phase,
            "kind": self.kind,
            "summary": self.summary,
            "mechanisms": list(self.mechanisms),
            "scheduled_mono": self.scheduled_mono,
            "applied_mono": self.applied_mono,
            "applied_wall": self.applied_wall,
            "lateness_s": round(self.lateness_s, 6),
            "healed_mono": self.healed_mono,
            "healed_wall": self.healed_wall,
            "heal_reason": self.heal_reason,
            "grudge": {k: sorted(v) for k, v in self.resolved.grudge.items()},
        }


class Nemesis:
    """Applies and heals a run's faults through its agents; renews leases in a background thread.

    ``client`` is the one local agent (host None); ``agents`` the agents by host (Kubernetes node).
    """

    def __init__(
        self,
        client: AgentClient | None,
        run_id: str,
        *,
        agents: Mapping[str, AgentClient] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        renew_interval_s: float = RENEW_INTERVAL_S,
        agent: AgentProcess | None = None,
    ) -> None:
        self.agents: dict[Host, AgentClient] = {}
        self.agents.update(agents or {})
        if client is not None:
            self.agents[None] = client
        if not self.agents:
            raise ValueError("a nemesis needs at least one agent")
        self.client = next(iter(self.agents.values()))  # the first (locally: the only) agent
        self._owns_channels = False  # connect() made the clients: close() closes them
        self.run_id = run_id
        self.lease_s = lease_s
        self.renew_interval_s = renew_interval_s
        self.agent = agent
        self.records: list[AppliedFault] = []
        self.prepared: dict[str, str] = {}  # fault id → phase: prepared on the agent, not yet applied
        self._prepared_on: dict[str, tuple[Host, ...]] = {}  # fault id → the agents that prepared it
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="nemesis-apply")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="nemesis-renew", daemon=True)
        self._thread.start()

    @classmethod
    def start_local(cls, ledger: Ledger, work_dir: Path, *, lease_s: float = DEFAULT_LEASE_S) -> Nemesis:
        """Start the local agent helper (recorded in ``ledger``) and a nemesis talking to it."""
        agent = start_local_agent(ledger, work_dir)
        return cls(agent.client, ledger.run_id, lease_s=lease_s, agent=agent)

    @classmethod
    def connect(
        cls,
        agents: Mapping[str, str],
        token: str,
        run_id: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        timeout_s: float = RPC_TIMEOUT_S,
    ) -> Nemesis:
        """A nemesis talking to agents already running (the Kubernetes DaemonSet): ``agents`` maps each
        node name (what ``NodeInfo.host`` holds) to the agent's "ip:port"; ``token`` is the agents'
        shared token (Secret ``mapquake-agent-token``). Connects lazily: an unreachable agent shows at
        the first call to it. ``close`` heals the run on every agent and stops none of them."""
        if not agents:
            raise InfrastructureError("no chaos agent to connect to", hint="is the mapquake chart's DaemonSet running?")
        clients = {node: AgentClient(address, token, timeout_s=timeout_s) for node, address in agents.items()}
        nemesis = cls(None, run_id, agents=clients, lease_s=lease_s)
        nemesis._owns_channels = True
        return nemesis

    def _agent_of(self, host: Host) -> Host:
        """The key of the agent that reaches a node on ``host``. Raises InfrastructureError if none does."""
        if host in self.agents:
            return host
        if host is None and len(self.agents) == 1:  # a topology without hosts, one agent
            return next(iter(self.agents))
        known = ", ".join(sorted(str(h) for h in self.agents))
        where = f"node {host}" if host is not None else "a node with no host in the topology"
        raise InfrastructureError(
            f"no chaos agent for {where} (agents on: {known})",
            hint="is the chaos agent DaemonSet's pod on that node running and Ready?",
        )

    def _route(self, fault: ResolvedFault) -> dict[Host, ResolvedFault]:
        return split_by_host(fault, self._agent_of)

    # --- phases ----------------------------------------------------------------------------

    def prepare(self, phases: Iterable[PhaseSpec], topology: RunTopology) -> list[str]:
        """Have the agent start ahead, idle, what applying these phases' faults would start. Returns the ids prepared.

        Only delay faults have anything to prepare (their proxies, where the kernel lacks sch_netem);
        the agent skips the rest. Prepared faults hold a lease, renewed with the applied ones;
        ``apply`` consumes them, ``end_phase`` and ``close`` drop the unused ones. An agent without
        Prepare (older) is tolerated: faults are then applied cold. Raises InfrastructureError if
        the agent refuses (e.g. a namespace not the run's) or a proxy does not start.
        """
        faults = [f for phase in phases for f in resolve_phase(phase, topology) if any(n.delay_s > 0 for n in f.netem)]
        if not faults:
            return []
        started = time.monotonic()
        by_agent: dict[Host, list[ResolvedFault]] = {}
        for fault in faults:
            for host, part in self._route(fault).items():
                by_agent.setdefault(host, []).append(part)
        prepared: dict[str, list[Host]] = {}
        skipped: list[str] = []
        for host, parts in by_agent.items():
            try:
                reply = self.agents[host].prepare([to_proto(f, self.run_id, f.key) for f in parts], self.lease_s)
            except grpc.RpcError as err:
                if hasattr(err, "code") and err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.warning("run %s: the chaos agent cannot prepare faults; delays will start cold", self.run_id)
                    continue
                raise InfrastructureError(
                    f"chaos agent{_on(host)} could not prepare faults: {_rpc_text(err)}"
                ) from None
            for fid in reply.prepared:
                prepared.setdefault(fid, []).append(host)
            skipped += reply.skipped
        phase_of = {f.key: f.phase for f in faults}
        with self._lock:
            for fid, hosts in prepared.items():
                self.prepared[fid] = phase_of.get(fid, "")
                self._prepared_on[fid] = tuple(hosts)
        log.info("run %s: prepared %s in %.0f ms (skipped: %s)", self.run_id, ", ".join(prepared) or "nothing",
                 (time.monotonic() - started) * 1000, ", ".join(skipped) or "none")  # fmt: skip
        return list(prepared)

    def begin_phase(
        self,
        phase: PhaseSpec,
        topology: RunTopology,
        *,
        scheduled_at: float | None = None,
        skip: Collection[int] = (),
    ) -> list[AppliedFault]:
        """Resolve and apply every fault of ``phase`` but those at indexes ``skip`` (e.g. still in place from
        the phase before). Returns their records (empty for a quiet phase). Ids keep the fault's index in
        the phase (``<phase>.<index>``), so they match what ``prepare`` prepared.

        Side effects: the agent applies rules; records are kept in ``self.records``.
        Raises InfrastructureError if the agent refuses or fails one (faults already applied stay
        recorded and are healed by ``end_phase``/``close``).
        """
        scheduled = time.monotonic() if scheduled_at is None else scheduled_at
        out = []
        for index, fault in enumerate(resolve_phase(phase, topology)):
            if index not in skip:
                out.append(self.apply(fault, scheduled_at=scheduled))
        return out

    def apply_faults(
        self, phase: PhaseSpec, ids: Collection[FaultId], topology: RunTopology, *, scheduled_at: float
    ) -> list[AppliedFault]:
        """Resolve and apply the faults ``ids`` of ``phase`` (from chaos.schedule), in scenario order.

        Raises InfrastructureError if the agent refuses or fails one (those already applied stay
        recorded and are healed by ``heal_faults``/``close``).
        """
        wanted = sorted(i.index for i in ids if i.phase == phase.name)
        resolved = [resolve_fault(phase.faults[i], topology, phase=phase.name, index=i) for i in wanted]
        return [self.apply(fault, scheduled_at=scheduled_at) for fault in resolved]

    def heal_faults(self, ids: Collection[FaultId], *, phase: str) -> list[AppliedFault]:
        """At the end of ``phase``: heal those of ``ids`` still in place (faults of this phase, or carried
        into it), and drop what was prepared for ``phase`` and not applied. Returns the records healed."""
        wanted = set(ids)
        healed = self._heal([r for r in self.active() if r.fault_id in wanted], "phase-end")
        self._drop_prepared(phase)
        return healed

    def apply(self, fault: ResolvedFault, *, scheduled_at: float | None = None) -> AppliedFault:
        """Apply one resolved fault now (id: its key ``<phase>.<index>``)."""
        scheduled = time.monotonic() if scheduled_at is None else scheduled_at
        with self._lock:
            self.prepared.pop(fault.key, None)  # the agent consumes what it prepared, whatever the outcome
            self._prepared_on.pop(fault.key, None)
        parts = self._route(fault)
        futures = {  # every agent at once: a partition across nodes lands on all of them together
            host: self._pool.submit(self.agents[host].apply, to_proto(part, self.run_id, fault.key), self.lease_s)
            for host, part in parts.items()
        }
        mechanisms: list[str] = []
        done: list[Host] = []
        refused: list[str] = []
        for host, future in futures.items():
            try:
                reply = future.result()
            except grpc.RpcError as err:
                refused.append(f"chaos agent{_on(host)} refused {fault.key} ({fault.summary}): {_rpc_text(err)}")
                continue
            done.append(host)
            mechanisms += [m for m in reply.mechanisms if m not in mechanisms]
        if refused:
            self._heal_parts(fault.key, done)  # all of it or none of it
            raise InfrastructureError("; ".join(refused))
        applied = AppliedFault(
            id=fault.key,
            phase=fault.phase,
            kind=fault.kind,
            summary=fault.summary,
            resolved=fault,
            scheduled_mono=scheduled,
            applied_mono=time.monotonic(),
            applied_wall=time.time(),
            mechanisms=mechanisms,
            hosts=tuple(done),
        )
        if fault.heal_after_s is not None:
            applied.heal_due_mono = applied.applied_mono + fault.heal_after_s
        with self._lock:
            self.records.append(applied)
        log.info("run %s: applied %s: %s [%s]", self.run_id, fault.key, fault.summary, ", ".join(mechanisms))
        return applied

    def end_phase(self, phase: PhaseSpec | str) -> list[AppliedFault]:
        """Heal the still-active faults of ``phase``. Returns the records healed now."""
        name = phase if isinstance(phase, str) else phase.name
        healed = self._heal([r for r in self.active() if r.phase == name], "phase-end")
        self._drop_prepared(name)
        return healed

    def active(self) -> list[AppliedFault]:
        with self._lock:
            return [r for r in self.records if r.active]

    def close(self) -> list[str]:
        """Heal everything still active, stop renewing, stop the agent we started. Never raises; returns problems."""
        problems: list[str] = []
        self._stop.set()
        self._thread.join(timeout=5.0)
        try:
            self._heal(self.active(), "close")
            for host, client in self.agents.items():
                try:
                    client.heal(self.run_id)  # every fault of the run, prepared ones included
                except grpc.RpcError as err:  # the others still heal; this one heals by lease
                    problems.append(f"heal at close{_on(host)}: {_rpc_text(err)}")
            with self._lock:
                self.prepared.clear()
                self._prepared_on.clear()
        except (grpc.RpcError, InfrastructureError) as err:
            problems.append(f"heal at close: {err}")
        if self.agent is not None:
            try:
                self.agent.stop()
            except Exception as err:  # the agent heals by lease anyway; report it
                problems.append(f"agent stop: {err}")
        self._pool.shutdown(wait=False)
        if self._owns_channels:  # connected agents keep running (they serve other runs): only our channels close
            for client in self.agents.values():
                client.close()
        return problems

    # --- internals ----------------------------------------------------------------------------

    def _drop_prepared(self, phase: str) -> None:
        """Stop what was prepared for ``phase`` and not applied (a failed or skipped apply). Never raises."""
        by_agent: dict[Host, list[str]] = {}
        with self._lock:
            ids = [fid for fid, p in self.prepared.items() if p == phase]
            for fid in ids:
                del self.prepared[fid]
                for host in self._prepared_on.pop(fid, (next(iter(self.agents)),)):
                    by_agent.setdefault(host, []).append(fid)
        for host, some in by_agent.items():  # never an empty Heal: that heals the whole run
            try:
                reply = self.agents[host].heal(self.run_id, some)
                if reply.errors:
                    log.error(
                        "run %s: dropping prepared %s%s: %s", self.run_id, some, _on(host), "; ".join(reply.errors)
                    )
            except grpc.RpcError as err:  # their lease stops them anyway
                log.error("run %s: could not drop prepared %s%s: %s", self.run_id, some, _on(host), _rpc_text(err))

    def _heal_parts(self, fault_id: str, hosts: list[Host]) -> None:
        """Heal ``fault_id`` on ``hosts`` (the parts applied before another part failed). Never raises."""
        for host in hosts:
            try:
                self.agents[host].heal(self.run_id, [fault_id])
            except grpc.RpcError as err:  # its lease heals it
                log.error("run %s: could not heal the applied part of %s%s: %s", self.run_id, fault_id, _on(host),
                          _rpc_text(err))  # fmt: skip

    def _heal(self, records: list[AppliedFault], reason: str) -> list[AppliedFault]:
        if not records:
            return []
        with self._lock:
            for r in records:
                r.healing = True
        by_agent: dict[Host, list[str]] = {}
        for r in records:
            for host in r.hosts:
                by_agent.setdefault(host, []).append(r.id)
        errors: list[str] = []
        failed: list[str] = []
        for host, ids in by_agent.items():
            try:
                errors += self.agents[host].heal(self.run_id, ids).errors
            except grpc.RpcError as err:  # heal on the other agents all the same
                failed.append(f"chaos agent{_on(host)} could not heal {ids}: {_rpc_text(err)}")
        if failed:
            raise InfrastructureError("; ".join(failed))
        now, wall = time.monotonic(), time.time()
        with self._lock:
            for r in records:
                if r.active:
                    r.healed_mono, r.healed_wall, r.heal_reason = now, wall, reason
        if errors:
            raise InfrastructureError("healing left problems: " + "; ".join(errors))
        return records

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_interval_s):
            try:
                self._renew_once()
            except Exception:  # a failed renewal is retried; the lease covers several intervals
                log.exception("run %s: lease renewal failed", self.run_id)

    def _renew_once(self) -> None:
        due = [r for r in self.active() if r.heal_due_mono is not None and time.monotonic() >= r.heal_due_mono]
        if due:
            self._heal(due, "for-elapsed")
        by_agent: dict[Host, list[str]] = {}
        for r in self.active():
            if not r.healing:
                for host in r.hosts:
                    by_agent.setdefault(host, []).append(r.id)
        with self._lock:
            for fid in self.prepared:
                for host in self._prepared_on.get(fid, (next(iter(self.agents)),)):
                    by_agent.setdefault(host, []).append(fid)
        unknown: list[str] = []
        for host, ids in by_agent.items():
            try:
                reply = self.agents[host].renew(self.run_id, ids, self.lease_s)
            except grpc.RpcError as err:  # retried next interval; the lease covers several
                log.error("run %s: lease renewal%s failed: %s", self.run_id, _on(host), _rpc_text(err))
                continue
            unknown += [fid for fid in reply.unknown if fid not in unknown]
        if unknown:
            now, wall = time.monotonic(), time.time()
            with self._lock:
                for fid in unknown:
                    if self.prepared.pop(fid, None) is not None:
                        self._prepared_on.pop(fid, None)
                        log.warning("run %s: the agent dropped prepared %s (lease expired); it will start cold",
                                    self.run_id, fid)  # fmt: skip
                for r in self.records:
                    if r.active and not r.healing and r.id in unknown:
                        r.healed_mono, r.healed_wall, r.heal_reason = now, wall, "lease-expired"
                        log.error("run %s: the agent no longer holds %s (lease expired)", self.run_id, r.id)


def _on(host: Host) -> str:
    """ " on node X" for messages about an agent, "" for the local one."""
    return f" on node {host}" if host is not None else ""


def _rpc_text(err: grpc.RpcError) -> str:
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    return f"{code.name if code else 'error'}: {details}"
