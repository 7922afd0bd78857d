"""The container type each store is designed to be, in the model's Go syntax.

The model check predicts from the design (store + value type in the scenario),
not from what the running target reports, so a target that departs from its
design fails instead of being excused. These strings must equal what maptarget
reports as go_type for the same flags; an integration test holds them together.
"""

from __future__ import annotations

from orchestrator.scenario.spec import TargetSpec

_RECORD = "struct{{Value {v}; Version uint64}}"


def designed_go_type(target: TargetSpec) -> str:
    """The demo store's designed container (a service target reports its own through mapprobe)."""
    if target.store is None:
        raise ValueError(f"target '{target.name}' is a service, not a demo store: its maps come from mapprobe")
    v = target.value_type
    return {
        "mutexmap": f"map[string]{v}",
        "deleteretain": f"map[string]{v}",
        "racymap": f"map[string]{v}",
        "subslice": f"map[string]{v}",  # the buffer behind each value is not in the type (payload.py)
        "syncmap": f"sync.Map[string]{v}",
        "shardedmap": f"[{target.shards}]map[string]{v}",
        "ifacemap": f"map[string]any({_RECORD.format(v=v)})",
        "structmap": f"map[string]{_RECORD.format(v=v)}",
        "ptrcycle": (
            f"map[string]*struct{{Value {v}; Prev unsafe.Pointer; Next unsafe.Pointer; "
            "Meta *struct{Node unsafe.Pointer; Seq uint64}}"
        ),
        "ringbuffer": (
            f"map[string]*struct{{In chan {v}; Ack chan struct{{}}; Stop chan struct{{}}; Mu sync.Mutex; "
            f"Buf []{v}; Next int; Count int}}"
        ),
    }[target.store]
