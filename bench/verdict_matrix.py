"""The verdict-truth matrix: how often mapquake's exit code is right, healthy and regressed, case by case.

    sudo .venv/bin/python bench/verdict_matrix.py [--runs 10] [--cases A,B] [--busy 2] [--out DIR]

Runs `mapquake run` as users do (local backend, a subprocess per run) for every case, ``--runs`` times,
the cases interleaved so that each sees the same machine over time. A case is a scenario, the
``--set`` overrides that seed a regression (none for a healthy case), and the verdict a release
gate needs: healthy cases must pass (a fail is a **false alarm**), regressions must fail on the check
meant to catch them (a pass is a **miss**); an inconclusive run is counted apart, as is a fail on a
check other than the one meant (a regression still gated, but not for the reason it was seeded).

The cases: every shipped scenario in scenarios/ (healthy), ringbuffer-partition with the replication
queue unbounded, and the user-style sessions service (bench/services/sessions): expiring sessions with
the default Go collector and an idle replica, a growing cache with the GC handler, a key in four maps,
and its seeded regressions (a leak outside the map, entries that never expire, values pinning their
request buffers, a goroutine per write). ``--list`` prints them.

``--busy N`` starts N busy-loop processes beside each run (each ends by itself after the run's time
bound and is stopped by pid when the run ends): the matrix on a machine that is not quiet. Every run
gets its own state directory and trend store and is followed by `mapquake cleanup`. Writes
``matrix.md`` (machine, date, command, the table) and ``matrix.json`` (every run: case, expected
verdict, exit code, verdict, the failing checks' summaries, seconds) to ``--out``, with each run's
report.json under ``runs/``; prints the table. ``--append`` adds the runs to those already in
``--out`` (the header lists every invocation), so a matrix can be filled over several sittings.
Exits 1 when any run was a false alarm or a miss.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SESSIONS = REPO / "bench" / "services" / "sessions" / "scenarios"
RUN_TIMEOUT_S = 900.0
"""One run's bound (build, phases, report); the busy loops end by themselves after it too."""
EXIT_VERDICT = {0: "pass", 1: "fail", 2: "invalid", 3: "error", 4: "inconclusive"}


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a scenario, the overrides that seed a regression, the verdict expected."""

    name: str
    scenario: Path
    expect: str  # "pass" or "fail"
    overrides: tuple[str, ...] = ()
    catches: tuple[str, ...] = ()  # a regression: the checks meant to catch it (any one failing is enough)
    what: str = ""


def _bug(name: str) -> tuple[str, ...]:
    """The override that seeds the sessions service's regression ``name`` (its args' slot 2 is --bug)."""
    return (f"targets.0.args.2=--bug={name}",)


def cases() -> list[Case]:
    """Every case, shipped scenarios first (found in scenarios/, so a new one is in the matrix at once)."""
    found = [
        Case(f"shipped-{p.stem}", p, "pass", what="shipped scenario, healthy")
        for p in sorted((REPO / "scenarios").glob("*.yaml"))
    ]
    return [
        *found,
        Case(
            "ringbuffer-unbounded",
            REPO / "scenarios" / "ringbuffer-partition.yaml",
            "fail",
            ("targets.0.replicate.queue=unbounded",),
            ("backlog-memory-as-designed", "backlog-stays-within-its-bound"),
            "replication queue unbounded",
        ),
        Case(
            "sessions-expire",
            SESSIONS / "expire.yaml",
            "pass",
            what="expiring map[string]*session, default Go collector, idle replica, under load and after a pause",
        ),
        Case("sessions-keep", SESSIONS / "keep.yaml", "pass", what="growing map[string]*session cache, GC handler"),
        Case("sessions-maps4", SESSIONS / "maps4.yaml", "pass", what="each key in four maps, map: '*'"),
        Case(
            "sessions-leak-outside",
            SESSIONS / "expire.yaml",
            "fail",
            _bug("leak-outside"),
            ("heap-under-load", "heap-after-pause"),
            "a global slice keeps every request body",
        ),
        Case(
            "sessions-never-expire",
            SESSIONS / "expire.yaml",
            "fail",
            _bug("never-expire"),
            ("sessions-within-bound",),
            "expiry disabled: entries pass their bound",
        ),
        Case(
            "sessions-goroutine-leak",
            SESSIONS / "expire.yaml",
            "fail",
            _bug("goroutine-leak"),
            ("goroutines-bounded",),
            "a goroutine per write that never exits",
        ),
        Case(
            "sessions-pin",
            SESSIONS / "keep.yaml",
            "fail",
            _bug("pin"),
            ("heap-after-pause",),
            "each value pins its 4 KiB request buffer",
        ),
    ]


@dataclass
class RunResult:
    case: str
    run: int
    expected: str
    exit_code: int
    verdict: str
    outcome: str  # ok, false-alarm, miss, inconclusive, wrong-check, error
    failing: list[dict[str, str]]  # the failing (or inconclusive) checks: name, verdict, summary
    seconds: float
    load_before: float
    load_after: float
    reason: str = ""
    report: str = ""
    busy: int = 0


def outcome(case: Case, exit_code: int, failing: Sequence[dict[str, str]]) -> str:
    """How a run's exit code measures against the case's expectation."""
    verdict = EXIT_VERDICT.get(exit_code, "error")
    if verdict == "inconclusive":
        return "inconclusive"
    if verdict not in ("pass", "fail"):
        return "error"
    if case.expect == "pass":
        return "ok" if verdict == "pass" else "false-alarm"
    if verdict == "pass":
        return "miss"
    failed = {f["name"] for f in failing if f["verdict"] == "fail"}
    return "ok" if not case.catches or failed & set(case.catches) else "wrong-check"


@contextlib.contextmanager
def busy_loops(count: int, seconds: float) -> Iterator[list[int]]:
    """``count`` busy-loop processes, each ending by itself after ``seconds``; stopped by pid on exit."""
    loop = f"import time\nend = time.monotonic() + {seconds:.0f}\nwhile time.monotonic() < end:\n    pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def one_run(case: Case, index: int, work: Path, keep: Path, busy: int) -> RunResult:
    """One `mapquake run` of ``case``, with ``busy`` busy loops beside it; its report.json kept in ``keep``."""
    run_dir = work / f"{case.name}-{index}"
    env = {
        **os.environ,
        "MAPQUAKE_STATE_DIR": str(run_dir / "state"),
        "MAPQUAKE_TREND_STORE": str(run_dir / "trends.db"),
    }
    report_dir = run_dir / "report"
    argv = [sys.executable, "-m", "orchestrator.cli", "run", str(case.scenario), "--report-dir", str(report_dir),
            "--no-progress"]  # fmt: skip
    for override in case.overrides:
        argv += ["--set", override]
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    output = ""
    try:
        with busy_loops(busy, RUN_TIMEOUT_S + 60):
            done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, output = -1, f"the run took over {RUN_TIMEOUT_S:.0f} s and was stopped"
    finally:
        subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], cwd=REPO, env=env, capture_output=True,
                       timeout=120, check=False)  # fmt: skip
    seconds = time.monotonic() - began
    failing: list[dict[str, str]] = []
    reason, kept = "", ""
    report_path = report_dir / "report.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        failing = [
            {"name": c["name"], "verdict": c["verdict"], "summary": c["summary"]}
            for c in report.get("checks", [])
            if c["verdict"] != "pass"
        ]
        reason = str(report.get("reason") or "")
        keep.mkdir(parents=True, exist_ok=True)
        kept_path = keep / f"{case.name}-{index}.json"
        shutil.copyfile(report_path, kept_path)
        kept = str(kept_path)
    elif code != 0:
        reason = output.strip().splitlines()[-1] if output.strip() else f"exit {code}, no output"
    shutil.rmtree(run_dir, ignore_errors=True)
    return RunResult(
        case=case.name,
        run=index,
        expected=case.expect,
        exit_code=code,
        verdict=EXIT_VERDICT.get(code, "error"),
        outcome=outcome(case, code, failing),
        failing=failing,
        seconds=round(seconds, 1),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        reason=reason,
        report=kept,
        busy=busy,
    )


@dataclass
class Row:
    """The matrix's row for one case."""

    case: Case
    results: list[RunResult] = field(default_factory=list)

    def count(self, what: str) -> int:
        return sum(1 for r in self.results if r.outcome == what)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.name,
            "scenario": str(self.case.scenario.relative_to(REPO)),
            "overrides": list(self.case.overrides),
            "expected": self.case.expect,
            "catches": list(self.case.catches),
            "what": self.case.what,
            "runs": len(self.results),
            "verdicts": dict(Counter(r.verdict for r in self.results)),
            "ok": self.count("ok"),
            "false_alarms": self.count("false-alarm"),
            "misses": self.count("miss"),
            "inconclusive": self.count("inconclusive"),
            "wrong_check": self.count("wrong-check"),
            "errors": self.count("error"),
            "median_s": round(statistics.median(r.seconds for r in self.results), 1) if self.results else None,
        }


def _failing_note(row: Row) -> str:
    """The checks that did not pass over the row's runs (for a regression: what caught it), counted."""
    names: Counter[str] = Counter()
    for r in row.results:
        for f in r.failing:
            names[f"{f['name']} {f['verdict']}"] += 1
        if not r.failing and r.outcome == "error":
            names[f"error: {r.reason[:80]}"] += 1
    return ", ".join(f"{name} ×{n}" for name, n in names.most_common())


def table(rows: Sequence[Row]) -> str:
    """The Markdown table: one line per case, then the totals."""
    head = (
        "| case | expected | runs | pass | fail | inconclusive | error | false alarms | misses | median s | checks |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        d = row.as_dict()
        v = d["verdicts"]
        misses = f"{d['misses']}" + (f" (+{d['wrong_check']} other check)" if d["wrong_check"] else "")
        lines.append(
            f"| {d['case']} | {d['expected']} | {d['runs']} | {v.get('pass', 0)} | {v.get('fail', 0)} | "
            f"{d['inconclusive']} | {d['errors']} | {d['false_alarms']} | {misses} | {d['median_s']} | "
            f"{_failing_note(row)} |"
        )
    total = {k: sum(r.as_dict()[k] for r in rows) for k in ("runs", "false_alarms", "misses", "inconclusive", "errors")}
    lines.append(
        f"| **all** | | {total['runs']} | | | {total['inconclusive']} | {total['errors']} | "
        f"{total['false_alarms']} | {total['misses']} | | |"
    )
    return head + "\n".join(lines) + "\n"


def select(names: str | None, available: Sequence[Case]) -> list[Case]:
    """The cases named in ``names`` (comma-separated), in the matrix's order; all when None."""
    if not names:
        return list(available)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {c.name for c in available}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"--cases: no case {', '.join(unknown)}; the cases are: {', '.join(sorted(known))}")
    return [c for c in available if c.name in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each case (default 10)")
    parser.add_argument("--cases", help="comma-separated case names (default: all; --list shows them)")
    parser.add_argument("--busy", type=int, default=0, metavar="N", help="busy-loop processes beside each run")
    parser.add_argument("--out", type=Path, default=Path("verdict-matrix"), help="where matrix.md/.json go")
    parser.add_argument("--append", action="store_true", help="add to the runs already in --out's matrix.json")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    args = parser.parse_args(argv)
    available = cases()
    if args.list:
        for c in available:
            sets = "".join(f" --set {o}" for o in c.overrides)
            print(f"{c.name:28} expect {c.expect:4}  {c.scenario.relative_to(REPO)}{sets}  ({c.what})")
        return 0
    if not 1 <= args.runs <= 100:
        parser.error("--runs: 1..100")
    if not 0 <= args.busy <= 8:
        parser.error("--busy: 0..8")
    if os.geteuid() != 0:
        parser.error("the local backend needs root (network namespaces): run with sudo")
    selected = select(args.cases, available)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    command = ("bench/verdict_matrix.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    commands = [f"{started}, load average {load_start:.1f}, busy loops {args.busy}: {command}"]
    by_name = {c.name: c for c in available}
    earlier: dict[str, list[RunResult]] = {}
    if args.append and (out / "matrix.json").exists():
        previous = json.loads((out / "matrix.json").read_text())
        commands = [*previous.get("commands", []), *commands]
        known = set(RunResult.__dataclass_fields__)
        for run in previous.get("runs", []):
            if run.get("case") in by_name:
                earlier.setdefault(run["case"], []).append(RunResult(**{k: v for k, v in run.items() if k in known}))
    # Rows in the matrix's order: the cases run now and those with earlier runs.
    rows = {c.name: Row(c, earlier.get(c.name, [])) for c in available if c in selected or c.name in earlier}
    header = (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; busy loops beside each run as each invocation says\n"
        + "".join(f"- {c}\n" for c in commands)
    )

    def write() -> None:
        done = [r for r in rows.values() if r.results]
        md = f"{header}\n{table(done)}" if done else header
        (out / "matrix.md").write_text(md)
        doc = {
            "machine": {"hostname": platform.node(), "arch": platform.machine(), "cores": os.cpu_count()},
            "commands": commands,
            "cases": [r.as_dict() for r in rows.values()],
            "runs": [vars(x) for r in rows.values() for x in r.results],
        }
        (out / "matrix.json").write_text(json.dumps(doc, indent=2) + "\n")

    with tempfile.TemporaryDirectory(prefix="verdict-matrix-") as tmp:
        for i in range(args.runs):
            for case in selected:  # interleaved: every case sees the machine at every stage
                row = rows[case.name]
                result = one_run(case, len(row.results), Path(tmp), out / "runs", args.busy)
                row.results.append(result)
                note = "; ".join(f"{f['name']} {f['verdict']}" for f in result.failing)
                note = note or ("" if result.outcome == "ok" else result.reason[:120])
                print(f"[{i + 1}/{args.runs}] {case.name}: exit {result.exit_code} {result.outcome} "
                      f"{result.seconds:.0f} s (load {result.load_before:.1f}) {note}", file=sys.stderr)  # fmt: skip
                write()
    write()
    print(header)
    print(table(list(rows.values())))
    print(f"written: {out / 'matrix.md'}, {out / 'matrix.json'}")
    wrong = sum(r.count("false-alarm") + r.count("miss") for r in rows.values())
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
