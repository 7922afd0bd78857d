"""When each fault of a scenario is applied and healed: the one place the rule lives (pure).

A fault is applied at the start of the phase that lists it and healed at that phase's end, except:

- a fault the next phase lists identically stays in place across the boundary (so one cut can span
  phases that differ only in load, e.g. a quiet phase to take a clean heap sample in); it heals at
  the end of the last phase of the run of identical listings. Identical means equal specs: the same
  fields once defaults are applied and durations parsed (``mode: drop`` written or left out, ``1s``
  or ``1000ms``, are the same fault);
- a fault with its own clock (``pause`` with ``for``) heals on that clock and is never carried;
- a killed replica stays down: a ``kill`` is never healed, and listing it again in the next phase
  keeps it, rather than killing again.

The run lifecycle and ``mapquake run --dry-run`` both read this schedule, so what the dry run
prints is what the run does. Fault ids are values (``FaultId``), never parsed back from strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.scenario.spec import FaultSpec, KillFault, PauseFault, PhaseSpec


@dataclass(frozen=True, order=True)
class FaultId:
    """A fault by where the scenario lists it first: phase name and index in that phase's faults."""

    phase: str
    index: int

    def __str__(self) -> str:
        return f"{self.phase}.{self.index}"


@dataclass(frozen=True)
class PhaseFaults:
    """What happens to faults at one phase's boundaries."""

    phase: str
    apply: tuple[FaultId, ...]
    """Applied at the phase's start (ids of this phase)."""
    carried: dict[int, FaultId] = field(default_factory=dict)
    """Index in this phase's faults -> the fault from an earlier phase still in place for it."""
    heal: tuple[FaultId, ...] = ()
    """Healed at the phase's end (applied here or carried into here)."""
    continues: tuple[FaultId, ...] = ()
    """In place at the phase's end and kept into the next phase."""


def carries_over(fault: FaultSpec) -> bool:
    """Whether an identical listing in the next phase keeps this fault in place (see the module doc)."""
    return not (isinstance(fault, PauseFault) and fault.resume_after is not None)


def heals_at_phase_end(fault: FaultSpec) -> bool:
    """Kills never heal; a ``for`` heals on its own clock (the phase end only stops it if still due)."""
    return not isinstance(fault, KillFault)


def fault_schedule(phases: Sequence[PhaseSpec]) -> tuple[PhaseFaults, ...]:
    """The schedule for ``phases``, in order (pure)."""
    out: list[PhaseFaults] = []
    # Faults in place at the current phase's start: id -> its spec, in the order they were applied.
    in_place: dict[FaultId, FaultSpec] = {}
    for index, phase in enumerate(phases):
        carried = _match_carried(in_place, phase)
        apply = tuple(FaultId(phase.name, i) for i in range(len(phase.faults)) if i not in carried)
        present = {fid: in_place[fid] for fid in carried.values()}
        present.update({fid: phase.faults[fid.index] for fid in apply})
        following = phases[index + 1] if index + 1 < len(phases) else None
        continuing = _match_carried(present, following) if following is not None else {}
        continues = tuple(continuing.values())
        heal = tuple(fid for fid, spec in present.items() if fid not in continues and heals_at_phase_end(spec))
        out.append(PhaseFaults(phase.name, apply, carried, heal, continues))
        in_place = {fid: present[fid] for fid in continues}
    return tuple(out)


def _match_carried(in_place: dict[FaultId, FaultSpec], phase: PhaseSpec) -> dict[int, FaultId]:
    """Pair each fault in place with the first not yet paired identical listing in ``phase``."""
    matched: dict[int, FaultId] = {}
    for fid, spec in in_place.items():
        if not carries_over(spec):
            continue
        for i, listed in enumerate(phase.faults):
            if i not in matched and listed == spec:
                matched[i] = fid
                break
    return matched
