"""docs/scenario.schema.json is the exported copy of the schema the validator uses."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.scenario.schema import SCENARIO_SCHEMA

REPO = Path(__file__).resolve().parents[3]


def test_exported_schema_is_current() -> None:
    exported = json.loads((REPO / "docs" / "scenario.schema.json").read_text())
    assert exported == SCENARIO_SCHEMA, "run: .venv/bin/mapquake validate --schema > docs/scenario.schema.json"


def test_scenario_reference_is_current() -> None:
    from orchestrator.scenario.reference import render

    committed = (REPO / "docs" / "scenario-reference.md").read_text()
    assert committed == render(), (
        "run: .venv/bin/python -m orchestrator.scenario.reference > docs/scenario-reference.md"
    )
