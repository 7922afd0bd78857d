"""What the agent may touch: namespaces and processes a run it was told about created.

Locally, a namespace is the run's if it is named ``mq-<run>-<node>`` (core.names) AND the
run's ledger holds it open; a pid is the run's if the ledger records it with the
start time the live process still has. Everything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaos.engines.command import NetnsHandle
from orchestrator.core.errors import MapquakeError
from orchestrator.core.ledger import Ledger, ResourceKind, pid_running
from orchestrator.core.names import netns_name, run_id_of

NETNS_DIR = Path("/run/netns")  # named namespaces (``ip netns add``), as NetnsHandle.local enters them


def netns_exists(netns: str) -> bool:
    """Whether named namespace ``netns`` exists: what ``ip netns list`` reads, without a process."""
    return (NETNS_DIR / netns).exists()


class Refused(MapquakeError):
    """The agent will not act on this namespace or process (not created by a run it serves)."""


@dataclass(frozen=True)
class OwnedProcess:
    pid: int
    start_time: int | None
    label: str


class Namespaces(Protocol):
    """How the agent checks ownership and enters namespaces (local: ledger + ip netns; k8s: labels + nsenter)."""

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        """The handle of ``netns`` if it belongs to ``run_id``; raises Refused otherwise."""
        ...

    def process(self, run_id: str, pid: int) -> OwnedProcess:
        """The run's process ``pid`` (with its start time); raises Refused otherwise."""
        ...

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        """Every (namespace, interface) of the run that still exists: what a startup sweep visits."""
        ...

    def processes(self, run_id: str) -> list[OwnedProcess]:
        """The run's recorded processes that still run."""
        ...


class LocalNamespaces:
    """Ownership from the runs' ledgers under the state root (the agent reads them, writes only its proxies)."""

    def __init__(self, runs: list[str]) -> None:
        self.runs = set(runs)

    def _ledger(self, run_id: str) -> Ledger:
        if run_id not in self.runs:
            raise Refused(f"run {run_id} is not one this agent serves (serving: {', '.join(sorted(self.runs))})")
        return Ledger.load(run_id)

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        ledger = self._ledger(run_id)
        if run_id_of(netns) != run_id or not netns.startswith(netns_name(run_id, "")):
            raise Refused(f"namespace {netns!r} is not named for run {run_id} ({netns_name(run_id, '<node>')})")
        if not any(r.kind == ResourceKind.NETNS and r.name == netns for r in ledger.open_resources()):
            raise Refused(f"namespace {netns} is not recorded open in the ledger of run {run_id}")
        if not netns_exists(netns):
            raise Refused(f"namespace {netns} does not exist")
        return NetnsHandle.local(netns)

    def process(self, run_id: str, pid: int) -> OwnedProcess:
        for res in self._ledger(run_id).open_resources():
            if res.kind == ResourceKind.PROCESS and res.pid == pid:
                if not pid_running(pid, res.start_time):
                    raise Refused(f"pid {pid} of run {run_id} ({res.name}) is no longer running")
                return OwnedProcess(pid=pid, start_time=res.start_time, label=res.name)
        raise Refused(f"pid {pid} is not a process recorded in the ledger of run {run_id}")

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        out = []
        for res in self._ledger(run_id).open_resources():
            if res.kind == ResourceKind.VETH and res.netns and "peer" in res.detail and netns_exists(res.netns):
                out.append((NetnsHandle.local(res.netns), res.detail["peer"]))
        return out

    def processes(self, run_id: str) -> list[OwnedProcess]:
        return [
            OwnedProcess(pid=r.pid, start_time=r.start_time, label=r.name)
            for r in self._ledger(run_id).open_resources()
            if r.kind == ResourceKind.PROCESS and r.pid is not None and pid_running(r.pid, r.start_time)
        ]

    def ledger(self, run_id: str) -> Ledger | None:
        """The run's ledger, to record processes the agent starts (delay proxies)."""
        return self._ledger(run_id)
