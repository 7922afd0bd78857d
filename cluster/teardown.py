"""Take the cluster down: idempotent, works after a partial start or a crash, from any process.

Everything is found through the state file or through names only this cluster uses: the kubelet's
kubepods cgroups, the containerd socket path in a shim's command line, the bridge mqk0, iptables
chains named KUBE-*. Order matters: the kubelet first (it would restart pods), then the pods and
their shims, containerd and the mount-namespace holder (their mounts vanish with the namespace),
then the control plane, and last the interfaces, chains, cgroups and directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cluster import lock, mountns, procs
from cluster.layout import BRIDGE, CONTAINERD_RUN_DIR, Paths
from cluster.state import ClusterState

CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
# Node daemons first, then the control plane in reverse start order.
STOP_ORDER = (
    "kubelet",
    "containerd",
    mountns.HOLDER,
    "coredns",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
)


def down(paths: Paths) -> list[str]:
    """Remove everything of the cluster in ``paths``; returns what was still there (for the log)."""
    with lock.exclusive():
        return down_unlocked(paths)


def down_unlocked(paths: Paths) -> list[str]:
    """``down`` for a caller that already holds the machine's cluster lock (``up`` cleaning after itself).

    Only what the state file records is touched: the pods, shims, cgroups and KUBE-* chains only if
    this cluster's containerd or kubelet was (about to be) started, the bridge only if it made it.
    Without a state file there is nothing to do.
    """
    state = ClusterState.load(paths.state_file)
    removed: list[str] = []
    ns_id = state.info.get("mntns")
    had_node = state.find("process", "containerd") is not None or state.find("process", "kubelet") is not None
    for name in STOP_ORDER:
        entry = state.find("process", name)
        if name == "containerd" and had_node:  # before containerd: the pods and their shims
            removed += kill_pods()
            removed += kill_shims(paths)
        if entry is not None and procs.running(entry):
            procs.stop(entry)
            removed.append(f"process {name} ({entry.pid})")
        if name == mountns.HOLDER and isinstance(ns_id, str):
            removed += kill_namespace_members(ns_id)
    # Processes recorded under other names (none today) go too.
    for entry in state.of_kind("process"):
        if entry.name not in STOP_ORDER and procs.running(entry):
            procs.stop(entry)
            removed.append(f"process {entry.name} ({entry.pid})")
    if state.find("link", BRIDGE) is not None:
        removed += remove_links()
    if had_node:
        removed += remove_kube_chains()
        removed += remove_cgroups()
    removed += remove_dirs(state, paths)
    return removed


def kill_pods() -> list[str]:
    """SIGKILL every process in the kubelet's kubepods cgroups (containers and pause processes)."""
    killed = []
    for procs_file in _kubepods_files("cgroup.procs"):
        with contextlib.suppress(OSError):
            for line in procs_file.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line), signal.SIGKILL)
                    killed.append(int(line))
    return [f"pod process {pid}" for pid in sorted(set(killed))]


def kill_shims(paths: Paths) -> list[str]:
    """SIGKILL the containerd shims serving our containerd (found by its socket in their argv)."""
    killed = []
    for pid in _shim_pids(paths):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"containerd shim {pid}")
    return killed


def _shim_pids(paths: Paths) -> list[int]:
    socket = str(paths.containerd_socket)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and argv[0].endswith("containerd-shim-runc-v2") and socket in argv:
            pids.append(int(entry))
    return pids


def kill_namespace_members(ns_id: str, timeout_s: float = 10.0) -> list[str]:
    """SIGKILL anything still in the node's mount namespace and wait until it is empty (its mounts gone)."""
    killed = []
    deadline = time.monotonic() + timeout_s
    while (pids := [p for p in mountns.members(ns_id) if p != os.getpid()]) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(f"namespace member {pid}")
            procs.reap(pid)
        time.sleep(0.05)
    return sorted(set(killed))


def remove_links() -> list[str]:
    """The veths on mqk0 (normally gone with their pods' netns) and the bridge."""
    removed = []
    res = subprocess.run(["ip", "-j", "link", "show", "master", BRIDGE], capture_output=True, text=True)
    if res.returncode == 0 and res.stdout.strip():
        for link in json.loads(res.stdout):
            subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True)
            removed.append(f"link {link['ifname']}")
    if subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True).returncode == 0:
        removed.append(f"link {BRIDGE}")
    return removed


def remove_kube_chains() -> list[str]:
    """iptables chains named KUBE-* (and the rules jumping to them); no other chain is touched."""
    removed = []
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in IPTABLES_TABLES:
            res = subprocess.run([tool, "-w", "5", "-t", table, "-S"], capture_output=True, text=True)
            if res.returncode != 0:
                continue
            rules = [shlex.split(line) for line in res.stdout.splitlines()]
            chains = [r[1] for r in rules if len(r) >= 2 and r[0] == "-N" and r[1].startswith("KUBE-")]
            if not chains:
                continue
            for rule in rules:
                if rule[:1] == ["-A"] and any(c in rule for c in chains) and not rule[1].startswith("KUBE-"):
                    subprocess.run([tool, "-w", "5", "-t", table, "-D", *rule[1:]], capture_output=True)
            for chain in chains:
                subprocess.run([tool, "-w", "5", "-t", table, "-F", chain], capture_output=True)
            for chain in chains:
                if subprocess.run([tool, "-w", "5", "-t", table, "-X", chain], capture_output=True).returncode == 0:
                    removed.append(f"{tool} {table} chain {chain}")
    return removed


def remove_cgroups(timeout_s: float = 10.0) -> list[str]:
    """rmdir the kubepods trees in every cgroup hierarchy, deepest first (they must be empty)."""
    removed = []
    for top in _kubepods_roots():
        dirs = sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
        deadline = time.monotonic() + timeout_s
        for directory in dirs:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # Still busy: a killed process not yet gone. Kill again and retry until the deadline.
                    kill_pods()
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        if not top.exists():
            removed.append(f"cgroup {top}")
    return removed


def remove_dirs(state: ClusterState, paths: Paths) -> list[str]:
    """The recorded directories, newest first (the state dir itself, recorded first, goes last)."""
    removed: list[str] = []
    if not state.entries:
        return removed
    _unmount_under([paths.root, CONTAINERD_RUN_DIR])
    for entry in reversed(state.of_kind("dir")):
        path = Path(entry.name)
        if entry.detail.get("only_if_empty"):
            with contextlib.suppress(OSError):
                path.rmdir()
                removed.append(f"dir {path}")
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"dir {path}")
    return removed


def _unmount_under(roots: list[Path]) -> None:
    """Lazy-unmount anything mounted below ``roots`` in our namespace (only after a failed namespace set-up)."""
    targets = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
                targets.append(point)
    for point in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _kubepods_roots() -> list[Path]:
    """kubepods in each cgroup v1 hierarchy (/sys/fs/cgroup/<controller>/kubepods) or, on a cgroup v2
    host, /sys/fs/cgroup/kubepods."""
    if not CGROUP_ROOT.is_dir():
        return []
    hierarchies = [CGROUP_ROOT, *sorted(h for h in CGROUP_ROOT.iterdir() if h.is_dir() and h.name != KUBEPODS)]
    return [h / KUBEPODS for h in hierarchies if (h / KUBEPODS).is_dir()]


def _kubepods_files(name: str) -> list[Path]:
    files = []
    for top in _kubepods_roots():
        for directory, _, filenames in os.walk(top):
            if name in filenames:
                files.append(Path(directory) / name)
    return files


def leftovers(paths: Paths) -> list[str]:
    """What of the cluster still exists on the host (empty after a complete `down`)."""
    found = []
    state = ClusterState.load(paths.state_file)
    found += [f"process {e.name} ({e.pid})" for e in state.of_kind("process") if procs.running(e)]
    if subprocess.run(["ip", "link", "show", "dev", BRIDGE], capture_output=True).returncode == 0:
        found.append(f"link {BRIDGE}")
    found += [f"cgroup {p}" for p in _kubepods_roots()]
    found += [f"{c}" for c in _kube_chains()]
    found += [f"dir {p}" for p in (paths.root, CONTAINERD_RUN_DIR, paths.etcd_data) if p.exists()]
    found += [f"containerd shim {pid}" for pid in _shim_pids(paths)]
    return found


def _kube_chains() -> list[str]:
    chains = []
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in IPTABLES_TABLES:
            res = subprocess.run([tool, "-w", "5", "-t", table, "-S"], capture_output=True, text=True)
            chains += [
                f"{tool} {table} chain {line.split()[1]}"
                for line in res.stdout.splitlines()
                if line.startswith("-N KUBE-")
            ]
    return chains
