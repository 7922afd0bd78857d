"""The absolute noise floor of a heap comparison, learned from the run itself.

A model check allows ``max(relative slack, floor)`` around its prediction. The relative slack
scales with the map; the floor is what the heap does with no map change at all, so an empty or
unchanged map, or a tiny one, is judged against the service's own measured noise, never against 0.

The floor of one replica at one point is the largest of three measured terms:

- ``runtime``: the least a sample from this source can be trusted to, measured on this project's
  test services and published in docs/your-service.md (RUNTIME_FLOOR_BYTES);
- ``spread``: SPREAD_FACTOR x the spread of the repeated samples at the two points. Each point is
  sampled several times in a row (NOISE_REPEATS); what a sample leaves unexplained moves between
  repeats by what is in flight at that instant (requests, connection buffers, pooled objects), so
  the range of those repeats is the run's own measure of how far one sample can be off;
- ``idle``: IDLE_FACTOR x the largest unexplained growth of the target's *other* replicas whose
  maps did not change between the two points (an idle replica is pure noise). A replica is never
  part of its own floor, or an idle one would always pass;
- ``gc`` (approximate samples only): GC_HEADROOM_FACTOR x the largest GC headroom (heap goal minus
  live) of the ``since`` samples. A figure from the last GC counts as live what was allocated while
  that cycle marked, which the pacer keeps under the goal: the headroom bounds the error, and the
  measured errors stay well inside it (the verdict matrix's user-style service, heap goal 4 MiB,
  headroom ~2.5 MB: healthy samples moved by up to -1.13 MB, 45 % of it). Only the headroom before
  the change counts: a leak raises the goal with the heap, and the point's own headroom would
  excuse the very growth the check is for (it hid a 4 MB leak when it was counted).

The statistic is the range, not a standard deviation: three repeats give no usable deviation, and
the range of n samples bounds what another sample from the same spread does with probability
(n-1)/(n+1), so the factor of 2 covers the rest (bench/verdict_matrix.py measures the outcome).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.journal import HeapSource

NOISE_REPEATS = 3
"""Heap samples a run takes of each service replica at each point a model check reads."""

SPREAD_FACTOR = 2.0
IDLE_FACTOR = 1.5
GC_HEADROOM_FACTOR = 0.6
"""The share of an approximate sample's GC headroom its figure may be off by (measured up to 45 %)."""

RUNTIME_FLOOR_BYTES: dict[HeapSource, int] = {
    # Two forced GCs, then HeapAlloc: what is left is the runtime's own drift (timers, the
    # scavenger's bookkeeping, a profile bucket) and the sampling request itself: +5 to +14 KB on
    # an idle replica (issue 21), 10-16 KiB across scrapes (tests/integration/test_prometheus.py).
    HeapSource.GC: 64 * 1024,
    # The heap marked live by the service's last GC: that GC may predate the sample by seconds,
    # and saw whatever was in flight then. Idle replicas moved -437 to +14 KB between two such
    # figures (issue 21): a leak smaller than this is not seen without the GC handler.
    HeapSource.MAPPROBE_LIVE: 512 * 1024,
    HeapSource.GO_COLLECTOR_LIVE: 512 * 1024,
}


def runtime_floor(sources: Sequence[HeapSource]) -> int:
    """The runtime term for a comparison of samples from ``sources`` (the least precise decides)."""
    return max((RUNTIME_FLOOR_BYTES.get(s, 0) for s in sources), default=0)


def spread(values: Sequence[int]) -> int:
    """The range of one point's repeated unexplained bytes (0 for a single sample)."""
    return max(values) - min(values) if values else 0


def median_index(values: Sequence[int]) -> int:
    """The index of the median value (the lower one of an even count): the sample that speaks for a point."""
    ordered = sorted(range(len(values)), key=values.__getitem__)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class Floor:
    """The floor of one comparison and the terms it came from (all in bytes, shown in the evidence)."""

    runtime: int
    spread: int
    idle: int
    gc: int = 0

    @property
    def bytes(self) -> int:
        return max(self.runtime, self.spread, self.idle, self.gc)

    @property
    def decided_by(self) -> str:
        terms = {"runtime": self.runtime, "spread": self.spread, "idle": self.idle, "gc": self.gc}
        return max(terms, key=terms.__getitem__)

    def to_json(self) -> dict[str, int | str]:
        return {
            "bytes": self.bytes,
            "runtime": self.runtime,
            "spread": self.spread,
            "idle": self.idle,
            "gc": self.gc,
            "decided_by": self.decided_by,
        }


def floor_of(
    *,
    sources: Sequence[HeapSource],
    since_unexplained: Sequence[int],
    point_unexplained: Sequence[int],
    idle_left_overs: Sequence[int],
    gc_headrooms: Sequence[int] = (),
) -> Floor:
    """The floor of one replica's comparison.

    ``since_unexplained`` / ``point_unexplained``: each repeat's live bytes minus what the model
    attributes to the maps at that repeat (so map growth between repeats is not counted as noise).
    ``idle_left_overs``: the left-over growth of the target's other replicas with unchanged maps.
    ``gc_headrooms``: the approximate samples' heap goal minus live (empty for exact samples).
    """
    return Floor(
        runtime=runtime_floor(sources),
        spread=round(SPREAD_FACTOR * (spread(since_unexplained) + spread(point_unexplained))),
        idle=round(IDLE_FACTOR * max((abs(v) for v in idle_left_overs), default=0)),
        gc=round(GC_HEADROOM_FACTOR * max(gc_headrooms, default=0)),
    )
