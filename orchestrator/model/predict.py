"""The model's one entry point: ``predict(go_type, entries, …) -> Prediction``.

Stable API (the comparator relies on it)::

    predict(go_type: str, entries: int, *, go_version: str = "1.26",
            high_water: int | None = None, hint: int | None = None) -> Prediction

* ``go_type``: Go syntax plus ``any(T)`` and ``sync.Map[K]V`` (see :mod:`.gotypes`);
  ``[S]map[K]V`` is S independent maps sharing the entries evenly.
* ``entries``: distinct live keys. ``high_water``: the most keys the container ever held
  (maps never shrink). ``hint``: the ``make(map[K]V, hint)`` size hint.
* Keys and values are built beforehand; what counts is what the container allocates:
  structure, out-of-line >128-byte keys/values, and boxing on insert.

Raises :class:`~orchestrator.core.errors.UsageError` for an invalid type, version or count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.errors import UsageError
from orchestrator.model import classic, swiss, syncmap
from orchestrator.model.alloc import alloc, tiny_blocks
from orchestrator.model.boxing import slot_box
from orchestrator.model.estimate import Estimate
from orchestrator.model.gotypes import Container, container_of

DEFAULT_GO = "1.26"
OLDEST_GO = (1, 22)  # malloc headers (1.22) and the hmap the model knows
NEWEST_GO = (1, 27)


@dataclass(frozen=True)
class ChurnBound:
    """What delete+insert at a constant live size can do to the live bytes.

    ``live_bytes_high`` is an upper bound, or None where the runtime gives none.
    """

    live_bytes_high: int | None
    note: str


@dataclass(frozen=True)
class Prediction:
    """Expected heap bytes of one container; JSON shape per DESIGN.md (``to_json``)."""

    go_type: str
    go_version: str
    family: str
    entries: int
    high_water: int
    hint: int | None
    live_bytes: int
    live_bytes_range: tuple[int, int]
    cumulative_bytes: int
    peak_bytes: int
    breakdown: dict[str, int]
    churn: ChurnBound
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.go_type,
            "go": self.go_version,
            "family": self.family,
            "entries": self.entries,
            "high_water": self.high_water,
            "hint": self.hint,
            "live_bytes": self.live_bytes,
            "live_bytes_range": list(self.live_bytes_range),
            "cumulative_bytes": self.cumulative_bytes,
            "peak_bytes": self.peak_bytes,
            "breakdown": self.breakdown,
            "churn": {"live_bytes_high": self.churn.live_bytes_high, "note": self.churn.note},
            "notes": list(self.notes),
            "details": self.details,
        }


def parse_go_version(text: str) -> tuple[int, int]:
    """``1.26``, ``1.26.8`` or ``go1.26`` → (1, 26); UsageError outside 1.22 … 1.27."""
    m = re.fullmatch(r"(?:go)?(\d+)\.(\d+)(?:\.\d+)?(?:rc\d+)?", text.strip())
    if not m:
        raise UsageError(f"invalid Go version {text!r}", hint="write it as 1.26, 1.26.8 or go1.23")
    version = (int(m.group(1)), int(m.group(2)))
    if version < OLDEST_GO or version > NEWEST_GO:
        raise UsageError(
            f"Go {text} is outside what the model covers (1.22 … 1.27)",
            hint="use --go 1.23 for the classic hmap, 1.24 … 1.27 for Swiss tables",
        )
    return version


def predict(
    go_type: str,
    entries: int,
    *,
    go_version: str = DEFAULT_GO,
    high_water: int | None = None,
    hint: int | None = None,
) -> Prediction:
    """Predict the heap bytes of ``go_type`` holding ``entries`` keys (module docstring)."""
    version = parse_go_version(go_version)
    container = container_of(go_type, version)
    _check_counts(container, entries, high_water, hint)
    hw = max(entries, high_water or 0)
    swiss_maps = version >= (1, 24)

    if container.kind == "syncmap":
        if swiss_maps:
            est = syncmap.predict_trie(container.key, container.elem, entries, high_water=hw)
            family = "sync.Map hash-trie"
        else:
            est = syncmap.predict_legacy(container.key, container.elem, entries, high_water=hw)
            family = "sync.Map read/dirty"
    else:
        est = _predict_maps(container, entries, hw, hint, swiss_maps)
        family = "swiss" if swiss_maps else "classic hmap"

    churn = _churn(container, entries, hw, hint, version, est)
    live = round(est.live)
    low = min(live, int(est.low // 1))
    high = max(live, -int(-est.high // 1))
    return Prediction(
        go_type=container.text,
        go_version=f"{version[0]}.{version[1]}",
        family=family,
        entries=entries,
        high_water=hw,
        hint=hint,
        live_bytes=live,
        live_bytes_range=(low, high),
        cumulative_bytes=round(est.cumulative),
        peak_bytes=round(est.peak if est.peak is not None else est.live),
        breakdown={k: round(v) for k, v in est.breakdown.items()},
        churn=churn,
        notes=tuple(est.notes),
        details={k: (round(v, 4) if isinstance(v, float) else v) for k, v in est.details.items()},
    )


def _predict_maps(c: Container, entries: int, hw: int, hint: int | None, swiss_maps: bool) -> Estimate:
    family = swiss if swiss_maps else classic
    s = c.shards
    if s == 1:
        single: Estimate = family.predict(c.key, c.elem, entries, high_water=hw, hint=hint)
        return single
    total: Estimate | None = None
    shard_hint = -(-hint // s) if hint else hint
    # Shards get the keys evenly: S - r shards of q keys and r shards of q + 1.
    q, r = divmod(entries, s)
    hq, hr = divmod(hw, s)
    groups: dict[tuple[int, int], int] = {}
    for i in range(s):
        n_i = q + (1 if i < r else 0)
        h_i = hq + (1 if i < hr else 0)
        groups[(n_i, h_i)] = groups.get((n_i, h_i), 0) + 1
    for (n_i, h_i), count in groups.items():
        one = family.predict(c.key, c.elem, n_i, high_water=h_i, hint=shard_hint)
        for _ in range(count):
            total = one if total is None else total.plus(one)
    assert total is not None
    # Boxes of all shards share the mcache's tiny blocks: count the blocks once, globally.
    sizes = [b.size for b in (slot_box(c.key), slot_box(c.elem)) if b.size and b.tiny]
    if sizes:
        per_shard = sum(count * tiny_blocks(sizes, n_i) for (n_i, _), count in groups.items())
        per_shard_cum = sum(count * tiny_blocks(sizes, h_i) for (_, h_i), count in groups.items())
        delta = tiny_blocks(sizes, entries) - per_shard
        total.live += delta
        total.low += delta
        total.high += delta
        total.breakdown["boxing"] = total.breakdown.get("boxing", 0.0) + delta
        total.cumulative += tiny_blocks(sizes, hw) - per_shard_cum
    arr = alloc(8 * s, True)
    total.breakdown = {"shard_array": arr, **total.breakdown}
    total.live += arr
    total.low += arr
    total.high += arr
    total.cumulative += arr
    if total.peak is not None:
        total.peak += arr
    total.notes.append(f"{s} shards share the keys evenly (hash sharding varies a little around that)")
    return total


def _check_counts(c: Container, entries: int, high_water: int | None, hint: int | None) -> None:
    if entries < 0:
        raise UsageError(f"--entries {entries} is negative", hint="give the number of live keys, ≥ 0")
    if high_water is not None and high_water < 0:
        raise UsageError(f"--high-water {high_water} is negative", hint="give the most keys ever held, ≥ 0")
    if hint is not None and hint < 0:
        raise UsageError(f"--hint {hint} is negative", hint="give the make() size hint, ≥ 0")
    most = max(entries, high_water or 0)
    room = c.key.cardinality()
    if most > room:
        raise UsageError(
            f"{c.text} cannot hold {most} distinct keys: its key type {c.key.text} has only {room} values",
            hint="lower --entries/--high-water or use a wider key type",
        )


def _churn(
    c: Container, entries: int, hw: int, hint: int | None, version: tuple[int, int], est: Estimate
) -> ChurnBound:
    live = round(est.live)
    if c.kind == "syncmap":
        if version >= (1, 24):
            return ChurnBound(
                round(est.high),
                "hash-trie: Delete frees the entry and prunes empty nodes, so churn at constant size "
                "stays at the live estimate (cumulative grows by 48 B + boxing per Store)",
            )
        return ChurnBound(
            round(est.peak or est.live),
            "read/dirty: churn with Loads promotes and rebuilds dirty, holding up to two map "
            "structures (peak); deleted read-only keys linger until the next rebuild",
        )
    if version >= (1, 25):
        doubled = _predict_maps(c, entries, max(hw, 2 * max(entries, 1)), hint, True)
        return ChurnBound(
            round(doubled.high),
            "Swiss ≥1.25: tombstones are pruned before a grow; measured churn plateaus near 2× the "
            "table count (documented bound, not derived)",
        )
    if version >= (1, 24):
        return ChurnBound(
            None,
            "Swiss 1.24: tombstones are never pruned; churn keeps growing the table count "
            "(measured 128 → 512 tables over 100× churn of 1e5 keys): no bound",
        )
    b = classic.b_for(max(hw, 1))
    lay = classic.layout(c.key, c.elem)
    cl = classic._Classic(lay)
    extra_ovf = (1 << min(b, 15)) * cl.bucket()
    old = cl.array(b) if b > 0 else cl.bucket()
    bound = (live + extra_ovf + old) * 1 if c.shards == 1 else None
    if bound is not None:
        return ChurnBound(
            round(bound),
            "classic hmap: churn fills overflow buckets until noverflow ≥ 2^min(B,15) triggers a "
            "same-size grow, which holds the old array while evacuating (documented bound)",
        )
    return ChurnBound(None, "classic hmap, sharded: per-shard same-size grow bound not summed")
