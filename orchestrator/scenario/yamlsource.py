"""Read a YAML document into plain Python data plus the line of every field.

Errors must say file:line and field path, so the loader keeps, for each path
(a tuple of keys and list indexes), the line where its value starts. Duplicate
keys are an error here (PyYAML silently keeps the last one).

The input is bounded before it can cost much: a scenario file is a regular file
of at most MAX_BYTES, nested at most MAX_DEPTH levels, expanding (aliases
included) to at most MAX_NODES values. Anything beyond is refused with a
file:line error, never a RecursionError, MemoryError or a read that blocks.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024
"""A scenario file is at most 1 MiB (the shipped ones are a few KiB)."""
MAX_DEPTH = 64
"""Mappings and lists nest at most this deep (the schema needs about 6)."""
MAX_NODES = 20_000
"""Values in the whole document, counting each use of an alias again (a billion laughs stops here).

The shipped scenarios have at most a few hundred; reading stops at this many, so a file of
a million tiny values is refused after a fraction of it is parsed."""


class LimitExceeded(Exception):
    """The document is beyond one of the bounds above; ``line`` is where (1-based), when known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


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
        shown = text if _PLAIN_KEY.match(text) else json.dumps(text).replace(" ", "\\u0020")
        parts.append(shown if len(shown) <= 80 else shown[:79] + "…")  # a key may be as long as the file
    return ".".join(parts)


def _too_many_values() -> str:
    return f"too large: more than {MAX_NODES} values (aliases count each time they are used); a scenario is smaller"


class _Budget:
    """What converting nodes to data may still spend: values, and the nodes on the current branch."""

    def __init__(self) -> None:
        self.nodes = 0
        self.branch: set[int] = set()
        self.constructor = yaml.SafeLoader("")


def _convert(node: yaml.Node, path: Path_, doc: LocatedDocument, budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise LimitExceeded(line, _too_many_values())
    if len(path) > MAX_DEPTH:
        raise LimitExceeded(line, f"too deep: nested deeper than {MAX_DEPTH} levels")
    doc.lines[path] = line
    if isinstance(node, yaml.CollectionNode):
        if id(node) in budget.branch:
            raise LimitExceeded(line, "an alias refers to a value that contains it (a cycle); remove the alias")
        budget.branch.add(id(node))
        try:
            return _convert_collection(node, path, doc, budget)
        finally:
            budget.branch.discard(id(node))
    return _scalar(node, budget)


def _convert_collection(node: yaml.CollectionNode, path: Path_, doc: LocatedDocument, budget: _Budget) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, budget) if isinstance(key_node, yaml.ScalarNode) else None
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
            result[key] = _convert(value_node, (*path, key), doc, budget)
            # Point at the key, not at the value, which may start on the next line.
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    return [_convert(item, (*path, i), doc, budget) for i, item in enumerate(node.value)]


def _scalar(node: yaml.Node, budget: _Budget) -> Any:
    # Resolve the scalar with PyYAML's safe constructor, so "1.26" stays a float
    # exactly as a plain yaml.safe_load would give it (the schema then asks for a string).
    if not isinstance(node, yaml.ScalarNode):
        return None
    try:
        return budget.constructor.construct_object(node, deep=True)
    except (ValueError, OverflowError) as err:  # 5000 digits, the 31st of February
        problem = f"cannot read {node.value[:40]!r}: {str(err)[:60]}"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while composing (before Python's recursion limit)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise LimitExceeded(mark.line + 1, f"too deep: nested deeper than {MAX_DEPTH} levels")
            if self._nodes > MAX_NODES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise LimitExceeded(mark.line + 1, _too_many_values())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str) -> list[yaml.Node]:
    """The documents' nodes, bounded in size, depth and count. Raises yaml.YAMLError or LimitExceeded."""
    if len(text) > MAX_BYTES:
        raise LimitExceeded(None, f"too large: {len(text)} characters; a scenario is at most {MAX_BYTES} bytes")
    loader = _BoundedLoader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
        return nodes
    finally:
        loader.dispose()


def to_data(node: yaml.Node, doc: LocatedDocument | None = None, at: Path_ = ()) -> Any:
    """Plain data from a node, bounded in size and depth, refusing cycles. Raises LimitExceeded or yaml.YAMLError.

    ``at`` is where the value goes in the scenario: its depth counts towards MAX_DEPTH.
    """
    return _convert(node, at, doc if doc is not None else LocatedDocument(data=None), _Budget())


def load_value(text: str, at: Path_ = ()) -> Any:
    """One YAML value (as `--set` takes it, to be put at ``at``), with the same bounds as a scenario file."""
    nodes = compose(text)
    return to_data(nodes[0], at=at) if nodes else None


def _reader_line(text: str, err: yaml.reader.ReaderError) -> int:
    return text.count("\n", 0, max(0, err.position)) + 1


def _reader_message(err: yaml.reader.ReaderError) -> str:
    code = err.character if isinstance(err.character, int) else ord(err.character)
    if err.encoding != "unicode":
        return f"byte #x{code:02x} is not valid {err.encoding}"
    return (
        f"character #x{code:04x} is not allowed in YAML (a control character); "
        "remove it or write it escaped in a double-quoted string"
    )


def parse(text: str, origin: str = "<string>") -> LocatedDocument:
    """Parse one YAML document; syntax problems become SourceErrors, never exceptions."""
    doc = LocatedDocument(data=None, origin=origin)
    try:
        nodes = compose(text)
    except LimitExceeded as err:
        doc.errors.append(SourceError(err.line, (), err.message))
        return doc
    except yaml.reader.ReaderError as err:
        doc.errors.append(SourceError(_reader_line(text, err), (), f"invalid YAML: {_reader_message(err)}"))
        return doc
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        doc.errors.append(SourceError(mark.line + 1 if mark else None, (), f"invalid YAML: {problem}"))
        return doc
    if not nodes:
        doc.errors.append(SourceError(1, (), "the file is empty; a scenario starts with 'apiVersion: mapquake/v1'"))
        return doc
    if len(nodes) > 1:
        doc.errors.append(
            SourceError(nodes[1].start_mark.line + 1, (), "one scenario per file; remove the second YAML document")
        )
    try:
        doc.data = to_data(nodes[0], doc)
    except LimitExceeded as err:
        doc.data = None
        doc.lines.clear()
        doc.errors.append(SourceError(err.line, (), err.message))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        doc.errors.append(SourceError(mark.line + 1 if mark else None, (), f"invalid YAML value: {problem}"))
    return doc


def read(path: Path) -> LocatedDocument:
    """Read a scenario file: a regular file of at most MAX_BYTES of UTF-8, checked before it is read."""
    doc = LocatedDocument(data=None, origin=str(path))
    try:
        # stat, not open: opening a FIFO would block until a writer comes.
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            doc.errors.append(SourceError(None, (), f"cannot read the scenario: it is {kind}; give a YAML file"))
            return doc
        if info.st_size > MAX_BYTES:
            doc.errors.append(SourceError(None, (), f"too large: {info.st_size} bytes; a scenario is at most "
                                          f"{MAX_BYTES} bytes (1 MiB)"))  # fmt: skip
            return doc
        with open(path, "rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        doc.errors.append(SourceError(None, (), "no such file"))
        return doc
    except OSError as err:
        doc.errors.append(SourceError(None, (), f"cannot read the file: {err.strerror or err}"))
        return doc
    if len(raw) > MAX_BYTES:  # it grew after the stat
        doc.errors.append(SourceError(None, (), f"too large: a scenario is at most {MAX_BYTES} bytes (1 MiB)"))
        return doc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        doc.errors.append(SourceError(line, (), f"not UTF-8: byte #x{raw[err.start]:02x} cannot be decoded; "
                                      "save the file as UTF-8"))  # fmt: skip
        return doc
    return parse(text, origin=str(path))
