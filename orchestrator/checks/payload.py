"""What a target's live heap holds beyond the container: the key strings and the value payloads.

The model counts what the container allocates (structure, slots, boxing) and
assumes keys and values were built beforehand. A maptarget builds them itself:
every key arrives from the network as a fresh string, and []byte / string values
carry a separately allocated payload. The comparator adds these bytes to the
model's prediction.

Keys are exactly 16 bytes (workloads.keyspace.KEY_LENGTH), so each is one
size-class-16 object: 16 B, exactly. Payloads under 16 B are tiny-allocator
objects sharing 16-B blocks, and a block stays live while any object in it does;
Go maps and sync.Map keep the *newest* value on an overwrite, so:

- payloads written once, or overwritten in the same grouping (sequential
  streams), keep their block-mates: the packed tiny blocks (the low bound);
- payloads overwritten in scattered order (uniform, zipf, hot-set) end up alone
  in their blocks: one whole block each (the high bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model.alloc import TINY_BLOCK, alloc, tiny_blocks
from orchestrator.model.gotypes import GoType, container_of
from workloads.keyspace import KEY_LENGTH


@dataclass(frozen=True)
class PayloadBytes:
    """Heap bytes outside the container: expected, and the range the allocator's packing allows."""

    expected: int
    low: int
    high: int

    def __add__(self, other: PayloadBytes) -> PayloadBytes:
        return PayloadBytes(self.expected + other.expected, self.low + other.low, self.high + other.high)


def key_bytes(entries: int) -> PayloadBytes:
    """Heap bytes of ``entries`` distinct key strings: one KEY_LENGTH-byte object each."""
    size = max(0, entries) * alloc(KEY_LENGTH, False)
    return PayloadBytes(size, size, size)


def value_payload_bytes(entries: int, value_type: str, value_size: int, *, scattered: bool) -> PayloadBytes:
    """Heap bytes of separately allocated value payloads: []byte and string values only.

    ``scattered``: values were overwritten in an order that splits tiny-block mates (module docstring).
    """
    if value_type not in ("[]byte", "string") or entries <= 0 or value_size <= 0:
        return PayloadBytes(0, 0, 0)
    if value_size >= TINY_BLOCK:
        size = entries * alloc(value_size, False)
        return PayloadBytes(size, size, size)
    packed, alone = tiny_blocks([value_size], entries), entries * TINY_BLOCK
    return PayloadBytes(alone if scattered else packed, packed, alone)


MAX_OWNED_DEPTH = 8


def owned_bytes(value: GoType, depth: int = 0) -> int:
    """Heap bytes one stored value owns through typed pointers: ``*T`` allocates a T, and T's own
    ``*U`` fields allocate a U, and so on. ``unsafe.Pointer`` fields are links to objects owned
    elsewhere (ptrcycle's neighbours), so they add nothing. The model counts the slot; this the pointee.
    """
    if value.kind != "pointer" or value.elem is None or depth >= MAX_OWNED_DEPTH:
        return 0
    pointee = value.elem
    total = alloc(pointee.size, pointee.has_pointers) if pointee.size > 0 else 0
    for member in pointee.fields:
        total += owned_bytes(member.type, depth + 1)
    return total


def pointee_bytes(entries: int, go_type: str) -> PayloadBytes:
    """Heap bytes of the objects ``entries`` values of the container own through typed pointers."""
    size = max(0, entries) * owned_bytes(container_of(go_type).elem)
    return PayloadBytes(size, size, size)


# The replication queue's layout (go_targets/internal/replicate/queue.go): ops sit in 32-byte slots,
# allocated 1024 at a time as one 32 KiB chunk (a large object: exactly 4 pages), and each op's key
# and value are copied into one noscan []byte.
QUEUE_SLOT_BYTES = 32
QUEUE_CHUNK_OPS = 1024
QUEUE_CHUNK_BYTES = QUEUE_SLOT_BYTES * QUEUE_CHUNK_OPS


def backlog_bytes(ops_per_peer: tuple[int, ...], op_payload: int, capacity: int | None) -> PayloadBytes:
    """Heap bytes of replication queues holding ``ops_per_peer`` ops, as designed.

    A bounded design (``capacity``) never holds more than ``capacity`` ops per peer, so ops beyond it
    are not predicted: a queue that lost its bound shows up as heap the model did not expect. The
    first chunk may be partly drained, so a queue spans one chunk more at worst (the range).
    """
    total = PayloadBytes(0, 0, 0)
    per_op = alloc(op_payload, False) if op_payload > 0 else 0
    for ops in ops_per_peer:
        n = min(ops, capacity) if capacity is not None else ops
        if n <= 0:
            continue
        chunks = -(-n // QUEUE_CHUNK_OPS)
        size = chunks * QUEUE_CHUNK_BYTES + n * per_op
        total += PayloadBytes(size, size, size + QUEUE_CHUNK_BYTES)
    return total
