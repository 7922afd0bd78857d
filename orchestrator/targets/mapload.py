"""Run mapload, the native Go load generator, and read its JSON summary.

mapload is the physical-limit baseline the Python (Locust) workloads are
measured against; it is bounded in ops and in time and refuses any address off
the run's address allow-list (``orchestrator.core.safety``), which the caller
states in ``LoadPlan.allowed`` and mapload receives as ``--allow``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Literal

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.safety import AddressAllowList
from orchestrator.targets.build import ensure_built

KeyDistribution = Literal["sequential", "uniform", "zipf"]


@dataclass(frozen=True)
class LoadPlan:
    addr: str
    allowed: AddressAllowList
    """Where ``addr`` may be: the run's allow-list (loopback is always on mapload's)."""
    protocol: Literal["http", "grpc"] = "grpc"
    ops: int = 100_000
    keys: KeyDistribution = "sequential"
    key_space: int = 100_000
    concurrency: int = 4
    batch: int = 1
    duration_s: float = 60.0
    value_size: int = 32
    seed: int = 1

    def argv(self) -> list[str]:
        return [
            "--addr", self.addr,
            "--allow", self.allowed.cli_value(),
            "--protocol", self.protocol,
            "--ops", str(self.ops),
            "--keys", self.keys,
            "--key-space", str(self.key_space),
            "--concurrency", str(self.concurrency),
            "--batch", str(self.batch),
            "--duration", f"{self.duration_s}s",
            "--value-size", str(self.value_size),
            "--seed", str(self.seed),
        ]  # fmt: skip


@dataclass(frozen=True)
class LoadSummary:
    ops: int
    ops_per_s: float
    errors: int
    requests: int
    duration_s: float
    raw: dict[str, object]


def run_load(plan: LoadPlan) -> LoadSummary:
    """Run mapload to completion (it stops by itself) and return its summary."""
    binary = ensure_built(["mapload"])["mapload"]
    # The timeout is a backstop on top of mapload's own --duration bound.
    result = subprocess.run(
        [str(binary), *plan.argv()], capture_output=True, text=True, timeout=plan.duration_s + 60, check=False
    )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise InfrastructureError(
            f"mapload exited with code {result.returncode} without a JSON summary:\n{result.stderr.strip()}"
        ) from None
    if result.returncode != 0 and not data:
        raise InfrastructureError(f"mapload failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return LoadSummary(
        ops=int(data["ops"]),
        ops_per_s=float(data["ops_per_s"]),
        errors=int(data["errors"]),
        requests=int(data.get("requests", 0)),
        duration_s=float(data.get("duration_s", 0.0)),
        raw=data,
    )
