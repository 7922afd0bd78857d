"""Find the ``go`` command that builds for a requested Go version.

* 1.26: the machine's ``go`` on PATH (checked with ``go env GOVERSION``).
* 1.23: Debian's golang-1.23-go in ``/usr/lib/go-1.23`` (``make toolchains`` installs it).
* 1.27: ``GOTOOLCHAIN=go1.27.3 go`` (the go command fetches that toolchain from the module proxy).
* any other 1.N: ``/usr/lib/go-1.N/bin/go`` if Debian's package is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from orchestrator.core.errors import InfrastructureError
from orchestrator.model.predict import parse_go_version

#: Patchable for tests; ``MAPQUAKE_GO_<major>_<minor>`` env vars override a toolchain path.
DEBIAN_GOROOT = "/usr/lib/go-{minor}"
GOTOOLCHAIN_FOR = {(1, 27): "go1.27.3"}
VERSION_TIMEOUT_S = 120


@dataclass(frozen=True)
class Toolchain:
    """How to run ``go`` for one version: the binary and extra environment."""

    version: str  # as reported by `go env GOVERSION`, e.g. go1.26.8
    go: str
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        return env


def _report(go: str, env: dict[str, str]) -> str | None:
    full = dict(os.environ)
    full.update(env)
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, env=full, timeout=VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def find(go_version: str) -> Toolchain:
    """The toolchain for ``go_version`` (``1.26``, ``1.23``, ``1.27`` …) or InfrastructureError."""
    major, minor = parse_go_version(go_version)
    want = f"go{major}.{minor}"
    override = os.environ.get(f"MAPQUAKE_GO_{major}_{minor}")
    candidates: list[tuple[str, dict[str, str]]] = []
    if override:
        candidates.append((override, {"GOTOOLCHAIN": "local"}))
    debian = os.path.join(DEBIAN_GOROOT.format(minor=f"{major}.{minor}"), "bin", "go")
    if os.path.exists(debian):
        candidates.append((debian, {"GOTOOLCHAIN": "local", "GOROOT": os.path.dirname(os.path.dirname(debian))}))
    path_go = shutil.which("go")
    if path_go:
        candidates.append((path_go, {"GOTOOLCHAIN": "local"}))
        if (major, minor) in GOTOOLCHAIN_FOR:
            candidates.append((path_go, {"GOTOOLCHAIN": GOTOOLCHAIN_FOR[(major, minor)]}))
    for go, env in candidates:
        reported = _report(go, env)
        if reported and (reported == want or reported.startswith(want + ".") or reported.startswith(want + "rc")):
            return Toolchain(reported, go, env)
    hint = {
        (1, 23): "install it with `sudo make toolchains` (scripts/install-go-toolchains.sh: Debian "
        "golang-1.23-go from bookworm-backports) or set MAPQUAKE_GO_1_23=/path/to/go",
        (1, 27): "GOTOOLCHAIN=go1.27.3 needs a Go ≥ 1.21 on PATH and access to the Go module proxy",
    }.get((major, minor), f"install Go {major}.{minor} and put it on PATH, or set MAPQUAKE_GO_{major}_{minor}")
    raise InfrastructureError(f"no Go {major}.{minor} toolchain found", hint=hint)
