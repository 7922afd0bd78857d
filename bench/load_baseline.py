"""How close the Python (Locust) workloads come to the physical limit that mapload sets.

One maptarget on loopback; the same gRPC BatchPut workload (sequential keys, [32]byte values,
batches of ``--batch``, 100 by default) from mapload (native Go) and from a real Locust master with N workers, run in
alternation (A B C A B C …, one Locust row per ``--users`` value) so all see the same machine
load; map writes per second side by side. Nothing is pinned: the target, mapload or Locust (master
and workers) share the machine's cores, and the table states them.

    .venv/bin/python bench/load_baseline.py --rounds 5 --seconds 10 --workers 2 --users 8 128 > /tmp/table.md

Prints a markdown table (paste it into BENCHMARKS.md with the machine and date). Loopback only;
every load is bounded in time (and mapload in ops).
"""

from __future__ import annotations

import argparse
import os
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


def mapload_round(grpc_addr: str, seconds: float, concurrency: int, batch: int) -> float:
    summary = run_load(
        LoadPlan(
            addr=grpc_addr,
            allowed=LOOPBACK_ONLY,  # one target on loopback
            protocol="grpc",
            ops=10**9,  # bounded by the duration
            keys="sequential",
            key_space=KEY_SPACE,
            concurrency=concurrency,
            batch=batch,
            duration_s=seconds,
        )
    )
    return summary.ops_per_s


def locust_round(grpc_addr: str, seconds: float, workers: int, users: int, batch: int, work_dir: Path) -> float:
    plan = WorkloadPlan(
        user="MapWriteUser",
        protocol="grpc",
        targets=(grpc_addr,),
        keys=KeySpec(space=KEY_SPACE, distribution="sequential", seed=1),
        phases=(Phase(name="load", duration_s=seconds, users=users),),
        value_type="[32]byte",
        write_mode="batch",
        batch=batch,
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
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[8, 128],
        help="Locust users over all workers; several values run side by side (one Locust row each)",
    )
    parser.add_argument("--batch", type=int, default=100, help="keys per BatchPut, the same for both")
    parser.add_argument("--concurrency", type=int, default=4, help="mapload goroutines")
    args = parser.parse_args()

    native: list[float] = []
    python: dict[int, list[float]] = {u: [] for u in args.users}
    with (
        TargetProcess("mutexmap", extra_args=["--value-type", "[32]byte"]) as target,
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert target.endpoints is not None
        for i in range(args.rounds):
            native.append(mapload_round(target.endpoints.grpc_addr, args.seconds, args.concurrency, args.batch))
            for users in args.users:
                work_dir = Path(tmp) / f"{i}-{users}"
                python[users].append(
                    locust_round(target.endpoints.grpc_addr, args.seconds, args.workers, users, args.batch, work_dir)
                )
    m_native = statistics.median(native)
    print(
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores shared by everything, "
        f"{platform.platform()}; date {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print(f"BatchPut of {args.batch} keys ([32]byte values), {args.seconds:.0f} s per round, {args.rounds} rounds.")
    print()
    print("| load generator | map writes/s per round | median | share of mapload |")
    print("|---|---|---:|---:|")
    print(
        f"| mapload (Go, {args.concurrency} goroutines) | {', '.join(f'{v:,.0f}' for v in native)} "
        f"| {m_native:,.0f} | 100% |"
    )
    for users, rates in python.items():
        m_python = statistics.median(rates)
        print(
            f"| Locust ({args.workers} workers, {users} users) | {', '.join(f'{v:,.0f}' for v in rates)} "
            f"| {m_python:,.0f} | {m_python / m_native:.0%} |"
        )


if __name__ == "__main__":
    main()
