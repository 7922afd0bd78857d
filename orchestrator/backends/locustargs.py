"""Locust's command-line arguments and environment for a run's master and workers, whatever runs them.

The local backend prefixes them with ``python -m locust -f <locustfile>``; the Kubernetes backend's
pods run ``python -m workloads`` (the same locustfile, wherever the image installed it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator.core.errors import UsageError
from workloads.plan import WorkloadPlan

LOCUSTFILE_IMPORT_TIMEOUT_S = 60.0

TARGETS_ENV = "MAPQUAKE_TARGETS"
"""For a user's locustfile: every replica as http://host:port, in routing order, comma-separated."""
GRPC_TARGETS_ENV = "MAPQUAKE_GRPC_TARGETS"
"""For a user's locustfile: every replica's gRPC host:port (the service's {grpc_addr}), comma-separated."""


def master_args(
    plan: WorkloadPlan,
    *,
    workers: int,
    bind_host: str,
    port: int,
    csv_prefix: Path | None = None,
    loglevel: str = "INFO",
) -> list[str]:
    run_time = int(plan.load_s + plan.cap_s + 1)
    args = [
        "--master", "--headless",
        "--expect-workers", str(workers),
        "--expect-workers-max-wait", str(int(plan.startup_s)),
        "--master-bind-host", bind_host,
        "--master-bind-port", str(port),
        *(["--csv", str(csv_prefix)] if csv_prefix is not None else []),
        "--stop-timeout", f"{max(1, round(plan.stop_timeout_s))}s",
        "--run-time", f"{run_time}s",  # backstop; the shape ends the run at the end of the phases
        "--exit-code-on-error", "0",  # request failures are the summaries' business, not an exit code
        "--only-summary",
        "--loglevel", loglevel,
    ]  # fmt: skip
    return [*args, *host_args(plan), plan.user]


def worker_args(plan: WorkloadPlan, *, master_host: str, port: int, loglevel: str = "INFO") -> list[str]:
    args = ["--worker", "--master-host", master_host, "--master-port", str(port), "--loglevel", loglevel]
    return [*args, *host_args(plan), plan.user]


def host_args(plan: WorkloadPlan) -> list[str]:
    """A user's locustfile gets Locust's usual --host: the first replica (all are in MAPQUAKE_TARGETS)."""
    return ["--host", f"http://{plan.targets[0]}"] if plan.locustfile else []


def user_env(plan: WorkloadPlan) -> dict[str, str]:
    """What a user's locustfile reads of the run (nothing for mapquake's own users)."""
    if not plan.locustfile:
        return {}
    return {
        TARGETS_ENV: ",".join(f"http://{t}" for t in plan.targets),
        GRPC_TARGETS_ENV: str(plan.extra.get("grpc_targets", "")),
    }


def locustfile_import_error(path: str, python: str = sys.executable) -> str | None:
    """Import a user's locustfile the way a worker will (in a subprocess: Locust monkey-patches on
    import); None if it imports, else the last lines of what went wrong."""
    code = (
        "import sys, importlib.util\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "spec = importlib.util.spec_from_file_location('mapquake_user_locustfile', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
    )
    try:
        result = subprocess.run(
            [python, "-c", code, path, str(Path(path).parent)],
            capture_output=True,
            text=True,
            timeout=LOCUSTFILE_IMPORT_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"importing it took over {LOCUSTFILE_IMPORT_TIMEOUT_S:.0f}s (does it run load at import time?)"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-4:]) or f"the import exited with code {result.returncode}"


def require_importable_locustfile(path: str | None, where: str) -> None:
    """UsageError (exit 2, before anything starts) if the user's locustfile does not import.
    ``where`` says where its workers import it, for the hint."""
    if path is None:
        return
    failure = locustfile_import_error(path)
    if failure is not None:
        raise UsageError(
            f"the locustfile {path} does not import:\n{failure}",
            hint=f"run it with `locust -f` to see the whole error; {where}",
        )
