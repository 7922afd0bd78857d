"""`mapquake validate`: check a scenario and list every error at once (exit 2), or print the schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orchestrator.core.errors import EXIT_OK, EXIT_USAGE
from orchestrator.scenario import check_scenario
from orchestrator.scenario.schema import SCENARIO_SCHEMA
from orchestrator.scenario.spec import build
from orchestrator.scenario.yamlsource import read


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli.main import add_command

    parser = add_command(
        subparsers,
        "validate",
        help="check a scenario file and list every error",
        description="Check a scenario file. Exit 0 when valid; exit 2 listing every error with file:line "
        "and field path.",
    )
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario YAML file")
    add_set_option(parser)
    parser.add_argument("--schema", action="store_true", help="print the scenario JSON Schema and exit")
    parser.set_defaults(handler=run)


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set targets.0.replicate.queue=unbounded (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(SCENARIO_SCHEMA, indent=2))
        return EXIT_OK
    if args.scenario is None:
        print("mapquake validate: error: give a scenario file (or --schema)", file=sys.stderr)
        return EXIT_USAGE
    doc = read(args.scenario)
    errors = check_scenario(doc, args.overrides)
    if errors:
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        print(f"{args.scenario}: invalid scenario ({count}):", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return EXIT_USAGE
    scenario = build(doc.data, source=str(args.scenario))
    targets = ", ".join(f"{t.name} ({t.store or 'your service'} x{t.replicas})" for t in scenario.targets)
    print(
        f"{args.scenario}: valid scenario '{scenario.name}': targets {targets}; "
        f"{len(scenario.phases)} phases, {scenario.total_duration_s:g}s; {len(scenario.checks)} checks"
    )
    return EXIT_OK
