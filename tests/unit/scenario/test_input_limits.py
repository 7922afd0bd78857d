"""Hostile scenario input is refused quickly with exit 2 and file:line, never an internal error (issue 12)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.scenario import check_scenario
from orchestrator.scenario.yamlsource import MAX_BYTES, MAX_DEPTH, MAX_NODES, parse, read

from .test_validate import VALID, errors_of

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh", strict=True)
)


def validate_cli(path: Path | str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    started = time.monotonic()
    code = main(["validate", str(path), *extra])
    assert time.monotonic() - started < 10
    return code, capsys.readouterr().err


def test_a_self_referencing_alias_is_a_cycle_with_its_line() -> None:
    assert errors_of("x: 1\na: &a [*a]\n") == [
        "s.yaml:2: (document): an alias refers to a value that contains it (a cycle); remove the alias"
    ]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 2, 500, 5000])
def test_deep_nesting_is_refused_before_python_recursion(levels: int) -> None:
    text = "x: 1\ny: " + "[" * levels + "]" * levels + "\n"
    assert errors_of(text) == [f"s.yaml:2: (document): too deep: nested deeper than {MAX_DEPTH} levels"]
    depth = min(levels, 500)  # 5000 indented levels would be over the size bound
    mappings = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "v: 1\n"
    assert "too deep" in errors_of(mappings)[0]


def test_deep_nesting_through_aliases_is_refused() -> None:
    half = "[" * 40 + "1" + "]" * 40
    assert "too deep" in errors_of(f"a: &a {half}\nb: {'[' * 40}*a{']' * 40}\n")[0]


def test_billion_laughs_stops_at_the_value_budget() -> None:
    started = time.monotonic()
    messages = errors_of(LAUGHS)
    assert time.monotonic() - started < 5
    assert len(messages) == 1 and f"more than {MAX_NODES} values" in messages[0]


@pytest.mark.parametrize("value", ["[" * 600 + "]" * 600, "&a [*a]", "[" * 64 + "]" * 64])
def test_set_values_have_the_same_bounds(value: str) -> None:
    (message,) = errors_of(VALID, (f"load.rate={value}",))
    assert message.startswith("--set load.rate=") and ("too deep" in message or "cycle" in message)


def test_a_set_path_is_bounded() -> None:
    (message,) = errors_of(VALID, (".".join(["a"] * 100) + "=1",))
    assert f"more than {MAX_DEPTH} segments" in message


def test_numbers_yaml_cannot_convert_are_invalid_values_with_lines() -> None:
    (message,) = errors_of("x: 1\na: 1" + "0" * 5000 + "\n")
    assert message.startswith("s.yaml:2: (document): invalid YAML value: cannot read '1000")
    assert len(message) < 200


def test_control_characters_and_bad_bytes_give_file_and_line(tmp_path: Path) -> None:
    (message,) = errors_of('apiVersion: mapquake/v1\nname: "a\x01b"\n')
    assert message.startswith("s.yaml:2: (document): invalid YAML: character #x0001 is not allowed")
    assert "unicode string" not in message
    path = tmp_path / "bytes.yaml"
    path.write_bytes(b"apiVersion: mapquake/v1\nkind: Scenario\nname: \xff\n")
    (error,) = check_scenario(read(path))
    assert str(error) == f"{path}:3: (document): not UTF-8: byte #xff cannot be decoded; save the file as UTF-8"


def test_a_file_over_the_size_bound_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("checks:\n" + "  - {promql: up, below: 1}\n" * (MAX_BYTES // 20))
    (error,) = check_scenario(read(path))
    assert "too large" in str(error) and str(path) in str(error)
    assert "too large" in errors_of("a: " + "x" * (MAX_BYTES + 1))[0]


def test_non_regular_files_are_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block until a writer comes
    for path, kind in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "directory"),
    ):
        code, err = validate_cli(path, capsys)
        assert code == 2, err
        assert f"{path}: (document): cannot read the scenario: it is" in err and kind in err


def test_the_cli_answers_hostile_files_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {"laughs.yaml": LAUGHS, "self.yaml": "a: &a [*a]\n", "deep.yaml": "a: " + "[" * 600 + "]" * 600}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        code, err = validate_cli(tmp_path / name, capsys)
        assert code == 2 and "internal error" not in err, err
        assert f"{tmp_path / name}:1:" in err


def test_parse_keeps_lines_of_a_normal_document() -> None:
    doc = parse(VALID, "s.yaml")
    assert not doc.errors and doc.line_of(("phases", 1, "faults")) == 10


@pytest.mark.parametrize(
    "edit",
    [
        ("keys: {space: 1000}", "keys: {space: 1000}\n  locustfile: LONG"),
        ("store: syncmap, replicas: 3, replicate: {queue: bounded}", "command: [LONG]"),
        ("store: syncmap, replicas: 3, replicate: {queue: bounded}", "build: LONG"),
    ],
)
@pytest.mark.parametrize("bad", ['"./' + "a" * 5000 + '"', '"./a\\0b"'], ids=["too-long", "nul"])
def test_a_path_the_system_refuses_is_an_error_not_a_crash(edit: tuple[str, str], bad: str) -> None:
    # found by the scenario fuzzer: Path.is_file() raises ENAMETOOLONG, Path.resolve() ValueError for a NUL
    assert edit[0] in VALID
    text = VALID.replace(edit[0], edit[1].replace("LONG", bad))
    messages = errors_of(text)
    assert any("does not exist" in m or "is not a directory" in m for m in messages), messages


@pytest.mark.parametrize("value", ["5", ".inf", "-1", "{a: 1}", "text"])
@pytest.mark.parametrize("field", ["args", "command"])
def test_a_service_target_with_args_or_command_not_a_list_is_a_schema_error(field: str, value: str) -> None:
    # found by the scenario fuzzer: TypeError: 'float' object is not iterable
    text = VALID.replace("store: syncmap, replicas: 3, replicate: {queue: bounded}", f"build: ., {field}: {value}")
    messages = errors_of(text)
    assert any(f"targets.0.{field}: expected a list" in m or "finite" in m for m in messages), messages


def test_a_file_of_many_small_values_under_the_size_bound_answers_quickly() -> None:
    # A 1 MiB list of checks used to be composed whole (the 20 MB one ran past 150 s at 2.7 GB).
    body = "  - {promql: up, below: 1, during: [steady]}\n"
    text = VALID + "more:\n" + body * ((MAX_BYTES - len(VALID)) // len(body) - 1)
    started = time.monotonic()
    (message,) = errors_of(text)
    assert time.monotonic() - started < 10
    assert f"too large: more than {MAX_NODES} values" in message and message.startswith("s.yaml:")
    stopped_at = int(message.split(":")[1])
    assert stopped_at < text.count("\n") / 4  # reading stopped early, not after composing the whole file
