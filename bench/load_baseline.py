"""How close the Python (Locust) workloads come to the physical limit that mapload sets.

One maptarget on loopback; the same gRPC BatchPut workload (sequential keys, [32]byte values,
batches of 100) from mapload (native Go) and from a real Locust master with N workers, run in
alternation (A B A B …) so both see the same machine load; map writes per second side by side.

    .venv/bin/python bench/load_baseline.py --rounds 3 --seconds 10 --workers 2 > /tmp/table.md

Prints a markdown table (paste it into BENCHMARKS.md with the machine and date). Loopback only;
every load is bounded in time (and mapload in ops).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from orchestrator.backends.local.locust import LocustCluster
from orchestrator.core.safety import LOOPBACK_ONLY
from orchestrator.targets.build import TargetProcess
from orchestrator.targets.mapload import LoadPlan, run_load
from workloads.keyspace import KeySpec
from workloads.plan import Phase, WorkloadPlan

KEY_SPACE = 100_000
BATCH = 100


def mapload_round(grpc_addr: str, seconds: float, concurrency: int) -> float:
    summary = run_load(
        LoadPlan(
            addr=grpc_addr,
            allowed=LOOPBACK_ONLY,  # one target on loopback
            protocol="grpc",
            ops=10**9,  # bounded by the duration
            keys="sequential",
            key_space=KEY_SPACE,
            concurrency=concurrency,
            batch=BATCH,
            duration_s=seconds,
        )
    )
    return summary.ops_per_s


def locust_round(grpc_addr: str, seconds: float, workers: int, users: int, work_dir: Path) -> float:
    plan = WorkloadPlan(
        user="MapWriteUser",
        protocol="grpc",
        targets=(grpc_addr,),
        keys=KeySpec(space=KEY_SPACE, distribution="sequential", seed=1),
        phases=(Phase(name="load", duration_s=seconds, users=users),),
        value_type="[32]byte",
        write_mode="batch",
        batch=BATCH,
    )
    cluster = LocustCluster(plan, workers=workers, work_dir=work_dir)
    cluster.start()
    started = time.monotonic()
    result = cluster.wait()
    elapsed = min(time.monotonic() - started, seconds) or seconds
    return result.writes / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="Locust workers")
    parser.add_argument("--users", type=int, default=8, help="Locust users over all workers")
    parser.add_argument("--concurrency", type=int, default=4, help="mapload goroutines")
    args = parser.parse_args()

    native, python = [], []
    with (
        TargetProcess("mutexmap", extra_args=["--value-type", "[32]byte"]) as target,
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert target.endpoints is not None
        for i in range(args.rounds):
            native.append(mapload_round(target.endpoints.grpc_addr, args.seconds, args.concurrency))
            python.append(
                locust_round(target.endpoints.grpc_addr, args.seconds, args.workers, args.users, Path(tmp) / str(i))
            )
    m_native, m_python = statistics.median(native), statistics.median(python)
    print(f"Machine: {platform.node()}, {platform.machine()}, {platform.platform()}; date {time.strftime('%Y-%m-%d')}")
    print()
    print("| load generator | map writes/s per round | median | share of mapload |")
    print("|---|---|---:|---:|")
    print(
        f"| mapload (Go, {args.concurrency} goroutines) | {', '.join(f'{v:,.0f}' for v in native)} "
        f"| {m_native:,.0f} | 100% |"
    )
    print(
        f"| Locust ({args.workers} workers, {args.users} users) | {', '.join(f'{v:,.0f}' for v in python)} "
        f"| {m_python:,.0f} | {m_python / m_native:.0%} |"
    )


if __name__ == "__main__":
    main()
