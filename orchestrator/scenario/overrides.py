"""`--set path=value`: change one field of a scenario before it is validated.

Paths are dotted with numeric list indexes (targets.0.replicate.queue); values
are read as YAML scalars, so `--set load.workers=4` sets a number and
`--set targets.0.replicate.queue=unbounded` a string. Overrides are applied to
the raw data, then the whole scenario is validated as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.scenario.yamlsource import MAX_DEPTH, LimitExceeded, Path_, format_path, load_value


@dataclass(frozen=True)
class Override:
    path: Path_
    value: Any
    text: str  # as the user wrote it, for messages


class OverrideError(ValueError):
    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"--set {text}: {message}")
        self.text = text
        self.message = message


def parse_override(text: str) -> Override:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise OverrideError(text, "expected path=value, e.g. --set targets.0.replicas=3")
    parts: list[str | int] = []
    for part in key.split("."):
        if not part:
            raise OverrideError(text, f"empty segment in path '{key}'")
        parts.append(int(part) if part.isdigit() else part)
    if len(parts) > MAX_DEPTH:
        raise OverrideError(text, f"the path has more than {MAX_DEPTH} segments")
    try:
        value = load_value(raw, at=tuple(parts)) if raw else ""
    except LimitExceeded as err:
        raise OverrideError(text, err.message) from None
    except yaml.YAMLError:
        value = raw  # not YAML: take the text as it is
    return Override(path=tuple(parts), value=value, text=text)


def apply_override(data: Any, override: Override) -> None:
    """Set the field in place. A missing mapping on the way is created (``--set prometheus.existing.url=``
    on a scenario without ``prometheus:``); lists are indexed, never grown. The schema then judges the keys."""
    node = data
    for depth, part in enumerate(override.path[:-1]):
        node = _child(node, part, override, depth)
    last = override.path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or not 0 <= last < len(node):
            raise OverrideError(
                override.text, f"{format_path(override.path)}: index out of range (list has {len(node)})"
            )
        node[last] = override.value
    elif isinstance(node, dict):
        node[str(last)] = override.value
    else:
        raise OverrideError(override.text, f"{format_path(override.path[:-1])} is not a mapping or a list")


def _child(node: Any, part: str | int, override: Override, depth: int) -> Any:
    here = format_path(override.path[: depth + 1])
    if isinstance(node, list):
        if not isinstance(part, int):
            raise OverrideError(
                override.text, f"{format_path(override.path[:depth])} is a list; use an index, not '{part}'"
            )
        if not 0 <= part < len(node):
            raise OverrideError(override.text, f"{here}: index out of range (list has {len(node)} items)")
        return node[part]
    if isinstance(node, dict):
        key = str(part)
        if key not in node:
            if isinstance(override.path[depth + 1], int):
                raise OverrideError(override.text, f"{here} is not in the scenario; --set cannot create a list")
            node[key] = {}
        return node[key]
    raise OverrideError(override.text, f"{format_path(override.path[:depth])} is not a mapping or a list")
