"""The run journal: what happened when, on one monotonic clock, for the checks and the report.

Every event carries the monotonic time (for ordering and for lateness against
the schedule) and the wall time (for Prometheus queries, which speak Unix time).
Phases, fault applications and heals, heap samples and component deaths all go
here; the comparator reads windows and samples from it, the report prints it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What a journal event records (its value is the kind written to report.json)."""

    PHASE_START = "phase-start"
    PHASE_END = "phase-end"
    FAULT_APPLIED = "fault-applied"
    FAULT_HEALED = "fault-healed"
    CRASH = "crash"
    NOTE = "note"
    """Anything else worth keeping: its name says what (run-start, fault-continues, log, error, ...)."""
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Event:
    kind: EventKind
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
class MapReading:
    """One map a service registered with mapprobe, as it was at a heap sample."""

    map: str
    """Its ``map`` label ("" for a service's single unlabelled map)."""
    entries: int
    high_water: int
    go_type: str
    owned_key_bytes: float | None = None
    """Mean bytes each entry's key owns beyond its slot (string bytes, pointees), measured by mapprobe's
    WithEntries over ``owned_sampled`` entries; None when the map was registered without it."""
    owned_value_bytes: float | None = None
    """The same for each entry's value."""
    owned_sampled: int = 0


class HeapSource(StrEnum):
    """Where a heap sample's live bytes came from: the evidence and the page name it."""

    GC = "gc"
    """mapprobe's GC handler (or maptarget's /admin/gc): runtime.GC() twice, then the live heap. Exact."""
    MAPPROBE_LIVE = "mapprobe_live"
    """mapquake_heap_live_bytes, which mapprobe exports with any registration: the heap marked live by
    the service's last GC (runtime/metrics /gc/heap/live:bytes). Approximate: it lags the heap."""
    GO_COLLECTOR_LIVE = "go_collector_live"
    """go_gc_heap_live_bytes from client_golang's Go collector (with runtime metrics on): the same
    figure as MAPPROBE_LIVE, from an older mapprobe or none."""
    NONE = "none"
    """The service serves no live-heap figure: its maps were read, its heap was not. Model checks on
    it are inconclusive. (go_memstats_heap_alloc_bytes is never used: it counts garbage.)"""


@dataclass(frozen=True)
class HeapSample:
    """The live heap of one replica right after runtime.GC() (what its POST /admin/gc answers), and,
    once placed on the run's timeline, which replica and which point of the run it was taken at."""

    live_bytes: int
    entries: int
    high_water: int
    goroutines: int
    go_version: str
    go_type: str
    heap_objects: int = 0
    total_alloc_bytes: int = 0
    store: str = ""
    http_connections: int = 0
    grpc_connections: int = 0
    replication_backlog: tuple[int, ...] = ()
    """Ops queued for each peer (in --peers order) at the sample; empty without peers."""
    maps: tuple[MapReading, ...] = ()
    """A service's mapprobe maps (maptarget reports its one store in the fields above)."""
    approximate: bool = False
    """True when no GC ran for it: live_bytes is the heap marked live by the service's last GC (see
    HeapSource), which lags: it misses what was allocated since and counts what died since."""
    source: HeapSource = HeapSource.GC
    """Which HeapSource live_bytes came from."""
    gc_headroom_bytes: int = 0
    """For an approximate sample: the GC's heap goal minus live_bytes (mapquake_heap_goal_bytes). What
    was allocated while the last cycle marked was counted live, up to the goal: the figure's own error."""
    target: str = ""
    replica: int = 0
    point: str = ""
    """Where it was taken: "deploy" (the baseline) or "<phase>.start" / "<phase>.end"."""
    wall: float = 0.0
    settled: bool = True
    """False when load connections were still open (their buffers are in live_bytes)."""

    def placed(self, *, target: str, replica: int, point: str, wall: float, settled: bool) -> HeapSample:
        """This reading as a sample of ``target`` replica ``replica`` at ``point``."""
        return dataclasses.replace(self, target=target, replica=replica, point=point, wall=wall, settled=settled)


class Journal:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.samples: list[HeapSample] = []
        self.started_mono = time.monotonic()
        self.started_wall = time.time()

    def record(self, kind: EventKind, name: str, /, **data: Any) -> Event:
        event = Event(kind=kind, name=name, mono=time.monotonic(), wall=time.time(), data=data)
        self.events.append(event)
        return event

    def add_sample(self, sample: HeapSample) -> None:
        self.samples.append(sample)

    def phases(self) -> list[PhaseWindow]:
        """Windows of the phases that started; one cut short ends at its last event."""
        windows = []
        starts = {e.name: e for e in self.events if e.kind == EventKind.PHASE_START}
        ends = {e.name: e for e in self.events if e.kind == EventKind.PHASE_END}
        for name, start in starts.items():
            end = ends.get(name)
            if end is None:
                continue
            windows.append(PhaseWindow(name, start.wall, end.wall, start.mono, end.mono))
        return windows

    def phase(self, name: str) -> PhaseWindow | None:
        return next((w for w in self.phases() if w.name == name), None)

    def crashes(self) -> list[Event]:
        return [e for e in self.events if e.kind == EventKind.CRASH]

    def sample_at(self, target: str, point: str) -> list[HeapSample]:
        return [s for s in self.samples if s.target == target and s.point == point]

    def replica_samples(self, target: str, point: str, replica: int) -> list[HeapSample]:
        """The samples of one replica of ``target`` at ``point`` (one, or none if it failed)."""
        return [s for s in self.sample_at(target, point) if s.replica == replica]

    def to_json(self) -> dict[str, Any]:
        base_mono = self.started_mono
        return {
            "started_wall": self.started_wall,
            "events": [{**asdict(e), "t": round(e.mono - base_mono, 4)} for e in self.events],
            "samples": [asdict(s) for s in self.samples],
        }
