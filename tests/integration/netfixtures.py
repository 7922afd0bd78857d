"""Fixtures and helpers for tests that create real namespaces, bridges and processes.

Every object a test creates carries a run id and is removed by a finalizer, pass
or fail: first the orderly teardown, then ``cleanup_run(force=True)`` as a net.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends.local.network import LocalNetwork, cleanup_run, list_links, list_netns
from orchestrator.core.ledger import Ledger, new_run_id
from orchestrator.core.names import run_id_of
from orchestrator.core.processes import read_stdout_line

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="creates network namespaces and bridges: needs root (CAP_NET_ADMIN)"
)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MAPQUAKE_STATE_DIR for this test."""
    path = tmp_path / "state"
    monkeypatch.setenv("MAPQUAKE_STATE_DIR", str(path))
    return path


def leftovers(run_id: str) -> list[str]:
    """Kernel objects on the host still named with ``run_id``."""
    return [n for n in [*list_netns(), *list_links()] if run_id_of(n) == run_id]


@pytest.fixture
def make_network(state_dir: Path) -> Iterator[Callable[[], LocalNetwork]]:
    """Create run networks (each with its own ledger); all are torn down and cleaned at the end."""
    made: list[LocalNetwork] = []
    run_ids: list[str] = []

    def make() -> LocalNetwork:
        run_id = new_run_id()
        run_ids.append(run_id)
        ledger = Ledger.create(run_id)
        net = LocalNetwork.create(run_id, ledger)
        made.append(net)
        return net

    yield make
    for net in made:
        try:
            net.teardown(grace_s=5)
        finally:
            cleanup_run(net.run_id, force=True, grace_s=5)
    for run_id in run_ids:
        assert leftovers(run_id) == [], f"run {run_id} left kernel objects behind"


def read_line(proc: subprocess.Popen[Any], timeout: float) -> str:
    """The next stdout line of ``proc`` (opened with stdout=PIPE), waiting at most ``timeout`` seconds."""
    line, partial = read_stdout_line(proc, timeout)
    if line is None:
        raise AssertionError(f"no line from pid {proc.pid} within {timeout}s (got {partial!r}, exit {proc.poll()})")
    return line.strip()
