"""report.json against docs/report.schema.json, junit.xml against a JUnit XSD, report.html, seed claims."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from orchestrator.checks.verdict import Verdict
from orchestrator.journal import EventKind
from orchestrator.reporting import report
from orchestrator.reporting.seedclaims import assess
from tests import reportdata

REPO = Path(__file__).resolve().parents[3]
REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
JUNIT_XSD = xmlschema.XMLSchema(REPO / "tests" / "fixtures" / "junit.xsd")


def validate_report(doc: dict) -> None:
    jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_the_report_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)


@pytest.mark.parametrize(
    "verdicts",
    [(Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE), (Verdict.PASS,), ()],
    ids=["mixed", "pass", "no-checks"],
)
def test_written_reports_validate(tmp_path: Path, verdicts: tuple[Verdict, ...]) -> None:
    rec = reportdata.record(tmp_path, results_=reportdata.results(verdicts))
    report.write(rec, reportdata.series())
    doc = json.loads((tmp_path / "report.json").read_text())
    validate_report(doc)
    assert doc["schema_version"] == report.REPORT_SCHEMA_VERSION == 1
    JUNIT_XSD.validate(tmp_path / "junit.xml")
    junit = JUNIT_XSD.to_dict(tmp_path / "junit.xml")
    suite = junit["testsuite"][0]
    assert suite["@tests"] == max(len(verdicts), 1)
    assert suite["@failures"] == sum(v is Verdict.FAIL for v in verdicts)
    assert suite["@skipped"] == sum(v is Verdict.INCONCLUSIVE for v in verdicts) + (0 if verdicts else 1)
    assert len(suite["testcase"]) == max(len(verdicts), 1)
    assert json.loads((tmp_path / "series.json").read_text())["summary"]["p99_s"] == 0.0081


def test_schema_rejects_what_it_should(tmp_path: Path) -> None:
    report.write(reportdata.record(tmp_path))
    doc = json.loads((tmp_path / "report.json").read_text())
    for broken in (
        {**doc, "verdict": "maybe"},
        {**doc, "surprise": 1},
        {**doc, "schema_version": 2},
        {**doc, "checks": [{**doc["checks"][0], "kind": "vibes"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_report(broken)


def test_junit_xsd_rejects_a_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="x"><testcase name="a"/></testsuite></testsuites>')
    assert not JUNIT_XSD.is_valid(bad)  # testsuite without tests=, testcase without classname=


def test_report_html_is_self_contained_with_plots_and_sections(tmp_path: Path) -> None:
    report.write(reportdata.record(tmp_path), reportdata.series())
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 5  # heap, latency, throughput, backlog, goroutines
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    for text in (
        "Checks",
        "Seed article",
        "Targets",
        "Phases",
        "Resolved faults",
        "partition-0",
        "fault-applied",
        "p99 reached 0.02 &lt;bound&gt; &amp; &#x27;quoted&#x27;",
        'href="report.json"',
    ):
        assert text in page, text


def test_report_html_without_series_still_renders(tmp_path: Path) -> None:
    report.write(reportdata.record(tmp_path))
    page = (tmp_path / "report.html").read_text()
    assert "No raw series were collected" in page
    assert page.count("<svg") == 1  # the heap plot still shows the model points and exact samples


def _doc(tmp_path: Path, store: str, user: str, verdicts: tuple[Verdict, ...], go: str = "1.26") -> dict:
    sc = reportdata.scenario(store=store, user=user)
    if go != "1.26":
        sc = sc.__class__(
            **{**sc.__dict__, "targets": (sc.targets[0].__class__(**{**sc.targets[0].__dict__, "go": go}),)}
        )
    rec = reportdata.record(tmp_path, results_=reportdata.results(verdicts), sc=sc)
    return json.loads(json.dumps(report.to_json(rec), default=str))


def test_seed_claims_follow_the_check_results(tmp_path: Path) -> None:
    kept = assess(_doc(tmp_path, "deleteretain", "DeleteChurnUser", (Verdict.PASS,)))
    assert [(a.section, a.outcome) for a in kept] == [("§2.5", "confirms")]
    returned = assess(_doc(tmp_path, "ptrcycle", "DeleteChurnUser", (Verdict.PASS,)))
    assert [(a.section, a.outcome) for a in returned] == [("§2.2", "refutes")]
    unsettled = assess(_doc(tmp_path, "ptrcycle", "DeleteChurnUser", (Verdict.FAIL,)))
    assert [(a.section, a.outcome) for a in unsettled] == [("§2.2", "not settled")]
    assert assess(_doc(tmp_path, "syncmap", "MapWriteUser", (Verdict.PASS,))) == []  # no LoadOrStore churn
    new = assess(_doc(tmp_path, "syncmap", "SyncMapChurnUser", (Verdict.PASS,)))
    old = assess(_doc(tmp_path, "syncmap", "SyncMapChurnUser", (Verdict.PASS,), go="1.23"))
    assert [a.outcome for a in new] == ["refutes"] and [a.outcome for a in old] == ["confirms"]
    racy = assess(_doc(tmp_path, "racymap", "MapWriteUser", (Verdict.PASS, Verdict.PASS, Verdict.PASS)))
    assert [(a.section, a.outcome, a.because) for a in racy] == [("§4.1", "confirms", "alive passed")]


def _with_first_scrape(tmp_path: Path, *, before_load: bool) -> report.RunRecord:
    rec = reportdata.record(tmp_path)
    start = next(e for e in rec.journal.events if e.kind == "phase-start")
    note = rec.journal.record(EventKind.NOTE, "first-scrape", before_load=before_load, why="no check reads it early")
    rec.journal.events[rec.journal.events.index(note)] = dataclasses.replace(note, wall=start.wall + 4.25)
    return rec


def test_the_page_says_when_series_begin_after_a_load_that_did_not_wait(tmp_path: Path) -> None:
    report.write(_with_first_scrape(tmp_path, before_load=False), reportdata.series())
    page = (tmp_path / "report.html").read_text()
    assert "Prometheus had scraped every replica 4.2 s into" in page and "no check reads it early" in page


def test_the_page_says_nothing_of_it_when_the_load_waited(tmp_path: Path) -> None:
    report.write(_with_first_scrape(tmp_path, before_load=True), reportdata.series())
    assert "Prometheus had scraped every replica" not in (tmp_path / "report.html").read_text()


def test_plots_drawn_ahead_are_the_ones_the_page_shows(tmp_path: Path) -> None:
    rec, collected = reportdata.record(tmp_path), reportdata.series()
    figures = report.draw(rec, collected)
    assert figures is not None and figures.count("<svg") == 5
    report.write(rec, collected, figures="<figure>drawn ahead</figure>")
    page = (tmp_path / "report.html").read_text()
    assert "drawn ahead" in page and "<svg" not in page
