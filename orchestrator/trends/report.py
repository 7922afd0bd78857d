"""The nightly capacity report: the trend store as trend.html and trend.md, regressions flagged.

Per scenario (and machine): a table of runs, oldest first, with git sha, Go
version, verdict and the key metrics, each regression flagged with its reason
(regressions.py), and plots of p99, writes/s and heap over the runs. The
markdown summary is for chat and CI job summaries; the HTML, self-contained
like report.html, for browsing.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.trends.regressions import Flag
from orchestrator.trends.store import RunRow


@dataclass(frozen=True)
class TrendData:
    runs: list[RunRow]
    flags: dict[str, list[Flag]]
    store: str
    since_days: float | None


def _when(started: float) -> str:
    return datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _cells(run: RunRow) -> list[str]:
    return [
        _when(run.started),
        run.run_id,
        run.git_sha[:10],
        run.go_version,
        run.verdict,
        _num(run.p99_s and run.p99_s * 1000, "{:.3g} ms"),
        _num(run.throughput_wps, "{:,.0f}"),
        _num(run.heap_observed_bytes, "{:,} B"),
        _num(run.heap_predicted_bytes, "{:,} B"),
        _num(run.heap_peak_bytes, "{:,.0f} B"),
    ]


HEADER = ["started (UTC)", "run", "git", "Go", "verdict", "p99", "writes/s", "heap observed", "heap model", "peak heap"]


def groups(runs: Sequence[RunRow]) -> dict[tuple[str, str], list[RunRow]]:
    out: dict[tuple[str, str], list[RunRow]] = {}
    for run in sorted(runs, key=lambda r: r.started):
        out.setdefault((run.scenario, run.machine), []).append(run)
    return out


def markdown(data: TrendData) -> str:
    """The markdown summary (pure)."""
    lines = ["# mapquake capacity report", ""]
    window = f"the last {data.since_days:g} days" if data.since_days else "all time"
    flagged = sum(1 for r in data.runs if r.run_id in data.flags)
    lines.append(f"{len(data.runs)} runs over {window} from `{data.store}`; {flagged} flagged as regressions.")
    if not data.runs:
        return "\n".join(lines) + "\n"
    for (scenario, machine), runs in groups(data.runs).items():
        lines += ["", f"## {scenario} on {machine}", ""]
        lines.append("| " + " | ".join([*HEADER, "regression"]) + " |")
        lines.append("|" + "---|" * (len(HEADER) + 1))
        for run in runs:
            flags = data.flags.get(run.run_id, [])
            mark = "**REGRESSION**: " + "; ".join(f.message for f in flags) if flags else ""
            cells = [c.replace("|", "\\|") for c in [*_cells(run), mark]]
            lines.append("| " + " | ".join(cells) + " |")
    regressions = [(r, data.flags[r.run_id]) for r in data.runs if r.run_id in data.flags]
    lines += ["", "## Regressions", ""]
    if not regressions:
        lines.append("None.")
    for run, flags in regressions:
        for flag in flags:
            lines.append(
                f"- {run.scenario} run {run.run_id} ({_when(run.started)}, git {run.git_sha[:10]}): {flag.message}"
            )
    return "\n".join(lines) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(data: TrendData) -> str:
    """The HTML report (pure)."""
    from orchestrator.reporting import plots  # matplotlib: a second to import, only pages need it

    body = [
        "<h1>mapquake capacity report</h1>",
        f"<p>{len(data.runs)} runs from <code>{_e(data.store)}</code>"
        + (f", last {data.since_days:g} days" if data.since_days else "")
        + "</p>",
    ]
    for (scenario, machine), runs in groups(data.runs).items():
        body.append(f"<h2>{_e(scenario)} <span class='muted'>on {_e(machine)}</span></h2>")
        rows = []
        for run in runs:
            flags = data.flags.get(run.run_id, [])
            mark = "<span class='bad'>REGRESSION</span>: " + _e("; ".join(f.message for f in flags)) if flags else ""
            cls = " class='flagged'" if flags else ""
            rows.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in _cells(run)) + f"<td>{mark}</td></tr>")
        head = "".join(f"<th>{_e(h)}</th>" for h in [*HEADER, "regression"])
        body.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
        flagged = {i for i, r in enumerate(runs) if r.run_id in data.flags}
        labels = [f"{_when(r.started)[5:]} {r.run_id[:6]}" for r in runs]
        for metric, title, unit, scale in (
            ("p99_s", "client p99 over the load", "ms", 1000.0),
            ("throughput_wps", "map writes/s", "writes/s", 1.0),
            ("heap_observed_bytes", "live heap at the model checks", "MiB", 1 / 1024 / 1024),
            ("heap_peak_bytes", "peak live heap", "MiB", 1 / 1024 / 1024),
        ):
            values = [getattr(r, metric) for r in runs]
            points = [(label, None if v is None else v * scale) for label, v in zip(labels, values, strict=True)]
            svg = plots.trend_plot(points, title=title, ylabel=unit, flagged=flagged)
            if svg:
                body.append(f"<figure>{svg}</figure>")
    if not data.runs:
        body.append("<p>No runs in this window.</p>")
    css = (
        "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
        "th{background:#f6f6f6}.flagged{background:#fdecea}.bad{color:#c62828;font-weight:bold}"
        ".muted{color:#777}svg{max-width:100%;height:auto}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>mapquake capacity report</title>'
        f"<style>{css}</style></head><body>{''.join(body)}</body></html>\n"
    )
