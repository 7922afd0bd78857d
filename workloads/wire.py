"""The MapStore write requests in protobuf wire form, built straight from key bytes.

A Locust worker's CPU is the ceiling of the load it can offer. Building a BatchPutRequest as
protobuf objects costs about 1 µs per entry on the benchmark machine (one PutRequest object per
key, then serialisation); the same bytes joined from a fixed entry head, the key and a fixed
tail cost about 0.3 µs. The encoding is simple because both messages are flat:

    PutRequest      = field 1 (key, length-delimited) · field 2 (value, length-delimited)
    BatchPutRequest = field 1 (PutRequest, length-delimited), repeated

``tests/unit/test_wire.py`` checks every function here against the generated ``store_pb2``
parser, including lengths of 128 bytes and more (multi-byte varints).
"""

from __future__ import annotations

from collections.abc import Sequence

_KEY_TAG = b"\x0a"  # field 1, wire type 2 (PutRequest.key; BatchPutRequest.entries)
_VALUE_TAG = b"\x12"  # field 2, wire type 2 (PutRequest.value)


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf base-128 varint."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class PutEncoder:
    """Encodes PutRequests (and batches of them) for one value; the value's bytes are fixed per run."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self._value_field = _VALUE_TAG + varint(len(value)) + value
        self._heads: dict[int, bytes] = {}
        """Key length -> the bytes before the key of one BatchPutRequest entry."""

    def put(self, key: bytes) -> bytes:
        """One PutRequest."""
        return _KEY_TAG + varint(len(key)) + key + self._value_field

    def _entry_head(self, key_len: int) -> bytes:
        head = self._heads.get(key_len)
        if head is None:
            put_len = 1 + len(varint(key_len)) + key_len + len(self._value_field)
            head = _KEY_TAG + varint(put_len) + _KEY_TAG + varint(key_len)
            self._heads[key_len] = head
        return head

    def batch_put(self, keys: Sequence[bytes]) -> bytes:
        """One BatchPutRequest holding a PutRequest of ``value`` for every key, in order."""
        if not keys:
            return b""
        first = len(keys[0])
        tail = self._value_field
        if all(len(k) == first for k in keys):
            # The common case (mapquake's keys are all 16 bytes): one head for every entry.
            head = self._entry_head(first)
            return head + (tail + head).join(keys) + tail
        entry_head = self._entry_head
        return b"".join([entry_head(len(k)) + k + tail for k in keys])
