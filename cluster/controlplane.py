"""The control plane as host processes: etcd, kube-apiserver, controller-manager, scheduler, CoreDNS.

Each start function launches one recorded daemon and returns once it answers its health check
(polled with a deadline), or, for the components nothing else waits on, returns a Waiter so they
come up side by side. Flags follow research/k8s-testing.md §1, §4 and §9.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from cluster import procs
from cluster.certs import ADMIN, COREDNS, KCM, SCHEDULER, Pki
from cluster.kubeconfig import write_kubeconfig
from cluster.layout import (
    APISERVER_PORT,
    CLUSTER_DOMAIN,
    COREDNS_READY_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    KCM_PORT,
    NODE_IP,
    SCHEDULER_PORT,
    SERVICE_CIDR,
    Paths,
)
from cluster.readiness import http_ok, https_ok, wait_until
from cluster.state import ClusterState

LOCAL_API = f"https://127.0.0.1:{APISERVER_PORT}"
ETCD_URL = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"

# Started, not yet ready: calling it waits for readiness and returns the seconds waited.
Waiter = Callable[[], float]


def start_etcd(state: ClusterState, paths: Paths, bin_dir: Path) -> float:
    state.record("dir", str(paths.etcd_data))
    paths.etcd_data.mkdir(parents=True, exist_ok=True, mode=0o700)
    peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
    procs.start_daemon(
        state,
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=mapquake",
            f"--data-dir={paths.etcd_data}",
            f"--listen-client-urls={ETCD_URL}",
            f"--advertise-client-urls={ETCD_URL}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=mapquake={peer}",
            "--unsafe-no-fsync=true",  # throwaway data on tmpfs: durability buys nothing
            "--log-level=warn",
        ],
        paths.log("etcd"),
    )
    return wait_until(
        "etcd /health", lambda: http_ok(f"{ETCD_URL}/health"), 30, died=lambda: procs.exited_error(state, "etcd")
    )


def start_apiserver(state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path) -> float:
    procs.start_daemon(
        state,
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={ETCD_URL}",
            # 0.0.0.0 so both 127.0.0.1 (host clients) and 198.19.0.1 (pods) reach it.
            "--bind-address=0.0.0.0",
            f"--secure-port={APISERVER_PORT}",
            f"--advertise-address={NODE_IP}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No kube-proxy, so the `kubernetes` Service's endpoints would be unreachable anyway.
            "--endpoint-reconciler-type=none",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--client-ca-file={pki.ca_cert}",
            f"--tls-cert-file={pki.cert('apiserver')}",
            f"--tls-private-key-file={pki.key('apiserver')}",
            f"--cert-dir={paths.pki / 'apiserver-generated'}",
            f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--profiling=false",
        ],
        paths.log("kube-apiserver"),
    )
    admin = (pki.cert(ADMIN.stem), pki.key(ADMIN.stem))
    return wait_until(
        "kube-apiserver /readyz",
        lambda: https_ok(f"{LOCAL_API}/readyz", pki.ca_cert, admin),
        90,
        died=lambda: procs.exited_error(state, "kube-apiserver"),
    )


def start_controller_manager(state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path) -> Waiter:
    kubeconfig = write_kubeconfig(paths.kubeconfigs / "kube-controller-manager.conf", LOCAL_API, pki, KCM)
    procs.start_daemon(
        state,
        "kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={KCM_PORT}",
            "--leader-elect=false",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.sa_key}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--cluster-name=mapquake",
            # Created at start; the default is /usr/libexec/kubernetes/kubelet-plugins/volume/exec.
            f"--flex-volume-plugin-dir={paths.root / 'kcm-flexvolume'}",
            "--profiling=false",
        ],
        paths.log("kube-controller-manager"),
    )
    return partial(
        wait_until,
        "kube-controller-manager /healthz",
        lambda: https_ok(f"https://127.0.0.1:{KCM_PORT}/healthz"),
        60,
        died=lambda: procs.exited_error(state, "kube-controller-manager"),
    )


def start_scheduler(state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path) -> Waiter:
    kubeconfig = write_kubeconfig(paths.kubeconfigs / "kube-scheduler.conf", LOCAL_API, pki, SCHEDULER)
    procs.start_daemon(
        state,
        "kube-scheduler",
        [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={SCHEDULER_PORT}",
            "--leader-elect=false",
            "--profiling=false",
        ],
        paths.log("kube-scheduler"),
    )
    return partial(
        wait_until,
        "kube-scheduler /healthz",
        lambda: https_ok(f"https://127.0.0.1:{SCHEDULER_PORT}/healthz"),
        60,
        died=lambda: procs.exited_error(state, "kube-scheduler"),
    )


def corefile(kubeconfig: Path) -> str:
    """CoreDNS answers only for the cluster's zones, on the node IP; it forwards nothing anywhere."""
    return f"""\
{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    ready 127.0.0.1:{COREDNS_READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} mapquake
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def grant_coredns(api_client: ApiClient) -> None:
    """Create (or keep) the ClusterRole and binding that let CoreDNS's user read what it serves.

    The rules are those of upstream CoreDNS's system:coredns ClusterRole.
    """
    rbac = client.RbacAuthorizationV1Api(api_client)
    name = "mapquake:coredns"
    role = client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=name),
        rules=[
            client.V1PolicyRule(
                api_groups=[""], resources=["endpoints", "services", "pods", "namespaces"], verbs=["list", "watch"]
            ),
            client.V1PolicyRule(api_groups=["discovery.k8s.io"], resources=["endpointslices"], verbs=["list", "watch"]),
        ],
    )
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name),
        subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name=COREDNS.user)],
    )
    try:
        rbac.create_cluster_role(role)
    except ApiException as exc:
        if exc.status != 409:  # already there from an earlier `up` of this state dir
            raise
    try:
        rbac.create_cluster_role_binding(binding)
    except ApiException as exc:
        if exc.status != 409:
            raise


def start_coredns(state: ClusterState, paths: Paths, pki: Pki, bin_dir: Path) -> Waiter:
    kubeconfig = write_kubeconfig(paths.kubeconfigs / "coredns.conf", LOCAL_API, pki, COREDNS)
    conf = paths.etc / "Corefile"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(corefile(kubeconfig))
    procs.start_daemon(state, "coredns", [str(bin_dir / "coredns"), "-conf", str(conf)], paths.log("coredns"))
    return partial(
        wait_until,
        "CoreDNS /ready",
        lambda: http_ok(f"http://127.0.0.1:{COREDNS_READY_PORT}/ready"),
        60,
        died=lambda: procs.exited_error(state, "coredns"),
    )
