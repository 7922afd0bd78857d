"""A user's own service and locustfile through `mapquake run`, and each way they commonly go wrong.

The service here is tests/fixtures/services/fake_service.py (Python, so each misbehaviour is one
flag); the example Go service runs in test_example_service.py. Every failure must name the target
or the file, exit 3 (or 2 before anything starts) and leave nothing behind: no namespace, no
process, no run state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_root]

FAKE = REPO_ROOT / "tests" / "fixtures" / "services" / "fake_service.py"
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Scraper(HttpUser):
    wait_time = constant(0.05)

    @task
    def metrics(self):
        self.client.get("/metrics", name="metrics")
"""
SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: user-svc
targets:
  - name: svc
    replicas: 2
    command: [{python}, {fake}, --listen, "{{http_addr}}"FLAGS]
    ready: {{http: /metrics, timeout: 4s}}
load: {{locustfile: locustfile.py, user: Scraper, users: 2}}
phases: [{{name: warm, duration: 3s}}, {{name: steady, duration: 6s}}]
checks:
  - {{name: heap, model: live_heap, target: svc, map: items, tolerance: 10%, at: [steady.end]}}
  - name: p99
    promql: 'histogram_quantile(0.99, sum by (le) (rate(mapquake_client_request_seconds_bucket[3s])))'
    below: 1.0
    during: [steady]
"""


def write(tmp_path: Path, flags: tuple[str, ...], locustfile: str = LOCUSTFILE) -> Path:
    (tmp_path / "locustfile.py").write_text(locustfile)
    path = tmp_path / "scenario.yaml"
    path.write_text(
        SCENARIO.format(python=sys.executable, fake=FAKE).replace("FLAGS", "".join(f", {f}" for f in flags))
    )
    return path


def run(tmp_path: Path, scenario: Path) -> tuple[int, str, dict[str, Any] | None]:
    state = tmp_path / "state"
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(state), "MAPQUAKE_TREND_STORE": str(tmp_path / "t.db")}
    report_dir = tmp_path / "report"
    args = [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir)]
    try:
        result = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        leftovers = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, capture_output=True, text=True, timeout=120
        )
    # Nothing was left for cleanup to find: the run removed its namespaces, processes and state.
    assert "removed" not in leftovers.stdout, leftovers.stdout
    assert not list((state / "runs").glob("*")) if (state / "runs").exists() else True
    report_path = report_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return result.returncode, result.stdout + result.stderr, report


def test_a_healthy_service_with_its_own_locustfile_is_measured_and_checked(tmp_path: Path) -> None:
    code, output, report = run(tmp_path, write(tmp_path, ("--probe-maps",)))
    assert report is not None, output
    verdicts = {c["name"]: (c["verdict"], c["summary"]) for c in report["checks"]}
    assert code == 0, (output, verdicts)
    # The user's requests went through Locust's request event into the merged client histograms.
    assert verdicts["p99"][0] == "pass"
    heap = next(c for c in report["checks"] if c["name"] == "heap")
    assert heap["evidence"]["samples"][0]["approximate"] is True  # no GC handler: the Go collector's series
    assert "map 'items'" in heap["summary"]


def test_a_service_that_exits_at_start_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    code, output, report = run(tmp_path, write(tmp_path, ("--exit-at-start", "'7'")))
    assert code == 3, output
    assert report is not None and "target 'svc' replica 0 exited with code 7 before it was ready" in report["reason"]
    assert "configured to fail at start" in report["reason"]


def test_a_service_listening_on_the_wrong_address_is_explained(tmp_path: Path) -> None:
    scenario = write(tmp_path, ("--probe-maps",))
    scenario.write_text(scenario.read_text().replace('--listen, "{http_addr}"', "--listen, 127.0.0.1:8080"))
    code, output, report = run(tmp_path, scenario)
    assert code == 3, output
    assert report is not None and "target 'svc' replica 0 was not ready within 4s" in report["reason"]
    assert "{http_addr}" in output  # the hint: listen on the address mapquake assigns


def test_a_service_without_mapprobe_series_is_refused_at_deploy(tmp_path: Path) -> None:
    code, output, report = run(tmp_path, write(tmp_path, ()))
    assert code == 3, output
    assert report is not None and "serves no mapprobe map" in report["reason"]
    assert "model check 'heap'" in report["reason"]


def test_a_locustfile_that_does_not_import_is_refused_before_anything_starts(tmp_path: Path) -> None:
    code, output, report = run(
        tmp_path, write(tmp_path, ("--probe-maps",), "import not_installed_anywhere\n" + LOCUSTFILE)
    )
    assert code == 2, output
    assert "locustfile.py does not import" in output and "not_installed_anywhere" in output
    assert report is None  # refused in preflight: no run, no report


def test_faults_work_on_a_service_as_on_the_demo_stores(tmp_path: Path) -> None:
    """A delay and a pause resolve to the service's namespaces and pid, are applied and healed."""
    scenario = write(tmp_path, ("--probe-maps",))
    scenario.write_text(
        scenario.read_text().replace(
            "phases: [{name: warm, duration: 3s}, {name: steady, duration: 6s}]",
            "phases:\n"
            "  - {name: warm, duration: 3s}\n"
            "  - {name: steady, duration: 6s}\n"
            "  - {name: slow, duration: 4s, faults: [{netem: {target: svc, delay: 150ms}}]}\n"
            "  - {name: stopped, duration: 3s, faults: [{pause: {target: svc, replica: 1}}]}\n",
        )
    )
    code, output, report = run(tmp_path, scenario)
    assert code == 0 and report is not None, output
    events = report["timeline"]["events"]
    applied = {e["name"]: e["data"] for e in events if e["kind"] == "fault-applied"}
    assert set(applied) == {"slow.0", "stopped.0"}
    assert applied["slow.0"]["mechanisms"] and applied["stopped.0"]["mechanisms"] == ["SIGSTOP"]
    assert [e["name"] for e in events if e["kind"] == "fault-healed"] == ["slow.0", "stopped.0"]
    assert not [e for e in events if e["kind"] == "crash"]  # paused and resumed, not killed
