"""Which backends this mapquake has, by the name a scenario's ``backend:`` or ``--backend`` gives.

The only place that names a backend class. The run lifecycle and the CLI ask here, so a new
backend (Kubernetes) is one entry, not a change to the lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.backends.base import BackendFactory
from orchestrator.core.errors import UsageError

PLANNED = {"kubernetes": "the Kubernetes backend is planned (docs/ARCHITECTURE.md); use backend: local"}
"""Names the scenario schema accepts that this version cannot run yet, and what to do instead."""


def _local() -> BackendFactory:
    from orchestrator.backends.local.backend import LocalBackend

    return LocalBackend


_FACTORIES: dict[str, Callable[[], BackendFactory]] = {"local": _local}


def available() -> list[str]:
    return sorted(_FACTORIES)


def backend_factory(name: str) -> BackendFactory:
    """The backend named ``name``; UsageError (exit 2) naming what exists if there is none."""
    if name in _FACTORIES:
        return _FACTORIES[name]()
    if name in PLANNED:
        raise UsageError(f"backend '{name}' is not available in this version", hint=PLANNED[name])
    raise UsageError(f"no backend named '{name}'", hint=f"available: {', '.join(available())}")
