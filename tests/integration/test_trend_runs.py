"""Three real runs into a fresh trend store; the third, throttled, is flagged by `mapquake report trend`.

Each run goes through the CLI on the local backend (namespaces, a Go target,
Locust, Prometheus) and records itself in the trend store named by
MAPQUAKE_TREND_STORE. The third run caps each user at 5 requests/s, so its map
writes/s fall far below the first two: the trend report must flag it (exit 1)
and its baseline check (Mann-Whitney U on writes/s) must fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from orchestrator.targets.build import REPO_ROOT
from orchestrator.trends.store import TREND_STORE_ENV, TrendStore
from tests.integration.netfixtures import needs_root

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    needs_root,
]

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: trend-tiny
targets:
  - {name: kv, store: mutexmap, replicas: 1}
load:
  user: MapWriteUser
  protocol: grpc
  workers: 1
  users: 2
  batch: 20
  keys: {space: 5000, distribution: uniform, seed: 3}
  value: {type: "[16]byte"}
phases:
  - {name: fill, duration: 3s}
  - {name: steady, duration: 3s}
checks:
  - {name: alive, crash: kv, expect: none}
  - name: writes
    baseline: 'sum(rate(mapquake_writes_total{job="targets"}[2s]))'
    during: [fill, steady]
    worse_if: lower
    min_runs: 2
"""


def mapquake(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_three_runs_and_the_third_is_flagged(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    store = tmp_path / "trends.sqlite"
    codes = []
    for i, extra in enumerate(([], [], ["--set", "load.rate=5"])):
        env = {**os.environ, TREND_STORE_ENV: str(store), "MAPQUAKE_STATE_DIR": str(tmp_path / f"state{i}")}
        proc = mapquake("run", str(scenario), "--report-dir", str(tmp_path / f"run{i}"), *extra, env=env)
        mapquake("cleanup", env=env)
        codes.append(proc.returncode)
        assert proc.returncode in (0, 1, 4), proc.stdout + proc.stderr
        assert (tmp_path / f"run{i}" / "series.json").exists()
        assert (tmp_path / f"run{i}" / "report.html").exists()
        # Real reports validate: report.json against its schema, junit.xml against the JUnit XSD.
        schema = json.loads((REPO_ROOT / "docs" / "report.schema.json").read_text())
        doc = json.loads((tmp_path / f"run{i}" / "report.json").read_text())
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
        xmlschema.XMLSchema(REPO_ROOT / "tests" / "fixtures" / "junit.xsd").validate(tmp_path / f"run{i}" / "junit.xml")
    # The first two cannot compare (fewer than min_runs earlier runs): inconclusive; the third is worse.
    assert codes == [4, 4, 1]
    third = json.loads((tmp_path / "run2" / "report.json").read_text())
    baseline = next(c for c in third["checks"] if c["name"] == "writes")
    assert baseline["verdict"] == "fail", baseline["summary"]
    assert len(baseline["evidence"]["baseline_runs"]) == 2

    with TrendStore(store) as opened:
        runs = opened.runs()
    assert len(runs) == 3
    assert all(r.throughput_wps for r in runs)
    assert runs[2].throughput_wps < 0.5 * min(runs[0].throughput_wps, runs[1].throughput_wps)

    out = tmp_path / "trend"
    env = {**os.environ, TREND_STORE_ENV: str(store)}
    proc = mapquake("report", "trend", "--out", str(out), "--scenario", "trend-tiny", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    md = (out / "trend.md").read_text()
    assert "3 runs over all time" in md and "1 flagged as regressions" in md
    assert f"trend-tiny run {runs[2].run_id}" in md
    assert "map writes/s" in md and "worse than the baseline" in md
    assert "REGRESSION" in (out / "trend.html").read_text()
