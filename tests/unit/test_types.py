"""mypy (strict, the project's config) catches what `make lint` relies on it to catch.

`make lint` runs mypy over orchestrator/, chaos/ and workloads/. Here it checks small modules
beside them: one that is right, and deliberate violations: a backend missing part of the protocol,
a wrong type out of core. Imported modules are followed silently (their own errors are lint's job).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MYPY = Path(sys.executable).with_name("mypy")

pytestmark = pytest.mark.skipif(not MYPY.exists(), reason="mypy not installed (make python)")

HEADER = """\
from pathlib import Path
from orchestrator.backends.base import Backend
from orchestrator.core.safety import LOCAL_RUN, AddressAllowList
from tests.unit.run.fakebackend import FakeBackend
"""


def mypy(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "check_me.py"
    module.write_text(HEADER + body)
    return subprocess.run(
        [str(MYPY), "--config-file", str(REPO / "pyproject.toml"), "--follow-imports=silent", str(module)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_correct_module_passes(tmp_path: Path) -> None:
    result = mypy(tmp_path, "backend: Backend = FakeBackend(run_id='x', run_dir=Path('.'))\n")
    assert result.returncode == 0, result.stdout


def test_a_backend_missing_a_protocol_method_is_caught(tmp_path: Path) -> None:
    body = """
class Half(FakeBackend):
    teardown = None  # type: ignore[assignment]

backend: Backend = Half(run_id="x", run_dir=Path("."))
"""
    result = mypy(tmp_path, body)
    assert result.returncode == 1
    assert "check_me.py:9: error: Incompatible types in assignment" in result.stdout
    assert 'teardown: expected "Callable[[], list[str]]", got "None"' in result.stdout


def test_a_wrong_type_is_caught(tmp_path: Path) -> None:
    result = mypy(tmp_path, "networks: list[str] = LOCAL_RUN.networks\n")
    assert result.returncode == 1
    assert "check_me.py:5: error: Incompatible types in assignment" in result.stdout
