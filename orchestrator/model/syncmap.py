"""sync.Map: the hash-trie of Go ≥ 1.24 and the read/dirty map of Go ≤ 1.23 (research §4).

Both box every key and value on ``Store`` (their parameters are ``any``).

Go ≥ 1.24 (``internal/sync.HashTrieMap[any, any]``): a 48-B map, a 160-B indirect node for
the root and for every 4-bit hash prefix shared by ≥ 2 keys, and a 48-B entry per key:
``live = 48 + 160·I(N) + N·(48 + box(K) + box(V))`` with
``E[I(N)] = 1 + Σ_k 16^k · P(Binomial(N, 16^-k) ≥ 2)`` (≈ 0.3607·N).

Go ≤ 1.23: a 32-B Map, a 16-B readOnly, a classic ``map[any]*entry`` holding every key, an
8-B entry and a 16-B ``any`` cell per key. After a promotion (enough missed Loads) the next
new key rebuilds the dirty map from the read map, so the map structure exists twice: that
transient is ``peak``.
"""

from __future__ import annotations

import math

from orchestrator.model import classic, prob
from orchestrator.model.alloc import alloc
from orchestrator.model.boxing import NO_BOX, Box, box
from orchestrator.model.estimate import NOISE_BYTES, Estimate, entry_cost
from orchestrator.model.gotypes import GoType, basic_type, pointer_to

TRIE_MAP = 48
TRIE_INDIRECT = 152  # bytes requested: node + dead + mu + parent + [16]children
TRIE_ENTRY = 48  # node + overflow + key any + value any
TRIE_FANOUT_LOG2 = 4
TRIE_LEVELS = 64 // TRIE_FANOUT_LOG2

LEGACY_MAP = 32
LEGACY_READONLY = 16
LEGACY_ENTRY = 8
LEGACY_CELL = 16


def indirect_nodes(n: int) -> tuple[float, float]:
    """Expected number of indirect trie nodes for ``n`` keys, and its standard deviation."""
    if n <= 0:
        return 0.0, 0.0
    mean, var = 1.0, 0.0
    for k in range(1, TRIE_LEVELS + 1):
        width = 16**k
        q = prob.tail_ge(n, 1.0 / width, 2)
        mean += width * q
        var += width * q * (1 - q)
        if q < 1e-15:
            break
    return mean, math.sqrt(var)


def _boxes(key: GoType, elem: GoType) -> list[Box]:
    """sync.Map's parameters are ``any``: a plain interface passes as is, anything else is boxed."""
    out = []
    for t in (key, elem):
        dyn = t.boxed if t.kind == "interface" else t
        out.append(box(dyn) if dyn is not None else NO_BOX)
    return out


def predict_trie(key: GoType, elem: GoType, entries: int, *, high_water: int) -> Estimate:
    """sync.Map on Go ≥ 1.24. Deleting prunes empty trie nodes, so only live keys count."""
    nodes, sd = indirect_nodes(entries)
    node_bytes = alloc(TRIE_INDIRECT, True)
    cost = entry_cost(_boxes(key, elem), [], entries)
    cum_cost = entry_cost(_boxes(key, elem), [], max(entries, high_water))
    bd = {
        "sync_map": TRIE_MAP,
        "trie_nodes": nodes * node_bytes,
        "entries": entries * alloc(TRIE_ENTRY, True),
        "boxing": cost.total,
    }
    live = sum(bd.values())
    spread = (4 * sd + (1 if sd > 0 else 0)) * node_bytes
    # The root always exists once a key is stored: the range never goes below one node.
    floor_spread = (nodes - min(1, entries)) * node_bytes
    est = Estimate(
        live=live,
        low=live - min(spread, floor_spread) - NOISE_BYTES,
        high=live + spread + NOISE_BYTES,
        cumulative=TRIE_MAP + nodes * node_bytes + max(entries, high_water) * alloc(TRIE_ENTRY, True) + cum_cost.total,
        breakdown=bd,
        details={"trie_nodes": nodes, "trie_nodes_sd": sd},
    )
    if high_water > entries:
        est.notes.append(
            "after deletes the trie keeps single-child nodes; the estimate counts nodes for the live keys only"
        )
    return est


def predict_legacy(key: GoType, elem: GoType, entries: int, *, high_water: int) -> Estimate:
    """sync.Map on Go ≤ 1.23 after ``entries`` Stores of new keys (no Loads: all in dirty).

    ``peak`` adds the transient second map built by the first new-key Store after a promotion;
    ``details["peak_high_bytes"]`` bounds it with the old bucket array either map may still hold.
    """
    any_t = basic_type("any")
    entry_ptr = pointer_to(basic_type("uint8"))
    m = max(entries, high_water)
    est = classic.structure(any_t, entry_ptr, m, None)
    bd: dict[str, float] = {"sync_map": LEGACY_MAP, "read_only": LEGACY_READONLY if m > 0 else 0}
    for k, v in est.breakdown.items():
        bd[f"dirty_{k}"] = v
    per_entry = alloc(LEGACY_ENTRY, True) + alloc(LEGACY_CELL, True)
    boxes = entry_cost(_boxes(key, elem), [], entries)
    cum_boxes = entry_cost(_boxes(key, elem), [], m)
    bd["entries"] = entries * per_entry
    bd["boxing"] = boxes.total
    live = sum(bd.values())
    fixed = live - est.live
    double = classic.structure(any_t, entry_ptr, entries, entries)
    peak = live + double.live + LEGACY_READONLY
    out = Estimate(
        live=live,
        low=fixed + est.low - NOISE_BYTES,
        high=fixed + est.high + NOISE_BYTES,
        # Swap(key, value) moves ``value`` to the heap for &value on entry, and newEntry(value)
        # does it again: one 16-B cell per Store is garbage at once.
        cumulative=LEGACY_MAP
        + LEGACY_READONLY
        + est.cumulative
        + m * (per_entry + alloc(LEGACY_CELL, True))
        + cum_boxes.total,
        breakdown=bd,
        peak=peak,
        notes=list(est.notes),
        details={f"dirty_{k}": v for k, v in est.details.items()},
    )
    out.details["double_copy_bytes"] = round(double.live + LEGACY_READONLY)
    # The most a churning map can hold between promotions: the double copy with each map still
    # holding its old bucket array (a promoted read map gets no writes, so an evacuation it was in
    # the middle of never finishes; the rebuilt dirty map grows as new keys arrive).
    out.details["peak_high_bytes"] = round(peak + 2 * classic.old_array_high(any_t, entry_ptr, m))
    out.notes.append(
        "peak: after a promotion (len(dirty) missed Loads) the next Store of a new key copies every "
        "entry into a new dirty map, so the map structure exists twice until the next promotion"
    )
    return out


def live_given_nodes(key: GoType, elem: GoType, entries: int, *, trie_nodes: int) -> int:
    """Exact live bytes of a Go ≥ 1.24 sync.Map once the realised indirect-node count is known."""
    if entries == 0 and trie_nodes == 0:
        return TRIE_MAP
    cost = entry_cost(_boxes(key, elem), [], entries)
    return TRIE_MAP + trie_nodes * alloc(TRIE_INDIRECT, True) + entries * alloc(TRIE_ENTRY, True) + cost.total
