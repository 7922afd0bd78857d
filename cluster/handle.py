"""A running test cluster as one object, for test fixtures and scripts.

handle = ClusterHandle(Path("/var/lib/mapquake-cluster-test"))
handle.up()                      # or reuse; loads the pause image when cluster.images is there
handle.api()                     # kubernetes.client.ApiClient (admin)
handle.load_images([tar, ...])   # docker-save tarballs into the node's containerd
handle.down()
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from kubernetes.client import ApiClient

from cluster import lifecycle, lock, node, teardown, users
from cluster.layout import Paths
from cluster.state import ClusterState


class ClusterHandle:
    """``shared``: this process is one of possibly several test sessions using the cluster; `up`
    lists it as a user and `release` takes the cluster down only when the last user leaves."""

    def __init__(self, state_dir: Path, *, shared: bool = False) -> None:
        self.paths = Paths(state_dir)
        self.shared = shared
        self.info: lifecycle.ClusterInfo | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.paths.admin_kubeconfig

    def up(self, *, replace_broken: bool = True) -> lifecycle.ClusterInfo:
        """Start the cluster (a healthy one in the same state dir is reused, a broken one replaced)."""
        self.info = lifecycle.up(self.paths, replace_broken=replace_broken, session_user=self.shared)
        self.load_images([pause_image()] if has_image_builder() else [])
        return self.info

    def down(self) -> list[str]:
        """Take the cluster down now, whoever else uses it."""
        return teardown.down(self.paths)

    def release(self) -> list[str]:
        """Leave the cluster; takes it down if this was its last session and a session started it."""
        with lock.exclusive():
            if users.unregister(ClusterState.load(self.paths.state_file)):
                return teardown.down_unlocked(self.paths)
        return []

    def started_by_session(self) -> bool:
        """True if a test session (not `python -m cluster up`) started the running cluster."""
        return bool(ClusterState.load(self.paths.state_file).info.get(users.STARTED_BY_SESSION))

    def other_users(self) -> list[int]:
        """Pids of other live test sessions using this cluster."""
        return users.other_users(ClusterState.load(self.paths.state_file))

    def leftovers(self) -> list[str]:
        return teardown.leftovers(self.paths)

    def api(self) -> ApiClient:
        """A new admin ApiClient (close it, or use it as a context manager)."""
        return lifecycle.api_client(self.kubeconfig)

    def load_images(self, tarballs: Iterable[Path]) -> None:
        node.load_images(self.paths, [Path(t) for t in tarballs])


def has_image_builder() -> bool:
    return importlib.util.find_spec("cluster.images") is not None


def pause_image() -> Path:
    """The pause image's tarball (containerd's sandbox image), built by cluster.images if needed."""
    images = importlib.import_module("cluster.images")
    built = images.build(["pause"])
    return Path(built["pause"].tar)
