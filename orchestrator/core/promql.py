"""Scope PromQL to one run: every selector gets ``mapquake_run="<id>"`` (pure).

A Prometheus the scenario names is shared: other runs, and every other workload it scrapes, have
series with the same ``job``/``target``/``replica`` labels as this run's. Adding the run's label
to every vector selector (what prom-label-proxy does) makes each query see this run only, the
user's ``promql`` checks included, without asking anyone to write the label themselves.

Why the text is edited rather than a parsed tree printed back: promql-parser (the binding of the
Rust PromQL parser) parses faithfully, but its printer drops escapes (``"b\\\\.c"`` comes back
as ``"b\\.c"``, which Prometheus rejects). So a small lexer finds the selectors in the original
text and inserts the matcher there; promql-parser then checks the result: it must parse, every
selector must carry the matcher, and with the matcher taken out the tree must print exactly as the
original's does. An expression this cannot scope is refused with a clear error, never sent
unscoped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

RUN_LABEL = "mapquake_run"
"""The series label that names the run (pods carry it; the scrape config maps it to this)."""

_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left", "group_right",
        "bool", "offset", "start", "end", "step", "inf", "nan",
    }
)  # fmt: skip
"""Identifiers that are never a metric name on their own (PromQL's lexer treats inf/nan as numbers)."""
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
"""Keywords whose parenthesised list holds label names, not expressions."""
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9.][0-9a-zA-Z_.]*(?:[eE][+-]?[0-9]+)?")
_VALUE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class ScopeError(ValueError):
    """The expression cannot be scoped to the run (it is invalid, or uses syntax this cannot edit)."""


@dataclass(frozen=True)
class _Insert:
    at: int
    text: str


def scope_to_run(expr: str, value: str, *, label: str = RUN_LABEL) -> str:
    """``expr`` with ``label="value"`` on every vector selector. Raises ScopeError."""
    if not _VALUE.match(value):
        raise ScopeError(f"run label value {value!r} has characters this will not quote")
    try:
        original = promql_parser.parse(expr)
    except ValueError as err:
        raise ScopeError(f"not valid PromQL: {err}") from err
    matcher = f'{label}="{value}"'
    inserts = _selector_inserts(expr, matcher)
    scoped = _apply(expr, inserts)
    _verify(original, scoped, label, value)
    return scoped


def _apply(expr: str, inserts: list[_Insert]) -> str:
    out, last = [], 0
    for insert in inserts:
        out += [expr[last : insert.at], insert.text]
        last = insert.at
    return "".join([*out, expr[last:]])


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr):
        if expr[i].isspace():
            i += 1
        elif expr[i] == "#":  # a comment runs to the end of the line
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end + 1
        else:
            break
    return i


def _skip_string(expr: str, i: int) -> int:
    """The index after the string literal starting at ``i``."""
    quote = expr[i]
    i += 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise ScopeError(f"unterminated string starting at offset {i}")


def _close(expr: str, i: int, opening: str, closing: str) -> int:
    """The index of the bracket closing the one at ``i`` (strings skipped)."""
    depth = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ScopeError(f"unbalanced {opening!r}")


def _braces(expr: str, i: int, matcher: str) -> tuple[_Insert, int]:
    """The insert for the matcher list opening at ``i``, and the index after it."""
    end = _close(expr, i, "{", "}")
    body = expr[i + 1 : end]
    if re.search(r"(?<![A-Za-z0-9_\"'`])or(?![A-Za-z0-9_])", _strip_strings(body)):
        raise ScopeError("a selector with `or` between matchers cannot be scoped; write two selectors")
    separator = "," if body.strip() else ""
    return _Insert(i + 1, matcher + separator), end + 1


def _strip_strings(text: str) -> str:
    """``text`` with every string literal's content blanked (so words inside values are not read)."""
    out, i = [], 0
    while i < len(text):
        if text[i] in "\"'`":
            end = _skip_string(text, i)
            out.append('""')
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _selector_inserts(expr: str, matcher: str) -> list[_Insert]:
    inserts: list[_Insert] = []
    i = 0
    while i < len(expr):
        i = _skip_space(expr, i)
        if i >= len(expr):
            break
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "{":
            insert, i = _braces(expr, i, matcher)
            inserts.append(insert)
        elif char == "[":  # a range or subquery: durations only
            i = _close(expr, i, "[", "]") + 1
        elif (number := _NUMBER.match(expr, i)) and (char.isdigit() or char == "."):
            i = number.end()
        elif ident := _IDENT.match(expr, i):
            i = _identifier(expr, ident, matcher, inserts)
        else:
            i += 1
    return inserts


def _identifier(expr: str, ident: re.Match[str], matcher: str, inserts: list[_Insert]) -> int:
    """Handle one identifier; returns where to go on."""
    word, end = ident.group(), ident.end()
    after = _skip_space(expr, end)
    following = expr[after] if after < len(expr) else ""
    lower = word.lower()
    if lower in _LABEL_LISTS and following == "(":
        return _close(expr, after, "(", ")") + 1
    if lower in _KEYWORDS or following == "(":  # a keyword, or a function or aggregation call
        return end
    next_word = _IDENT.match(expr, after)
    if next_word and next_word.group().lower() in ("by", "without"):  # `sum by (x) (...)`: an aggregation
        return end
    if following == "{":  # a metric name with matchers: the braces get the matcher
        return end
    inserts.append(_Insert(end, "{" + matcher + "}"))
    return end


def _verify(original: promql_parser.Expr, scoped: str, label: str, value: str) -> None:
    try:
        tree = promql_parser.parse(scoped)
    except ValueError as err:
        raise ScopeError(f"the scoped expression does not parse ({err}): {scoped}") from err
    unscoped: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            pairs = [(m.name, str(m.value)) for m in node.matchers.matchers]
            if (label, value) not in pairs:
                unscoped.append(str(node))

    promql_parser.walk(tree, visit)
    if unscoped:
        raise ScopeError(f"selectors left without the run's label: {', '.join(unscoped)}")
    matcher = f'{label}="{value}"'
    printed = str(tree).replace(matcher + ",", "").replace("{" + matcher + "}", "{}")
    if printed != str(original):
        raise ScopeError(f"scoping changed the expression: {str(original)!r} became {str(tree)!r}")
