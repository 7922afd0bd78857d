"""What a target's live heap holds beyond the container: the key strings and the value payloads.

The model counts what the container allocates (structure, slots, boxing) and
assumes keys and values were built beforehand. A maptarget builds them itself:
every key arrives from the network as a fresh string ("k<i>", mapquake's key
naming), and []byte / string values carry a separately allocated payload. The
comparator adds these bytes to the model's prediction.

Approximation, documented in docs/model.md: key lengths are taken from the key
space as a whole (k0 … k<space-1>), and each key's tiny-allocator block is
assumed shared only with other keys, which is what a BatchPut decode does.
"""

from __future__ import annotations

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


def key_bytes(entries: int, space: int) -> int:
    """Heap bytes of ``entries`` distinct key strings drawn from the space (proportionally by length)."""
    if entries <= 0:
        return 0
    total = 0
    counts = key_length_counts(space)
    for length, count in counts.items():
        share = round(entries * count / space)
        if length < TINY_BLOCK:
            total += tiny_blocks([length], share)
        else:
            total += share * alloc(length, False)
    return total


def value_payload_bytes(entries: int, value_type: str, value_size: int) -> int:
    """Heap bytes of separately allocated value payloads: []byte and string values only."""
    if value_type not in ("[]byte", "string") or value_size <= 0 or entries <= 0:
        return 0
    if value_size < TINY_BLOCK:
        return tiny_blocks([value_size], entries)
    return entries * alloc(value_size, False)
