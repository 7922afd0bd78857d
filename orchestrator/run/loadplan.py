"""The scenario's load as the plan Locust runs: every backend hands the same plan to its workers.

Pure: the replicas' addresses (in routing order) and the backend's address allow-list come in,
a ``WorkloadPlan`` goes out.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.backends.base import ReplicaEndpoint
from orchestrator.core.errors import UsageError
from orchestrator.core.safety import AddressAllowList
from orchestrator.scenario.spec import LoadSpec, PhaseSpec, Scenario
from workloads.plan import Phase, WorkloadPlan


def locust_phase(phase: PhaseSpec, load: LoadSpec) -> Phase:
    """A scenario phase as the Locust shape runs it. The scenario's rate is per user; the shape's is
    over all users of the phase (none when the phase pauses the load with users: 0)."""
    users = load.users if phase.users is None else phase.users
    per_user = phase.rate or load.rate
    return Phase(
        name=phase.name,
        duration_s=phase.duration_s,
        users=users,
        spawn_rate=load.spawn_rate,
        rate=per_user * users if per_user and users else None,
    )


def workload_plan(scenario: Scenario, replicas: Sequence[ReplicaEndpoint], allowed: AddressAllowList) -> WorkloadPlan:
    """The Locust plan for the scenario's load against these replicas (in routing order)."""
    load = scenario.load
    replicated = any(t.replicate is not None for t in scenario.targets)
    if replicated and len(scenario.targets) > 1:
        raise UsageError(
            "a scenario with replication may have only one target (its replicas share every key)",
            hint="split the scenario, or remove replicate from the other targets",
        )
    write_mode = "stream" if load.stream else ("batch" if load.batch > 1 else "put")
    # A user's locustfile speaks to the services' HTTP address (Locust's --host) and may use gRPC.
    http = load.locustfile is not None or load.protocol == "http"
    extra: dict[str, object] = {"scenario": scenario.name}
    if load.locustfile is not None:
        extra["grpc_targets"] = ",".join(r.grpc_addr for r in replicas)
    return WorkloadPlan(
        user=load.user,
        protocol="http" if http else "grpc",
        targets=tuple(r.http_addr if http else r.grpc_addr for r in replicas),
        keys=load.keys,
        phases=tuple(locust_phase(p, load) for p in scenario.phases),
        value_type=load.value.type,
        value_size=load.value.size,
        write_mode=write_mode,  # type: ignore[arg-type]
        batch=load.batch,
        read_ratio=load.read_ratio,
        replicated=replicated,
        max_ops_per_worker=load.max_ops,
        # Workers keep serving their final counters for two scrapes after the load stops.
        linger_s=2 * scenario.scrape_interval_s,
        allowed=allowed,
        locustfile=load.locustfile,
        extra=extra,
    )
