"""docs/scenario.schema.json is the exported copy of the schema the validator uses."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.scenario.schema import SCENARIO_SCHEMA

REPO = Path(__file__).resolve().parents[3]


def test_exported_schema_is_current() -> None:
    exported = json.loads((REPO / "docs" / "scenario.schema.json").read_text())
    assert exported == SCENARIO_SCHEMA, "run: .venv/bin/mapquake validate --schema > docs/scenario.schema.json"
