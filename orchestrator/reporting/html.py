"""report.html: one self-contained page a person reads after a run (no network, no JavaScript).

Rendered from the report.json document and the series.json data, so it can be
rebuilt from a report directory alone. Sections: the verdict, the plots (heap
observed per replica vs the model with phase bands and fault windows, latency
quantiles, throughput, backlog, goroutines), the checks with their evidence,
the seed-article claims the run confirmed or refuted, the plan (targets, load,
phases, faults), the timeline, and links to the Locust CSVs and raw series.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.checks.verdict import DELIVERY_KIND
from orchestrator.reporting.seedclaims import assess

LOCUST_CSV_DIR = Path("run") / "locust"

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; } th { background: #f6f6f6; }
.v { font-weight: bold; padding: 2px 8px; border-radius: 3px; color: white; }
.pass { background: #2e7d32; } .fail { background: #c62828; } .inconclusive { background: #9e6a00; }
.confirms { color: #2e7d32; font-weight: bold; } .refutes { color: #c62828; font-weight: bold; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; max-height: 30em; font-size: 12px; }
figure { margin: 1em 0; } .muted { color: #777; } svg { max-width: 100%; height: auto; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _verdict(verdict: str) -> str:
    return f'<span class="v {_e(verdict)}">{_e(verdict.upper())}</span>'


def _table(header: Sequence[str], rows: list[list[str]]) -> str:
    """A table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plan(report: dict[str, Any]) -> str:
    plan = report.get("plan")
    if not plan:
        return '<p class="muted">The plan is not in this report.</p>'
    targets = _table(
        ["target", "store", "replicas", "value type", "Go", "replicate"],
        [
            [
                _e(t["name"]),
                _e(t["store"]),
                _e(t["replicas"]),
                _e(t["value_type"]),
                _e(t["go"]),
                _e(json.dumps(t.get("replicate")) if t.get("replicate") else "no"),
            ]
            for t in plan.get("targets", [])
        ],
    )
    load = plan.get("load", {})
    load_rows = [[_e(k), _e(json.dumps(v) if isinstance(v, dict) else v)] for k, v in load.items()]
    phases = _table(
        ["phase", "duration", "users", "rate", "faults"],
        [
            [
                _e(p["name"]),
                _e(f"{p['duration_s']:g}s"),
                _e(p.get("users") or "load.users"),
                _e(p.get("rate") or "—"),
                _e("; ".join(f"{f['kind']} {json.dumps(f['params'])}" for f in p.get("faults", [])) or "none"),
            ]
            for p in plan.get("phases", [])
        ],
    )
    faults = [e for e in report.get("timeline", {}).get("events", []) if e["kind"] in ("fault-applied", "fault-healed")]
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    resolved = (
        _table(
            ["t (s)", "event", "fault", "details"],
            [
                [_e(f"{f['wall'] - t0:.2f}"), _e(f["kind"]), _e(f["name"]), _e(json.dumps(f.get("data", {})))]
                for f in faults
            ],
        )
        if faults
        else '<p class="muted">No fault was applied in this run.</p>'
    )
    return (
        f"<h3>Targets</h3>{targets}<h3>Load</h3>{_table(['field', 'value'], load_rows)}"
        f"<h3>Phases</h3>{phases}<h3>Resolved faults</h3>{resolved}"
    )


def _checks(report: dict[str, Any]) -> str:
    checks = report.get("checks", [])
    if not checks:
        return f'<p class="muted">No check was evaluated: {_e(report.get("reason", ""))}</p>'
    parts = []
    for c in checks:
        evidence = json.dumps(c.get("evidence", {}), indent=2, default=str)
        parts.append(
            f"<h3>{_verdict(c['verdict'])} {_e(c['name'])} <span class='muted'>({_e(c['kind'])})</span></h3>"
            f"<p>{_e(c['summary'])}</p><details><summary>evidence</summary><pre>{_e(evidence)}</pre></details>"
        )
    return "".join(parts)


def _seed(report: dict[str, Any]) -> str:
    rows = assess(report)
    if not rows:
        return '<p class="muted">No target of this run carries a claim of the seed article.</p>'
    return _table(
        ["§", "target", "claim of the article", "what is true", "this run", "because"],
        [
            [
                _e(a.section),
                _e(f"{a.target} ({a.store}, Go {a.go})"),
                _e(a.claim),
                _e(a.truth),
                f'<span class="{_e(a.outcome)}">{_e(a.outcome)}</span>',
                _e(a.because),
            ]
            for a in rows
        ],
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _delivery(report: dict[str, Any]) -> str:
    """What the load delivered per phase against its design, and each worker's CPU (checks/delivery.py)."""
    result = next((c for c in report.get("checks", []) if c.get("kind") == DELIVERY_KIND), None)
    phases = (result or {}).get("evidence", {}).get("phases", [])
    if result is None or not phases:
        return '<p class="muted">The load\'s delivery was not measured in this run.</p>'
    rows = []
    for p in phases:
        designed = p.get("designed_requests")
        workers = p.get("workers", [])
        rows.append(
            [
                _e(p["phase"]),
                _e(p["users"]),
                _e("-" if p.get("rate_per_user") is None else f"{p['rate_per_user']:g}"),
                _e(p.get("judged", "") if designed is None else f"{designed:,}"),
                _e(f"{p['delivered_requests']:,}"),
                _e(_share(p.get("delivered_fraction"))),
                _e(f"{p['writes']:,}"),
                _e(f"{p['errors']:,}"),
                _e(", ".join(f"{w['worker']}: {_share(w['cpu_mean'])} ({_share(w['cpu_peak'])})" for w in workers)),
                _e(", ".join(_share(w.get("cpu_wait")) for w in workers)),
            ]
        )
    table = _table(
        [
            "phase", "users", "rate per user", "designed requests", "delivered", "share", "writes", "errors",
            "worker CPU: mean (peak 1 s)", "waited for a CPU",
        ],
        rows,
    )  # fmt: skip
    return f"<h3>{_verdict(result['verdict'])} Delivery against the design</h3><p>{_e(result['summary'])}</p>{table}"


def _locust(report_dir: Path) -> str:
    directory = report_dir / LOCUST_CSV_DIR
    files = sorted(directory.glob("*.csv")) if directory.is_dir() else []
    if not files:
        return '<p class="muted">No Locust CSV files in this report directory.</p>'
    links = "".join(f'<li><a href="{_e((LOCUST_CSV_DIR / f.name).as_posix())}">{_e(f.name)}</a></li>' for f in files)
    table = ""
    stats = directory / "locust_stats.csv"
    if stats.exists():
        with stats.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if rows:
            wanted = [
                h
                for h in ("Type", "Name", "Request Count", "Failure Count", "Median Response Time", "99%", "Requests/s")
                if h in rows[0]
            ]
            index = [rows[0].index(h) for h in wanted]
            table = _table(wanted, [[_e(r[i]) for i in index] for r in rows[1:] if len(r) >= len(rows[0])])
    note = "Locust rounds response times to whole ms; the plots use the workers' µs histograms."
    return f"<ul>{links}</ul>{table}<p class='muted'>{note}</p>"


def _timeline(report: dict[str, Any]) -> str:
    timeline = report.get("timeline", {})
    t0 = timeline.get("started_wall", 0.0)
    rows = [
        [_e(f"{e['wall'] - t0:.2f}"), _e(e["kind"]), _e(e["name"]), _e(json.dumps(e.get("data", {}), default=str))]
        for e in timeline.get("events", [])
    ]
    return _table(["t (s)", "kind", "name", "data"], rows)


def draw_figures(report: dict[str, Any], series: dict[str, Any] | None) -> str:
    """The page's plots section: the slow part of the page (matplotlib), drawn from what the run knew
    before teardown, so a run draws it while its components stop (pure)."""
    # Imported here: matplotlib takes about a second to import (a run preloads it while its phases run).
    from orchestrator.reporting import plots

    figures = [
        plots.heap_plot(report, series),
        plots.latency_plot(report, series),
        plots.throughput_plot(report, series),
        plots.backlog_plot(report, series),
        plots.goroutines_plot(report, series),
    ]
    drawn = "".join(f"<figure>{svg}</figure>" for svg in figures if svg)
    if series is None:
        drawn += '<p class="muted">No raw series were collected (Prometheus was not reachable at the end).</p>'
    elif series.get("errors"):
        drawn += f"<p class='muted'>Series that could not be queried: {_e(', '.join(series['errors']))}</p>"
    if not plots.series_lines(series, "backlog"):
        drawn += '<p class="muted">No replication backlog series (no replicated target).</p>'
    return drawn + _first_scrape(report)


def _first_scrape(report: dict[str, Any]) -> str:
    """Why Prometheus's series may begin after the load did (orchestrator/run/first_scrape.py)."""
    events = report.get("timeline", {}).get("events", [])
    note = next((e for e in events if e.get("kind") == "note" and e.get("name") == "first-scrape"), None)
    start = next((e for e in events if e.get("kind") == "phase-start"), None)
    if note is None or start is None or note.get("data", {}).get("before_load", True):
        return ""
    late = note["wall"] - start["wall"]
    return (
        f'<p class="muted">Prometheus had scraped every replica {late:.1f} s into {_e(start["name"])} (seen then); '
        f"the load did not wait for it: {_e(note['data'].get('why', ''))}. Its series begin there "
        "(prometheus.scrape_from_start: true holds the load for them).</p>"
    )


def render(
    report: dict[str, Any], series: dict[str, Any] | None, report_dir: Path, *, figures: str | None = None
) -> str:
    """The whole page (pure but for reading the Locust CSVs under ``report_dir``); ``figures`` is
    draw_figures' section if it was drawn already."""
    drawn = draw_figures(report, series) if figures is None else figures
    summary = (series or {}).get("summary", {})
    figures_line = ", ".join(
        f"{label} {fmt.format(summary[key])}"
        for key, label, fmt in (
            ("p99_s", "p99", "{:.4g} s"),
            ("writes_per_s", "writes/s", "{:,.0f}"),
            ("requests_per_s", "requests/s", "{:,.0f}"),
        )
        if summary.get(key) is not None
    )
    scenario = report.get("scenario", {})
    raw = '<a href="series.json">series.json</a>' if (report_dir / "series.json").exists() else "series.json (absent)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mapquake {_e(scenario.get("name", ""))} {_e(report.get("run_id", ""))}: {_e(report.get("verdict", ""))}</title>
<style>{_CSS}</style></head><body>
<h1>{_verdict(report.get("verdict", "inconclusive"))} {_e(scenario.get("name", ""))}</h1>
<p>run {_e(report.get("run_id", ""))} · exit code {_e(report.get("exit_code", ""))} · {_e(report.get("reason", ""))}
· {_e(f"{report.get('duration_s', 0):.1f}")} s · mapquake {_e(report.get("mapquake_version", ""))}
· git {_e(str(report.get("git_sha", "unknown"))[:12])} · {_e(report.get("machine", {}).get("hostname", ""))}</p>
<p>{_e(figures_line)}</p>
<h2>Checks</h2>{_checks(report)}
<h2>Plots</h2>{drawn}
<h2>Seed article: confirmed or refuted</h2>{_seed(report)}
<h2>Plan</h2>{_plan(report)}
<h2>Load (Locust)</h2>{_delivery(report)}{_locust(report_dir)}
<h2>Timeline</h2>{_timeline(report)}
<h2>Files</h2><ul><li><a href="report.json">report.json</a></li><li><a href="junit.xml">junit.xml</a></li>
<li>{raw}</li><li>scenario source: {_e(scenario.get("source", ""))}</li></ul>
</body></html>
"""
