"""Write a run's verdict where CI and people read it: report.json, junit.xml, series.json, report.html.

Written on every exit path, including an interrupted or failed run, so no
report is lost. report.json follows docs/report.schema.json (``schema_version``);
junit.xml is one testsuite with one testcase per check, in the Ant/Jenkins
JUnit format CI servers read (tests/fixtures/junit.xsd); report.html is made
by report_html.py from the same data. Layout: docs/reports.md.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import platform
import socket
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.checks.verdict import CheckResult, Verdict
from orchestrator.core.provenance import git_sha
from orchestrator.journal import Journal
from orchestrator.reporting import html as report_html
from orchestrator.scenario.spec import Scenario

log = logging.getLogger(__name__)

REPORT_SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    run_id: str
    scenario: Scenario
    verdict: Verdict
    exit_code: int
    reason: str
    """Why the run ended the way it did: "completed", "interrupted by SIGTERM", an infrastructure error."""
    results: list[CheckResult]
    journal: Journal
    report_dir: Path
    duration_s: float
    expected_entries: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    teardown_problems: list[str] = field(default_factory=list)


def to_json(record: RunRecord) -> dict[str, Any]:
    """The report.json document (docs/report.schema.json)."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "mapquake_version": __version__,
        "run_id": record.run_id,
        "scenario": {"name": record.scenario.name, "source": record.scenario.source},
        "machine": {"hostname": socket.gethostname(), "platform": platform.platform()},
        "git_sha": git_sha(),
        "go_versions": sorted({t.go for t in record.scenario.targets}),
        "started": datetime.datetime.fromtimestamp(record.journal.started_wall, datetime.UTC).isoformat(),
        "report_dir": str(record.report_dir),
        "verdict": record.verdict.value,
        "exit_code": record.exit_code,
        "reason": record.reason,
        "duration_s": round(record.duration_s, 3),
        "checks": [{**asdict(r), "verdict": r.verdict.value} for r in record.results],
        "expected_entries": record.expected_entries,
        "load": record.load,
        "timeline": record.journal.to_json(),
        "teardown_problems": record.teardown_problems,
        "plan": record.scenario.to_json(),
    }


def junit_xml(record: RunRecord) -> ET.ElementTree:
    """One testsuite per run in a <testsuites> root, one testcase per check.

    fail → <failure> (the evidence as its text), inconclusive → <skipped>
    (CI shows it as neither green nor red), pass → no child; every testcase
    carries the check's summary in <system-out>. A run without checks has one
    skipped testcase "run" that says why.
    """
    results = record.results
    started = datetime.datetime.fromtimestamp(record.journal.started_wall, datetime.UTC)
    failures = sum(r.verdict is Verdict.FAIL for r in results)
    skipped = sum(r.verdict is Verdict.INCONCLUSIVE for r in results) + (0 if results else 1)
    tests = max(len(results), 1)
    root = ET.Element(
        "testsuites",
        name="mapquake",
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{record.duration_s:.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"mapquake.{record.scenario.name}",
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{record.duration_s:.3f}",
        timestamp=started.strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
        id="0",
        package=f"mapquake.{record.scenario.name}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run_id", record.run_id), ("verdict", record.verdict.value), ("reason", record.reason)):
        ET.SubElement(properties, "property", name=name, value=value)
    for result in results:
        case = ET.SubElement(
            suite, "testcase", classname=f"{record.scenario.name}.{result.kind}", name=result.name, time="0"
        )
        if result.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", message=result.summary, type=result.kind)
            failure.text = dumps(result.evidence, indent=2)
        elif result.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {result.summary}")
        ET.SubElement(case, "system-out").text = result.summary
    if not results:
        case = ET.SubElement(suite, "testcase", classname=record.scenario.name, name="run", time="0")
        ET.SubElement(case, "skipped", message=f"no verdict: {record.reason}")
    return ET.ElementTree(root)


def strict_json(value: Any) -> Any:
    """``value`` as plain JSON data that any strict parser reads: what json cannot say becomes text
    (default=str) and a NaN or an infinity, which JSON has no word for, becomes null (no value)."""
    data = json.loads(json.dumps(value, default=str))
    stack = [data]
    while stack:
        node = stack.pop()
        items = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        )
        for key, item in items:
            if isinstance(item, float) and not math.isfinite(item):
                node[key] = None
            elif isinstance(item, (dict, list)):
                stack.append(item)
    return data


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text (never NaN or Infinity) of ``value``; see strict_json."""
    return json.dumps(strict_json(value), indent=indent, allow_nan=False)


def draw(record: RunRecord, series: dict[str, Any] | None) -> str | None:
    """report.html's plots, drawn ahead (a run draws them while it tears down); None if drawing
    failed (logged: write() then tries again, and a failure there costs the page, not the verdict)."""
    try:
        return report_html.draw_figures(strict_json(to_json(record)), series)
    except Exception:
        log.exception("could not draw the report's plots ahead")
        return None


def write(record: RunRecord, series: dict[str, Any] | None = None, *, figures: str | None = None) -> Path:
    """Write report.json, junit.xml, series.json (when ``series`` is given) and report.html.

    ``series`` is what series.collect returned while Prometheus still ran; ``figures``, the plots
    draw() drew from the same run before its teardown ended. The HTML is written last and its failure
    is logged, not raised: report.json and junit.xml, which CI reads, are already on disk by then.
    """
    record.report_dir.mkdir(parents=True, exist_ok=True)
    doc = strict_json(to_json(record))
    (record.report_dir / "report.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    tree = junit_xml(record)
    ET.indent(tree)
    tree.write(record.report_dir / "junit.xml", encoding="utf-8", xml_declaration=True)
    if series is not None:
        (record.report_dir / "series.json").write_text(dumps(series) + "\n")
    try:
        page = report_html.render(doc, series, record.report_dir, figures=figures)
    except Exception:  # the page is for people; a bug drawing it must not lose the verdict files
        log.exception("could not render report.html")
    else:
        (record.report_dir / "report.html").write_text(page)
    return record.report_dir
