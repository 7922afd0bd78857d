"""Where a run's time goes beyond its phases: `mapquake run` of a scenario, end to end, step by step.

    sudo .venv/bin/python bench/run_overhead.py [--runs 3] [--scenario scenarios/quickstart.yaml] [--vs REF]

Runs the CLI as users do (local backend, a subprocess per run, no progress output) and reads each
report's set-up steps (the run's journal records every step's seconds). Prints a Markdown table for
BENCHMARKS.md: the wall time of the whole command, the phases' sum, the overhead (the difference),
and the median of each step over the runs. Goal (issue 14): overhead at most 5 s for the quickstart.
Every run tears down what it made; the reports go to a temporary directory. ``--vs REF`` also runs a
git ref (a temporary worktree, removed at the end), alternating with this checkout, for a side-by-side
table from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(scenario: Path, report_dir: Path, checkout: Path) -> tuple[float, float, dict[str, float], int]:
    """(wall s, phases s, seconds per step, exit code) of one `mapquake run` of the code in ``checkout``."""
    argv = [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir),
            "--no-progress"]  # fmt: skip
    # `python -m` puts the working directory first on sys.path: the checkout's code runs.
    env = {**os.environ, "MAPQUAKE_BIN_DIR": str(checkout / "bin")}
    began, began_epoch = time.monotonic(), time.time()
    done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=600, check=False)
    wall, ended_epoch = time.monotonic() - began, time.time()
    if not (report_dir / "report.json").exists():
        raise SystemExit(f"{checkout}: the run wrote no report (exit {done.returncode}):\n{done.stderr[-2000:]}")
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


@dataclass
class Series:
    """The runs of one checkout."""

    label: str
    checkout: Path
    walls: list[float] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    per_step: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """A temporary git worktree of ``ref`` (its Go binaries built on its first run), removed after."""
    with tempfile.TemporaryDirectory(prefix="mapquake-vs-") as tmp:
        path = Path(tmp) / "checkout"
        subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
        try:
            # Its Go binaries now, so the first timed run does not build them.
            build = "from orchestrator.targets.build import ensure_built; ensure_built()"
            env = {**os.environ, "MAPQUAKE_BIN_DIR": str(path / "bin")}
            subprocess.run([sys.executable, "-c", build], cwd=path, env=env, check=True)
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "quickstart.yaml")
    parser.add_argument("--vs", metavar="REF", help="also run this git ref (a temporary worktree), alternating")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("runs: 1..20")
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        series = [Series("this checkout", REPO)]
        if args.vs:
            series.append(Series(args.vs, stack.enter_context(worktree(args.vs))))
        for i in range(args.runs):
            for k, s in enumerate(series):  # alternating, so both see the same machine
                wall, phases, steps, code = one_run(args.scenario.resolve(), tmp / f"{k}-{i}", s.checkout)
                s.walls.append(wall)
                s.overheads.append(wall - phases)
                s.codes.append(code)
                for name, seconds in steps.items():
                    s.per_step[name].append(seconds)
                print(f"{s.label} run {i}: wall {wall:.1f} s, phases {phases:.0f} s, exit {code}", file=sys.stderr)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    vs = f" --vs {args.vs}" if args.vs else ""
    print(f"command: bench/run_overhead.py --runs {args.runs} --scenario {args.scenario}{vs}")
    print("exit codes: " + ", ".join(f"{s.label} {s.codes}" for s in series))
    print()
    print('Seconds, median (min-max). "tearing down" includes drawing the report\'s plots, which overlap it.')
    print()
    print("| what | " + " | ".join(s.label for s in series) + " |")
    print("|---|" + "---:|" * len(series))
    rows = ["whole command (wall)", "overhead beyond the phases"]
    rows += list(dict.fromkeys(name for s in series for name in s.per_step))
    for name in rows:
        cells = []
        for s in series:
            values = {"whole command (wall)": s.walls, "overhead beyond the phases": s.overheads}.get(name)
            cells.append(_cell(values if values is not None else s.per_step.get(name, [])))
        label = name if name.startswith(("whole", "overhead")) else f"step: {name}"
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
