"""The mapquake locustfile: run it with MAPQUAKE_PLAN=<plan.json> (orchestrator.backends.local.locust does).

    MAPQUAKE_PLAN=plan.json locust -f workloads/locustfile.py --headless MapWriteUser

The master runs ``PlanShape`` (the plan's phases, then stop); each worker sets
up its state, serves its client metrics and writes its summary at quit. A
plain local run (no --master/--worker) behaves as worker 0 of 1.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner

from workloads import users
from workloads.grpc_user import init_gevent
from workloads.plan import GATE_WAITING_MARKER, LOAD_STARTED_MARKER, WorkloadPlan
from workloads.shape import Timeline

# Locust finds the user classes among this module's attributes.
from workloads.users import DeleteChurnUser, MapWriteUser, ReadWriteMix, SyncMapChurnUser

__all__ = ["DeleteChurnUser", "MapWriteUser", "PlanShape", "ReadWriteMix", "SyncMapChurnUser"]

log = logging.getLogger(__name__)

init_gevent()
PLAN = WorkloadPlan.from_env()
TIMELINE = Timeline(PLAN.phases)

if PLAN.locustfile is not None:
    # The user's own locustfile: Locust finds its user classes among this module's attributes, so
    # they join ours; the shape above and the request listener of users.start_worker measure them.
    globals().update(users.load_user_classes(PLAN.locustfile))


class PlanShape(LoadTestShape):
    """The plan's phases on one timeline; None after the last, so a headless run ends by itself."""

    def tick(self) -> tuple[int, float] | None:
        return TIMELINE.tick(self.get_run_time())


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    if isinstance(runner, MasterRunner):

        def on_test_start(**_: Any) -> None:
            log.info(LOAD_STARTED_MARKER)  # orchestrator.backends.local.locust waits for this line

        environment.events.test_start.add_listener(on_test_start)
        log.info(
            "mapquake master: %s over %s, %d phase(s), %.0fs",
            PLAN.user,
            PLAN.protocol,
            len(PLAN.phases),
            TIMELINE.total_s,
        )
        if PLAN.start_gate is not None:
            _wait_for_gate(runner, PLAN.start_gate, workers=PLAN.worker_count, timeout_s=PLAN.startup_s)
        return
    users.start_worker(environment, PLAN)


GATE_POLL_S = 0.01


def _wait_for_gate(runner: MasterRunner, gate: str, *, workers: int, timeout_s: float) -> None:
    """Hold the master's start (Locust starts the headless run when init returns) until ``gate`` exists.

    Meanwhile the runner's greenlets keep accepting the workers, so the run starts the moment the
    gate opens, not at Locust's next once-a-second look for workers.
    """
    deadline = time.monotonic() + timeout_s
    joined = False
    while not os.path.exists(gate):
        if not joined and len(runner.clients.ready) >= workers:
            joined = True
            log.info(GATE_WAITING_MARKER)  # orchestrator.backends.local.locust waits for this line
        if time.monotonic() > deadline:
            log.error("the start gate %s did not open within %.0fs; giving up", gate, timeout_s)
            runner.quit()
            sys.exit(1)
        gevent.sleep(GATE_POLL_S)
