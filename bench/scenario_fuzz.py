"""Fuzz scenario input: mutated shipped scenarios through validate and run --dry-run, in-process.

    .venv/bin/python bench/scenario_fuzz.py --documents 20000 --seed 1

The generator is tests/scenario_fuzz.py (the unit suite runs 1000 documents of it).
Prints one Markdown table: documents, valid/invalid, internal errors, slowest document,
peak RSS, wall time; then the first internal errors, if any. Exit 1 when there is an
internal error or a document took over 10 s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scenario_fuzz import describe, fuzz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--documents", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    step = max(1, args.documents // 10)
    r = fuzz(
        args.documents,
        args.seed,
        progress=lambda n: print(f"  {n + 1}", file=sys.stderr) if (n + 1) % step == 0 else None,
    )
    print("| documents | seed | valid | invalid | internal errors | slowest document | peak RSS | wall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r.documents} | {args.seed} | {r.valid} | {r.invalid} | {len(r.internal_errors)} | "
        f"{r.slowest_s:.2f} s | {r.peak_rss_mb:.0f} MB | {r.seconds:.0f} s |"
    )
    for doc, tb in r.internal_errors[:5]:
        print(f"\ninternal error, {describe(doc)}\n{tb}")
    return 1 if r.internal_errors or r.slowest_s > 10 else 0


if __name__ == "__main__":
    sys.exit(main())
