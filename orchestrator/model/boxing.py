"""Interface boxing: what converting a value of type T to ``any`` allocates (§5 of the research).

The compiler picks the conversion path from T's shape (``walk/convert.go dataWord``):
pointer-shaped and zero-size values, bools and one-byte integers never allocate;
2/4/8-byte scalars go through ``convT16/32/64``, which allocate a tiny object unless the
bit pattern is < 256; strings and slices allocate their 16/24-byte header; anything else
is copied into a fresh object of its own size. The model assumes values whose bit
pattern is ≥ 256 and non-empty strings/slices (the usual case for real data).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model.alloc import alloc, is_tiny
from orchestrator.model.gotypes import GoType


@dataclass(frozen=True)
class Box:
    """One boxing: ``size`` bytes requested, ``tiny`` if it goes to a shared 16-B block."""

    path: str
    size: int
    has_pointers: bool

    @property
    def tiny(self) -> bool:
        return is_tiny(self.size, self.has_pointers)

    @property
    def bytes(self) -> int:
        """Heap bytes for one box outside a tiny block (tiny boxes are amortised by the caller)."""
        return 0 if self.size == 0 else alloc(self.size, self.has_pointers)


NO_BOX = Box("none", 0, False)


def box(t: GoType) -> Box:
    """The allocation made when a (non-constant, escaping) value of type ``t`` becomes ``any``."""
    if t.pointer_shaped:
        return Box("direct", 0, False)
    if t.size == 0:
        return Box("zerobase", 0, False)
    sole = t.sole_component()
    if sole is not None and sole.kind == "basic" and (sole.name == "bool" or (t.size == 1 and sole.is_integer)):
        return Box("staticuint64s", 0, False)
    if t.size == 2 and t.align == 2:
        return Box("convT16", 2, False)
    if t.size == 4 and t.align == 4 and not t.has_pointers:
        return Box("convT32", 4, False)
    if t.size == 8 and t.align == 8 and not t.has_pointers:
        return Box("convT64", 8, False)
    if sole is not None and sole.kind == "string":
        return Box("convTstring", 16, True)
    if sole is not None and sole.kind == "slice":
        return Box("convTslice", 24, True)
    if t.has_pointers:
        return Box("convT", t.size, True)
    return Box("convTnoptr", t.size, False)


def slot_box(t: GoType) -> Box:
    """Boxing done on insert for a container slot of type ``t`` (only ``any(T)`` boxes)."""
    if t.kind == "interface" and t.boxed is not None:
        return box(t.boxed)
    return NO_BOX
