"""A local run's dead-man switch: when its controller dies, stop the run by itself within seconds.

The chaos agent heals faults when their leases lapse; this does the same for everything else a
local run made. The backend starts one watchdog per run (recorded in the ledger like every
process); it checks the controller (pid and start time, so a reused pid does not fool it) every
POLL_S seconds. If the controller is gone (SIGKILL, a crash, an OOM kill) it runs the same
cleanup as `mapquake cleanup --run <id>`: the run's processes by pid, its namespaces, veths and
bridge, its state. If the run's state is gone (the controller tore down normally) it just exits.

    python -m orchestrator.backends.local.watchdog --run-id 0a1b2c3d --controller-pid 4242 --controller-start 123456
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from orchestrator.backends.local.network import cleanup_run
from orchestrator.core.ledger import check_run_id, pid_matches, process_start_time, runs_dir

POLL_S = 0.5
MAX_LIFE_S = 48 * 3600.0
"""A bound on its own life, whatever happens: no run lasts two days."""

log = logging.getLogger("mapquake.watchdog")


def _alive(pid: int, start: int | None) -> bool:
    """The controller runs: same pid, same start time, and not a zombie waiting to be reaped."""
    if not pid_matches(pid, start if start is not None else process_start_time(pid)):
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def watch(run_id: str, controller_pid: int, controller_start: int | None, *, poll_s: float = POLL_S) -> str:
    """Block until the run ends or its controller dies; return what happened."""
    deadline = time.monotonic() + MAX_LIFE_S
    state = runs_dir() / run_id
    while time.monotonic() < deadline:
        if not state.exists():
            return "the run ended normally"
        if not _alive(controller_pid, controller_start):
            report = cleanup_run(run_id)
            removed = f"{len(report.processes)} processes, {len(report.netns)} namespaces, {len(report.links)} links"
            errors = f"; errors: {report.errors}" if report.errors else ""
            return f"controller {controller_pid} died: removed {removed}{errors}"
        time.sleep(poll_s)
    return "reached its life bound"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mapquake-watchdog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id", required=True, type=check_run_id)
    parser.add_argument("--controller-pid", required=True, type=int)
    parser.add_argument("--controller-start", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog %(message)s")
    outcome = watch(args.run_id, args.controller_pid, args.controller_start)
    log.info("run %s: %s", args.run_id, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
