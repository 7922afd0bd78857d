"""`mapquake run` and `mapquake cleanup`."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from orchestrator.backends.base import ClusterAccess
from orchestrator.cli.validate import add_set_option
from orchestrator.core.errors import EXIT_INFRASTRUCTURE, EXIT_OK, InfrastructureError, UsageError
from orchestrator.scenario import load_scenario
from orchestrator.scenario.spec import Scenario


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli.main import add_command

    run = add_command(
        subparsers,
        "run",
        help="run a scenario and exit with its verdict",
        description="Run a scenario: deploy, load, inject faults, check, report, tear down.\n"
        "Exit codes: 0 pass, 1 a check failed, 2 invalid scenario or usage, 3 infrastructure error, "
        "4 inconclusive (missing data, or the run was interrupted).",
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--backend", choices=("local", "kubernetes"), help="override the scenario's backend")
    run.add_argument("--report-dir", type=Path, help="where the report goes (default reports/<name>-<time>-<run id>)")
    run.add_argument("--no-progress", action="store_true", help="do not print live progress")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the timeline with every fault resolved to concrete rules, and the mechanism "
        "this kernel would use for each; start nothing",
    )
    add_set_option(run)
    _add_cluster_options(run)
    run.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=REF",
        help="kubernetes: the image for maptarget or mapquake (e.g. --image maptarget=registry/maptarget:0.1.0)",
    )
    run.set_defaults(handler=_run)

    cleanup = add_command(
        subparsers,
        "cleanup",
        help="remove what crashed runs left: processes, namespaces, bridges, rules",
        description="Remove everything a dead run left behind (found through its ledger and its run id). "
        "Runs whose controller is still alive are left alone.",
    )
    cleanup.add_argument("--run", dest="run_id", help="only this run id")
    cleanup.add_argument("--backend", default="local", help="whose dead runs to remove (default: local)")
    cleanup.add_argument("--list", action="store_true", help="list known runs and exit")
    cleanup.add_argument(
        "--force",
        action="store_true",
        help="also remove objects named with a run id that has no ledger here (e.g. another state dir's)",
    )
    _add_cluster_options(cleanup)
    cleanup.set_defaults(handler=_cleanup)


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kubernetes")
    group.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    group.add_argument("--context", help="kubeconfig context (default: its current one)")
    group.add_argument(
        "--namespace", help="namespace of the run's objects (default: the scenario's kubernetes.namespace)"
    )


def _access(args: argparse.Namespace) -> ClusterAccess:
    return ClusterAccess(kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace)


def _with_images(scenario: Scenario, images: list[str]) -> Scenario:
    """The scenario with --image NAME=REF applied to its kubernetes settings (UsageError on a bad one)."""
    settings = scenario.kubernetes
    for item in images:
        name, sep, ref = item.partition("=")
        if not sep or not ref or name not in ("maptarget", "mapquake"):
            raise UsageError(f"--image {item!r}: want maptarget=REF or mapquake=REF")
        if name == "maptarget":
            settings = replace(settings, maptarget_image=ref)
        else:
            settings = replace(settings, mapquake_image=ref)
    return replace(scenario, kubernetes=settings)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise InfrastructureError(
            f"{what} needs root: it removes network namespaces, bridges and nftables rules",
            hint="run it as root (sudo), or in CI as the root user",
        )


def _run(args: argparse.Namespace) -> int:
    from orchestrator.backends.registry import backend_factory
    from orchestrator.run.lifecycle import RunOptions, run

    overrides = list(args.overrides)
    if args.backend:
        overrides.append(f"backend={args.backend}")
    scenario = load_scenario(args.scenario, overrides)  # exit 2 with every error before anything starts
    scenario = _with_images(scenario, args.image)
    factory = backend_factory(scenario.backend, _access(args))
    if args.dry_run:
        from chaos.probe import probe_kernel
        from chaos.resolve import describe_timeline

        topology = factory(run_id="00000000", run_dir=Path(os.devnull)).planned_topology(scenario)
        # Probing needs root (it creates a throwaway namespace); without it the mechanisms are not named.
        capabilities = probe_kernel() if os.geteuid() == 0 else None
        if topology.note:
            print(topology.note)
        print(describe_timeline(scenario, topology, capabilities))
        return EXIT_OK
    record = run(scenario, RunOptions(report_dir=args.report_dir, progress=not args.no_progress), factory)
    print(f"\n{scenario.name}: {record.verdict.value.upper()} ({record.reason}), exit {record.exit_code}")
    for result in record.results:
        print(f"  [{result.verdict.value:>12}] {result.name}: {result.summary}")
    for problem in record.teardown_problems:
        print(f"  teardown problem: {problem}  (run `mapquake cleanup`)", file=sys.stderr)
    print(f"report: {record.report_dir}")
    return record.exit_code


def _cleanup(args: argparse.Namespace) -> int:
    from orchestrator.backends.registry import backend_factory

    factory = backend_factory(args.backend, _access(args))
    if args.list:
        for listing in factory.list_runs():
            print(f"{listing.run_id}  {listing.description}")
        return EXIT_OK
    if factory.name == "local":
        _require_root("mapquake cleanup")
    reports = factory.cleanup(run_id=args.run_id, force=args.force)
    failed = False
    for rep in reports:
        removed = ", ".join(f"{count} {what}" for what, count in rep.removed.items())
        print(f"run {rep.run_id}: removed {removed}")
        for error in rep.errors:
            failed = True
            print(f"  error: {error}", file=sys.stderr)
    if not reports:
        print("nothing to clean up")
    return EXIT_INFRASTRUCTURE if failed else EXIT_OK
