"""report.json, series.json and junit evidence are strict JSON whatever the run measured (issue 12)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from orchestrator.checks.verdict import CheckResult, Verdict
from orchestrator.reporting import report
from tests import reportdata

from .test_report_files import validate_report


def strict_loads(text: str) -> Any:
    def refuse(word: str) -> None:
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def test_a_record_with_nan_evidence_writes_strict_json(tmp_path: Path) -> None:
    nan, inf = float("nan"), float("inf")
    results = [
        CheckResult(
            "p99", "promql", Verdict.FAIL, "p99 was NaN", {"query": "p99", "max": nan, "samples": [1.0, inf, -inf]}
        ),
        *reportdata.results((Verdict.PASS,)),
    ]
    rec = reportdata.record(tmp_path, results_=results)
    rec.load = {"writes": 5000, "rate": nan}
    series = reportdata.series()
    series["summary"]["p99_s"] = nan
    report.write(rec, series)
    doc = strict_loads((tmp_path / "report.json").read_text())
    validate_report(doc)
    check = next(c for c in doc["checks"] if c["name"] == "p99")
    assert check["evidence"] == {"query": "p99", "max": None, "samples": [1.0, None, None]}
    assert strict_loads((tmp_path / "series.json").read_text())["summary"]["p99_s"] is None
    failure = ET.parse(tmp_path / "junit.xml").getroot().find(".//failure")
    assert failure is not None and failure.text is not None
    assert strict_loads(failure.text)["max"] is None


def test_strict_json_keeps_finite_values_and_stringifies_the_rest() -> None:
    assert report.strict_json({"a": [1, 2.5, float("-inf")], "p": Path("/x")}) == {"a": [1, 2.5, None], "p": "/x"}


def test_the_trend_store_keeps_evidence_as_strict_json(tmp_path: Path) -> None:
    """NaN evidence reaches the trend store as null, so every reader of the store parses it strictly."""
    import sqlite3

    from orchestrator.trends import store as trends

    with trends.TrendStore(tmp_path / "t.sqlite") as db:
        run = trends.RunRow(
            run_id="r1", scenario="s", git_sha="x", go_version="go1.26", machine="m", started=1.0, duration_s=1.0,
            verdict="pass", exit_code=0, reason="completed", report_dir="r", mapquake_version="0",
        )  # fmt: skip
        db.add_run(run, [trends.CheckRow("c", "promql", "pass", "", "q", [1.0, float("nan")], {"max": float("inf")})])
    with sqlite3.connect(tmp_path / "t.sqlite") as raw:
        samples, evidence = raw.execute("SELECT samples, evidence FROM checks").fetchone()
    assert strict_loads(samples) == [1.0, None]
    assert strict_loads(evidence) == {"max": None}
