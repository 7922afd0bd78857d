"""`up` and `status`: start the whole cluster in order (or reuse a healthy one), and report on it.

Start order: PKI, bridge (CoreDNS and the kubelet bind the node IP), etcd, kube-apiserver, RBAC
for CoreDNS, controller-manager, scheduler, CoreDNS, the node's mount namespace, containerd,
kubelet, then wait for the Node to be Ready. A failure part-way tears down what was started.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import config
from kubernetes.client import ApiClient

from cluster import controlplane, lock, mountns, node, procs, teardown, users
from cluster.binaries import binaries_dir, check_system_tools
from cluster.certs import ADMIN, Pki, ensure_pki
from cluster.kubeconfig import write_kubeconfig
from cluster.layout import BRIDGE, NODE_IP, NODE_NAME, POD_CIDR, SERVICE_CIDR, Paths
from cluster.readiness import wait_until
from cluster.state import ClusterState
from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.core.processes import read_log_tail

NODE_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ClusterInfo:
    kubeconfig: Path
    node_name: str
    node_ip: str
    pod_cidr: str
    service_cidr: str
    containerd_socket: Path
    reused: bool
    timings_s: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "kubeconfig": str(self.kubeconfig),
            "node_name": self.node_name,
            "node_ip": self.node_ip,
            "pod_cidr": self.pod_cidr,
            "service_cidr": self.service_cidr,
            "containerd_socket": str(self.containerd_socket),
            "reused": self.reused,
            "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
        }


def api_client(kubeconfig: Path) -> ApiClient:
    """A kubernetes ApiClient for ``kubeconfig`` (the admin one unless told otherwise)."""
    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call,no-any-return]


def up(paths: Paths, *, replace_broken: bool = False, session_user: bool = False) -> ClusterInfo:
    """Bring the cluster up in ``paths`` (or reuse it if it is already up and healthy).

    A broken or half-started cluster in ``paths`` is an error, or with ``replace_broken`` is
    torn down first. ``session_user``: list this process as a user (see cluster.users).
    """
    if os.geteuid() != 0:
        raise UsageError("the test cluster needs root (bridges, cgroups, mount namespaces)", hint="run it as root")
    with lock.exclusive():
        info = _up_locked(paths, replace_broken)
        if session_user:
            users.register(ClusterState.load(paths.state_file), started_here=not info.reused)
        return info


def _up_locked(paths: Paths, replace_broken: bool) -> ClusterInfo:
    state = ClusterState.load(paths.state_file)
    if state.entries and healthy(paths, state):
        return _info(paths, reused=True, timings={})
    if state.entries and replace_broken:
        teardown.down_unlocked(paths)
        state = ClusterState.load(paths.state_file)
    if state.entries:
        raise InfrastructureError(
            f"a cluster in {paths.root} is partly up or broken",
            hint=f"python -m cluster down --state-dir {paths.root}, then up again",
        )
    _preflight(paths)
    bin_dir = binaries_dir()
    timings: dict[str, float] = {}
    start = time.monotonic()
    state.info["started_at"] = time.time()
    state.record("dir", str(paths.root))
    try:
        _start_all(state, paths, bin_dir, timings)
    except BaseException:
        teardown.down_unlocked(paths)
        raise
    timings["total"] = time.monotonic() - start
    return _info(paths, reused=False, timings=timings)


def _preflight(paths: Paths) -> None:
    """Refuse before creating anything: a foreign state dir (down would delete it) or another cluster."""
    check_system_tools()
    if paths.root.exists() and any(paths.root.iterdir()):
        raise UsageError(
            f"state dir {paths.root} exists, is not empty and holds no cluster state",
            hint="pick a new or empty directory with --state-dir (down deletes it)",
        )
    if node.link_exists(BRIDGE):
        raise InfrastructureError(
            f"interface {BRIDGE} exists: another cluster (other state dir) is up, or a crashed one left it",
            hint=f"python -m cluster status --state-dir DIR / down --state-dir DIR, or: ip link del {BRIDGE}",
        )


def _start_all(state: ClusterState, paths: Paths, bin_dir: Path, timings: dict[str, float]) -> None:
    pki = ensure_pki(paths.pki)
    admin_conf = write_kubeconfig(paths.admin_kubeconfig, controlplane.LOCAL_API, pki, ADMIN)
    node.create_bridge(state)
    timings["etcd"] = controlplane.start_etcd(state, paths, bin_dir)
    timings["kube-apiserver"] = controlplane.start_apiserver(state, paths, pki, bin_dir)
    with api_client(admin_conf) as api:
        controlplane.grant_coredns(api)
        _start_rest(state, paths, pki, bin_dir, timings, api)


def _start_rest(
    state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path, timings: dict[str, float], api: ApiClient
) -> None:
    """Everything after the API answers: controller-manager, scheduler, CoreDNS, then the node."""
    # These three come up side by side with the node; their readiness is collected below.
    waiters = {
        "kube-controller-manager": controlplane.start_controller_manager(state, paths, pki, bin_dir),
        "kube-scheduler": controlplane.start_scheduler(state, paths, pki, bin_dir),
        "coredns": controlplane.start_coredns(state, paths, pki, bin_dir),
    }
    node.write_cni_conf(paths)
    holder = mountns.start_holder(state, paths)
    timings["containerd"] = node.start_containerd(state, paths, holder)
    timings["kubelet"] = node.start_kubelet(state, paths, pki, bin_dir, holder)
    for name, wait in waiters.items():
        timings[name] = wait()
    try:
        timings["node-ready"] = wait_until(
            f"node {NODE_NAME} Ready",
            lambda: node.node_ready(api),
            NODE_READY_TIMEOUT_S,
            died=lambda: _any_exited(state),
        )
    except InfrastructureError as exc:
        # The state dir (and its logs) goes with the tear-down: keep what the kubelet said.
        log = paths.log("kubelet")
        raise InfrastructureError(f"{exc.message}; last lines of {log}:\n{read_log_tail(log, 25)}") from exc


def _any_exited(state: ClusterState) -> Exception | None:
    for entry in state.of_kind("process"):
        if (err := procs.exited_error(state, entry.name)) is not None:
            return err
    return None


def healthy(paths: Paths, state: ClusterState | None = None) -> bool:
    """Every recorded process runs and the Node is Ready."""
    state = state or ClusterState.load(paths.state_file)
    processes = state.of_kind("process")
    if len(processes) < len(teardown.STOP_ORDER) or not all(procs.running(e) for e in processes):
        return False
    try:
        with api_client(paths.admin_kubeconfig) as api:
            return node.node_ready(api)
    except Exception:  # any client or config error means "not healthy", which is what we report
        return False


def status(paths: Paths) -> dict[str, Any]:
    state = ClusterState.load(paths.state_file)
    procs_state = {e.name: {"pid": e.pid, "running": procs.running(e)} for e in state.of_kind("process")}
    return {
        "state_dir": str(paths.root),
        "exists": bool(state.entries),
        "healthy": bool(state.entries) and healthy(paths, state),
        "processes": procs_state,
        **({"cluster": _info(paths, reused=True, timings={}).as_json()} if state.entries else {}),
    }


def _info(paths: Paths, *, reused: bool, timings: dict[str, float]) -> ClusterInfo:
    return ClusterInfo(
        kubeconfig=paths.admin_kubeconfig,
        node_name=NODE_NAME,
        node_ip=NODE_IP,
        pod_cidr=POD_CIDR,
        service_cidr=SERVICE_CIDR,
        containerd_socket=paths.containerd_socket,
        reused=reused,
        timings_s=timings,
    )
