"""The test cluster itself: a Ready node, pods with IPs in the pod CIDR that the host reaches,
cluster DNS for headless Services, host sysctls untouched, and nothing left after `down`."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import pytest
from kubernetes import client
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from cluster import images
from cluster.handle import ClusterHandle
from cluster.layout import BRIDGE, CLUSTER_DOMAIN, NODE_IP, NODE_NAME, PAUSE_IMAGE, POD_CIDR
from cluster.mountns import host_sysctls
from cluster.readiness import wait_until
from cluster.state import ClusterState

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POD_NET = ipaddress.ip_network(POD_CIDR)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(k8s_cluster: ClusterHandle) -> Iterator[ApiClient]:
    with k8s_cluster.api() as api_client:
        yield api_client


@pytest.fixture(scope="module")
def namespace(api: ApiClient) -> Iterator[str]:
    name = f"mqk-test-{uuid.uuid4().hex[:6]}"
    core = CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The ServiceAccount admission plugin needs the namespace's `default` SA (made by the controller-manager).
    wait_until(f"ServiceAccount default in {name}", lambda: _has_default_sa(core, name), 30)
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:  # gone with the cluster that test_down_leaves_nothing_then_up_again replaced
            raise


def _has_default_sa(core: CoreV1Api, namespace: str) -> bool:
    return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items)


def _pod(name: str, image: str, labels: dict[str, str] | None = None, args: list[str] | None = None) -> client.V1Pod:
    container = client.V1Container(name="main", image=image, image_pull_policy="Never", args=args)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=0),
    )


def _running_ip(core: CoreV1Api, namespace: str, name: str, timeout_s: float = 60) -> str:
    ips: list[str] = []

    def running() -> bool:
        pod = core.read_namespaced_pod(name, namespace)
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        if pod.status.phase == "Running" and ready and pod.status.pod_ip:
            ips.append(pod.status.pod_ip)
            return True
        return False

    wait_until(f"pod {namespace}/{name} Running and Ready", running, timeout_s)
    return ips[-1]


def test_node_is_ready_with_the_node_ip(api: ApiClient) -> None:
    node = CoreV1Api(api).read_node(NODE_NAME)
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True"
    assert {"InternalIP": NODE_IP}.items() <= {a.type: a.address for a in node.status.addresses}.items()


def test_pause_pod_runs_with_an_ip_in_the_pod_cidr(api: ApiClient, namespace: str) -> None:
    core = CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("pause", PAUSE_IMAGE))
    ip = _running_ip(core, namespace, "pause")
    assert ipaddress.ip_address(ip) in POD_NET
    assert ip != NODE_IP


def test_host_reaches_a_pod_over_http(k8s_cluster: ClusterHandle, api: ApiClient, namespace: str) -> None:
    built = images.build(["maptarget"])["maptarget"]
    k8s_cluster.load_images([built.tar])
    core = CoreV1Api(api)
    args = ["--store", "mutexmap", "--http-addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:9090"]
    core.create_namespaced_pod(namespace, _pod("target", built.ref, args=args))
    ip = _running_ip(core, namespace, "target")
    body: list[str] = []

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=2) as resp:
            body.append(resp.read().decode())
            return bool(resp.status == 200)

    wait_until(f"maptarget /healthz at {ip}", healthy, 30)
    assert body[-1].strip() == "ok"


def test_headless_service_resolves_to_pod_ips_via_cluster_dns(api: ApiClient, namespace: str) -> None:
    core = CoreV1Api(api)
    labels = {"app": "dns-test"}
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="peers"),
        spec=client.V1ServiceSpec(cluster_ip="None", selector=labels, ports=[client.V1ServicePort(port=80)]),
    )
    core.create_namespaced_service(namespace, service)
    for i in range(2):
        core.create_namespaced_pod(namespace, _pod(f"peer-{i}", PAUSE_IMAGE, labels))
    pod_ips = {_running_ip(core, namespace, f"peer-{i}") for i in range(2)}
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [NODE_IP]
    resolver.lifetime = 2
    name = f"peers.{namespace}.svc.{CLUSTER_DOMAIN}"
    answers: list[set[str]] = []

    def resolves() -> bool:
        try:
            answers.append({r.address for r in resolver.resolve(name, "A")})
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        return answers[-1] == pod_ips

    wait_until(f"{name} to resolve to {pod_ips}", resolves, 30)
    assert answers[-1] == pod_ips
    # Nothing outside the cluster's zones is answered (CoreDNS forwards nowhere).
    with pytest.raises(dns.exception.DNSException):
        resolver.resolve("example.com", "A")


def test_host_sysctls_are_unchanged(k8s_cluster: ClusterHandle, host_sysctls_before: dict[str, str]) -> None:
    now = host_sysctls()
    now["net/ipv4/ip_forward"] = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert now == host_sysctls_before


def _cli(k8s_cluster: ClusterHandle, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "cluster", "--state-dir", str(k8s_cluster.paths.root), *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_up_again_reuses_the_running_cluster(k8s_cluster: ClusterHandle) -> None:
    out, err = _cli(k8s_cluster, "up").communicate(timeout=60)
    assert json.loads(out)["reused"] is True, err


@pytest.mark.cluster_down
def test_down_leaves_nothing_then_up_again(
    k8s_cluster_exclusive: ClusterHandle, api: ApiClient, namespace: str, host_sysctls_before: dict[str, str]
) -> None:
    """Takes the cluster down with a pod running (so there are shims, veths, cgroups) and brings it back."""
    core = CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("before-down", PAUSE_IMAGE))
    _running_ip(core, namespace, "before-down")
    k8s_cluster_exclusive.down()
    assert k8s_cluster_exclusive.leftovers() == []
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    assert not [link["ifname"] for link in links if link.get("master") == BRIDGE or link["ifname"] == BRIDGE]
    assert not list(Path("/sys/fs/cgroup").glob("*/kubepods"))
    test_host_sysctls_are_unchanged(k8s_cluster_exclusive, host_sysctls_before)
    k8s_cluster_exclusive.up()  # the next cluster_down test, and the session's final tear-down, expect it up


@pytest.mark.cluster_down
def test_down_from_another_process_after_up_was_killed_midway(k8s_cluster_exclusive: ClusterHandle) -> None:
    """`up` dies (SIGKILL) after the kubelet started, before the node is Ready; `down` in a new process cleans all."""
    k8s_cluster_exclusive.down()
    up = _cli(k8s_cluster_exclusive, "up")

    def kubelet_started() -> bool:
        entry = ClusterState.load(k8s_cluster_exclusive.paths.state_file).find("process", "kubelet")
        return entry is not None and entry.pid is not None

    try:
        wait_until("the kubelet to be started by `up`", kubelet_started, 60)
    finally:
        up.kill()
        up.communicate()
    down = _cli(k8s_cluster_exclusive, "down")
    out, err = down.communicate(timeout=60)
    assert down.returncode == 0, err
    assert "process kubelet" in " ".join(json.loads(out)["removed"])
    assert k8s_cluster_exclusive.leftovers() == []
    k8s_cluster_exclusive.up()
