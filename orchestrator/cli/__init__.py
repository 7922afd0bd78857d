"""The `mapquake` command: argument parsing, output and exit codes; one module per command.

The entry point is `orchestrator.cli.main:main` (also `python -m orchestrator.cli`).
"""
