"""The run journal: what happened when, on one monotonic clock, for the checks and the report.

Every event carries the monotonic time (for ordering and for lateness against
the schedule) and the wall time (for Prometheus queries, which speak Unix time).
Phases, fault applications and heals, heap samples and component deaths all go
here; the comparator reads windows and samples from it, the report prints it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str
    """phase-start, phase-end, fault-applied, fault-healed, sample, crash, note, interrupted."""
    name: str
    mono: float
    wall: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseWindow:
    name: str
    start_wall: float
    end_wall: float
    start_mono: float
    end_mono: float


@dataclass(frozen=True)
class HeapSample:
    """The live heap of one replica right after runtime.GC(), taken at a phase boundary."""

    target: str
    replica: int
    point: str
    """Where it was taken: "deploy" (the baseline) or "<phase>.start" / "<phase>.end"."""
    wall: float
    live_bytes: int
    entries: int
    high_water: int
    goroutines: int
    go_version: str
    go_type: str
    settled: bool = True
    """False when load connections were still open (their buffers are in live_bytes)."""
    replication_backlog: tuple[int, ...] = ()
    """Ops queued for each peer at the sample."""


class Journal:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.samples: list[HeapSample] = []
        self.started_mono = time.monotonic()
        self.started_wall = time.time()

    def record(self, kind: str, name: str, /, **data: Any) -> Event:
        event = Event(kind=kind, name=name, mono=time.monotonic(), wall=time.time(), data=data)
        self.events.append(event)
        return event

    def add_sample(self, sample: HeapSample) -> None:
        self.samples.append(sample)

    def phases(self) -> list[PhaseWindow]:
        """Windows of the phases that started; one cut short ends at its last event."""
        windows = []
        starts = {e.name: e for e in self.events if e.kind == "phase-start"}
        ends = {e.name: e for e in self.events if e.kind == "phase-end"}
        for name, start in starts.items():
            end = ends.get(name)
            if end is None:
                continue
            windows.append(PhaseWindow(name, start.wall, end.wall, start.mono, end.mono))
        return windows

    def phase(self, name: str) -> PhaseWindow | None:
        return next((w for w in self.phases() if w.name == name), None)

    def crashes(self) -> list[Event]:
        return [e for e in self.events if e.kind == "crash"]

    def sample_at(self, target: str, point: str) -> list[HeapSample]:
        return [s for s in self.samples if s.target == target and s.point == point]

    def to_json(self) -> dict[str, Any]:
        base_mono = self.started_mono
        return {
            "started_wall": self.started_wall,
            "events": [{**asdict(e), "t": round(e.mono - base_mono, 4)} for e in self.events],
            "samples": [asdict(s) for s in self.samples],
        }
