"""Where a run's time goes beyond its phases: `mapquake run` of a scenario, end to end, step by step.

    sudo .venv/bin/python bench/run_overhead.py [--runs 3] [--scenario scenarios/quickstart.yaml]

Runs the CLI as users do (local backend, a subprocess per run, no progress output) and reads each
report's set-up steps (the run's journal records every step's seconds). Prints a Markdown table for
BENCHMARKS.md: the wall time of the whole command, the phases' sum, the overhead (the difference),
and the median of each step over the runs. Goal (issue 14): overhead at most 5 s for the quickstart.
Every run tears down what it made; the reports go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(scenario: Path, report_dir: Path) -> tuple[float, float, dict[str, float], int]:
    """(wall s, phases s, seconds per step, exit code) of one `mapquake run`."""
    argv = [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir),
            "--no-progress"]  # fmt: skip
    began, began_epoch = time.monotonic(), time.time()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    wall, ended_epoch = time.monotonic() - began, time.time()
    report = json.loads((report_dir / "report.json").read_text())
    phases = sum(p["duration_s"] for p in report["plan"]["phases"])
    steps: dict[str, float] = defaultdict(float)
    events = report["timeline"]["events"]
    # Outside the journal: the command's start-up (imports, scenario, preflight) and its end (report, trends).
    steps["before the first event (start-up, preflight)"] = events[0]["wall"] - began_epoch
    steps["after the last event (report, trend store, exit)"] = ended_epoch - events[-1]["wall"]
    for event in events:
        if event["name"] == "step":
            steps[event["data"]["step"]] += event["data"]["seconds"]
    return wall, phases, steps, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "quickstart.yaml")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("runs: 1..20")
    walls, overheads, codes = [], [], []
    per_step: dict[str, list[float]] = defaultdict(list)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            wall, phases, steps, code = one_run(args.scenario, Path(tmp) / f"run-{i}")
            walls.append(wall)
            overheads.append(wall - phases)
            codes.append(code)
            for name, seconds in steps.items():
                per_step[name].append(seconds)
            print(f"run {i}: wall {wall:.1f} s, phases {phases:.0f} s, exit {code}", file=sys.stderr)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"command: bench/run_overhead.py --runs {args.runs} --scenario {args.scenario.relative_to(REPO)}")
    print(f"exit codes: {codes}")
    print()
    print("| what | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    rows = [("whole command (wall)", walls), ("overhead beyond the phases", overheads)]
    rows += [(f"step: {name}", values) for name, values in per_step.items()]
    for name, values in rows:
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
