"""The hand-built MapStore write requests parse, with the generated protobuf code, to what was meant."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workloads.keyspace import key_bytes
from workloads.pb import store_pb2
from workloads.wire import PutEncoder, varint

keys = st.binary(min_size=0, max_size=300)
values = st.binary(min_size=0, max_size=300)  # 128 bytes and more need two-byte varints


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_matches_protobuf(n: int) -> None:
    assert store_pb2.BatchPutResponse.FromString(b"\x08" + varint(n)).written == n


@given(keys, values)
def test_put_request(key: bytes, value: bytes) -> None:
    # PutRequest.key is a proto3 string: the parser checks UTF-8, so keys are text here.
    text = key.decode("latin-1").encode()
    msg = store_pb2.PutRequest.FromString(PutEncoder(value).put(text))
    assert (msg.key.encode(), msg.value) == (text, value)
    # Proto3 leaves empty fields out; the encoder writes them: same message, not always the same bytes.
    assert msg == store_pb2.PutRequest(key=text.decode(), value=value)


@given(st.lists(keys, max_size=40), values)
def test_batch_put_request_of_mixed_key_lengths(raw_keys: list[bytes], value: bytes) -> None:
    texts = [k.decode("latin-1").encode() for k in raw_keys]
    encoded = PutEncoder(value).batch_put(texts)
    expected = store_pb2.BatchPutRequest(entries=[store_pb2.PutRequest(key=k.decode(), value=value) for k in texts])
    assert store_pb2.BatchPutRequest.FromString(encoded) == expected
    if value and all(texts):
        assert encoded == expected.SerializeToString()


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=200), values)
def test_batch_put_request_of_mapquake_keys(first: int, n: int, value: bytes) -> None:
    """The workers' case: n 16-byte keys in one request (the one-head fast path), parsed back in order."""
    ks = [key_bytes(i) for i in range(first, first + n)]
    msg = store_pb2.BatchPutRequest.FromString(PutEncoder(value).batch_put(ks))
    assert [e.key.encode() for e in msg.entries] == ks
    assert {e.value for e in msg.entries} == {value}


def test_one_encoder_serves_many_batches() -> None:
    enc = PutEncoder(b"v" * 200)
    first, second = enc.batch_put([b"a", b"bb"]), enc.batch_put([b"ccc"])
    assert [e.key for e in store_pb2.BatchPutRequest.FromString(first).entries] == ["a", "bb"]
    assert [e.key for e in store_pb2.BatchPutRequest.FromString(second).entries] == ["ccc"]
