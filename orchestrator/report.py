"""Write a run's verdict where CI and people read it: report.json and junit.xml in the report directory.

Written on every exit path, including an interrupted or failed run, so no
report is lost. (The HTML report with plots and the trend store are issue 6.)
"""

from __future__ import annotations

import json
import platform
import socket
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.journal import Journal
from orchestrator.scenario.spec import Scenario
from orchestrator.verdict import CheckResult, Verdict

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
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "mapquake_version": __version__,
        "run_id": record.run_id,
        "scenario": {"name": record.scenario.name, "source": record.scenario.source},
        "machine": {"hostname": socket.gethostname(), "platform": platform.platform()},
        "verdict": record.verdict.value,
        "exit_code": record.exit_code,
        "reason": record.reason,
        "duration_s": round(record.duration_s, 3),
        "checks": [{**asdict(r), "verdict": r.verdict.value} for r in record.results],
        "expected_entries": record.expected_entries,
        "load": record.load,
        "timeline": record.journal.to_json(),
        "teardown_problems": record.teardown_problems,
    }


def junit_xml(record: RunRecord) -> ET.ElementTree:
    """One testsuite per run, one testcase per check: fail → <failure>, inconclusive → <skipped>."""
    results = record.results
    suite = ET.Element(
        "testsuite",
        name=f"mapquake.{record.scenario.name}",
        tests=str(len(results)),
        failures=str(sum(r.verdict is Verdict.FAIL for r in results)),
        errors="0",
        skipped=str(sum(r.verdict is Verdict.INCONCLUSIVE for r in results)),
        time=f"{record.duration_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run_id", record.run_id), ("verdict", record.verdict.value), ("reason", record.reason)):
        ET.SubElement(properties, "property", name=name, value=value)
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"{record.scenario.name}.{result.kind}", name=result.name)
        if result.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", message=result.summary, type=result.kind)
            failure.text = json.dumps(result.evidence, indent=2, default=str)
        elif result.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {result.summary}")
        ET.SubElement(case, "system-out").text = result.summary
    if not results:
        case = ET.SubElement(suite, "testcase", classname=record.scenario.name, name="run")
        ET.SubElement(case, "skipped", message=f"no verdict: {record.reason}")
    return ET.ElementTree(suite)


def write(record: RunRecord) -> Path:
    record.report_dir.mkdir(parents=True, exist_ok=True)
    (record.report_dir / "report.json").write_text(json.dumps(to_json(record), indent=2, default=str) + "\n")
    tree = junit_xml(record)
    ET.indent(tree)
    tree.write(record.report_dir / "junit.xml", encoding="utf-8", xml_declaration=True)
    return record.report_dir
