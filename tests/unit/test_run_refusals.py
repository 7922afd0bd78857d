"""What a run refuses before it starts anything: unknown or planned backends, target Go versions."""

from __future__ import annotations

import pytest

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


def test_kubernetes_is_refused_until_it_exists() -> None:
    with pytest.raises(UsageError, match="backend 'kubernetes' is not available"):
        check_supported(load_scenario_text(BASE, overrides=["backend=kubernetes"]))


def test_a_supported_scenario_passes() -> None:
    check_supported(load_scenario_text(BASE, overrides=['go="1.27"']))


def test_the_registry_names_what_exists_for_an_unknown_backend() -> None:
    with pytest.raises(UsageError, match="no backend named 'nomad'") as info:
        backend_factory("nomad")
    assert "local" in (info.value.hint or "")
