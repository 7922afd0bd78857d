"""A Swiss-table map (Go ≥ 1.24) simulated slot by slot, for what closed forms cannot give:
the tables that delete+insert churn adds.

Fresh inserts split a table at a fixed count (``swiss.py`` sums that in closed form). Under
churn a table's fate depends on where its deletes land: a delete in a group with an empty
slot frees the slot, one in a full group leaves a tombstone that still occupies it; an insert
reuses a tombstone only if it meets one on its probe path before it meets a free slot; and a
table that runs out of room prunes its tombstones (Go ≥ 1.25, when that wins back 10 % of the
table) or else grows, or splits once it has 1024 slots. The simulation follows
``internal/runtime/maps`` (table.go: ``PutSlot``, ``Delete``, ``pruneTombstones``,
``rehash``, ``split``; map.go: ``NewMap``'s hint, ``installTableSplit``) with random 64-bit
hashes; what it reports (directory length and table capacities) is priced by
:func:`orchestrator.model.swiss.live_given_tables`, which is exact once those are known.

Only what decides occupancy is simulated: control bytes (empty, deleted, full), probe
sequences and growth accounting. Lookups of existing keys are not needed (churn inserts keys
that are absent), so the 7-bit ``h2`` tag is not kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

GROUP_SLOTS = 8
MAX_TABLE_CAPACITY = 1024
EMPTY, DELETED, FULL = 0, 1, 2
HASH_BITS = 64


_FULL_GROUP = bytes([FULL]) * GROUP_SLOTS


def _first_free(ctrl: bytearray, base: int) -> int:
    """The group's first empty-or-deleted slot (Go's ``matchEmptyOrDeleted().first()``), or -1."""
    group = ctrl[base : base + GROUP_SLOTS]
    if group == _FULL_GROUP:
        return -1
    e, d = group.find(EMPTY), group.find(DELETED)
    return base + (e if d < 0 or 0 <= e < d else d)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass
class _Table:
    capacity: int
    local_depth: int
    prefix: int  # the top ``local_depth`` bits every hash in this table shares
    ctrl: bytearray = field(init=False)
    keys: list[int] = field(init=False)  # key id per slot (-1: none)
    used: int = 0
    growth_left: int = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = max(GROUP_SLOTS, _pow2_at_least(self.capacity))
        self.ctrl = bytearray(self.capacity)
        self.keys = [-1] * self.capacity
        # A one-group table keeps one slot empty to end probes; larger ones fill to 7/8.
        self.growth_left = self.capacity - 1 if self.capacity <= GROUP_SLOTS else self.capacity * 7 // 8

    @property
    def mask(self) -> int:
        return self.capacity // GROUP_SLOTS - 1

    def tombstones(self) -> int:
        return self.capacity * 7 // 8 - self.used - self.growth_left


class SwissMap:
    """One map's tables and directory, driven by ``insert(key)`` / ``delete(key)`` of key ids.

    ``prune`` is Go ≥ 1.25's tombstone pruning (1.24 grows instead). A map made with a ``hint``
    over 8 starts as a directory of pre-sized tables, as ``make(map[K]V, hint)`` does; otherwise it
    starts small (one group, no table) and becomes one 16-slot table at its 9th key.
    """

    def __init__(self, rng: random.Random, *, hint: int = 0, prune: bool = True) -> None:
        self.rng = rng
        self.prune = prune
        self.hashes: dict[int, int] = {}
        self.where: dict[int, tuple[_Table, int]] = {}
        self.small: list[int] | None = None  # the small map's keys, until it becomes a table
        self.global_depth = 0
        self.directory: list[_Table] = []
        if hint > GROUP_SLOTS:
            target = hint * GROUP_SLOTS // 7
            dir_size = _pow2_at_least(-(-target // MAX_TABLE_CAPACITY))
            self.global_depth = dir_size.bit_length() - 1
            self.directory = [_Table(target // dir_size, self.global_depth, i) for i in range(dir_size)]
        else:
            self.small = []

    # -- what the model prices --------------------------------------------------------------
    def tables(self) -> list[_Table]:
        seen: dict[int, _Table] = {}
        for t in self.directory:
            seen.setdefault(id(t), t)
        return list(seen.values())

    def dir_len(self) -> int:
        return len(self.directory)

    def capacities(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for t in self.tables():
            counts[t.capacity] = counts.get(t.capacity, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.hashes)

    # -- operations -------------------------------------------------------------------------
    def insert(self, key: int) -> None:
        """Insert ``key`` (absent) with a fresh random hash."""
        h = self.rng.getrandbits(HASH_BITS)
        self.hashes[key] = h
        if self.small is not None:
            if len(self.small) < GROUP_SLOTS:
                self.small.append(key)
                return
            self._grow_to_table()
        while not self._put(self._table_of(h), key, h):
            pass  # the table grew or split: find the key's table again

    def delete(self, key: int) -> None:
        del self.hashes[key]
        if self.small is not None:
            self.small.remove(key)
            return
        t, slot = self.where.pop(key)
        t.used -= 1
        t.keys[slot] = -1
        g = slot // GROUP_SLOTS * GROUP_SLOTS
        # A group with an empty slot ends every probe through it: the slot can simply be freed.
        if EMPTY in t.ctrl[g : g + GROUP_SLOTS]:
            t.ctrl[slot] = EMPTY
            t.growth_left += 1
        else:
            t.ctrl[slot] = DELETED

    # -- internals --------------------------------------------------------------------------
    def _table_of(self, h: int) -> _Table:
        if self.global_depth == 0:
            return self.directory[0]
        return self.directory[h >> (HASH_BITS - self.global_depth)]

    def _grow_to_table(self) -> None:
        assert self.small is not None
        keys, self.small = self.small, None
        t = _Table(2 * GROUP_SLOTS, 0, 0)
        self.directory = [t]
        for k in keys:
            self._place_unchecked(t, k, self.hashes[k])

    def _put(self, t: _Table, key: int, h: int) -> bool:
        """PutSlot for an absent key: False if the table had to grow or split first."""
        ctrl = t.ctrl
        mask = t.mask
        offset = (h >> 7) & mask
        index = 0
        first_deleted = -1
        while True:
            base = offset * GROUP_SLOTS
            slot = _first_free(ctrl, base)
            if slot >= 0:
                if ctrl[slot] == DELETED:
                    # Go takes the group's first free-or-deleted slot; a tombstone there means
                    # "keep probing", even if the group has an empty slot further on.
                    if first_deleted < 0:
                        first_deleted = slot
                else:
                    if first_deleted >= 0:
                        slot = first_deleted
                        t.growth_left += 1  # reusing a tombstone costs no growth
                    if t.growth_left == 0 and self.prune:
                        self._prune(t)
                    if t.growth_left > 0:
                        ctrl[slot] = FULL
                        t.keys[slot] = key
                        t.growth_left -= 1
                        t.used += 1
                        self.where[key] = (t, slot)
                        return True
                    self._rehash(t)
                    return False
            index += 1
            offset = (offset + index) & mask

    def _place_unchecked(self, t: _Table, key: int, h: int) -> None:
        """uncheckedPutSlot: the first free slot on the probe path of a table being built."""
        ctrl = t.ctrl
        mask = t.mask
        offset = (h >> 7) & mask
        index = 0
        while True:
            j = _first_free(ctrl, offset * GROUP_SLOTS)
            if j >= 0:
                ctrl[j] = FULL
                t.keys[j] = key
                t.growth_left -= 1
                t.used += 1
                self.where[key] = (t, j)
                return
            index += 1
            offset = (offset + index) & mask

    def _live_keys(self, t: _Table) -> list[int]:
        return [k for k, c in zip(t.keys, t.ctrl, strict=True) if c == FULL]

    def _rehash(self, t: _Table) -> None:
        if 2 * t.capacity <= MAX_TABLE_CAPACITY:
            grown = _Table(2 * t.capacity, t.local_depth, t.prefix)
            for k in self._live_keys(t):
                self._place_unchecked(grown, k, self.hashes[k])
            self._install([grown])
            return
        depth = t.local_depth + 1
        left = _Table(MAX_TABLE_CAPACITY, depth, t.prefix << 1)
        right = _Table(MAX_TABLE_CAPACITY, depth, (t.prefix << 1) | 1)
        bit = 1 << (HASH_BITS - depth)
        for k in self._live_keys(t):
            h = self.hashes[k]
            self._place_unchecked(right if h & bit else left, k, h)
        if t.local_depth == self.global_depth:
            # The directory doubles: every entry points at its table twice.
            self.directory = [x for x in self.directory for _ in (0, 1)]
            self.global_depth += 1
        self._install([left, right])

    def _install(self, new: list[_Table]) -> None:
        """Point the directory entries of each new table's prefix at it (replacing the old one)."""
        for t in new:
            span = 1 << (self.global_depth - t.local_depth)
            start = t.prefix * span
            self.directory[start : start + span] = [t] * span

    def _prune(self, t: _Table) -> None:
        """pruneTombstones: free the tombstones no key's probe path needs, if that wins ≥ 10 %."""
        if t.tombstones() * 10 < t.capacity:
            return
        ctrl = t.ctrl
        mask = t.mask
        groups = mask + 1
        needed = [False] * groups
        for g in range(groups):
            base = g * GROUP_SLOTS
            for j in range(base, base + GROUP_SLOTS):
                if ctrl[j] != FULL:
                    continue
                offset = (self.hashes[t.keys[j]] >> 7) & mask
                index = 0
                while offset != g:
                    ob = offset * GROUP_SLOTS
                    if ctrl[ob : ob + GROUP_SLOTS].count(FULL) != GROUP_SLOTS:
                        needed[offset] = True  # a tombstone this key's probe must walk past
                    index += 1
                    offset = (offset + index) & mask
            if EMPTY in ctrl[base : base + GROUP_SLOTS]:
                needed[g] = True
        free = [g for g in range(groups) if not needed[g]]
        count = sum(ctrl[g * GROUP_SLOTS : (g + 1) * GROUP_SLOTS].count(DELETED) for g in free)
        if count * 10 < t.capacity:
            return
        for g in free:
            for j in range(g * GROUP_SLOTS, (g + 1) * GROUP_SLOTS):
                if ctrl[j] == DELETED:
                    ctrl[j] = EMPTY
                    t.growth_left += 1
