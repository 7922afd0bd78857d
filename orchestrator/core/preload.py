"""Import slow modules on a background thread while the run waits on something else.

matplotlib (the report's plots) takes about a second to import on a small machine and scipy.stats
(baseline checks) one and a half: imported at start-up they delay every run's first step, imported
when needed they delay its report. A run imports them while its phases run, when the controller is
idle. Python's per-module import locks make this safe: an ``import`` of a module the thread is still
importing waits for it, and a module that failed to import fails again where it is really used.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)


def preload(*modules: str) -> threading.Thread:
    """Start importing ``modules`` (dotted names), in order, on a daemon thread; return the thread."""

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as err:  # the real import reports it where it matters
                log.debug("preloading %s failed: %s", name, err)

    thread = threading.Thread(target=work, name="mapquake-preload", daemon=True)
    thread.start()
    return thread
