"""The cluster's state file: everything `up` creates, written down *before* it is created.

`down` (possibly another process, after a crash) reads it to know what to remove. Entries are
kept in creation order; a process entry gets its pid and start time right after the fork, so a
pid is only ever signalled while it still belongs to the process we started.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError

STATE_VERSION = 1


@dataclass
class Entry:
    """One created thing. ``kind``: process, link, dir, file, tmpfs-dir (a host dir we made to mount on)."""

    kind: str
    name: str
    pid: int | None = None
    start_time: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClusterState:
    path: Path
    entries: list[Entry] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        """The state at ``path``; an empty state if there is none (nothing to clean up)."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise InfrastructureError(
                f"cluster state file {path} is unreadable: {exc}",
                hint="remove it by hand after checking nothing of the cluster runs (ip link show mqk0, ps)",
            ) from exc
        if raw.get("version") != STATE_VERSION:
            raise InfrastructureError(
                f"cluster state file {path} has version {raw.get('version')}, not {STATE_VERSION}"
            )
        entries = [Entry(**e) for e in raw["entries"]]
        return cls(path, entries, dict(raw.get("info", {})))

    def save(self) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a state file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        doc = {"version": STATE_VERSION, "info": self.info, "entries": [asdict(e) for e in self.entries]}
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, self.path)

    def record(self, kind: str, name: str, **detail: Any) -> Entry:
        """Note (and persist) that ``name`` is about to be created; a second record of it is a no-op."""
        existing = self.find(kind, name)
        if existing is not None:
            return existing
        entry = Entry(kind, name, detail=detail)
        self.entries.append(entry)
        self.save()
        return entry

    def started(self, name: str, pid: int, start_time: int | None) -> None:
        entry = self.find("process", name)
        assert entry is not None, f"process {name} was not recorded before it started"
        entry.pid, entry.start_time = pid, start_time
        self.save()

    def find(self, kind: str, name: str) -> Entry | None:
        return next((e for e in self.entries if e.kind == kind and e.name == name), None)

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]
