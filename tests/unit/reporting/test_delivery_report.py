"""The load's delivery in every report: report.json (its schema), junit.xml, report.html."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import xmlschema

from orchestrator.checks.delivery import CHECK_NAME, designed_phases, judge_delivery
from orchestrator.checks.verdict import CheckResult, Verdict
from orchestrator.reporting import report
from orchestrator.scenario import load_scenario_text
from tests import reportdata
from workloads.plan import PhaseDelivery, WorkerSummary

REPO = Path(__file__).resolve().parents[3]
REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
JUNIT_XSD = xmlschema.XMLSchema(REPO / "tests" / "fixtures" / "junit.xsd")

PACED = """\
apiVersion: mapquake/v1
kind: Scenario
name: unit
targets: [{name: kv, store: mutexmap}]
load: {users: 4, rate: 100, keys: {space: 1000}}
phases: [{name: fill, duration: 10s}, {name: rest, duration: 5s, users: 0}]
"""


def _short_delivery() -> CheckResult:
    scenario = load_scenario_text(PACED)
    designed = designed_phases(scenario)[0].designed or 0
    phases = (
        PhaseDelivery("fill", tasks=round(designed * 0.2), requests=round(designed * 0.2), writes=800, seconds=10,
                      cpu_seconds=3.0, cpu_peak=0.4, wait_seconds=6.0),
        PhaseDelivery("rest", seconds=5, cpu_seconds=0.1, cpu_peak=0.05, wait_seconds=0.1),
    )  # fmt: skip
    summary = WorkerSummary(
        worker_index=0, worker_count=1, user="MapWriteUser", protocol="grpc", draws=800, writes=800,
        writes_per_target=[800], uncertain_per_target=[0], phases=phases,
    )  # fmt: skip
    return judge_delivery(scenario, [summary])


def test_a_short_load_is_an_inconclusive_run_in_every_report(tmp_path: Path) -> None:
    delivery = _short_delivery()
    assert delivery.verdict is Verdict.INCONCLUSIVE
    record = reportdata.record(tmp_path, results_=[*reportdata.results((Verdict.PASS, Verdict.FAIL)), delivery])
    assert record.verdict is Verdict.INCONCLUSIVE and record.exit_code == 4  # never a fail
    report.write(record, reportdata.series())
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(doc)
    (entry,) = [c for c in doc["checks"] if c["kind"] == "delivery"]
    assert entry["name"] == CHECK_NAME and entry["evidence"]["phases"][0]["delivered_fraction"] == 0.2
    JUNIT_XSD.validate(tmp_path / "junit.xml")
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="load-delivery"' in junit and "inconclusive: the load was not delivered as designed" in junit
    page = (tmp_path / "report.html").read_text()
    for text in ("Delivery against the design", "designed requests", "waited for a CPU", "0: 30% (40%)", "60%"):
        assert text in page, text


def test_a_delivery_without_phases_breaks_the_report_schema(tmp_path: Path) -> None:
    delivery = _short_delivery()
    broken = CheckResult(delivery.name, delivery.kind, delivery.verdict, delivery.summary, {"workers": 1})
    report.write(reportdata.record(tmp_path, results_=[*reportdata.results((Verdict.PASS,)), broken]))
    doc = json.loads((tmp_path / "report.json").read_text())
    validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)
    assert not validator.is_valid(doc)
