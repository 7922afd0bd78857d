"""Scenario validation of the user's own parts: service targets, placeholders, locustfiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.scenario import load_scenario
from orchestrator.scenario.validate import ScenarioInvalid

BASE = """\
apiVersion: mapquake/v1
kind: Scenario
name: svc
targets:
  - name: inv
    replicas: 2
TARGET
load:
LOAD
phases: [{name: p, duration: 1s}]
"""


def write(tmp_path: Path, target: str, load: str = "  keys: {space: 10}") -> Path:
    (tmp_path / "locustfile.py").write_text("from locust import HttpUser\n\nclass Shopper(HttpUser):\n    pass\n")
    (tmp_path / "svc").mkdir(exist_ok=True)
    (tmp_path / "svc" / "main.go").write_text("package main\n\nfunc main() {}\n")
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("TARGET", target).replace("LOAD", load))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ScenarioInvalid) as info:
        load_scenario(path)
    return [str(e) for e in info.value.errors]


def test_a_built_service_with_placeholders_and_a_locustfile_builds(tmp_path: Path) -> None:
    target = "    build: svc\n    args: [--http, '{http_addr}', --peers, '{peers}']\n    gc_path: /debug/gc"
    sc = load_scenario(write(tmp_path, target, "  locustfile: locustfile.py\n  user: Shopper"))
    (inv,) = sc.targets
    assert inv.store is None and inv.service is not None
    assert inv.service.build == str(tmp_path / "svc") and inv.service.args[1] == "{http_addr}"
    assert inv.service.ready.http == "/metrics" and inv.service.gc_path == "/debug/gc"
    assert sc.load.locustfile == str(tmp_path / "locustfile.py") and sc.load.user == "Shopper"


def test_store_and_service_fields_do_not_mix(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    store: syncmap\n    build: svc"))
    assert any("targets.0.build: build is for your own service" in e for e in found), found


def test_a_target_must_say_what_to_run(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    go: '1.26'"))
    assert any("say what to run: store" in e for e in found), found


def test_unknown_placeholders_and_store_fields_are_named_with_their_line(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    command: [./run.sh, '{http_adr}']\n    shards: 4"))
    assert any("s.yaml:7: targets.0.command.1: unknown placeholder '{http_adr}'" in e for e in found), found
    assert any("targets.0.command.0:" in e and "run.sh does not exist" in e for e in found), found
    assert any("targets.0.shards: shards configures a demo store" in e for e in found), found


def test_a_missing_package_is_refused_with_its_resolved_path(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    build: nowhere"))
    assert any(f"{tmp_path / 'nowhere'} is not a directory with a Go main package" in e for e in found), found


def test_the_locustfile_must_exist_parse_and_define_the_user(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    build: svc", "  locustfile: locustfile.py\n  user: Shoper"))
    assert any("defines no class 'Shoper'; did you mean 'Shopper'?" in e for e in found), found
    (tmp_path / "broken.py").write_text("def oops(:\n")
    found = errors(write(tmp_path, "    build: svc", "  locustfile: broken.py\n  user: Shopper"))
    assert any("broken.py:1:" in e for e in found), found


def test_mapquakes_own_users_still_need_a_key_space(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    store: syncmap", "  user: MapWriteUser"))
    assert any("mapquake's users need a key space" in e for e in found), found


def test_validate_names_a_service_target_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import main

    path = write(tmp_path, "    build: svc", "  locustfile: locustfile.py\n  user: Shopper")
    assert main(["validate", str(path)]) == 0
    assert "targets inv (your service x2)" in capsys.readouterr().out
