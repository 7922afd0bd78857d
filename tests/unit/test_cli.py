"""The CLI contract: every parser answers --help and --version; bad usage exits 2 without a traceback."""

from __future__ import annotations

import argparse

import pytest

from orchestrator import __version__
from orchestrator.cli.main import build_parser, main


def _all_command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(_all_command_paths(sub, (*prefix, name)))
    return paths


COMMAND_PATHS = _all_command_paths(build_parser())


def test_the_cli_has_subcommands() -> None:
    assert ("smoke",) in COMMAND_PATHS
    assert ("model",) in COMMAND_PATHS


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "mapquake")
def test_every_command_answers_version(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mapquake {__version__}"


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "mapquake")
def test_every_command_answers_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mapquake" + "".join(f" {p}" for p in path))


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-command'" in err
    assert "Traceback" not in err


def test_smoke_rejects_nonpositive_ops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--ops", "0"]) == 2
    err = capsys.readouterr().err
    assert "--ops must be at least 1, got 0" in err
    assert "Traceback" not in err


def test_run_dry_run_prints_the_planned_timeline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # not root: no kernel probe, nothing started
    assert main(["run", "--dry-run", "scenarios/ringbuffer-partition.yaml"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "(addresses as planned in 198.18.0.0/24; each run picks its own /24)"
    assert any("partition among" in line and "[heal: " in line for line in lines)
    assert any("(mq-00000000-" in line for line in lines)
