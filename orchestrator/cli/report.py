"""`mapquake report`: the nightly capacity report from the trend store, and report-directory helpers.

- ``mapquake report trend [--since DAYS] [--scenario NAME] [--out DIR] [--trend-store PATH]``
  writes DIR/trend.html and DIR/trend.md, prints the markdown, and exits 1 when
  the newest run of a scenario is flagged as a regression (0 otherwise), so a
  nightly job goes red on a regression.
- ``mapquake report record REPORT_DIR... [--trend-store PATH]`` adds finished
  runs to the store from their report directories (e.g. CI artifacts).
- ``mapquake report html REPORT_DIR`` re-renders report.html from report.json
  and series.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from orchestrator.core.errors import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from orchestrator.reporting import html as report_html
from orchestrator.trends import report as trend_report
from orchestrator.trends import store as trends
from orchestrator.trends.regressions import regressions

DEFAULT_OUT = Path("reports") / "trend"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli.main import add_command, add_version

    parser = add_command(
        subparsers,
        "report",
        help="capacity report from the trend store; record or re-render report directories",
        description="Reports across runs. See docs/reports.md.",
    )
    commands = parser.add_subparsers(dest="report_command", metavar="SUBCOMMAND", required=True)

    trend = commands.add_parser(
        "trend",
        help="render the trend store as HTML and markdown, regressions flagged",
        description="Render the trend store as trend.html and trend.md. Exit 1 when the newest run of a "
        "scenario is a regression, else 0.",
    )
    add_version(trend)
    _store_option(trend)
    trend.add_argument("--since", type=float, metavar="DAYS", help="only runs started in the last DAYS days")
    trend.add_argument("--scenario", metavar="NAME", help="only this scenario")
    trend.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    trend.set_defaults(handler=run_trend)

    record = commands.add_parser(
        "record",
        help="add runs to the trend store from their report directories",
        description="Add finished runs (report.json, and series.json if present) to the trend store.",
    )
    add_version(record)
    _store_option(record)
    record.add_argument("report_dirs", nargs="+", type=Path, metavar="REPORT_DIR")
    record.set_defaults(handler=run_record)

    page = commands.add_parser("html", help="re-render report.html of a report directory")
    add_version(page)
    page.add_argument("report_dir", type=Path, metavar="REPORT_DIR")
    page.set_defaults(handler=run_html)


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trend-store",
        type=Path,
        metavar="PATH",
        help=f"SQLite trend store (default: ${trends.TREND_STORE_ENV}, else {trends.default_path()})",
    )


def run_trend(args: argparse.Namespace) -> int:
    path = trends.resolve_path(args.trend_store)
    since = None if args.since is None else time.time() - args.since * 86400
    everything: list[trends.RunRow] = []
    checks: dict[str, list[trends.CheckRow]] = {}
    if path.exists():
        with trends.TrendStore(path) as store:
            everything = store.runs(scenario=args.scenario)
            checks = {r.run_id: store.checks(r.run_id) for r in everything}
    # Each run is judged against all earlier runs in the store, also those before the window.
    flags = regressions(everything, checks)
    runs = [r for r in everything if since is None or r.started >= since]
    flags = {run_id: f for run_id, f in flags.items() if any(r.run_id == run_id for r in runs)}
    data = trend_report.TrendData(runs=runs, flags=flags, store=str(path), since_days=args.since)
    args.out.mkdir(parents=True, exist_ok=True)
    text = trend_report.markdown(data)
    (args.out / "trend.md").write_text(text)
    (args.out / "trend.html").write_text(trend_report.page(data))
    print(text, end="")
    print(f"written: {args.out / 'trend.html'}, {args.out / 'trend.md'}")
    newest = {(run.scenario, run.machine): run.run_id for run in runs}
    return EXIT_CHECK_FAILED if any(run_id in flags for run_id in newest.values()) else EXIT_OK


def run_record(args: argparse.Namespace) -> int:
    with trends.TrendStore.open(args.trend_store) as store:
        for report_dir in args.report_dirs:
            run = trends.record_report_dir(store, report_dir)
            print(f"recorded {run.scenario} run {run.run_id} ({run.verdict}) in {store.path}")
    return EXIT_OK


def run_html(args: argparse.Namespace) -> int:
    report_path = args.report_dir / "report.json"
    if not report_path.exists():
        raise UsageError(f"{report_path} does not exist", hint="give a report directory written by mapquake run")
    doc = json.loads(report_path.read_text())
    series_path = args.report_dir / "series.json"
    series = json.loads(series_path.read_text()) if series_path.exists() else None
    (args.report_dir / "report.html").write_text(report_html.render(doc, series, args.report_dir))
    print(args.report_dir / "report.html", file=sys.stdout)
    return EXIT_OK
