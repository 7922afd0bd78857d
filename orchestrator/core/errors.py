"""The one root of mapquake's errors, and the exit code each kind of failure maps to.

Exit codes are a contract (docs/cli.md): 0 all checks passed, 1 a check failed,
2 invalid scenario or usage, 3 infrastructure error, 4 inconclusive.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3
EXIT_INCONCLUSIVE = 4


class MapquakeError(Exception):
    """Root of every error mapquake reports to a user.

    ``message`` says what is wrong and where; ``hint`` says how to fix it.
    The CLI prints both and exits with ``exit_code``, never a traceback.
    """

    exit_code = EXIT_INFRASTRUCTURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(MapquakeError):
    """The command line or an argument is invalid (exit 2)."""

    exit_code = EXIT_USAGE


class InfrastructureError(MapquakeError):
    """Something mapquake depends on failed: a build, a process, a server (exit 3)."""

    exit_code = EXIT_INFRASTRUCTURE
