"""The value every model family (Swiss, classic, sync.Map) returns, and per-entry costs."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.model.alloc import alloc, tiny_blocks
from orchestrator.model.boxing import Box, slot_box
from orchestrator.model.gotypes import GoType

#: One unrelated runtime object may land inside a measurement (research §6, step 10).
NOISE_BYTES = 16


@dataclass
class Estimate:
    """Expected heap bytes of one container, with the spread the runtime's randomness allows.

    ``breakdown`` values are expected bytes per part and sum to ``live``.
    ``peak`` is the largest live size a transient state can reach (None: same as ``live``).
    """

    live: float
    low: float
    high: float
    cumulative: float
    breakdown: dict[str, float] = field(default_factory=dict)
    peak: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, float | int | str] = field(default_factory=dict)

    def plus(self, other: Estimate) -> Estimate:
        merged = dict(self.breakdown)
        for k, v in other.breakdown.items():
            merged[k] = merged.get(k, 0.0) + v
        details = dict(self.details)
        details.update(other.details)
        return Estimate(
            live=self.live + other.live,
            low=self.low + other.low,
            high=self.high + other.high,
            cumulative=self.cumulative + other.cumulative,
            breakdown=merged,
            peak=(self.peak or self.live) + (other.peak or other.live),
            notes=self.notes + [n for n in other.notes if n not in self.notes],
            details=details,
        )


@dataclass(frozen=True)
class EntryCost:
    """Heap bytes each stored entry brings besides the container structure."""

    boxing: int  # bytes for ``entries`` entries of non-tiny boxes
    tiny: int  # bytes of tiny blocks for ``entries`` entries
    indirect: int  # bytes of >128-byte keys/values stored out of line

    @property
    def total(self) -> int:
        return self.boxing + self.tiny + self.indirect


def entry_cost(boxes: list[Box], indirect: list[GoType], entries: int) -> EntryCost:
    """Cost of ``entries`` inserts, each boxing ``boxes`` (in call order) and allocating
    one object per type in ``indirect``."""
    tiny_sizes = [b.size for b in boxes if b.size and b.tiny]
    boxing = sum(b.bytes for b in boxes if b.size and not b.tiny) * entries
    tiny = tiny_blocks(tiny_sizes, entries)
    ind = sum(alloc(t.size, t.has_pointers) for t in indirect) * entries
    return EntryCost(boxing, tiny, ind)


def add_entry_costs(
    est: Estimate, key: GoType, elem: GoType, indirect: list[GoType], entries: int, high_water: int, shrink_note: str
) -> Estimate:
    """Add what each inserted entry allocates (boxing of ``any`` slots, out-of-line keys and values)
    to a map's structure estimate: live for ``entries``, cumulative for the ``high_water`` inserts.
    Shared by both map families; ``shrink_note`` says why the structure stays at the high-water mark."""
    boxes = [slot_box(key), slot_box(elem)]
    live_cost = entry_cost(boxes, indirect, entries)
    cum_cost = entry_cost(boxes, indirect, high_water)
    est.breakdown["boxing"] = live_cost.boxing + live_cost.tiny
    est.breakdown["indirect"] = live_cost.indirect
    est.live += live_cost.total
    est.low += live_cost.total - NOISE_BYTES
    est.high += live_cost.total + NOISE_BYTES
    est.cumulative += cum_cost.total
    if high_water > entries:
        est.notes.append(f"structure sized for the high-water mark of {high_water} entries: {shrink_note}")
    return est
