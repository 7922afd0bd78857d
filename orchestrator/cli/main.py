"""The `mapquake` command line: one parser, one module per command group.

Each command module exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` (a callable taking the parsed namespace and returning an exit
code). Every parser, top level and sub-command, answers ``--help`` and
``--version``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.core.errors import EXIT_INCONCLUSIVE, EXIT_INFRASTRUCTURE, MapquakeError
from orchestrator.core.signals import RunInterrupted, SignalGuard

log = logging.getLogger(__name__)


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add a sub-command parser that, like every mapquake parser, answers --version."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    return parser


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"mapquake {__version__}")


def build_parser() -> argparse.ArgumentParser:
    # Imported here so that `mapquake --version` stays fast and a broken optional
    # module cannot break the whole CLI's import.
    from orchestrator.cli import model as model_cli
    from orchestrator.cli import report as report_cli
    from orchestrator.cli import run as run_cli
    from orchestrator.cli import smoke
    from orchestrator.cli import validate as scenario_cli

    parser = argparse.ArgumentParser(
        prog="mapquake",
        description="Load-test and chaos orchestrator for Go services.",
        epilog="Exit codes: 0 pass, 1 check failed, 2 usage or invalid scenario, "
        "3 infrastructure error, 4 inconclusive.",
    )
    add_version(parser)
    parser.add_argument("--debug", action="store_true", help="log debug details and show tracebacks of bugs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_cli.register(subparsers)
    scenario_cli.register(subparsers)
    model_cli.register(subparsers)
    smoke.register(subparsers)
    report_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # First of all: from here on SIGINT and SIGTERM have one defined outcome (core/signals.py).
    with SignalGuard():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
    except RunInterrupted as signal_:
        return _interrupted_before_run(signal_, None)
    args = parser.parse_args(argv)
    debug = bool(args.debug or os.environ.get("MAPQUAKE_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except RunInterrupted as signal_:  # a run that had started handles its own: this is before one did
        return _interrupted_before_run(signal_, args.command)
    except MapquakeError as err:
        print(f"mapquake: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # a bug in mapquake, not in the user's input
        if debug:
            traceback.print_exc()
        print(
            f"mapquake: internal error: {type(err).__name__}: {err}\n"
            "  this is a bug in mapquake; rerun with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return EXIT_INFRASTRUCTURE


def _interrupted_before_run(signal_: RunInterrupted, command: str | None) -> int:
    """A signal before a run started (or in another command): exit 4, saying so."""
    where = " before the run created anything" if command == "run" else ""
    print(f"mapquake: interrupted by {signal_}{where}", file=sys.stderr)
    return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    sys.exit(main())
