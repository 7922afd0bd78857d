"""Where a run came from: the mapquake checkout's commit and the machine's name (reports and trends)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The mapquake checkout (its go_targets/ and bin/ live here)."""


def git_sha(repo: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the mapquake checkout, or "unknown" outside a repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo or REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def machine_name() -> str:
    return socket.gethostname()
