"""Turn SIGTERM and SIGINT into an exception the run can unwind through, and shield teardown.

A run must tear down on every exit path. Python runs signal handlers in the main
thread between bytecodes; raising from the handler lets `finally` blocks do the
teardown. While teardown runs, a second signal is only remembered, so it cannot
cut teardown short and leave namespaces or processes behind.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


class RunInterrupted(BaseException):  # a BaseException, like KeyboardInterrupt: not an error of the run
    """The controller got SIGTERM or SIGINT; the run unwinds, tears down and reports."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    HANDLED = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._shielded = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if not self._shielded:
            raise RunInterrupted(signum)

    def __enter__(self) -> SignalGuard:
        for signum in self.HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Signals arriving inside are recorded, not raised."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False
