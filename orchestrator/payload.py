"""What a target's live heap holds beyond the container: the key strings and the value payloads.

The model counts what the container allocates (structure, slots, boxing) and
assumes keys and values were built beforehand. A maptarget builds them itself:
every key arrives from the network as a fresh string ("k<i>", mapquake's key
naming), and []byte / string values carry a separately allocated payload. The
comparator adds these bytes to the model's prediction.

Key strings are tiny allocations (< 16 B): several share one 16-B block, and a
block stays live while any of its keys does. Go maps and sync.Map store the
*newest* key string on an overwrite ("so the old one can be collected"), so:

- keys written once, or overwritten in the same grouping (sequential streams),
  keep their block-mates: bytes = the packed tiny blocks (the low bound);
- keys overwritten in scattered order (uniform, zipf, hot-set) end up alone in
  their blocks: one whole block per key (the high bound).

Key lengths are taken from the key space as a whole (k0 … k<space-1>).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model.alloc import TINY_BLOCK, alloc, tiny_blocks

KEY_PREFIX = "k"


def key_length_counts(space: int) -> dict[int, int]:
    """How many keys of each length the space k0 … k<space-1> has."""
    counts: dict[int, int] = {}
    low = 0
    digits = 1
    while low < space:
        high = min(space, 10**digits)
        counts[len(KEY_PREFIX) + digits] = high - low
        low, digits = high, digits + 1
    return counts


@dataclass(frozen=True)
class PayloadBytes:
    """Heap bytes outside the container: expected, and the range the allocator's packing allows."""

    expected: int
    low: int
    high: int

    def __add__(self, other: PayloadBytes) -> PayloadBytes:
        return PayloadBytes(self.expected + other.expected, self.low + other.low, self.high + other.high)


def _strings(count: int, length: int, scattered: bool) -> PayloadBytes:
    if count <= 0 or length <= 0:
        return PayloadBytes(0, 0, 0)
    if length >= TINY_BLOCK:
        size = count * alloc(length, False)
        return PayloadBytes(size, size, size)
    packed, alone = tiny_blocks([length], count), count * TINY_BLOCK
    return PayloadBytes(alone if scattered else packed, packed, alone)


def key_bytes(entries: int, space: int, *, scattered: bool) -> PayloadBytes:
    """Heap bytes of ``entries`` distinct key strings from the space (shared proportionally by length).

    ``scattered``: keys were overwritten in an order that splits block-mates (see the module docstring).
    """
    total = PayloadBytes(0, 0, 0)
    if entries <= 0:
        return total
    for length, count in key_length_counts(space).items():
        total += _strings(round(entries * count / space), length, scattered)
    return total


def value_payload_bytes(entries: int, value_type: str, value_size: int, *, scattered: bool) -> PayloadBytes:
    """Heap bytes of separately allocated value payloads: []byte and string values only."""
    if value_type not in ("[]byte", "string"):
        return PayloadBytes(0, 0, 0)
    return _strings(entries, value_size, scattered)
