"""The `k8s_cluster` fixture: one real single-node cluster (cluster/ package) for the whole session.

It is started once (about 5 s once the binaries are built; a cold build takes ~20 min), torn down
at the end of the session even when tests fail, and the tear-down is checked: anything left on
the host fails the session. Tests marked `cluster_down` take the cluster down and up again; they
are moved after all other tests of the session.
State dir: $MAPQUAKE_K8S_STATE_DIR or /var/lib/mapquake-cluster-test. A cluster already up in that
state dir is reused and then left running.
Needs root; without it every test using the fixture is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.handle import ClusterHandle
from cluster.mountns import host_sysctls

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
    handle = ClusterHandle(STATE_DIR)
    try:
        info = handle.up()
    except BaseException:
        handle.down()  # up cleans after itself; this is for an interrupt between the steps
        raise
    try:
        yield handle
    finally:
        if not info.reused:
            handle.down()
            left = handle.leftovers()
            if left:
                pytest.fail(f"cluster tear-down left: {left}")
