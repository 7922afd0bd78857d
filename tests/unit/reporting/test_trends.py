"""The trend store, the regression flags and `mapquake report trend`, from rows built in code."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.cli import report as report_cli
from orchestrator.core.errors import InfrastructureError
from orchestrator.reporting import report
from orchestrator.trends import store as trends
from orchestrator.trends.regressions import flags_for, regressions
from orchestrator.trends.store import CheckRow, RunRow, TrendStore
from tests import reportdata
from tests.reportdata import T0


def row(
    run_id: str,
    started: float,
    *,
    p99: float | None = 0.010,
    wps: float | None = 1000.0,
    heap: int | None = 1_000_000,
    scenario: str = "s",
    machine: str = "m",
) -> RunRow:
    return RunRow(
        run_id,
        scenario,
        "a" * 40,
        "go1.26.8",
        machine,
        started,
        30.0,
        "pass",
        0,
        "completed",
        "/r",
        "0.1.0",
        heap,
        990_000,
        None,
        p99,
        wps,
    )


def test_store_creates_schema_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "trends.sqlite"
    with TrendStore(path) as store:
        assert store.schema_version == trends.SCHEMA_VERSION == 1
        store.add_run(row("r1", T0), [CheckRow("heap", "model", "pass", "ok", None, None, {"a": 1})])
    with TrendStore(path) as store:
        assert [r.run_id for r in store.runs()] == ["r1"]
        assert store.checks("r1") == [CheckRow("heap", "model", "pass", "ok", None, None, {"a": 1})]


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(InfrastructureError, match="schema version 99"):
        TrendStore(path)


def test_runs_filter_and_order(tmp_path: Path) -> None:
    with TrendStore(tmp_path / "t.sqlite") as store:
        store.add_run(row("late", T0 + 200), [])
        store.add_run(row("early", T0), [])
        store.add_run(row("other", T0 + 100, scenario="x"), [])
        store.add_run(row("early", T0 + 10), [])  # same run id: replaced
        assert [r.run_id for r in store.runs()] == ["early", "other", "late"]
        assert [r.run_id for r in store.runs(scenario="s")] == ["early", "late"]
        assert [r.run_id for r in store.runs(since=T0 + 50)] == ["other", "late"]
        assert store.runs(machine="nope") == []
        assert store.runs(scenario="s")[0].started == T0 + 10


def test_baseline_history_latest_first_limited_oldest_first(tmp_path: Path) -> None:
    with TrendStore(tmp_path / "t.sqlite") as store:
        for i in range(4):
            store.add_run(row(f"r{i}", T0 + i), [CheckRow("b", "baseline", "pass", "", "q", [float(i)])])
        store.add_run(row("q2", T0 + 9), [CheckRow("b", "baseline", "pass", "", "other query", [9.0])])
        history = store.baseline_history(scenario="s", check="b", query="q", machine="m", before=T0 + 3, limit=2)
    assert history == [("r1", [1.0]), ("r2", [2.0])]


def test_rows_from_a_written_report(tmp_path: Path) -> None:
    rec = reportdata.record(tmp_path / "rep")
    doc = json.loads(json.dumps(report.to_json(rec), default=str))
    run, checks = trends.rows_from_report(doc, reportdata.series(), git="f" * 40, machine="box")
    assert (run.run_id, run.scenario, run.machine, run.git_sha, run.go_version) == (
        "abc123",
        "unit",
        "box",
        "f" * 40,
        "go1.26.8",
    )
    assert (run.heap_observed_bytes, run.heap_predicted_bytes) == (2_100_000, 2_000_000)
    assert run.heap_peak_bytes == 2 * 600_000 + 2 * 35_000 * 30 + 1000
    assert (run.p99_s, run.throughput_wps, run.started, run.verdict) == (0.0081, 800.0, T0, "fail")
    assert [(c.name, c.kind, c.verdict, c.query) for c in checks] == [
        ("heap", "model", "pass", None),
        ("p99", "promql", "fail", "p99"),
        ("alive", "crash", "inconclusive", None),
    ]


def test_record_run_and_record_report_dir(tmp_path: Path) -> None:
    rec = reportdata.record(tmp_path / "rep")
    report.write(rec, reportdata.series())
    with TrendStore(tmp_path / "t.sqlite") as store:
        stored = trends.record_run(store, rec, reportdata.series())
        assert store.runs() == [stored]
        again = trends.record_report_dir(store, tmp_path / "rep")
        assert again.run_id == stored.run_id and again.p99_s == stored.p99_s
        assert len(store.runs()) == 1


def test_regression_flags_against_the_median_of_earlier_runs() -> None:
    runs = [
        row("a", T0, p99=0.010, wps=1000),
        row("b", T0 + 1, p99=0.011, wps=1100),
        row("c", T0 + 2, p99=0.009, wps=900),
        row("d", T0 + 3, p99=0.0135, wps=780, heap=1_050_000),
    ]
    flags = regressions(runs, {})
    assert list(flags) == ["d"]
    by_metric = {f.metric: f for f in flags["d"]}
    assert set(by_metric) == {"p99_s", "throughput_wps"}
    assert by_metric["p99_s"].reference == 0.010
    assert by_metric["p99_s"].change == pytest.approx(0.35)
    assert by_metric["throughput_wps"].change == pytest.approx(-0.22)
    assert by_metric["throughput_wps"].message == (
        "map writes/s 780 is 22% below the median 1000 of the 3 previous runs (threshold 20%)"
    )


def test_no_judgement_with_one_earlier_run_and_groups_are_separate() -> None:
    assert flags_for(row("b", T0 + 1, p99=1.0), [row("a", T0)]) == []
    runs = [row("a", T0), row("b", T0 + 1), row("c", T0 + 2, machine="other", p99=1.0)]
    assert regressions(runs, {}) == {}


def test_a_failed_baseline_check_is_a_regression() -> None:
    checks = {"a": [CheckRow("writes", "baseline", "fail", "worse than the baseline: ...")]}
    flags = regressions([row("a", T0)], checks)
    assert [(f.metric, f.message) for f in flags["a"]] == [("baseline:writes", "worse than the baseline: ...")]


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_report_trend_renders_and_exits_1_on_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "t.sqlite"
    with TrendStore(store_path) as store:
        for r in (row("a", T0, wps=1000), row("b", T0 + 1, wps=1010), row("c", T0 + 2, wps=500)):
            store.add_run(r, [])
    out = tmp_path / "out"
    code = _cli(["report", "trend", "--trend-store", str(store_path), "--out", str(out)])
    assert code == 1
    md = (out / "trend.md").read_text()
    assert "3 runs over all time" in md and "1 flagged as regressions" in md
    assert "- s run c (" in md and "map writes/s 500 is 50% below the median 1005" in md
    assert "<svg" in (out / "trend.html").read_text() and "REGRESSION" in (out / "trend.html").read_text()
    assert md in capsys.readouterr().out


def test_report_trend_on_an_empty_store_and_scenario_filter(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _cli(["report", "trend", "--trend-store", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 0
    assert "0 runs" in (out / "trend.md").read_text()
    with TrendStore(tmp_path / "t.sqlite") as store:
        for r in (row("a", T0), row("b", T0 + 1), row("c", T0 + 2, wps=1)):
            store.add_run(r, [])
    code = _cli(["report", "trend", "--trend-store", str(tmp_path / "t.sqlite"), "--out", str(out), "--scenario", "x"])
    assert code == 0


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(trends.TREND_STORE_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert trends.resolve_path() == tmp_path / "mapquake" / "trends.sqlite"
    monkeypatch.setenv(trends.TREND_STORE_ENV, "/x/y.sqlite")
    assert trends.resolve_path() == Path("/x/y.sqlite")
    assert trends.resolve_path("/z.sqlite") == Path("/z.sqlite")
