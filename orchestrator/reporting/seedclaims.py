"""Which claims of the seed article a run confirmed or refuted, derived from its check results.

Each store of the seed article carries one or more claims (shared/seed/NOTES.md).
A claim says what the article predicts; ``holds`` says whether that is true
for a target (its Go version decides some), the way the reference model and
the runtime see it. A run settles a claim through the checks about that
target:

- a passing ``model`` check means the heap behaved as the model says, so the
  run confirms the claim where the model agrees with the article and refutes
  it where it does not; a failing or inconclusive model check settles nothing
  (the observation matched neither);
- a ``crash`` check (racymap) and a ``recovery`` check (ringbuffer) observe
  the claimed behaviour directly: their pass or fail says which way it went.

No outcome is written here: the same table gives "confirms" on one run and
"refutes" on another, as the checks come out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _go_at_most(version: str, minor: int) -> bool:
    parts = version.removeprefix("go").split(".")
    return len(parts) >= 2 and parts[0] == "1" and parts[1].isdigit() and int(parts[1]) <= minor


@dataclass(frozen=True)
class SeedClaim:
    section: str
    stores: tuple[str, ...]
    claim: str
    truth: str
    kinds: tuple[str, ...]
    """Check kinds that can settle it."""
    holds: Callable[[dict[str, Any]], bool]
    """Model claims: whether the claim is true for a target (a plan target: store, go, options), per the model."""
    pass_means_holds: bool = True
    """For direct observations (crash, recovery): does a passing check show the claimed behaviour?"""
    users: tuple[str, ...] = ()
    """Load users that exercise the claim (none: any load does)."""


SEED_CLAIMS: tuple[SeedClaim, ...] = (
    SeedClaim(
        "§1, §2.1",
        ("mutexmap", "shardedmap"),
        "maps are hmap with 8-slot buckets, load factor 6.5, oldbuckets kept during incremental evacuation",
        "true for Go ≤1.23; Go ≥1.24 uses Swiss tables (groups of 8, load 7/8, no oldbuckets)",
        ("model",),
        lambda t: _go_at_most(t["go"], 23),
    ),
    SeedClaim(
        "§2.2",
        ("ptrcycle",),
        "a map[string]*Node cycle with cross links defeats the GC",
        "false: the tracing GC collects cycles; memory stays only while the map keeps nodes reachable",
        ("model",),
        lambda t: False,
        users=("DeleteChurnUser",),
    ),
    SeedClaim(
        "§2.3",
        ("syncmap",),
        "sync.Map LoadOrStore with missing keys copies read→dirty and doubles memory",
        "true for Go ≤1.23; Go ≥1.24 sync.Map is a hash-trie without read/dirty",
        ("model",),
        lambda t: _go_at_most(t["go"], 23),
        users=("SyncMapChurnUser",),
    ),
    SeedClaim(
        "§2.4",
        ("ifacemap",),
        "map[string]interface{} bloats the heap",
        "true in kind (boxing), the article's figures are illustrative",
        ("model",),
        lambda t: True,
    ),
    SeedClaim(
        "§2.4",
        ("structmap",),
        "typed struct values avoid interface boxing (the fix for ifacemap)",
        "true: no boxing allocation per value",
        ("model",),
        lambda t: True,
    ),
    SeedClaim(
        "§2.5",
        ("deleteretain",),
        "delete does not release a map's memory",
        "true: maps never shrink; rebuilding the map (rebuild_every) releases it",
        ("model",),
        lambda t: int(t.get("rebuild_every", 0)) == 0,
        users=("DeleteChurnUser",),
    ),
    SeedClaim(
        "§2.5",
        ("subslice",),
        "value slices keep their backing arrays alive",
        "true: a slice of a buffer pins the whole buffer; copying the value to its size (bytes.Clone) frees it",
        ("model",),
        lambda t: int(t.get("slice_buffer", 0)) > 0,
    ),
    SeedClaim(
        "§4.1",
        ("racymap",),
        "concurrent map writes crash the program",
        "true: the runtime detects them and dies with the unrecoverable 'fatal error: concurrent map writes'",
        ("crash",),
        lambda t: True,
    ),
    SeedClaim(
        "§4.4",
        ("ringbuffer",),
        "ring buffers stored by value in a map leak goroutines",
        "a real pattern: goroutines blocked on channels stay alive with what they reference",
        ("recovery",),
        lambda t: True,
        pass_means_holds=False,
    ),
)


@dataclass(frozen=True)
class Assessment:
    section: str
    target: str
    store: str
    go: str
    claim: str
    truth: str
    outcome: str
    """confirms, refutes, or not settled."""
    because: str
    """The check(s) that decided it."""


def _checks_about(
    claim: SeedClaim, target: dict[str, Any], plan_checks: dict[str, dict[str, Any]], results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    about = []
    for result in results:
        if result["kind"] not in claim.kinds:
            continue
        params = plan_checks.get(result["name"], {}).get("params", {})
        if result["kind"] == "model" and params.get("target") != target["name"]:
            continue
        if result["kind"] == "crash" and params.get("crash") != target["name"]:
            continue
        about.append(result)
    return about


def assess(report: dict[str, Any]) -> list[Assessment]:
    """Every seed claim the run's targets and load bear on, with what the checks made of it (pure).

    ``report`` is a report.json document (its ``plan`` and ``checks``).
    """
    plan = report.get("plan", {})
    plan_checks = {c["name"]: c for c in plan.get("checks", [])}
    out = []
    for target in plan.get("targets", []):
        for claim in SEED_CLAIMS:
            if target["store"] not in claim.stores:
                continue
            if claim.users and plan.get("load", {}).get("user") not in claim.users:
                continue
            checks = _checks_about(claim, target, plan_checks, report.get("checks", []))
            holds = claim.holds(target)
            outcome, because = "not settled", "no check of this run bears on it"
            passed = [c for c in checks if c["verdict"] == "pass"]
            failed = [c for c in checks if c["verdict"] == "fail"]
            if claim.kinds == ("model",):
                if passed and not failed:
                    outcome = "confirms" if holds else "refutes"
                    because = f"{', '.join(c['name'] for c in passed)} passed: the heap behaved as the model says"
                elif checks:
                    because = f"{', '.join(c['name'] for c in checks)}: {checks[0]['verdict']}, matched no prediction"
            elif failed or passed:
                shown = passed and not failed
                observed_claim = shown == claim.pass_means_holds
                outcome = "confirms" if observed_claim else "refutes"
                decided = failed or passed
                because = f"{', '.join(c['name'] for c in decided)} {decided[0]['verdict']}ed"
            elif checks:
                because = f"{', '.join(c['name'] for c in checks)}: inconclusive"
            out.append(
                Assessment(
                    claim.section,
                    target["name"],
                    target["store"],
                    target["go"],
                    claim.claim,
                    claim.truth,
                    outcome,
                    because,
                )
            )
    return out
