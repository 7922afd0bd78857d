"""What a run refuses before it starts anything: unknown backends, target Go versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends.base import ClusterAccess
from orchestrator.backends.local.backend import unsupported_go
from orchestrator.backends.registry import backend_factory
from orchestrator.core.errors import UsageError
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import Scenario

BASE = """\
apiVersion: mapquake/v1
kind: Scenario
name: refusals
targets: [{name: kv, store: syncmap}]
load: {keys: {space: 10}}
phases: [{name: p, duration: 1s}]
"""


def check_supported(scenario: Scenario) -> None:
    """What the run asks before anything starts: the registry for the backend, the backend for the Go."""
    backend_factory(scenario.backend)
    for error in unsupported_go(scenario):
        raise error


def test_a_target_on_go_older_than_1_23_is_refused_with_the_model_as_the_way_out() -> None:
    with pytest.raises(UsageError) as info:
        check_supported(load_scenario_text(BASE, overrides=['targets.0.go="1.22"']))
    assert "maptarget builds with Go 1.23 or newer, not 1.22" in info.value.message
    assert "--go 1.22" in (info.value.hint or "")


def test_a_go_1_23_target_is_accepted() -> None:
    check_supported(load_scenario_text(BASE, overrides=['targets.0.go="1.23"']))


def test_kubernetes_is_a_backend_bound_to_how_it_reaches_the_cluster() -> None:
    factory = backend_factory("kubernetes", ClusterAccess(kubeconfig=Path("/k"), namespace="runs"))
    assert factory.name == "kubernetes"
    assert factory.namespace == "runs"  # type: ignore[attr-defined]


def test_a_supported_scenario_passes() -> None:
    check_supported(load_scenario_text(BASE, overrides=['go="1.27"']))


def test_the_registry_names_what_exists_for_an_unknown_backend() -> None:
    with pytest.raises(UsageError, match="no backend named 'nomad'") as info:
        backend_factory("nomad")
    assert "local" in (info.value.hint or "")


def test_local_preflight_lists_every_missing_piece_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestrator.backends.local import backend as local
    from orchestrator.core.errors import InfrastructureError

    monkeypatch.setattr(local.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(local.shutil, "which", lambda tool: None if tool in ("nft", "nsenter") else f"/usr/bin/{tool}")
    monkeypatch.setattr(local, "PROMETHEUS_BINARY", tmp_path / "no-prometheus")
    monkeypatch.setenv("MAPQUAKE_STATE_DIR", str(tmp_path / "state"))
    faults = ["phases.0.faults=[{kill: {target: kv}}]"]
    backend = local.LocalBackend(run_id="0a0b0c0d", run_dir=tmp_path / "run")
    with pytest.raises(InfrastructureError) as info:
        backend.preflight(load_scenario_text(BASE, overrides=faults))
    message = info.value.message
    assert "needs root" in message and "missing host tools: nsenter, nft" in message
    assert "no-prometheus not found" in message
    assert not (tmp_path / "state").exists() and not (tmp_path / "run").exists()  # nothing was created
