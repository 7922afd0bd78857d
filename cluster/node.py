"""The node: bridge mqk0 with the node IP, CNI conf, containerd (Debian's) and the kubelet.

containerd and the kubelet run in the private mount namespace of mountns.py. Fixes for this
sandbox (research/k8s-testing.md §9): CRI `restrict_oom_score_adj` (no CAP_SYS_RESOURCE), kubelet
`failCgroupV1: false` + cgroupfs (cgroup v1 hosts), no dummy interfaces (the node IP sits on the
pod bridge), images only from local tarballs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from cluster import mountns, procs
from cluster.certs import KUBELET, Pki
from cluster.controlplane import LOCAL_API
from cluster.kubeconfig import write_kubeconfig
from cluster.layout import (
    BRIDGE,
    CLUSTER_DOMAIN,
    CNI_BIN_DIR,
    CNI_NETWORK,
    CONTAINERD_RUN_DIR,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    POD_RANGE_START,
    Paths,
)
from cluster.readiness import http_ok, wait_until
from cluster.state import ClusterState
from orchestrator.core.errors import InfrastructureError

PREFIX_LEN = POD_CIDR.split("/")[1]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a short command; a failure becomes an InfrastructureError naming it and its stderr."""
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise InfrastructureError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")
    return res


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def create_bridge(state: ClusterState) -> None:
    """The pod bridge, carrying the node IP (this kernel has no dummy interfaces)."""
    if link_exists(BRIDGE):
        raise InfrastructureError(f"interface {BRIDGE} already exists", hint=f"ip link del {BRIDGE} if nothing uses it")
    state.record("link", BRIDGE)
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{NODE_IP}/{PREFIX_LEN}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def write_cni_conf(paths: Paths) -> None:
    conf = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                # No gateway, no masquerade: pods get only the on-link route, nothing leaves the box.
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "rangeStart": POD_RANGE_START, "gateway": NODE_IP}]],
                    "dataDir": str(paths.cni_ipam_dir),
                },
            }
        ],
    }
    paths.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (paths.cni_conf_dir / "10-mapquake.conflist").write_text(json.dumps(conf, indent=1) + "\n")


def containerd_config(paths: Paths) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{paths.containerd_root}"
state = "{CONTAINERD_RUN_DIR}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{paths.containerd_socket}"
[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.containerd_root}/opt"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # runc cannot lower a sandbox's oom_score_adj without CAP_SYS_RESOURCE, which this sandbox lacks.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{CONTAINERD_RUN_DIR}/runc"
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
    max_conf_num = 1
"""


def start_containerd(state: ClusterState, paths: Paths, holder_pid: int) -> float:
    state.record("dir", str(CONTAINERD_RUN_DIR))
    CONTAINERD_RUN_DIR.mkdir(parents=True, exist_ok=True, mode=0o711)
    conf = paths.etc / "containerd.toml"
    conf.write_text(containerd_config(paths))
    procs.start_daemon(
        state, "containerd", mountns.enter(holder_pid, ["containerd", "--config", str(conf)]), paths.log("containerd")
    )
    return wait_until(
        "containerd's socket",
        lambda: ctr(paths, "version").returncode == 0,
        30,
        died=lambda: procs.exited_error(state, "containerd"),
    )


def ctr(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(paths.containerd_socket), "-n", "k8s.io", *args], capture_output=True, text=True
    )


def load_images(paths: Paths, tarballs: list[Path]) -> None:
    """Import docker-save tarballs into the node's containerd (namespace k8s.io, used by the CRI)."""
    if tarballs and not paths.containerd_socket.exists():
        raise InfrastructureError(
            f"the cluster is not up (no containerd socket {paths.containerd_socket})", hint="python -m cluster up"
        )
    for tar in tarballs:
        if not tar.is_file():
            raise InfrastructureError(
                f"image tarball {tar} does not exist", hint="python -m cluster.images build --out DIR"
            )
        res = ctr(paths, "images", "import", str(tar))
        if res.returncode != 0:
            raise InfrastructureError(f"importing {tar} into the cluster failed: {res.stderr.strip()}")


def kubelet_config(paths: Paths, pki: Pki) -> dict[str, object]:
    resolv = paths.etc / "resolv.conf"
    # Pods with dnsPolicy Default get this instead of the host's resolvers: cluster DNS only.
    resolv.write_text(f"nameserver {NODE_IP}\n")
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki.cert("kubelet-serving")),
        "tlsPrivateKeyFile": str(pki.key("kubelet-serving")),
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "failCgroupV1": False,  # this host mounts cgroup v1
        "clusterDNS": [NODE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(resolv),
        "hairpinMode": "none",
        # Only KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY would come of it; nothing here needs them.
        "makeIPTablesUtilChains": False,
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.root / "volume-plugins"),
        # Images cannot be pulled again here: never garbage-collect them, never evict for a full disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "rotateCertificates": False,
    }


def start_kubelet(state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path, holder_pid: int) -> float:
    kubeconfig = write_kubeconfig(paths.kubeconfigs / "kubelet.conf", LOCAL_API, pki, KUBELET)
    conf = paths.etc / "kubelet.yaml"
    conf.write_text(yaml.safe_dump(kubelet_config(paths, pki), sort_keys=False))
    state.record("dir", str(paths.kubelet_root))
    argv = [
        str(bin_dir / "kubelet"),
        f"--config={conf}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.kubelet_root / 'pki'}",  # the default is under /var/lib/kubelet
        f"--node-ip={NODE_IP}",
        f"--hostname-override={NODE_NAME}",
        "--v=1",
    ]
    procs.start_daemon(state, "kubelet", mountns.enter(holder_pid, argv), paths.log("kubelet"))
    return wait_until(
        "kubelet /healthz",
        lambda: http_ok(f"http://127.0.0.1:{KUBELET_HEALTHZ_PORT}/healthz"),
        60,
        died=lambda: procs.exited_error(state, "kubelet"),
    )


def node_ready(api_client: ApiClient) -> bool:
    try:
        node = client.CoreV1Api(api_client).read_node(NODE_NAME)
    except ApiException:
        return False
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
