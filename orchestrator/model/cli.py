"""`mapquake model` commands (placeholder until the model lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli import add_command

    parser = add_command(
        subparsers, "model", help="reference model of Go map memory", description="Reference model of Go map memory."
    )
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
