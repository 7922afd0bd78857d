"""Scenario validation: every error at once, each with file:line, field path and a way to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.scenario import ScenarioInvalid, check_scenario, load_scenario, load_scenario_text
from orchestrator.scenario.spec import ModelCheck
from orchestrator.scenario.yamlsource import parse

REPO = Path(__file__).resolve().parents[3]
VALID = """\
apiVersion: mapquake/v1
kind: Scenario
name: churn
targets:
  - {name: cache, store: syncmap, replicas: 3, replicate: {queue: bounded}}
load:
  keys: {space: 1000}
phases:
  - {name: baseline, duration: 2s}
  - {name: cut, duration: 1m30s, faults: [{partition: {shape: halves, among: cache}}]}
checks:
  - {model: live_heap, target: cache, at: [baseline.end]}
"""


def errors_of(text: str, overrides: tuple[str, ...] = ()) -> list[str]:
    return [str(e) for e in check_scenario(parse(text, "s.yaml"), overrides)]


def test_valid_scenario_gets_documented_defaults() -> None:
    scenario = load_scenario_text(VALID)
    target = scenario.targets[0]
    assert (target.replicas, target.value_type, target.go) == (3, "[32]byte", "1.26")
    assert target.replicate is not None and (target.replicate.queue, target.replicate.capacity) == ("bounded", 10_000)
    assert (scenario.load.user, scenario.load.protocol, scenario.load.workers) == ("MapWriteUser", "grpc", 1)
    assert scenario.load.keys.distribution == "sequential"
    assert [p.duration_s for p in scenario.phases] == [2.0, 90.0]
    assert scenario.phases[1].faults[0].kind == "partition"
    check = scenario.checks[0]
    assert isinstance(check, ModelCheck)
    assert (check.kind, check.name, check.tolerance.fraction, check.tolerance.text) == ("model", "model-0", 0.05, "5%")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("store: syncmap", "store: synmap"), "s.yaml:5: targets.0.store: 'synmap' is not one of:"),
        (("store: syncmap", "store: synmap"), "did you mean 'syncmap'?"),
        (("space: 1000", "space: 1000, colour: red"), "s.yaml:7: load.keys.colour: unknown key 'colour'"),
        (("duration: 2s", "duration: 2"), "s.yaml:9: phases.0.duration: expected a string, got 2; write a duration"),
        (("duration: 2s", "duration: two"), "phases.0.duration: 'two' is not valid: write a duration"),
        (("among: cache", "among: cahce"), "phases.1.faults.0.partition.among: no target named 'cahce'"),
        (("replicas: 3", "replicas: 2"), "shape 'bridge' needs at least 3 replicas; target 'cache' has 2"),
        (("replicas: 3", "replicas: 1"), "targets.0.replicate: replication needs replicas: 2 or more"),
        (("at: [baseline.end]", "at: [baseline.finish]"), "'baseline.finish' is not <phase>.start or <phase>.end"),
        (("kind: Scenario", "kind: Experiment"), "s.yaml:2: kind: must be 'Scenario', got 'Experiment'"),
        (("name: churn", "name: Churn_1"), "s.yaml:3: name: 'Churn_1' is not valid: use lowercase letters"),
        (("  keys: {space: 1000}", "  keys: {space: 0}"), "load.keys.space: must be at least 1, got 0"),
        (("{model: live_heap, ", "{"), "checks.0: a check needs exactly one of: model, promql"),
        (("faults: [{partition", "faults: [{kill: {target: cache}, partition"), "a fault needs exactly one of"),
        (("name: baseline", "name: cut"), "phases.1.name: 'cut' is already the name of phases.0"),
        (("  keys: {space: 1000}", "  keys: {space: 1e3}"), "YAML reads '1e3' as text: write 1.0e+03"),
        (
            ("store: syncmap, replicas: 3", "store: subslice, replicas: 3"),
            "s.yaml:5: targets.0.store: subslice keeps []byte values as slices of a buffer, not [32]byte",
        ),
        (
            ("replicas: 3, replicate", "replicas: 3, slice_buffer: 4096, replicate"),
            "s.yaml:5: targets.0.slice_buffer: slice_buffer only applies to store: subslice",
        ),
    ],
)
def test_each_mistake_is_named_with_line_and_path(edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in VALID
    text = VALID.replace(old, new, 1)
    if "bridge" in expected:
        text = text.replace("shape: halves", "shape: bridge")
    messages = errors_of(text)
    assert any(expected in m for m in messages), messages


def test_a_subslice_target_of_byte_slices_is_valid() -> None:
    subslice = 'store: subslice, value_type: "[]byte", slice_buffer: 4096, replicas: 3'
    text = VALID.replace("store: syncmap, replicas: 3", subslice)
    target = load_scenario_text(text).targets[0]
    assert (target.store, target.value_type, target.slice_buffer) == ("subslice", "[]byte", 4096)
    assert load_scenario_text(VALID).targets[0].slice_buffer == 0


def test_missing_required_fields_are_all_listed() -> None:
    messages = errors_of("apiVersion: mapquake/v1\nkind: Scenario\n")
    for field in ("name", "targets", "load", "phases"):
        assert any(f"{field}: missing required field '{field}'" in m for m in messages), messages


def test_every_error_is_reported_at_once() -> None:
    text = VALID.replace("store: syncmap", "store: nope").replace("duration: 2s", "duration: x")
    text = text.replace("space: 1000", "space: -1")
    assert len(errors_of(text)) == 3


def test_duplicate_keys_and_syntax_errors_have_lines() -> None:
    assert any("s.yaml:4: name: duplicate key 'name' (first at line 3)" in m for m in errors_of(VALID.replace(
        "targets:", "name: again\ntargets:", 1)))  # fmt: skip
    assert errors_of("a: [1,\n") == [
        "s.yaml:2: (document): invalid YAML: expected the node content, but found '<stream end>'"
    ]
    assert "the file is empty" in errors_of("")[0]


def test_unquoted_go_version_gets_a_hint() -> None:
    messages = errors_of(VALID.replace("name: churn", "name: churn\ngo: 1.26"))
    assert any('go: expected a string, got 1.26; quote it: "1.26"' in m for m in messages)


def test_set_overrides_and_points_errors_at_the_flag() -> None:
    scenario = load_scenario_text(VALID, overrides=["targets.0.replicate.queue=unbounded", "load.workers=4"])
    replicate = scenario.targets[0].replicate
    assert replicate is not None and replicate.queue == "unbounded"
    assert scenario.load.workers == 4
    messages = errors_of(VALID, ("targets.0.replicas=lots",))
    assert messages == ["--set targets.0.replicas=lots: targets.0.replicas: expected a whole number, got 'lots'"]
    assert errors_of(VALID, ("targets.7.store=syncmap",)) == [
        "--set targets.7.store=syncmap: (document): targets.7: index out of range (list has 1 items)"
    ]
    assert "expected path=value" in errors_of(VALID, ("oops",))[0]


def test_set_creates_a_missing_mapping_and_the_schema_judges_its_keys() -> None:
    url = "prometheus.existing.url=http://prom:9090"
    scenario = load_scenario_text(VALID, overrides=[url, "prometheus.existing.discovery=annotations"])
    existing = scenario.existing_prometheus
    assert existing is not None and (existing.url, existing.discovery) == ("http://prom:9090", "annotations")
    (typo,) = errors_of(VALID, ("prometheus.exsting.url=http://prom:9090",))
    assert "exsting" in typo and "existing" in typo  # named, with the likely fix
    (list_path,) = errors_of(VALID, ("phases.0.faults.0.kill.target=x",))
    assert "phases.0.faults is not in the scenario; --set cannot create a list" in list_path


def test_load_scenario_raises_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("store: syncmap", "store: nope"))
    with pytest.raises(ScenarioInvalid) as info:
        load_scenario(path)
    assert info.value.exit_code == 2
    assert f"{path}:5: targets.0.store" in str(info.value)


def test_validate_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(VALID)
    bad.write_text(VALID.replace("store: syncmap", "store: nope"))
    assert main(["validate", str(good)]) == 0
    assert "valid scenario 'churn'" in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "targets.0.store" in err and "Traceback" not in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    load_scenario(path)


def test_with_an_existing_prometheus_unscopable_queries_and_faults_on_the_server_are_refused() -> None:
    text = (
        VALID.replace("{shape: halves, among: cache}", "{groups: [targets, prometheus]}")
        + "  - {name: bad-query, promql: 'up{a=\"1\" or b=\"2\"}', below: 1, during: [baseline]}\n"
        + "  - {name: fine, promql: 'max by (replica) (up)', below: 2, during: [baseline]}\n"
        + "prometheus: {existing: {url: 'http://prometheus.monitoring:9090'}}\n"
    )  # fmt: skip
    errors = errors_of(text)
    assert len(errors) == 2, errors
    assert "s.yaml:10: phases.1.faults.0.partition.groups.1" in errors[0] and "never faults it" in errors[0]
    assert "s.yaml:13: checks.1.promql" in errors[1] and "`or` between matchers" in errors[1]
    # the same scenario with its own server: both are fine
    assert errors_of(text.replace("prometheus: {existing: {url: 'http://prometheus.monitoring:9090'}}\n", "")) == []


@pytest.mark.parametrize("url", ["prometheus:9090", "http://", "ftp://x", "http://a b"])
def test_an_existing_prometheus_needs_an_http_url(url: str) -> None:
    errors = errors_of(VALID + f"prometheus: {{existing: {{url: '{url}'}}}}\n")
    assert len(errors) == 1 and "prometheus.existing.url" in errors[0], errors
