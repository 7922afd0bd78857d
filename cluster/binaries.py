"""Find the cluster's binaries: the cached build of cluster/build-binaries.sh, or MAPQUAKE_CLUSTER_BIN."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from orchestrator.core.errors import InfrastructureError

BUILD_SCRIPT = Path(__file__).with_name("build-binaries.sh")
NEEDED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "coredns")
# Debian packages (make deps: containerd runc containernetworking-plugins).
SYSTEM = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables", "unshare", "nsenter", "mount")


def binaries_dir() -> Path:
    """The directory holding NEEDED; builds them (~20 min cold, cached afterwards) when missing."""
    override = os.environ.get("MAPQUAKE_CLUSTER_BIN")
    if override:
        directory = Path(override)
    else:
        try:
            out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InfrastructureError(
                f"building the cluster binaries failed: {exc}", hint=f"run {BUILD_SCRIPT}"
            ) from exc
        directory = Path(out.stdout.strip().splitlines()[-1])
    missing = [b for b in NEEDED if not os.access(directory / b, os.X_OK)]
    if missing:
        raise InfrastructureError(
            f"{directory} lacks {', '.join(missing)}", hint=f"run {BUILD_SCRIPT} (or unset MAPQUAKE_CLUSTER_BIN)"
        )
    return directory


def check_system_tools() -> None:
    """Fail with a fix if a Debian-packaged tool the node needs is not installed."""
    missing = [t for t in SYSTEM if shutil.which(t) is None]
    if missing or not Path("/usr/lib/cni/bridge").exists():
        raise InfrastructureError(
            f"missing system tools: {', '.join(missing) or '/usr/lib/cni/bridge'}",
            hint="make deps (installs containerd runc containernetworking-plugins)",
        )
