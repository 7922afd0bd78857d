"""Kubernetes namespace entry for the agent (``PodNamespaces``): written ahead of the Kubernetes backend.

The plan is the same agent as a privileged DaemonSet on each node. There, a pod's
network namespace is entered through one of its containers' pid
(``nsenter --net=/proc/<pid>/ns/net``), the way chaos-daemon does; the pid comes
from the container runtime (``crictl inspect``). The rules are the very same nft
JSON documents and tc commands as locally (``chaos.engines.nft``/``netem``), built with a
different ``NetnsHandle`` prefix. A pod is the run's only if it carries the label
``mapquake.io/run=<run id>`` (mapquake created it); every other pod is refused. The
pod's interface is ``eth0``; namespace names in messages are ``pod/<namespace>/<name>``.

Not in use yet: ``python -m chaos.agent`` serves local namespaces only (``server.local_table``),
nothing builds a ``PodNamespaces``, and there is no DaemonSet. This module is tested only
against a fake command runner (tests/unit/chaos/test_k8s.py), never on a cluster; the
Kubernetes backend, which will wire it in and test it there, is a later issue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from chaos.agent.ownership import OwnedProcess, Refused
from chaos.engines.command import NetnsHandle, Runner, check, subprocess_runner

RUN_LABEL = "mapquake.io/run"
POD_IFNAME = "eth0"


@dataclass(frozen=True)
class PodRef:
    """A pod on this node as the agent sees it (from the API server or the kubelet)."""

    namespace: str
    name: str
    labels: dict[str, str]
    container_id: str  # runtime id, e.g. containerd://<hex>

    @property
    def netns_key(self) -> str:
        return f"pod/{self.namespace}/{self.name}"


def container_pid(container_id: str, runner: Runner = subprocess_runner) -> int:
    """The host pid of a container's main process, from ``crictl inspect``."""
    bare = container_id.split("://", 1)[-1]
    result = check(runner(["crictl", "inspect", bare], None), f"crictl inspect {bare}")
    info = json.loads(result.stdout)
    pid = int(info.get("info", {}).get("pid", 0))
    if pid <= 0:
        raise Refused(f"container {bare} has no running process")
    return pid


class PodNamespaces:
    """``ownership.Namespaces`` for Kubernetes pods: run label check, nsenter handles."""

    def __init__(self, runs: list[str], pods: Callable[[], list[PodRef]], runner: Runner = subprocess_runner) -> None:
        self.runs = set(runs)
        self.pods = pods
        self.runner = runner

    def _pod(self, run_id: str, key: str) -> PodRef:
        if run_id not in self.runs:
            raise Refused(f"run {run_id} is not one this agent serves")
        for pod in self.pods():
            if pod.netns_key == key:
                if pod.labels.get(RUN_LABEL) != run_id:
                    raise Refused(f"{key} is not labelled {RUN_LABEL}={run_id}: mapquake did not create it")
                return pod
        raise Refused(f"{key} is not a pod on this node")

    def handle(self, run_id: str, netns: str) -> NetnsHandle:
        pod = self._pod(run_id, netns)
        return NetnsHandle.of_pid(netns, container_pid(pod.container_id, self.runner))

    def process(self, run_id: str, pid: int, netns: str) -> OwnedProcess:
        for pod in self.pods():
            if (
                pod.netns_key == netns
                and pod.labels.get(RUN_LABEL) == run_id
                and container_pid(pod.container_id, self.runner) == pid
            ):
                return OwnedProcess(pid=pid, start_time=None, label=pod.netns_key)
        raise Refused(f"pid {pid} is not the main process of a pod of run {run_id}")

    def interfaces(self, run_id: str) -> list[tuple[NetnsHandle, str]]:
        out = []
        for pod in self.pods():
            if pod.labels.get(RUN_LABEL) == run_id and run_id in self.runs:
                out.append(
                    (NetnsHandle.of_pid(pod.netns_key, container_pid(pod.container_id, self.runner)), POD_IFNAME)
                )
        return out

    def processes(self, run_id: str) -> list[OwnedProcess]:
        return []  # on Kubernetes a killed pod is replaced by its controller; nothing to sweep
