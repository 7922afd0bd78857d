"""The `mapquake` command: argument parsing, output and exit codes; one module per command."""

from orchestrator.cli.main import main

__all__ = ["main"]
