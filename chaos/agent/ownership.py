"""What the agent may touch: namespaces and processes a run it was told about created.

Locally, a namespace is the run's if it is named ``mq-<run>-<node>`` (core.names) AND the
run's ledger holds it open; a pid is the run's if the ledger records it, started in that
very namespace, with the start time the live process still has. Before a signal,
``check_target`` also reads the live process: it must be in the named namespace (its
``/proc/<pid>/ns/net`` is the namespace's file), carry ``MAPQUAKE_RUN_ID=<run>`` in its
environment (``orchestrator.core.processes.start_process`` puts it there), still have its
recorded start time, and not be the agent or the agent's parent. Everything else is refused.

On Kubernetes (``chaos.engines.k8s.PodNamespaces``, ``python -m chaos.agent --kubernetes``) a
namespace ``pod/<namespace>/<pod>`` is the run's if that pod runs on the agent's node and carries
``mapquake.io/run=<run>`` (read from the API server on every call); kill and pause go through
``ContainerSignals`` (the pod's main process by pidfd, the pod's freezer cgroup).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from chaos.engines.command import NetnsHandle
from orchestrator.core.errors import MapquakeError
from orchestrator.core.ledger import LEDGER_FILE, RUN_ID_ENV, Ledger, ResourceKind, parse_stat, pid_running, runs_dir
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

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        """The run's process ``pid``, started in its namespace ``netns`` (with its start time); raises Refused
        otherwise."""
        ...

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        """Every (namespace, interface) of the run that still exists: what a startup sweep visits."""
        ...

    def processes(self, run_id: str) -> list[OwnedProcess]:
        """The run's recorded processes that still run."""
        ...


@runtime_checkable
class ContainerSignals(Protocol):
    """Kill and pause done by the namespaces' owner itself (Kubernetes: a container's process, a pod's
    cgroup freezer) instead of the fault table's signal to a ledger-recorded pid. ``pid`` may be 0:
    the namespace's main process, chosen by the agent."""

    def kill(self, run_id: str, netns: str, pid: int) -> str:
        """Kill it; returns the mechanism used. Raises Refused if it is not the run's."""
        ...

    def pause(self, run_id: str, netns: str, pid: int) -> tuple[str, Callable[[], None]]:
        """Pause it; returns (the mechanism, the resume to call at heal). Raises Refused if not the run's."""
        ...


class LocalNamespaces:
    """Ownership from the runs' ledgers under the state root (the agent reads them, writes only its proxies)."""

    def __init__(self, runs: list[str]) -> None:
        self.runs = set(runs)
        self._open_netns: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}
        """run id -> (the ledger file's (mtime_ns, size) when read, the namespaces it records open)."""

    def _ledger(self, run_id: str) -> Ledger:
        if run_id not in self.runs:
            raise Refused(f"run {run_id} is not one this agent serves (serving: {', '.join(sorted(self.runs))})")
        return Ledger.load(run_id)

    def _namespaces_open(self, run_id: str) -> frozenset[str]:
        """The namespaces the run's ledger records open, read again only when the ledger changed.

        Every fault names several namespaces and a ledger grows with the run (delay proxies are recorded
        in it): parsing it for each was most of an apply's time. The ledger is append-only, so a write
        always changes its size: (mtime, size) tells when to read it again.
        """
        if run_id not in self.runs:
            self._ledger(run_id)  # raises Refused
        try:
            stat = (runs_dir() / run_id / LEDGER_FILE).stat()
        except OSError:
            self._ledger(run_id)  # raises the ledger's own "no ledger" error
            raise
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._open_netns.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        names = frozenset(r.name for r in self._ledger(run_id).open_resources() if r.kind == ResourceKind.NETNS)
        self._open_netns[run_id] = (key, names)
        return names

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        open_netns = self._namespaces_open(run_id)
        if run_id_of(netns) != run_id or not netns.startswith(netns_name(run_id, "")):
            raise Refused(f"namespace {netns!r} is not named for run {run_id} ({netns_name(run_id, '<node>')})")
        if netns not in open_netns:
            raise Refused(f"namespace {netns} is not recorded open in the ledger of run {run_id}")
        if not netns_exists(netns):
            raise Refused(f"namespace {netns} does not exist")
        return NetnsHandle.local(netns)

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        if pid == 0:
            raise Refused("pid 0 (the agent chooses the process) is for pods on Kubernetes; a local fault names "
                          "the replica's recorded pid")  # fmt: skip
        for res in self._ledger(run_id).open_resources():
            if res.kind == ResourceKind.PROCESS and res.pid == pid:
                if res.netns != netns:
                    where = f"in {res.netns}" if res.netns else "outside the run's namespaces"
                    raise Refused(f"pid {pid} of run {run_id} ({res.name}) was started {where}, not in {netns}")
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


def check_target(
    run_id: str,
    owned: OwnedProcess,
    netns_path: str,
    *,
    proc: Path = Path("/proc"),
    own_pids: tuple[int, ...] | None = None,
) -> None:
    """Refuse to signal ``owned`` unless the live process is the run's target in that namespace.

    It must not be the agent or its parent (``own_pids``, default this process and its parent), must be
    in the network namespace whose file is ``netns_path`` (same device and inode as
    ``<proc>/<pid>/ns/net``), must carry ``MAPQUAKE_RUN_ID=<run_id>`` in its environment, and must still
    have the recorded start time (when one is recorded). Raises Refused naming what did not hold.
    """
    pid = owned.pid
    if pid in (own_pids if own_pids is not None else (os.getpid(), os.getppid())) or pid <= 1:
        raise Refused(f"pid {pid} is the agent itself, its parent or init: never signalled")
    base = proc / str(pid)
    try:
        mine, theirs = os.stat(netns_path), os.stat(base / "ns" / "net")
    except OSError as err:
        raise Refused(f"pid {pid}: cannot compare its network namespace with {netns_path}: {err}") from None
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        raise Refused(f"pid {pid} ({owned.label}) is not in the named namespace ({netns_path})")
    try:
        environ = (base / "environ").read_bytes().split(b"\0")
        stat = parse_stat((base / "stat").read_text())
    except OSError as err:
        raise Refused(f"pid {pid}: cannot read its environment or state: {err}") from None
    if f"{RUN_ID_ENV}={run_id}".encode() not in environ:
        raise Refused(f"pid {pid} ({owned.label}) does not carry {RUN_ID_ENV}={run_id}: not started by this run")
    if stat is None or stat[0] in ("Z", "X"):
        raise Refused(f"pid {pid} ({owned.label}) is not running")
    if owned.start_time is not None and stat[1] != owned.start_time:
        raise Refused(f"pid {pid} started at {stat[1]}, not at the recorded {owned.start_time}: another process")
