"""`mapquake smoke`: start one maptarget on loopback, load it with mapload, print heap and entries.

The quickest proof that an installation works end to end (Go build, both
APIs, metrics, the GC admin endpoint), and what `make demo` runs until the
scenario runner lands.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from orchestrator.core.errors import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from orchestrator.core.safety import LOOPBACK_ONLY
from orchestrator.scenario.schema import STORES
from orchestrator.targets.admin import collect_garbage, scrape
from orchestrator.targets.build import TargetProcess
from orchestrator.targets.mapload import LoadPlan, run_load


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli.main import add_command

    parser = add_command(
        subparsers,
        "smoke",
        help="start one Go target on loopback, load it natively, print heap and entries",
        description=__doc__,
    )
    parser.add_argument("--store", default="syncmap", choices=STORES, help="container pattern (default syncmap)")
    parser.add_argument("--value-type", default="[32]byte", help="Go value type the store holds (default [32]byte)")
    parser.add_argument("--protocol", default="grpc", choices=("grpc", "http"))
    parser.add_argument("--ops", type=int, default=100_000, help="writes to send (default 100000)")
    parser.add_argument("--key-space", type=int, default=100_000, help="distinct keys (default 100000)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="writes per gRPC BatchPut (default 100)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for name in ("ops", "key_space", "concurrency", "batch"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    batch = args.batch if args.protocol == "grpc" else 1
    with TargetProcess(args.store, extra_args=["--value-type", args.value_type]) as target:
        assert target.endpoints is not None
        before = collect_garbage(target.endpoints.http_addr, target.endpoints.admin_token)
        plan = LoadPlan(
            addr=target.endpoints.grpc_addr if args.protocol == "grpc" else target.endpoints.http_addr,
            allowed=LOOPBACK_ONLY,  # the target runs on loopback
            protocol=args.protocol,
            ops=args.ops,
            keys="sequential",
            key_space=args.key_space,
            concurrency=args.concurrency,
            batch=batch,
        )
        load = run_load(plan)
        after = collect_garbage(target.endpoints.http_addr, target.endpoints.admin_token)
        metrics = scrape(target.endpoints.http_addr)
    expected_entries = min(args.ops, args.key_space)
    result = {
        "store": after.store,
        "go_type": after.go_type,
        "go_version": after.go_version,
        "load": {"ops": load.ops, "ops_per_s": round(load.ops_per_s), "errors": load.errors},
        "entries": after.entries,
        "expected_entries": expected_entries,
        "metrics_entries": metrics.get("mapquake_store_entries"),
        "live_bytes_before": before.live_bytes,
        "live_bytes_after": after.live_bytes,
        "live_bytes_delta": after.live_bytes - before.live_bytes,
        "bytes_per_entry": round((after.live_bytes - before.live_bytes) / max(after.entries, 1), 1),
        "heap": asdict(after),
    }
    ok = after.entries == expected_entries and load.errors == 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"store {result['store']} ({result['go_type']}, {result['go_version']})\n"
            f"  load      {load.ops} writes over {args.protocol} at {result['load']['ops_per_s']:,} writes/s, "
            f"{load.errors} errors\n"
            f"  entries   {after.entries} (expected {expected_entries}; /metrics says "
            f"{result['metrics_entries']:.0f})\n"
            f"  live heap {before.live_bytes:,} B before, {after.live_bytes:,} B after GC: "
            f"+{result['live_bytes_delta']:,} B, {result['bytes_per_entry']} B per entry\n"
            f"  {'OK' if ok else 'MISMATCH'}"
        )
    return EXIT_OK if ok else EXIT_CHECK_FAILED
