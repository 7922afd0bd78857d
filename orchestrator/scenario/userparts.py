"""What a scenario may bring of the user's own: service targets' placeholders and the locustfile.

Pure but for reading the locustfile's text: placeholders are expanded here (the same rules for
validation and for the backends), and a locustfile is read and parsed, never imported (importing
Locust monkey-patches the process; the backend tries the import in a subprocess before the run).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from orchestrator.scenario.schema import PLACEHOLDERS

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def placeholder_errors(text: str) -> list[str]:
    """Every unknown or malformed placeholder in ``text`` ("{{" and "}}" are literal braces)."""
    problems = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name is not None and name not in PLACEHOLDERS:
            problems.append(
                f"unknown placeholder '{{{name}}}' (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )
    stray = _PLACEHOLDER.sub("", text)
    if "{" in stray or "}" in stray:
        problems.append("unbalanced brace (write {{ or }} for a literal one)")
    return problems


def expand(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each {placeholder} replaced by its value; "{{"/"}}" become single braces."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    return _PLACEHOLDER.sub(one, text)


def scenario_dir(origin: str) -> Path:
    """Where a scenario's relative paths start: its file's directory (the working directory for text)."""
    path = Path(origin)
    return path.parent if path.suffix in (".yaml", ".yml") or is_file(path) else Path.cwd()


def resolve(origin: str, relative: str) -> Path:
    """``relative`` (a path in the scenario) from the scenario's directory, absolute."""
    path = scenario_dir(origin) / relative
    try:
        return path.resolve()
    except (OSError, ValueError):  # a NUL byte, a name too long: no such file, which the caller says
        return path.absolute()


def is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; False, not an exception, for a name too long or otherwise unusable."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_go_package(path: Path) -> bool:
    """Whether ``path`` is a directory holding .go files (False for any path the system refuses)."""
    try:
        return path.is_dir() and any(path.glob("*.go"))
    except (OSError, ValueError):
        return False


LOCUSTFILE_MAX_BYTES = 1024 * 1024


def locustfile_classes(path: Path) -> tuple[list[str], str | None]:
    """The classes a locustfile defines at top level, or an error: missing, unreadable, not Python."""
    if not is_file(path):
        return [], f"{path} does not exist"
    try:
        if path.stat().st_size > LOCUSTFILE_MAX_BYTES:
            return [], f"{path} is larger than 1 MiB; a locustfile is a Python module"
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, UnicodeDecodeError) as err:
        return [], f"cannot read {path}: {err}"
    except SyntaxError as err:
        return [], f"{path}:{err.lineno}: {err.msg}"
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)], None
