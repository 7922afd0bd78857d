"""Shared fixtures: built Go binaries and maptarget processes that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.targets.build import TargetProcess, ensure_built


@pytest.fixture(scope="session")
def go_binaries() -> dict[str, Path]:
    """Build maptarget and mapload once per session (a no-op when they are fresh)."""
    return ensure_built()


@pytest.fixture
def start_target(go_binaries: dict[str, Path], tmp_path: Path) -> Iterator[Callable[..., TargetProcess]]:
    """Start maptarget processes on loopback; every one is stopped at teardown, pass or fail."""
    started: list[TargetProcess] = []

    def start(store: str, *extra_args: str) -> TargetProcess:
        target = TargetProcess(
            store, extra_args=extra_args, log_dir=tmp_path / f"target-{len(started)}", binary=go_binaries["maptarget"]
        )
        started.append(target)
        target.start()
        return target

    yield start
    for target in started:
        target.stop()
