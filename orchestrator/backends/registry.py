"""Which backends this mapquake has, by the name a scenario's ``backend:`` or ``--backend`` gives.

The only place that names a backend class. The run lifecycle and the CLI ask here, so a new
backend (Kubernetes) is one entry, not a change to the lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.backends.base import BackendFactory, ClusterAccess
from orchestrator.core.errors import UsageError

PLANNED: dict[str, str] = {}
"""Names the scenario schema accepts that this version cannot run yet, and what to do instead."""


def _local(_: ClusterAccess) -> BackendFactory:
    from orchestrator.backends.local.backend import LocalBackend

    return LocalBackend


def _kubernetes(access: ClusterAccess) -> BackendFactory:
    from orchestrator.backends.kubernetes.factory import KubernetesFactory

    return KubernetesFactory(access)


_FACTORIES: dict[str, Callable[[ClusterAccess], BackendFactory]] = {"local": _local, "kubernetes": _kubernetes}


def available() -> list[str]:
    return sorted(_FACTORIES)


def backend_factory(name: str, access: ClusterAccess | None = None) -> BackendFactory:
    """The backend named ``name`` (``access``: how a cluster backend reaches its cluster); UsageError
    (exit 2) naming what exists if there is none."""
    if name in _FACTORIES:
        return _FACTORIES[name](access or ClusterAccess())
    if name in PLANNED:
        raise UsageError(f"backend '{name}' is not available in this version", hint=PLANNED[name])
    raise UsageError(f"no backend named '{name}'", hint=f"available: {', '.join(available())}")
