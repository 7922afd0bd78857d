"""The `k8s_cluster` fixture: one real single-node cluster (cluster/ package) for the whole session.

It is started once (about 5 s once the binaries are built; a cold build takes ~20 min), torn down
at the end of the session even when tests fail, and the tear-down is checked: anything left on
the host fails the session. Tests marked `cluster_down` take the cluster down and up again; they
are moved after all other tests of the session and use `k8s_cluster_exclusive`.
State dir: $MAPQUAKE_K8S_STATE_DIR or /var/lib/mapquake-cluster-test. A healthy cluster already
up there is reused; sessions sharing it are counted, and the last one out takes it down (unless
`python -m cluster up` started it: then it stays up).
Needs root; without it every test using the fixture is skipped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster.handle import ClusterHandle
from cluster.mountns import host_sysctls
from orchestrator.backends.base import ClusterAccess
from orchestrator.backends.kubernetes.agents import AGENT_SELECTOR
from orchestrator.backends.kubernetes.kube import Kube
from orchestrator.backends.kubernetes.pods import is_ready
from tests.k8s.runs import OPT_IN, Images, core_api, wait_namespace_gone
from tests.k8s.test_chart import CHART_DIR, find_helm

STATE_DIR = Path(os.environ.get("MAPQUAKE_K8S_STATE_DIR", "/var/lib/mapquake-cluster-test"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster_down: takes the session's test cluster down and up again (runs after all other tests)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the cluster down go last, so no other test loses its namespaces or images."""
    items.sort(key=lambda item: item.get_closest_marker("cluster_down") is not None)  # stable: order kept


@pytest.fixture(scope="session")
def host_sysctls_before() -> dict[str, str]:
    """The host's sysctl values the kubelet would like to change, read before the cluster starts."""
    values = host_sysctls()
    values["net/ipv4/ip_forward"] = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    return values


@pytest.fixture(scope="session")
def k8s_cluster(host_sysctls_before: dict[str, str]) -> Iterator[ClusterHandle]:
    if os.geteuid() != 0:
        pytest.skip("the test cluster needs root (bridge, cgroups, mount namespace); run pytest as root")
    # shared: another session (another worktree's test run) may use the same cluster at the same
    # time; the last one to leave takes it down.
    handle = ClusterHandle(STATE_DIR, shared=True)
    handle.up()
    try:
        yield handle
    finally:
        handle.release()
        if not handle.paths.state_file.exists():  # this session took it down: check that it is all gone
            left = handle.leftovers()
            if left:
                pytest.fail(f"cluster tear-down left: {left}")


@pytest.fixture
def k8s_cluster_exclusive(k8s_cluster: ClusterHandle) -> ClusterHandle:
    """The session's cluster, for a test that takes it down and up again (mark it `cluster_down`).

    Skips when that would hurt someone else: another live test session uses the cluster, or it was
    started outside the tests (`python -m cluster up`).
    """
    others = k8s_cluster.other_users()
    if others:
        pytest.skip(f"the cluster is shared with other live test sessions (pids {others})")
    if not k8s_cluster.started_by_session():
        pytest.skip("the cluster was started by `python -m cluster up`, not by a test session")
    return k8s_cluster


@pytest.fixture(scope="session")
def k8s_images(k8s_cluster: Any) -> Images:
    """maptarget and mapquake images, built without Docker and loaded into the node's containerd."""
    from cluster import images

    built = {name: images.build_one(name, images.DEFAULT_OUT) for name in ("maptarget", "mapquake")}
    k8s_cluster.load_images([b.tar for b in built.values()])
    return Images(maptarget=built["maptarget"].ref, mapquake=built["mapquake"].ref)


@pytest.fixture
def run_namespace(k8s_cluster: Any) -> Iterator[str]:
    """A namespace opted in to runs, removed (and waited for) after the test."""
    core = core_api(k8s_cluster)
    name = f"mq-runs-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=OPT_IN)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
        wait_namespace_gone(core, name)


@pytest.fixture(scope="session")
def chaos_agents(k8s_cluster: Any, k8s_images: Images) -> Iterator[str]:
    """The chart installed for real (agent DaemonSet on the node); yields its namespace."""
    helm = find_helm()
    if helm is None:
        pytest.skip("no helm binary: run cluster/build-binaries.sh")
    namespace = "mapquake-system"
    repository, tag = k8s_images.mapquake.rsplit(":", 1)
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    install = [
        str(helm), "upgrade", "--install", "mapquake", str(CHART_DIR), "-n", namespace, "--create-namespace",
        "--set", "image.registry=", "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",
        "--set", "apiServerOverride.host=198.19.0.1", "--wait", "--timeout", "180s",
    ]  # fmt: skip
    subprocess.run(install, env=env, check=True, capture_output=True, text=True, timeout=240)
    # helm's --wait does not wait for a DaemonSet's pods here: watch for the agent to be Ready.
    kube = Kube.connect(ClusterAccess(kubeconfig=k8s_cluster.kubeconfig))
    kube.wait_for(
        "Pod", namespace, AGENT_SELECTOR, lambda pods: len(pods) == 1 and is_ready(pods[0]), timeout_s=120,
        what="the chaos agent pod",
    )  # fmt: skip
    try:
        yield namespace
    finally:
        subprocess.run([str(helm), "uninstall", "mapquake", "-n", namespace, "--wait"], env=env, timeout=180)
