"""Where the test cluster lives: its fixed addresses, ports and names, and the paths under its state dir.

Addresses follow docs/k8s-contract (issue #13): everything sits in 198.19.0.0/16, inside a bridge
we create, and nothing routes out. Ports on 127.0.0.1 are picked away from the components'
defaults so a stray default-configured process elsewhere on the machine does not clash with ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/mapquake-cluster")

NODE_NAME = "mapquake-node"
BRIDGE = "mqk0"
NODE_IP = "198.19.0.1"
POD_CIDR = "198.19.0.0/20"
POD_RANGE_START = "198.19.0.10"
SERVICE_CIDR = "198.19.240.0/24"
SERVICE_IP = "198.19.240.1"  # the `kubernetes` Service's ClusterIP: first address of SERVICE_CIDR
CLUSTER_DOMAIN = "cluster.local"
CNI_NETWORK = "mapquake"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
PAUSE_IMAGE = "mapquake.local/pause:3.10"

ETCD_CLIENT_PORT = 22379
ETCD_PEER_PORT = 22380
APISERVER_PORT = 6443
KCM_PORT = 20257
SCHEDULER_PORT = 20259
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 20248
COREDNS_READY_PORT = 28181

# containerd's run-time dir (sockets, runc state); kept apart from a system containerd's /run/containerd.
CONTAINERD_RUN_DIR = Path("/run/containerd-mapquake")

# Host dirs that containerd 1.6 and the kubelet write to with no option to move them. Inside the
# cluster's private mount namespace each gets a tmpfs, so nothing they write reaches the host.
# (/run/containerd: shim sockets; /run/netns: pod netns mounts; /var/lib/cni: libcni's result cache;
# /var/log/containers: the kubelet's log symlinks;
# /var/lib/kubelet: the device-plugin socket dir, fixed whatever --root-dir says.)
PRIVATE_TMPFS_DIRS = (
    Path("/run/containerd"),
    Path("/run/netns"),
    Path("/var/lib/cni"),
    Path("/var/log/containers"),
    Path("/var/lib/kubelet"),
)

# Host-wide sysctls the kubelet sets at start (pkg/kubelet/cm setupKernelTunables) and the values it
# wants. In the private mount namespace each /proc/sys file whose host value differs is covered by a
# bind-mounted plain file that already holds the wanted value, so the kubelet finds nothing to change.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


@dataclass(frozen=True)
class Paths:
    """Every file and directory of one cluster, derived from its state dir."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfigs(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfigs / "admin.conf"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def etcd_data(self) -> Path:
        # tmpfs: the cluster is throwaway, and etcd on disk is the slowest part of a start.
        return Path("/dev/shm") / f"mapquake-cluster-etcd-{self.root.name}"

    @property
    def sysctl_files(self) -> Path:
        return self.root / "sysctl"

    @property
    def mntns_ready(self) -> Path:
        return self.root / "mntns.ready"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return CONTAINERD_RUN_DIR / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.etc / "cni"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni-ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"
