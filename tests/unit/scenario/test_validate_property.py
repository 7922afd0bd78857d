"""Property: any malformed scenario gives exit 2 and messages naming the broken field, never a traceback."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli.main import main
from orchestrator.scenario.yamlsource import format_path, parse

from .test_validate import VALID

BASE: dict[str, Any] = parse(VALID).data
ERROR_LINE = re.compile(r"^  (?P<origin>\S+?)(:(?P<line>\d+))?: (?P<path>\S+): .+$")

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


ALL_PATHS = _paths(BASE)


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...]]:
    data = copy.deepcopy(BASE)
    path = draw(st.sampled_from(ALL_PATHS))
    action = draw(st.sampled_from(["delete", "replace", "unknown-key"]))
    parent = _parent(data, path)
    if action == "delete":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = draw(junk)
    else:
        key = draw(st.sampled_from(["colour", "replica", "timeout", "Name"]))
        if isinstance(parent[path[-1]], dict):
            target, path = parent[path[-1]], (*path, key)
        elif isinstance(parent, dict):
            target, path = parent, (*path[:-1], key)
        else:
            target, path = data, (key,)
        target[key] = draw(junk)
    return data, path


def _related(a: str, b: str) -> bool:
    """One path is the other or contains it (a missing field is reported on its parent's path)."""
    return a == "(document)" or a == b or b.startswith(a + ".") or a.startswith(b + ".")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_malformed_scenarios_exit_2_naming_the_field(
    case: tuple[dict[str, Any], tuple[Any, ...]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, mutated_path = case
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (0, 2)
    if code == 0:
        return  # the mutation happened to leave a valid scenario (e.g. a default restated)
    lines = err.splitlines()[1:]
    assert lines, err
    paths = []
    for line in lines:
        match = ERROR_LINE.match(line)
        assert match, f"error line without origin, line and field path: {line!r}"
        assert match["origin"] == str(path)
        paths.append(match["path"])
    wanted = format_path(mutated_path)
    assert any(_related(p, wanted) for p in paths) or any(
        # breaking a name also breaks what refers to it; those errors name the referring field
        reference in line
        for line in lines
        for reference in ("no target named", "no phase named", "is not <phase>", "replica", "already the name")
    ), (mutated_path, lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_run_refuses_malformed_scenarios_before_starting_anything(
    case: tuple[dict[str, Any], tuple[Any, ...]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = case
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    state = tmp_path / "state"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAPQUAKE_STATE_DIR", str(state))
        # A run that got past validation would start here; make that loud instead of running it.
        patch.setattr("orchestrator.run.lifecycle.run", _must_not_start)
        try:
            code = main(["run", str(path), "--report-dir", str(tmp_path / "report")])
        except _Started:
            code = _STARTED
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 2:
        assert "invalid scenario" in err
        assert ERROR_LINE.match(err.splitlines()[1])
    else:
        assert code == _STARTED, err  # valid after all: it reached the runner
    # A run writes its ledger before it creates anything (namespace, process, file): no ledger, nothing started.
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())
    assert not (tmp_path / "report").exists()


_STARTED = 99


class _Started(BaseException):
    """Raised instead of running: the scenario passed validation."""


def _must_not_start(*args: object, **kwargs: object) -> object:
    raise _Started
