"""The import layers (pyproject's import-linter contracts) hold, and a violation is caught.

`make lint` runs the same contracts; this test also shows that they bite: it copies the packages,
adds one upward import, and expects lint-imports to fail naming it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("orchestrator", "chaos", "workloads")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed (make python)")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def copy_tree(dest: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_contracts_hold() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("orchestrator/checks/verdict.py", "import orchestrator.run.lifecycle", "orchestrator.checks.verdict"),
        ("orchestrator/core/errors.py", "import orchestrator.scenario.spec", "orchestrator.core.errors"),
        ("chaos/agent/server.py", "import chaos.resolve", "chaos.agent.server"),
        ("workloads/keyspace.py", "import orchestrator.backends.base", "workloads.keyspace"),
    ],
)
def test_an_upward_import_is_caught(tmp_path: Path, module: str, bad_import: str, broken: str) -> None:
    root = copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{bad_import}  # a deliberate violation\n")
    result = lint(root)
    assert result.returncode != 0
    assert broken in result.stdout and "BROKEN" in result.stdout
