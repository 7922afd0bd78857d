"""A slice of the verdict-truth matrix (bench/verdict_matrix.py), run for real as the bench runs it.

One healthy user-style case (the sessions service with expiring sessions, the default Go collector,
no GC handler and an idle replica: it must pass) and one seeded regression (the same service whose
sessions never expire: it must fail on its entries bound), one run each. The matrix's table and
JSON must count them right: no false alarm, no miss.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_root]

CASES = ["sessions-expire", "sessions-never-expire"]


def test_a_healthy_case_passes_and_a_regression_is_caught(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    argv = [sys.executable, "bench/verdict_matrix.py", "--runs", "1", "--cases", ",".join(CASES), "--out", str(out)]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    doc = json.loads((out / "matrix.json").read_text())
    runs = {r["case"]: r for r in doc["runs"]}
    details = result.stdout + result.stderr[-4000:]
    assert result.returncode == 0, details
    assert set(runs) == set(CASES)

    healthy, regressed = runs["sessions-expire"], runs["sessions-never-expire"]
    assert (healthy["exit_code"], healthy["verdict"], healthy["outcome"]) == (0, "pass", "ok"), details
    assert healthy["failing"] == []
    assert (regressed["exit_code"], regressed["verdict"], regressed["outcome"]) == (1, "fail", "ok"), details
    # Caught by the check meant for it, with the evidence in its summary.
    bound = next(f for f in regressed["failing"] if f["name"] == "sessions-within-bound")
    assert bound["verdict"] == "fail" and "3000" in bound["summary"]
    for name in ("heap-under-load", "heap-after-pause", "goroutines-bounded", "no-crash"):
        assert name not in {f["name"] for f in regressed["failing"]}, regressed["failing"]

    by_case = {c["case"]: c for c in doc["cases"]}
    for case in CASES:
        row = by_case[case]
        assert (row["runs"], row["ok"], row["false_alarms"], row["misses"], row["inconclusive"]) == (1, 1, 0, 0, 0)
    assert len(doc["commands"]) == 1 and "busy loops 0" in doc["commands"][0]
    assert {r["busy"] for r in doc["runs"]} == {0}

    table = (out / "matrix.md").read_text()
    assert table.startswith("machine: ")
    assert "| sessions-expire | pass | 1 | 1 | 0 | 0 | 0 | 0 | 0 |" in table
    assert "| sessions-never-expire | fail | 1 | 0 | 1 | 0 | 0 | 0 | 0 |" in table
    assert "| **all** | | 2 | | | 0 | 0 | 0 | 0 | | |" in table
    assert "| sessions-never-expire | fail | 1 |" in result.stdout  # printed too
    assert (out / "runs" / "sessions-expire-0.json").exists()


def test_an_unknown_case_is_named_with_the_known_ones(tmp_path: Path) -> None:
    argv = [sys.executable, "bench/verdict_matrix.py", "--cases", "sessions-expire,nope", "--out", str(tmp_path)]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--cases: no case nope; the cases are: " in result.stderr + result.stdout
    assert "sessions-pin" in result.stderr + result.stdout
    assert not (tmp_path / "matrix.json").exists()
