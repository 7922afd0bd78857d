"""Turn SIGTERM and SIGINT into an exception the run can unwind through, and shield teardown.

A run must tear down on every exit path. Python runs signal handlers in the main thread between
bytecodes; raising from the handler lets `finally` blocks do the teardown. The `mapquake` command
installs one guard as its first step, so a signal at any moment has one defined outcome
(docs/cli.md, "Signals"):

- before a run has created anything (parsing, validation, preflight): the command stops with
  exit 4 and says nothing was created;
- while a run is live (deploy, phases, compare): the run unwinds, tears down, writes its report
  and exits 4 (inconclusive, "interrupted by SIGTERM");
- once teardown has begun: the guard holds; signals are recorded, never raised, so teardown,
  the report and the trend record complete and the run's own verdict and exit code stand.

SIGINT is handled even when the process inherited it ignored (nohup, some CI runners): a run
that cannot be stopped by its operator is worse than one that stops.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import ClassVar


class RunInterrupted(BaseException):  # a BaseException, like KeyboardInterrupt: not an error of the run
    """The controller got SIGTERM or SIGINT; the run unwinds, tears down and reports."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    HANDLED = (signal.SIGTERM, signal.SIGINT)
    active: ClassVar[SignalGuard | None] = None
    """The guard installed in this process, if any (the command's; a run reuses it)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._shielded = False
        self._held = False
        self._pending: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if not (self._shielded or self._held):
            self._pending = signum
            raise RunInterrupted(signum)

    def check(self) -> None:
        """Raise again a signal whose RunInterrupted was lost, unless teardown has begun.

        Python ignores an exception raised where nothing can catch it: a handler that ran while the
        garbage collector closed a generator (a Kubernetes watch stream) or ran a ``__del__`` printed
        "Exception ignored in …" and stopped nothing, and the run went on to pass. The run calls this
        at every step and tick, so such a signal still stops it there.
        """
        if self._pending is not None and not (self._shielded or self._held):
            raise RunInterrupted(self._pending)

    def __enter__(self) -> SignalGuard:
        for signum in self.HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        SignalGuard.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if SignalGuard.active is self:
            SignalGuard.active = None

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Signals arriving inside are recorded, not raised."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

    def hold(self) -> None:
        """From now on signals are only recorded: the run is past the point of no return (teardown)."""
        self._held = True

    @property
    def held(self) -> bool:
        return self._held
