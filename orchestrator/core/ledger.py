"""The run ledger: a write-ahead record of every resource a run creates.

A run owns a short id (8 lowercase hex digits). Before the controller creates a
network namespace, bridge, veth, process or directory, it appends one JSON line
to ``<state root>/runs/<run_id>/ledger.jsonl`` and fsyncs it; when the resource
is gone again it appends a release line. If the controller dies (SIGKILL, OOM,
power cut of the terminal) the ledger says exactly what to remove, and
``mapquake cleanup`` (``orchestrator.backends.local.network.cleanup_run``) removes that and
nothing else.

State root: ``$MAPQUAKE_STATE_DIR``, else ``/run/mapquake`` (tmpfs: it vanishes
on reboot together with the namespaces it describes), else ``/tmp/mapquake``
when ``/run`` is not writable.

Processes are recorded twice: an intent line before the fork (the pid is not
known yet), then the pid with its start time from ``/proc/<pid>/stat`` (field
22, clock ticks since boot) right after. The start time guards against pid
reuse: a pid whose start time no longer matches is someone else's process.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError

log = logging.getLogger(__name__)

STATE_DIR_ENV = "MAPQUAKE_STATE_DIR"
DEFAULT_STATE_ROOTS = (Path("/run/mapquake"), Path("/tmp/mapquake"))
LEDGER_FILE = "ledger.jsonl"
RUN_ID_RE = re.compile(r"^[0-9a-f]{8}$")
# Environment variable every process a run starts carries (value: the run id), so
# cleanup can recognise a child whose pid the controller had no time to record.
RUN_ID_ENV = "MAPQUAKE_RUN_ID"


class ResourceKind(enum.StrEnum):
    """What a ledger line describes."""

    NETNS = "netns"
    BRIDGE = "bridge"
    VETH = "veth"
    PROCESS = "process"
    DIR = "dir"


class Op(enum.StrEnum):
    """What happened to a resource: opening the run, about to create, started (pid known), gone."""

    OPEN = "open"
    CREATE = "create"
    STARTED = "started"
    RELEASE = "release"


def new_run_id() -> str:
    """A fresh random run id: 8 lowercase hex digits."""
    return secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is 8 lowercase hex digits, else raise."""
    if not RUN_ID_RE.match(run_id):
        raise InfrastructureError(
            f"run id {run_id!r} is not 8 lowercase hex digits",
            hint="run ids look like 3f9a0c1e; `mapquake cleanup --list` shows the known ones",
        )
    return run_id


def state_root() -> Path:
    """The directory holding all run state; created if missing.

    ``$MAPQUAKE_STATE_DIR`` wins; otherwise the first writable of /run/mapquake, /tmp/mapquake.
    """
    override = os.environ.get(STATE_DIR_ENV)
    candidates = (Path(override),) if override else DEFAULT_STATE_ROOTS
    for root in candidates:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK | os.X_OK):
            return root
    raise InfrastructureError(
        f"no writable state directory among {', '.join(map(str, candidates))}",
        hint=f"set {STATE_DIR_ENV} to a writable directory",
    )


def runs_dir(root: Path | None = None) -> Path:
    return (root or state_root()) / "runs"


def parse_stat(stat: str) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) from the text of /proc/<pid>/stat."""
    # Field 2 (comm) is parenthesised and may hold spaces or ')': split after the last ')'.
    rest = stat[stat.rfind(")") + 2 :].split()
    try:
        return rest[0], int(rest[22 - 3])  # fields 3 (state) and 22 (starttime)
    except (IndexError, ValueError):
        return None


def _read_stat(pid: int) -> tuple[str, int] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), None if gone."""
    stat = _read_stat(pid)
    return stat[1] if stat else None


def pid_matches(pid: int | None, start_time: int | None) -> bool:
    """True if ``pid`` exists and is still the process that had ``start_time`` (zombies included)."""
    if pid is None or start_time is None:
        return False
    return process_start_time(pid) == start_time


def pid_running(pid: int | None, start_time: int | None) -> bool:
    """Like ``pid_matches``, but a zombie (exited, not yet reaped) counts as not running."""
    if pid is None or start_time is None:
        return False
    stat = _read_stat(pid)
    return stat is not None and stat[1] == start_time and stat[0] not in ("Z", "X")


@dataclass(frozen=True)
class Resource:
    """One thing a run created (or was about to create).

    ``name`` is the kernel name (netns, link), a path (dir) or a label (process).
    ``pid``/``start_time`` are set for a process once it started. ``netns`` is the
    namespace a process or veth peer lives in, if any.
    """

    kind: ResourceKind
    name: str
    pid: int | None = None
    start_time: int | None = None
    netns: str | None = None
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind.value, self.name)


@dataclass(frozen=True)
class RunInfo:
    """A run known to the state directory, as `mapquake cleanup` lists it."""

    run_id: str
    path: Path
    controller_pid: int | None
    controller_alive: bool
    created_at: float | None
    open_resources: int


class Ledger:
    """The append-only ledger of one run. Create with ``Ledger.create``, reopen with ``Ledger.load``."""

    def __init__(self, run_id: str, path: Path, entries: list[dict[str, Any]]) -> None:
        self.run_id = run_id
        self.dir = path
        self.file = path / LEDGER_FILE
        self._entries = entries

    # --- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, run_id: str | None = None, *, root: Path | None = None) -> Ledger:
        """Create the run directory and ledger, and write its opening line (this pid as controller).

        Side effects: creates ``<root>/runs/<run_id>/ledger.jsonl``. Raises if the run exists.
        """
        run_id = check_run_id(run_id or new_run_id())
        path = runs_dir(root) / run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            raise InfrastructureError(
                f"run {run_id} already has state in {path}",
                hint="pick another run id, or run `mapquake cleanup` if that run is dead",
            ) from None
        ledger = cls(run_id, path, [])
        pid = os.getpid()
        ledger._append({"op": Op.OPEN, "run_id": run_id, "start_time": process_start_time(pid)})
        _fsync_dir(path.parent)
        log.info("run %s: ledger at %s", run_id, ledger.file, extra={"run_id": run_id})
        return ledger

    @classmethod
    def load(cls, run_id: str, *, root: Path | None = None) -> Ledger:
        """Read an existing run's ledger (tolerates a torn last line from a crash mid-write)."""
        path = runs_dir(root) / check_run_id(run_id)
        try:
            text = (path / LEDGER_FILE).read_text()
        except FileNotFoundError:
            raise InfrastructureError(
                f"no ledger for run {run_id} under {path.parent}",
                hint=f"`mapquake cleanup --list` shows known runs; is {STATE_DIR_ENV} the same as the run's?",
            ) from None
        entries: list[dict[str, Any]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("run %s: ignoring unreadable ledger line %d", run_id, lineno)
        return cls(run_id, path, entries)

    # --- writing -----------------------------------------------------------------

    def record(
        self,
        kind: ResourceKind,
        name: str,
        *,
        netns: str | None = None,
        detail: dict[str, str] | None = None,
    ) -> Resource:
        """Write-ahead: note that ``kind``/``name`` is about to be created. Call BEFORE creating it.

        Side effect: appends and fsyncs one line.
        """
        entry: dict[str, Any] = {"op": Op.CREATE, "kind": kind, "name": name}
        if netns:
            entry["netns"] = netns
        if detail:
            entry["detail"] = detail
        self._append(entry)
        return Resource(kind=kind, name=name, netns=netns, detail=dict(detail or {}))

    def started(self, name: str, pid: int) -> Resource:
        """Record the pid (and its start time) of a process recorded with ``record(PROCESS, name)``.

        Side effect: appends and fsyncs one line. Call right after the fork.
        """
        start_time = process_start_time(pid)
        self._append(
            {"op": Op.STARTED, "kind": ResourceKind.PROCESS, "name": name, "pid": pid, "start_time": start_time}
        )
        return Resource(kind=ResourceKind.PROCESS, name=name, pid=pid, start_time=start_time)

    def released(self, kind: ResourceKind, name: str) -> None:
        """Record that ``kind``/``name`` no longer exists. Side effect: appends and fsyncs one line."""
        self._append({"op": Op.RELEASE, "kind": kind, "name": name})

    def remove(self) -> None:
        """Delete this run's state directory (ledger included). Call when nothing is left open."""
        shutil.rmtree(self.dir, ignore_errors=True)
        log.info("run %s: state removed", self.run_id, extra={"run_id": self.run_id})

    def _append(self, entry: dict[str, Any]) -> None:
        entry = {"t": round(time.time(), 3), "controller_pid": os.getpid(), **entry}
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        try:
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:
            if entry["op"] == Op.RELEASE:  # the run's state is already gone (cleaned up): nothing to close
                log.debug("run %s: ledger gone, not recording release of %s", self.run_id, entry.get("name"))
                return
            raise InfrastructureError(
                f"run {self.run_id}: ledger {self.file} is gone; refusing to create {entry.get('name')} unrecorded",
                hint="was `mapquake cleanup --force` run against this live run?",
            ) from None
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._entries.append(json.loads(line))

    # --- reading -----------------------------------------------------------------

    @property
    def controller_pid(self) -> int | None:
        head = self._opening()
        return int(head["controller_pid"]) if head else None

    @property
    def controller_start_time(self) -> int | None:
        head = self._opening()
        value = head.get("start_time") if head else None
        return int(value) if value is not None else None

    @property
    def created_at(self) -> float | None:
        head = self._opening()
        return float(head["t"]) if head else None

    def _opening(self) -> dict[str, Any] | None:
        return next((e for e in self._entries if e.get("op") == Op.OPEN), None)

    def is_controller_alive(self) -> bool:
        """True if the process that opened this run still runs (same pid AND same start time, not a zombie).

        Without a recorded start time (no /proc at open) it errs on the safe side: alive if the pid exists.
        """
        pid = self.controller_pid
        if pid is not None and self.controller_start_time is None:
            return process_start_time(pid) is not None
        return pid_running(pid, self.controller_start_time)

    def open_resources(self) -> list[Resource]:
        """Resources created and not yet released, in creation order (processes carry their pid)."""
        live: dict[tuple[str, str], Resource] = {}
        for entry in self._entries:
            op, kind, name = entry.get("op"), entry.get("kind"), entry.get("name")
            if op == Op.OPEN or kind is None or name is None:
                continue
            key = (kind, name)
            if op == Op.CREATE:
                live.pop(key, None)  # re-created after release: newest wins, at the end of the order
                live[key] = Resource(
                    kind=ResourceKind(kind), name=name, netns=entry.get("netns"), detail=entry.get("detail") or {}
                )
            elif op == Op.STARTED and key in live:
                old = live[key]
                live[key] = Resource(
                    kind=old.kind,
                    name=old.name,
                    pid=entry.get("pid"),
                    start_time=entry.get("start_time"),
                    netns=old.netns,
                    detail=old.detail,
                )
            elif op == Op.RELEASE:
                live.pop(key, None)
        return list(live.values())

    def info(self) -> RunInfo:
        return RunInfo(
            run_id=self.run_id,
            path=self.dir,
            controller_pid=self.controller_pid,
            controller_alive=self.is_controller_alive(),
            created_at=self.created_at,
            open_resources=len(self.open_resources()),
        )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run with a ledger under the state root, oldest first. Reads only."""
    base = runs_dir(root)
    runs = []
    for path in _iter_run_dirs(base):
        try:
            runs.append(Ledger.load(path.name, root=root).info())
        except InfrastructureError as exc:  # a run dir without a ledger (crash before the first write)
            log.warning("skipping %s: %s", path, exc.message)
    return sorted(runs, key=lambda r: (r.created_at or 0.0, r.run_id))


def _iter_run_dirs(base: Path) -> Iterator[Path]:
    if not base.is_dir():
        return
    for path in base.iterdir():
        if path.is_dir() and RUN_ID_RE.match(path.name):
            yield path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
