"""The mapquake locustfile: run it with MAPQUAKE_PLAN=<plan.json> (orchestrator.backends.local.locust does).

    MAPQUAKE_PLAN=plan.json locust -f workloads/locustfile.py --headless MapWriteUser

The master runs ``PlanShape`` (the plan's phases, then stop); each worker sets
up its state, serves its client metrics and writes its summary at quit. A
plain local run (no --master/--worker) behaves as worker 0 of 1.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import LoadTestShape, events
from locust.runners import MasterRunner

from workloads import users
from workloads.grpc_user import init_gevent
from workloads.plan import LOAD_STARTED_MARKER, WorkloadPlan
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
        return
    users.start_worker(environment, PLAN)
