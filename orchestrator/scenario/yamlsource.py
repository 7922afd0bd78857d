"""Read a YAML document into plain Python data plus the line of every field.

Errors must say file:line and field path, so the loader keeps, for each path
(a tuple of keys and list indexes), the line where its value starts. Duplicate
keys are an error here (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass
class SourceError:
    """A problem found while reading the file itself (syntax, duplicate key)."""

    line: int | None
    path: Path_
    message: str


@dataclass
class LocatedDocument:
    """The parsed data and where each field came from (1-based lines)."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    origin: str = "<string>"
    errors: list[SourceError] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that is in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Path_) -> str:
    """Dotted path with numeric indexes, the same syntax `--set` takes: targets.0.store.

    A key with other characters is quoted JSON-style (spaces escaped too) so the
    path stays one readable word.
    """
    if not path:
        return "(document)"
    parts = []
    for part in path:
        text = str(part)
        parts.append(text if _PLAIN_KEY.match(text) else json.dumps(text).replace(" ", "\\u0020"))
    return ".".join(parts)


def _convert(node: yaml.Node, path: Path_, doc: LocatedDocument) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                doc.errors.append(SourceError(key_node.start_mark.line + 1, path, "keys must be plain strings"))
                continue
            if key in result:
                doc.errors.append(
                    SourceError(
                        key_node.start_mark.line + 1,
                        (*path, key),
                        f"duplicate key '{key}' (first at line {doc.lines[(*path, key)]}); remove one of them",
                    )
                )
                continue
            result[key] = _convert(value_node, (*path, key), doc)
            # Point at the key, not at the value, which may start on the next line.
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), doc) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # Resolve the scalar with PyYAML's safe constructor, so "1.26" stays a float
    # exactly as a plain yaml.safe_load would give it (the schema then asks for a string).
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()


def parse(text: str, origin: str = "<string>") -> LocatedDocument:
    """Parse one YAML document; syntax problems become SourceErrors, never exceptions."""
    doc = LocatedDocument(data=None, origin=origin)
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        doc.errors.append(SourceError(mark.line + 1 if mark else None, (), f"invalid YAML: {problem}"))
        return doc
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        doc.errors.append(SourceError(1, (), "the file is empty; a scenario starts with 'apiVersion: mapquake/v1'"))
        return doc
    if len(nodes) > 1:
        doc.errors.append(
            SourceError(nodes[1].start_mark.line + 1, (), "one scenario per file; remove the second YAML document")
        )
    try:
        doc.data = _convert(nodes[0], (), doc)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        doc.errors.append(SourceError(mark.line + 1 if mark else None, (), f"invalid YAML value: {problem}"))
    return doc


def read(path: Path) -> LocatedDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        doc = LocatedDocument(data=None, origin=str(path))
        doc.errors.append(SourceError(None, (), "no such file"))
        return doc
    except (OSError, UnicodeDecodeError) as err:
        doc = LocatedDocument(data=None, origin=str(path))
        doc.errors.append(SourceError(None, (), f"cannot read the file: {err}"))
        return doc
    return parse(text, origin=str(path))
