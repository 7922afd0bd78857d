"""Every container type the demo stores are designed to be parses and predicts, on each
Go version the stores are built with (issue 21: the ring buffer's sync.Mutex once went
inconclusive as ``undefined: sync.Mutex``)."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.checks.payload import pointee_bytes
from orchestrator.checks.targettypes import designed_go_type
from orchestrator.model import predict
from orchestrator.model.gotypes import container_of
from orchestrator.scenario.schema import STORES, VALUE_TYPES
from orchestrator.scenario.spec import TargetSpec

GO_VERSIONS = ("1.23", "1.26")


def _target(store: str, value_type: str, go: str, shards: int = 32) -> TargetSpec:
    return TargetSpec(
        name="t",
        store=store,
        replicas=1,
        value_type=value_type,
        go=go,
        replicate=None,
        shards=shards,
        rebuild_every=0,
        ring_size=8,
        ring_leak=False,
        slice_buffer=0,
    )


CASES = list(itertools.product(STORES, VALUE_TYPES, GO_VERSIONS))


@pytest.mark.parametrize(("store", "value_type", "go"), CASES, ids=["-".join(c) for c in CASES])
def test_every_designed_type_parses_and_predicts(store: str, value_type: str, go: str) -> None:
    go_type = designed_go_type(_target(store, value_type, go))
    container = container_of(go_type)
    assert container.text == container_of(container.text).text  # the canonical text reparses
    small = predict(go_type, 1000, go_version=go)
    large = predict(go_type, 100_000, go_version=go, high_water=120_000)
    assert 0 < small.live_bytes < large.live_bytes
    low, high = large.live_bytes_range
    assert low <= large.live_bytes <= high
    # The demo stores' check adds what pointer values own.
    assert pointee_bytes(1000, go_type).expected >= 0


@pytest.mark.parametrize("shards", [1, 7, 4096])
def test_sharded_designs_parse_for_every_shard_count(shards: int) -> None:
    go_type = designed_go_type(_target("shardedmap", "[]byte", "1.26", shards=shards))
    assert container_of(go_type).shards == shards
    assert predict(go_type, 10_000, go_version="1.23").live_bytes > 0


@pytest.mark.parametrize("value_type", VALUE_TYPES)
def test_the_ring_buffer_entry_holds_a_mutex_and_owns_its_struct(value_type: str) -> None:
    go_type = designed_go_type(_target("ringbuffer", value_type, "1.26"))
    entry = container_of(go_type).elem
    assert entry.kind == "pointer" and entry.elem is not None
    mu = next(f for f in entry.elem.fields if f.name == "Mu")
    assert (mu.type.text, mu.type.size, mu.type.align) == ("sync.Mutex", 8, 4)
    # In, Ack, Stop (3 chans, 24 B) + Mu (8 B) + Buf (24 B) + Next, Count (16 B): 72 B, a 80-B object.
    assert entry.elem.size == 72
    assert pointee_bytes(10, go_type).expected == 10 * 80
