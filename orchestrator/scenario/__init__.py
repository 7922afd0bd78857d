"""Scenario files: read (with lines), override (--set), validate (every error at once), build.

    scenario = load_scenario(Path("scenarios/quickstart.yaml"), overrides=["load.workers=2"])

raises ScenarioInvalid (exit 2) listing every problem with file:line and field path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from orchestrator.scenario.overrides import OverrideError, apply_override, parse_override
from orchestrator.scenario.spec import Scenario, build
from orchestrator.scenario.validate import ScenarioError, ScenarioInvalid, validate
from orchestrator.scenario.yamlsource import LocatedDocument, format_path, parse, read

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioInvalid",
    "check_scenario",
    "format_path",
    "load_scenario",
    "load_scenario_text",
]


def check_scenario(doc: LocatedDocument, overrides: Sequence[str] = ()) -> list[ScenarioError]:
    """Apply overrides to the document in place and return every error (empty: valid)."""
    errors: list[ScenarioError] = []
    applied = []
    for text in overrides:
        try:
            override = parse_override(text)
            if doc.data is not None:
                apply_override(doc.data, override)
                applied.append(override)
        except OverrideError as err:
            errors.append(ScenarioError(f"--set {err.text}", None, (), err.message))
    found = validate(doc)
    # An error in a field that --set wrote points at the flag, not at the file's old value.
    for error in found:
        source = next((o for o in applied if error.path[: len(o.path)] == o.path), None)
        if source is not None:
            error = dataclasses.replace(error, origin=f"--set {source.text}", line=None)
        errors.append(error)
    return errors


def load_scenario(path: Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override, validate and build a scenario, or raise ScenarioInvalid listing every error."""
    doc = read(path)
    errors = check_scenario(doc, overrides)
    if errors:
        raise ScenarioInvalid(errors)
    return build(doc.data, source=str(path))


def load_scenario_text(text: str, origin: str = "<string>", overrides: Sequence[str] = ()) -> Scenario:
    doc = parse(text, origin)
    errors = check_scenario(doc, overrides)
    if errors:
        raise ScenarioInvalid(errors)
    return build(doc.data, source=origin)
