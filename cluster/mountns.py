"""The node's private mount namespace, shared by containerd, its shims and the kubelet.

Why: the kubelet rewrites host-wide sysctls at start, and containerd 1.6 and the kubelet write
into fixed host paths. In this namespace (propagation private, so no mount leaks back to the
host) each such /proc/sys file whose host value differs from the kubelet's wish is covered by a
bind-mounted plain file already holding that value, and each fixed path gets a tmpfs. A holder
process (`sleep`) keeps the namespace alive; daemons join it with nsenter. When every process in
it has ended, the namespace and all its mounts disappear by themselves.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from cluster import procs
from cluster.layout import KUBELET_SYSCTLS, PRIVATE_TMPFS_DIRS, Paths
from cluster.readiness import wait_until
from cluster.state import ClusterState

HOLDER = "mntns-holder"


def host_sysctls() -> dict[str, str]:
    """The current host values of the sysctls the kubelet would change."""
    return {name: Path("/proc/sys", name).read_text().strip() for name in KUBELET_SYSCTLS}


def start_holder(state: ClusterState, paths: Paths) -> int:
    """Create the namespace (held by a recorded `sleep` process); returns the holder's pid."""
    lines = ["set -e"]
    for directory in PRIVATE_TMPFS_DIRS:
        if not directory.exists():
            # An empty mount point is all the host ever sees; `down` removes it again.
            state.record("dir", str(directory), only_if_empty=True)
            directory.mkdir(parents=True)
        lines.append(f"mount -t tmpfs -o mode=0755,size=64m mapquake-cluster {shlex.quote(str(directory))}")
    paths.sysctl_files.mkdir(parents=True, exist_ok=True)
    for name, wanted in KUBELET_SYSCTLS.items():
        if Path("/proc/sys", name).read_text().strip() == wanted:
            continue
        fake = paths.sysctl_files / name.replace("/", ".")
        fake.write_text(wanted + "\n")
        lines.append(f"mount --bind {shlex.quote(str(fake))} /proc/sys/{name}")
    paths.mntns_ready.unlink(missing_ok=True)
    lines += [f"touch {shlex.quote(str(paths.mntns_ready))}", "exec sleep infinity"]
    script = paths.etc / "mntns.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("\n".join(lines) + "\n")
    pid = procs.start_daemon(
        state, HOLDER, ["unshare", "--mount", "--propagation", "private", "sh", str(script)], paths.log(HOLDER)
    )
    wait_until(
        "the private mount namespace", paths.mntns_ready.exists, 10, died=lambda: procs.exited_error(state, HOLDER)
    )
    state.info["mntns"] = namespace_id(pid)
    state.save()
    return pid


def namespace_id(pid: int) -> str | None:
    """The mount namespace of ``pid`` as "mnt:[inode]", None if the process is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def enter(holder_pid: int, argv: list[str]) -> list[str]:
    """``argv`` wrapped to run inside the holder's mount namespace (nsenter execs it: same pid)."""
    return ["nsenter", f"--mount=/proc/{holder_pid}/ns/mnt", "--", *argv]


def members(ns_id: str) -> list[int]:
    """Pids of every process in mount namespace ``ns_id``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") == ns_id:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids
