"""A pod's processes on this host, read from /proc and the cgroup v1 freezer: pure file reads and writes.

The Kubernetes agent runs with hostPID, so every container's processes are in its /proc. A
container's processes are those whose ``/proc/<pid>/cgroup`` names a cgroup whose last part
holds the container id (cgroupfs driver: ``/kubepods/besteffort/pod<uid>/<id>``; systemd
driver: ``…/cri-containerd-<id>.scope``). Its main process is the one whose parent is not
in the container (runc's init; its parent is the containerd shim). The pod's cgroup is the
parent of a container's cgroup (named ``pod<uid>`` or ``…-pod<uid>.slice``); freezing it in
the v1 freezer hierarchy stops every container of the pod at once, sandbox included.

Why not ``crictl inspect``: crictl is not packaged in Debian bookworm (the agent image is
Debian), and the CRI socket need not be mounted into the agent's pod; /proc is there with
hostPID. Chaos Mesh's daemon asks the CRI; this needs nothing but the kernel's files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import parse_stat

PROC = Path("/proc")
FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
FREEZE_TIMEOUT_S = 5.0
FREEZE_POLL_S = 0.01


class PodProcessError(InfrastructureError):
    """A container's process or cgroup could not be found or changed."""


def bare_id(container_id: str) -> str:
    """``containerd://abc…`` → ``abc…`` (the runtime's own id, what cgroup paths carry)."""
    bare = container_id.split("://", 1)[-1]
    if not bare or not all(c in "0123456789abcdef" for c in bare):
        raise PodProcessError(f"container id {container_id!r} is not <runtime>://<hex id>")
    return bare


def parse_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` → {controller: path}; v1 lines ``6:freezer:/x``, ``9:name=systemd:/x``;
    the v2 line ``0::/x`` is keyed ``""``. Co-mounted controllers (``2:cpu,cpuacct:/x``) give one key each."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller] = parts[2]
    return out


def _leaf_is(path: str, bare: str) -> bool:
    leaf = path.rstrip("/").rsplit("/", 1)[-1]
    return leaf == bare or leaf.endswith(f"-{bare}.scope")


@dataclass(frozen=True)
class ContainerProcess:
    """A container's main process: its host pid, its start time (clock ticks, from stat) and its cgroups."""

    pid: int
    start_time: int
    cgroups: dict[str, str]


def container_process(container_id: str, proc: Path = PROC) -> ContainerProcess:
    """The main process of ``container_id`` on this host, found through ``<proc>/*/cgroup``.

    Raises PodProcessError if no running process is in that container's cgroup.
    """
    bare = bare_id(container_id)
    found = _main_process(proc, lambda cgroups: any(_leaf_is(p, bare) for p in cgroups.values()))
    if found is None:
        raise PodProcessError(f"no running process of container {bare[:12]} in {proc}/*/cgroup (is hostPID set?)")
    return found


def sandbox_process(app: ContainerProcess, app_ids: list[str], proc: Path = PROC) -> ContainerProcess | None:
    """The pod's sandbox (pause) process: in a sibling cgroup of ``app``'s that is no app container's.

    It holds the pod's network namespace for the pod's whole life, so a namespace entered
    through it outlives a restarted (or killed) app container. None if there is none (then use ``app``).
    """
    key = "freezer" if "freezer" in app.cgroups else next(iter(app.cgroups), None)
    if key is None:
        return None
    pod_dir = app.cgroups[key].rstrip("/").rsplit("/", 1)[0]
    bares = [bare_id(c) for c in app_ids]

    def is_sandbox(cgroups: dict[str, str]) -> bool:
        path = cgroups.get(key, "").rstrip("/")
        parent, _, _ = path.rpartition("/")
        return parent == pod_dir and not any(_leaf_is(path, b) for b in bares)

    return _main_process(proc, is_sandbox)


def _main_process(proc: Path, member: Callable[[dict[str, str]], bool]) -> ContainerProcess | None:
    """Among the processes whose cgroups satisfy ``member``, the oldest one whose parent is not a member."""
    members: dict[int, tuple[int, int, dict[str, str]]] = {}  # pid → (ppid, start time, cgroups)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = parse_cgroup((entry / "cgroup").read_text())
            if not member(cgroups):
                continue
            stat_text = (entry / "stat").read_text()
        except OSError:  # the process ended while we read
            continue
        stat = parse_stat(stat_text)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        ppid = int(stat_text.rsplit(")", 1)[1].split()[1])
        members[int(entry.name)] = (ppid, stat[1], cgroups)
    roots = [pid for pid, (ppid, _, _) in members.items() if ppid not in members]
    if not roots:
        return None
    pid = min(roots, key=lambda p: (members[p][1], p))  # the oldest: the container's init
    return ContainerProcess(pid=pid, start_time=members[pid][1], cgroups=members[pid][2])


def pod_freezer_dir(process: ContainerProcess, uid: str, root: Path = FREEZER_ROOT) -> Path:
    """The pod's cgroup in the v1 freezer hierarchy: the parent of the container's freezer cgroup.

    It must be named for pod ``uid`` (``pod<uid>`` or ``…pod<uid with _>.slice``), so a container
    outside a pod cgroup never makes us freeze ``kubepods`` itself. Raises PodProcessError.
    """
    path = process.cgroups.get("freezer")
    if path is None:
        raise PodProcessError(f"pid {process.pid} has no freezer cgroup (is cgroup v1's freezer mounted?)")
    parent = path.rstrip("/").rsplit("/", 1)[0]
    leaf = parent.rsplit("/", 1)[-1]
    if leaf not in (f"pod{uid}", f"pod{uid.replace('-', '_')}") and not leaf.endswith(
        f"-pod{uid.replace('-', '_')}.slice"
    ):
        raise PodProcessError(f"pid {process.pid}: its cgroup's parent {parent!r} is not the cgroup of pod {uid}")
    out = root / parent.lstrip("/")
    if not (out / "freezer.state").exists():
        raise PodProcessError(f"{out}/freezer.state does not exist (is {root} the freezer hierarchy?)")
    return out


def set_freezer(cgroup: Path, state: str, *, timeout_s: float = FREEZE_TIMEOUT_S) -> None:
    """Write FROZEN or THAWED to ``cgroup``/freezer.state and wait until the kernel reports it."""
    target = cgroup / "freezer.state"
    try:
        target.write_text(state)
        deadline = time.monotonic() + timeout_s
        while target.read_text().strip() != state:  # FREEZING until every task stopped
            if time.monotonic() > deadline:
                raise PodProcessError(f"{target} did not reach {state} within {timeout_s:g} s")
            time.sleep(FREEZE_POLL_S)
    except OSError as err:
        raise PodProcessError(f"cannot set {target} to {state}: {err}") from None


def frozen(cgroup: Path) -> bool:
    """Whether ``cgroup`` is frozen (or freezing) now; False if it is gone."""
    try:
        return (cgroup / "freezer.state").read_text().strip() != "THAWED"
    except OSError:
        return False


def still_running(process: ContainerProcess, proc: Path = PROC) -> bool:
    """Whether ``process.pid`` is still that process (same start time, not a zombie)."""
    try:
        stat = parse_stat((proc / str(process.pid) / "stat").read_text())
    except OSError:
        return False
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == process.start_time
