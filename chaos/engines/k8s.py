"""Kubernetes pods as the agent's namespaces (``PodNamespaces``): in use by ``python -m chaos.agent --kubernetes``.

The agent runs as a privileged DaemonSet (hostPID, host network) on each node and serves
any run, but touches only pods on its own node that carry ``mapquake.io/run=<the fault's
run id>`` (mapquake created them for that run); every other pod, a pod on another node, or
a namespace name not of the form ``pod/<namespace>/<pod>`` is refused with a message saying
which. The label is read from the API server on every call (``PodSource``), never cached.

A pod's network namespace is entered with ``nsenter --net=/proc/<pid>/ns/net``, through its
sandbox (pause) process when there is one (it holds the namespace for the pod's whole life,
so a heal reaches it after an app container restarted) or else its first container's main
process; both found in /proc (``chaos.engines.podproc``). The rules are the very same nft
JSON documents as locally, on interface ``eth0``.

kill = SIGKILL to the first container's main process through a pidfd (the kubelet restarts
it per the pod's restartPolicy); pause = the pod's cgroup frozen in the v1 freezer until
heal (every container of the pod stops, as SIGSTOP stops a local replica). A fault's pid may
be 0 ("the pod's main process"): the controller does not know host pids on a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaos.agent.ownership import OwnedProcess, Refused
from chaos.engines import podproc, process
from chaos.engines.command import NetnsHandle
from orchestrator.core.errors import MapquakeError

RUN_LABEL = "mapquake.io/run"
POD_IFNAME = "eth0"
NETNS_PREFIX = "pod/"


@dataclass(frozen=True)
class PodRef:
    """A pod as the agent sees it in the API server: where it runs, its labels, its running containers."""

    namespace: str
    name: str
    uid: str
    node: str
    labels: dict[str, str]
    container_ids: tuple[str, ...]  # running containers, in spec order: "containerd://<hex>"

    @property
    def netns_key(self) -> str:
        return f"{NETNS_PREFIX}{self.namespace}/{self.name}"


class PodSource(Protocol):
    """Reads pods from the API server (``chaos.engines.k8sapi.ApiPods``; a list in tests)."""

    node: str

    def pods_of_run(self, run_id: str) -> list[PodRef]:
        """The pods on ``node`` labelled ``mapquake.io/run=<run_id>``, read now."""
        ...

    def find(self, namespace: str, name: str) -> PodRef | None:
        """Any pod by name (to say why one is refused), None if it does not exist."""
        ...

    def runs(self) -> set[str]:
        """The run ids of the labelled pods on ``node`` (what a startup sweep visits)."""
        ...


def parse_netns(netns: str) -> tuple[str, str]:
    """``pod/<namespace>/<pod>`` → (namespace, pod). Raises Refused for any other name."""
    parts = netns.split("/")
    if len(parts) != 3 or parts[0] != NETNS_PREFIX.rstrip("/") or not parts[1] or not parts[2]:
        raise Refused(f"namespace {netns!r} is not a pod: on Kubernetes faults name pods as pod/<namespace>/<pod>")
    return parts[1], parts[2]


class PodNamespaces:
    """``ownership.Namespaces`` and ``ownership.ContainerSignals`` for the pods on one node."""

    def __init__(
        self,
        source: PodSource,
        *,
        proc: Path = podproc.PROC,
        freezer_root: Path = podproc.FREEZER_ROOT,
    ) -> None:
        self.source = source
        self.proc = proc
        self.freezer_root = freezer_root

    # --- ownership ----------------------------------------------------------------------------

    def pod(self, run_id: str, netns: str) -> PodRef:
        """The pod ``netns`` names, if it is on this node and labelled for ``run_id``; raises Refused otherwise."""
        namespace, name = parse_netns(netns)
        for pod in self.source.pods_of_run(run_id):
            if (pod.namespace, pod.name) == (namespace, name):
                self._check(run_id, pod)  # again: whatever the source's selector did
                return pod
        found = self.source.find(namespace, name)
        if found is None:
            raise Refused(f"{netns}: no such pod")
        self._check(run_id, found)
        raise Refused(f"{netns}: not listed among the pods of run {run_id} on node {self.source.node}")

    def _check(self, run_id: str, pod: PodRef) -> None:
        if pod.labels.get(RUN_LABEL) != run_id:
            has = f"{RUN_LABEL}={pod.labels[RUN_LABEL]}" if RUN_LABEL in pod.labels else f"no {RUN_LABEL} label"
            raise Refused(f"{pod.netns_key} is not labelled {RUN_LABEL}={run_id} ({has}): not a pod of this run")
        if pod.node != self.source.node:
            raise Refused(
                f"{pod.netns_key} runs on node {pod.node or '(none yet)'}, this agent serves node "
                f"{self.source.node}: send the fault to the agent on {pod.node or 'its node'}"
            )

    def _main(self, pod: PodRef) -> podproc.ContainerProcess:
        if not pod.container_ids:
            raise Refused(f"{pod.netns_key} has no running container")
        try:
            return podproc.container_process(pod.container_ids[0], self.proc)
        except podproc.PodProcessError as err:
            raise Refused(f"{pod.netns_key}: {err.message}") from None

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        pod = self.pod(run_id, netns)
        app = self._main(pod)
        entry = podproc.sandbox_process(app, list(pod.container_ids), self.proc) or app
        return NetnsHandle.of_pid(pod.netns_key, entry.pid, alive=lambda: podproc.still_running(entry, self.proc))

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        """The pod's first container's main process; ``pid`` must be it, or 0 (the agent chooses)."""
        pod, app = self._target(run_id, pid, netns)
        return OwnedProcess(pid=app.pid, start_time=app.start_time, label=pod.netns_key)

    def _target(self, run_id: str, pid: int, netns: str) -> tuple[PodRef, podproc.ContainerProcess]:
        pod = self.pod(run_id, netns)
        app = self._main(pod)
        if pid not in (0, app.pid):
            raise Refused(f"pid {pid} is not the main process of {netns} (that is pid {app.pid})")
        if app.pid <= 1 or app.pid in (os.getpid(), os.getppid()):
            raise Refused(f"{netns}: its main process {app.pid} is the agent itself, its parent or init")
        return pod, app

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        out = []
        for pod in self.source.pods_of_run(run_id):
            try:
                out.append((self.handle(run_id, pod.netns_key), POD_IFNAME))
            except MapquakeError:  # a pod without a running container has no namespace to sweep
                continue
        return out

    def processes(self, run_id: str) -> list[OwnedProcess]:
        return []  # the agent starts no recorded process of a run on Kubernetes; frozen pods: thaw_frozen

    # --- kill and pause -----------------------------------------------------------------------

    def kill(self, run_id: str, netns: str, pid: int) -> str:
        """SIGKILL the pod's main process (through a pidfd, checked by start time). Returns the mechanism."""
        owned = self.process(run_id, pid, netns)
        process.kill(owned.pid, owned.start_time)
        return "SIGKILL to the container's main process"

    def pause(self, run_id: str, netns: str, pid: int) -> tuple[str, Callable[[], None]]:
        """Freeze the pod's cgroup. Returns (the mechanism, the thaw to call at heal)."""
        pod, app = self._target(run_id, pid, netns)
        try:
            cgroup = podproc.pod_freezer_dir(app, pod.uid, self.freezer_root)
        except podproc.PodProcessError as err:
            raise Refused(f"{netns}: {err.message}") from None
        if podproc.frozen(cgroup):
            raise Refused(f"{netns} is frozen already (another fault pauses it)")
        podproc.set_freezer(cgroup, "FROZEN")

        def thaw() -> None:
            if (cgroup / "freezer.state").exists():  # the pod may be gone by heal time
                podproc.set_freezer(cgroup, "THAWED")

        return "cgroup freezer (the whole pod)", thaw

    def thaw_frozen(self, run_id: str) -> list[str]:
        """Thaw the run's pods left frozen (by an agent that died mid-pause). Returns what was thawed."""
        out = []
        for pod in self.source.pods_of_run(run_id):
            try:
                cgroup = podproc.pod_freezer_dir(self._main(pod), pod.uid, self.freezer_root)
                if podproc.frozen(cgroup):
                    podproc.set_freezer(cgroup, "THAWED")
                    out.append(f"thawed {pod.netns_key}")
            except MapquakeError:
                continue
        return out
