"""Render the scenario reference (docs/scenario-reference.md) from the JSON Schema.

The schema is the one source of truth for fields, types, allowed values and
defaults; this page is derived from it so the docs cannot drift. A unit test
fails when the committed page differs from what this renders.

    .venv/bin/python -m orchestrator.scenario.reference > docs/scenario-reference.md
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from orchestrator.scenario.schema import CHECK_KINDS, DURATION_RANGE, FAULT_KINDS, SCENARIO_SCHEMA


def _type(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if kind == "array":
        return f"list of {_type(schema.get('items', {})) or 'items'}"
    if kind == "string" and "pattern" in schema:
        return "string (see description)"
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    parts = []
    for key, text in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("minItems", "items ≥")):
        if key in schema:
            parts.append(f"{text} {schema[key]}")
    if DURATION_RANGE in schema:
        low, high = schema[DURATION_RANGE]
        parts.append(f"{low} to {high}")
    return ", ".join(parts)


def _rows(schema: dict[str, Any], prefix: str) -> Iterator[str]:
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        default = json.dumps(field["default"]) if "default" in field else ("required" if name in required else "")
        description = field.get("description", "")
        yield f"| `{path}` | {_type(field)} | {default} | {_limits(field)} | {description} |"
        if field.get("type") == "object" and "properties" in field:
            yield from _rows(field, f"{path}.")
        items = field.get("items", {})
        is_faults = "partition" in items.get("properties", {})  # listed in their own section below
        if field.get("type") == "array" and items.get("type") == "object" and "properties" in items and not is_faults:
            yield from _rows(items, f"{path}[].")


def _table(schema: dict[str, Any], prefix: str = "") -> list[str]:
    return ["| field | type | default | limits | meaning |", "|---|---|---|---|---|", *_rows(schema, prefix)]


def render() -> str:
    lines = [
        "# Scenario reference",
        "",
        "Generated from the JSON Schema in `orchestrator/scenario/schema.py` by",
        "`python -m orchestrator.scenario.reference`; do not edit by hand. The guide is",
        "[scenarios.md](scenarios.md); editors can complete fields with",
        "[scenario.schema.json](scenario.schema.json).",
        "",
        "## Top level",
        "",
        *_table(SCENARIO_SCHEMA),
        "",
        "## Faults (`phases[].faults[]`: exactly one key per fault)",
        "",
    ]
    for kind, schema in FAULT_KINDS.items():
        lines += [f"### `{kind}`", "", *_table(schema, f"{kind}."), ""]
    lines += ["## Checks (`checks[]`: exactly one kind key per check)", ""]
    for kind, schema in CHECK_KINDS.items():
        lines += [f"### `{kind}`", "", *_table(schema), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
