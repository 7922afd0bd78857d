"""bench/verdict_matrix.py's bookkeeping: how a run's exit code counts against its case, the table,
and --append (one_run replaced by a stand-in: the real runs are tests/integration/test_verdict_matrix.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orchestrator.targets.build import REPO_ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verdict_matrix", REPO_ROOT / "bench" / "verdict_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


vm = _load()


def case(name: str) -> Any:
    return next(c for c in vm.cases() if c.name == name)


def failing(*names: str) -> list[dict[str, str]]:
    return [{"name": n, "verdict": "fail", "summary": "..."} for n in names]


def test_outcomes() -> None:
    healthy, leak = case("sessions-expire"), case("sessions-leak-outside")
    assert vm.outcome(healthy, 0, []) == "ok"
    assert vm.outcome(healthy, 1, failing("heap-after-pause")) == "false-alarm"
    assert vm.outcome(healthy, 4, []) == "inconclusive"
    assert vm.outcome(healthy, 3, []) == "error"
    assert vm.outcome(leak, 0, []) == "miss"
    assert vm.outcome(leak, 1, failing("heap-after-pause")) == "ok"
    assert vm.outcome(leak, 1, failing("no-crash")) == "wrong-check"  # gated, not for the reason seeded
    assert vm.outcome(leak, 4, failing("heap-after-pause")) == "inconclusive"  # e.g. the load fell short


def test_every_shipped_scenario_is_a_healthy_case_and_every_regression_names_its_check() -> None:
    names = {c.name: c for c in vm.cases()}
    for path in (REPO_ROOT / "scenarios").glob("*.yaml"):
        assert names[f"shipped-{path.stem}"].expect == "pass"
    for c in names.values():
        assert c.scenario.exists(), c
        assert (c.expect == "fail") == bool(c.catches), c
        for check in c.catches:
            assert check in c.scenario.read_text(), (c.name, check)  # the scenario has the check


def test_unknown_cases_are_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match=r"no case nope; the cases are: .*sessions-pin"):
        vm.select("sessions-expire,nope", vm.cases())


def test_append_adds_to_the_runs_already_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codes = iter([0, 1, 1, 0])

    def fake_run(c: Any, index: int, work: Path, keep: Path, busy: int) -> Any:
        code = next(codes)
        fails = failing(*(c.catches[:1] or ("heap-under-load",))) if code else []
        return vm.RunResult(c.name, index, c.expect, code, vm.EXIT_VERDICT[code], vm.outcome(c, code, fails), fails,
                            50.0, 1.0, 1.0, busy=busy)  # fmt: skip

    monkeypatch.setattr(vm, "one_run", fake_run)
    monkeypatch.setattr(vm.os, "geteuid", lambda: 0)
    out = tmp_path / "m"
    assert vm.main(["--runs", "1", "--cases", "sessions-expire,sessions-pin", "--out", str(out)]) == 0
    # Second sitting: the healthy case fails (a false alarm), the regression passes (a miss).
    assert vm.main(["--runs", "1", "--cases", "sessions-expire,sessions-pin", "--out", str(out), "--append",
                    "--busy", "2"]) == 1  # fmt: skip
    doc = json.loads((out / "matrix.json").read_text())
    assert len(doc["commands"]) == 2 and "busy loops 2" in doc["commands"][1]
    rows = {r["case"]: r for r in doc["cases"]}
    assert (rows["sessions-expire"]["runs"], rows["sessions-expire"]["false_alarms"]) == (2, 1)
    assert (rows["sessions-pin"]["runs"], rows["sessions-pin"]["misses"], rows["sessions-pin"]["ok"]) == (2, 1, 1)
    assert [r["run"] for r in doc["runs"] if r["case"] == "sessions-pin"] == [0, 1]
    table = (out / "matrix.md").read_text()
    assert "| sessions-expire | pass | 2 | 1 | 1 | 0 | 0 | 1 | 0 | 50.0 | heap-under-load fail ×1 |" in table
    assert "| **all** | | 4 | | | 0 | 0 | 1 | 1 | | |" in table
