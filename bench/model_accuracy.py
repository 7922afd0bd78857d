"""Accuracy matrix of the reference model: predict vs measure on the real Go runtime.

    .venv/bin/python bench/model_accuracy.py [--go 1.26,1.23,1.27] [--counts 1,10,...] [--out docs/model-accuracy.md]

Two matrices: the TUNING types (the ones the model was checked against while it was
written) and the HELD_OUT types (never looked at while writing the model). For every
(type, entries, Go version) it measures single containers (each must fall inside the
predicted range) and the mean of many containers built side by side (the model's expected
value is compared with it). Writes a Markdown report with the median and worst error per Go
version and family, and the full table. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.errors import MapquakeError
from orchestrator.model import predict, swiss, syncmap
from orchestrator.model.gotypes import container_of
from orchestrator.model.measure import Measurement, Request, measure_many

TUNING = [
    "map[int64]int64",
    "map[string][32]byte",
    "map[string]any(int64)",
    "map[string]any(struct{Value [32]byte; Version uint64})",
    "map[string]struct{Value int64; Version uint64}",
    "map[string][]byte",
    "map[any]*int64",
    "map[int32]bool",
    "map[string]any(string)",
    "map[[16]byte]string",
    "[32]map[string][]byte",
    "sync.Map[string][32]byte",
    "sync.Map[int64]int64",
    "sync.Map[any]any",
]

HELD_OUT = [
    "map[uint16]float32",
    "map[string][200]byte",
    "map[struct{a int32; b string}]*struct{x int}",
    "map[[160]byte]int64",
    "map[string]struct{}",
    "map[float64]any(float64)",
    "map[complex128][3]byte",
    "map[string]any([]byte)",
    "map[int]map[string]int",
    "[8]map[int64]any(int64)",
    "sync.Map[string]any(int32)",
    "sync.Map[[2]int64]string",
]

COUNTS = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]
#: Single containers measured one by one: every one must fall inside the predicted range
#: (and, where the layout is deterministic, match to ±16 B). Small maps are cheap and their
#: randomness is large, so they get many.
SINGLES_UP_TO_100 = 64
SINGLES_UP_TO_1000 = 16
SINGLES_TEXT = f"{SINGLES_UP_TO_100} single runs for N ≤ 100, {SINGLES_UP_TO_1000} for N ≤ 1000, one above"
#: The error of the model's expected value is taken against the mean of this many containers
#: built side by side (each its own hash seed): enough that the mean's standard error is a
#: small fraction of the bounds even where one container varies by ±20% (sync.Map, N = 10).
REPLICA_ENTRIES = 200_000
MAX_REPLICAS = 16_384
REPLICAS_TEXT = f"mean of min({MAX_REPLICAS}, {REPLICA_ENTRIES:,} / N) containers"


def singles(n: int) -> int:
    if n <= 100:
        return SINGLES_UP_TO_100
    return SINGLES_UP_TO_1000 if n <= 1000 else 1


def replicas(n: int) -> int:
    return max(1, min(MAX_REPLICAS, REPLICA_ENTRIES // max(n, 1)))


@dataclass
class Row:
    matrix: str
    go: str
    family: str
    go_type: str
    entries: int
    predicted: int
    low: int
    high: int
    measured: int  # the first single run
    given_tables: int | None
    pred_cum: int
    measured_cum: int  # per container, from the replicated measurement
    mean: float = 0.0  # per container over `replicas` containers built side by side
    replicas: int = 1
    singles: int = 1
    single_sd: float = 0.0  # standard deviation of the single runs (0 with one run)
    all_in_range: bool = True
    worst_single: float = 0.0  # the single run's error farthest from 0
    worst_abs: int = 0  # max |predicted - single run|
    worst_given: int | None = None  # max |given - single run|

    @property
    def error(self) -> float:
        """The model's error: expected value against the mean of the replicas."""
        return (self.predicted - self.mean) / self.mean if self.mean else 0.0

    @property
    def standard_error(self) -> float:
        """Relative standard error of ``mean``, estimated from the single runs' spread."""
        return self.single_sd / math.sqrt(self.replicas) / self.mean if self.mean else 0.0

    @property
    def cum_error(self) -> float:
        return (self.pred_cum - self.measured_cum) / self.measured_cum if self.measured_cum else 0.0


def _given_tables(go_type: str, m: Measurement) -> int | None:
    """The model's exact answer given the realised randomness (table count / trie nodes)."""
    c = container_of(go_type)
    if c.kind == "syncmap":
        nodes = m.diagnostics.get("trie_nodes")
        if nodes is None:
            return None
        return syncmap.live_given_nodes(c.key, c.elem, m.entries, trie_nodes=int(nodes))
    caps = m.diagnostics.get("capacities")
    if c.kind != "map" or c.shards != 1 or ("dir_len" not in m.diagnostics and caps is None):
        if c.kind == "map" and c.shards == 1 and m.diagnostics.get("tables") is None and m.entries <= 8:
            return swiss.live_given_tables(c.key, c.elem, m.entries, dir_len=0, capacities={})
        return None
    return swiss.live_given_tables(
        c.key,
        c.elem,
        m.entries,
        dir_len=int(m.diagnostics.get("dir_len", 0)),
        capacities={int(k): v for k, v in (caps or {}).items()},
    )


def run(matrix: str, types: list[str], go: str, counts: list[int], log: list[str]) -> list[Row]:
    rows = []
    for t in types:
        c = container_of(t)
        ns = [n for n in counts if n <= c.key.cardinality()]
        t0 = time.time()
        reqs = [Request(t, n) for n in ns for _ in range(singles(n))]
        reqs += [Request(t, n, replicas=replicas(n)) for n in ns]
        try:
            ms = measure_many(reqs, go_version=go)
        except MapquakeError as err:
            log.append(f"{matrix} {go} {t}: {err}")
            print(f"  {t}: FAILED {err}", file=sys.stderr)
            continue
        for n in ns:
            sample = [m for m, r in zip(ms, reqs, strict=True) if m.entries == n and r.replicas == 1]
            batch = next(m for m, r in zip(ms, reqs, strict=True) if m.entries == n and r.replicas == replicas(n))
            if replicas(n) == 1:
                batch = sample[0]
            p = predict(t, n, go_version=go)
            lo, hi = p.live_bytes_range
            givens = [_given_tables(t, x) if go not in ("1.22", "1.23") else None for x in sample]
            worst = max(sample, key=lambda x: abs(p.live_bytes - x.live_bytes))
            rows.append(
                Row(matrix, go, p.family, t, n, p.live_bytes, lo, hi, sample[0].live_bytes, givens[0],
                    p.cumulative_bytes, batch.cumulative_bytes,
                    mean=batch.live_bytes, replicas=batch.replicas, singles=len(sample),
                    single_sd=statistics.stdev(x.live_bytes for x in sample) if len(sample) > 1 else 0.0,
                    all_in_range=all(lo <= x.live_bytes <= hi for x in sample),
                    worst_single=(p.live_bytes - worst.live_bytes) / worst.live_bytes if worst.live_bytes else 0.0,
                    worst_abs=abs(p.live_bytes - worst.live_bytes),
                    worst_given=None if givens[0] is None else max(
                        abs(g - x.live_bytes) for g, x in zip(givens, sample, strict=True) if g is not None))
            )  # fmt: skip
        print(f"  {go} {t}: {len(ms)} measurements in {time.time() - t0:.1f}s", file=sys.stderr)
    return rows


def _pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


def summarize(rows: list[Row]) -> list[str]:
    out = [
        "| matrix | Go | family | cases | median abs error | worst error | single runs in range "
        "| worst single run | cumulative median abs error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r.matrix, r.go, r.family) for r in rows}, key=lambda k: (k[0] != "tuning", k[1], k[2]))
    for key in keys:
        sel = [r for r in rows if (r.matrix, r.go, r.family) == key]
        errs = [abs(r.error) for r in sel]
        worst = max(sel, key=lambda r: abs(r.error))
        cum = statistics.median(abs(r.cum_error) for r in sel)
        worst_single = max(sel, key=lambda r: abs(r.worst_single))
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {len(sel)} | {statistics.median(errs) * 100:.2f}% | "
            f"{_pct(worst.error)} ({worst.go_type}, N={worst.entries}) | "
            f"{sum(r.all_in_range for r in sel)}/{len(sel)} | "
            f"{_pct(worst_single.worst_single)} ({worst_single.go_type}, N={worst_single.entries}) | {cum * 100:.2f}% |"
        )
    return out


def _off(rows: list[Row], what: str = "error") -> str:
    if not rows:
        return ""
    return " — off: " + ", ".join(f"{r.go_type} N={r.entries} ({_pct(getattr(r, what))})" for r in rows)


def checks(rows: list[Row]) -> list[str]:
    """The issue's done-when bounds, evaluated on these rows, one block per Go version."""
    lines = []
    for go in sorted({r.go for r in rows}, key=lambda v: tuple(map(int, v.split(".")))):
        lines += [f"Go {go}:", ""]
        lines += _checks_for([r for r in rows if r.go == go])
        lines.append("")
    return lines


def _checks_for(rows: list[Row]) -> list[str]:
    lines = []
    swiss_rows = [r for r in rows if r.family == "swiss"]
    if swiss_rows:
        det = [r for r in swiss_rows if r.entries <= 1000]
        rnd = [r for r in swiss_rows if r.entries > 1000]
        bad_det = [r for r in det if r.worst_abs > 16 * max(1, container_of(r.go_type).shards)]
        bad_rnd = [r for r in rnd if not r.all_in_range or abs(r.error) > 0.005]
        far = [r for r in rnd if abs(r.worst_single) > 0.005]
        off_det = ", ".join(f"{r.go_type} N={r.entries} ({r.worst_abs} B)" for r in bad_det)
        lines.append(
            f"* Swiss, deterministic cases (N ≤ 1000; {SINGLES_TEXT}): "
            f"{len(det) - len(bad_det)}/{len(det)} exact to ±16 B per map in every run"
            + (f" — off: {off_det}" if off_det else "")
        )
        lines.append(
            f"* Swiss, random cases (N > 1000): {len(rnd) - len(bad_rnd)}/{len(rnd)} inside the range (the single "
            f"run) and within 0.5% ({REPLICAS_TEXT})" + _off(bad_rnd) + f"; single runs more than 0.5% from the "
            f"expected value: {len(far)}/{len(rnd)}" + ("" if not far else " (" + ", ".join(
                f"{r.go_type} N={r.entries} {_pct(r.worst_single)}" for r in far) + ")")
        )  # fmt: skip
        given = [r for r in swiss_rows if r.given_tables is not None]
        exact_given = [r for r in given if r.worst_given is not None and r.worst_given <= 16]
        lines.append(
            f"* Swiss, given the realised table count (read via unsafe): {len(exact_given)}/{len(given)} "
            "exact to ±16 B in every run"
        )
    trie = [r for r in rows if r.family == "sync.Map hash-trie"]
    if trie:
        trie_given = [r for r in trie if r.given_tables is not None]
        trie_exact = [r for r in trie_given if r.worst_given is not None and r.worst_given <= 16]
        lines.append(
            f"* sync.Map hash-trie, given the realised indirect-node count: {len(trie_exact)}/{len(trie_given)} "
            "exact to ±16 B in every single run"
        )
        bad_trie = [r for r in trie if abs(r.error) > 0.01]
        lines.append(
            f"* sync.Map hash-trie within 1% ({REPLICAS_TEXT}): {len(trie) - len(bad_trie)}/{len(trie)}"
            + _off(bad_trie)
            + f"; worst {_pct(max((r.error for r in trie), key=abs))}; "
            f"every single run inside the range: {sum(r.all_in_range for r in trie)}/{len(trie)}"
        )
    for fam in ("classic hmap", "sync.Map read/dirty"):
        sel = [r for r in rows if r.family == fam]
        if not sel:
            continue
        errs = [abs(r.error) for r in sel]
        worst = max(sel, key=lambda r: abs(r.error))
        worst_single = max(sel, key=lambda r: abs(r.worst_single))
        lines.append(
            f"* {fam} ({REPLICAS_TEXT}): median {statistics.median(errs) * 100:.2f}% (bound 3%), worst "
            f"{max(errs) * 100:.2f}% (bound 6%; {worst.go_type} N={worst.entries}); every single run inside "
            f"the range: {sum(r.all_in_range for r in sel)}/{len(sel)}; the single run farthest from the "
            f"expected value: {_pct(worst_single.worst_single)} ({worst_single.go_type} N={worst_single.entries})"
        )
    return lines


def write_report(rows: list[Row], path: Path, log: list[str], elapsed: float) -> None:
    lines = [
        "# Model accuracy: predict vs measure",
        "",
        f"Generated by `bench/model_accuracy.py` on {datetime.date.today().isoformat()} "
        f"({elapsed / 60:.1f} min; linux/amd64, GOMAXPROCS=1, GC off).",
        "Go versions measured: " + ", ".join(sorted({r.go for r in rows})) + ".",
        "",
        "What is compared. The model answers an *expected value* and a *range*. Where a container's",
        "layout is random (each map and sync.Map draws its own hash seed: trie nodes, Swiss table",
        "splits, classic overflow buckets), one container can sit anywhere in the range: a sync.Map",
        "of 10 keys varies by ±20% from run to run. So:",
        "",
        f"* **error** = (predicted − mean) / mean, where mean is the live bytes per container of the "
        f"{REPLICAS_TEXT} built side by side in one measurement (HeapAlloc delta after runtime.GC ÷ count);",
        "  `± se` is its standard error estimated from the single runs;",
        f"* **single runs** ({SINGLES_TEXT}) are single containers measured one at a time: each must lie",
        "  inside the predicted range, and deterministic layouts must match to ±16 B.",
        "",
        "The *tuning* matrix holds the types the model was checked against while it was written; the",
        "*held-out* matrix holds types that were not looked at until the model was done.",
        "",
        "## Summary",
        "",
        *summarize(rows),
        "",
        "## Done-when bounds (issue 3)",
        "",
        *checks(rows),
        "",
    ]
    if log:
        lines += ["## Failures", "", *[f"* {x}" for x in log], ""]
    lines += [
        "## All cases",
        "",
        "`given` is the model's answer once the realised randomness is known (Swiss table count and",
        "capacities, sync.Map trie nodes, read from the measured container through unsafe), minus measured,",
        "worst over the single runs.",
        "",
        "| matrix | Go | type | N | predicted | range | mean | replicas | error ± se | single runs | "
        "in range | worst single | given |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        given = "" if r.given_tables is None else f"{r.worst_given} B"
        lines.append(
            f"| {r.matrix} | {r.go} | `{r.go_type}` | {r.entries} | {r.predicted} | {r.low} … {r.high} | "
            f"{r.mean:.0f} | {r.replicas} | {_pct(r.error)} ± {r.standard_error * 100:.2f}% | {r.singles} | "
            f"{'yes' if r.all_in_range else 'NO'} | {_pct(r.worst_single)} | {given} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go", default="1.26,1.23,1.27")
    ap.add_argument("--counts", default=",".join(map(str, COUNTS)))
    ap.add_argument("--matrix", choices=["tuning", "held-out", "both"], default="both")
    ap.add_argument("--out", default="docs/model-accuracy.md")
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    counts = [int(float(c)) for c in args.counts.split(",")]
    rows: list[Row] = []
    log: list[str] = []
    t0 = time.time()
    for go in args.go.split(","):
        if args.matrix in ("tuning", "both"):
            rows += run("tuning", TUNING, go, counts, log)
        if args.matrix in ("held-out", "both"):
            rows += run("held-out", HELD_OUT, go, counts, log)
    write_report(rows, Path(args.out), log, time.time() - t0)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    print("\n".join([*summarize(rows), "", *checks(rows)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
