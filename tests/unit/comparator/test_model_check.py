"""The model check's verdicts from synthetic journals: exact predictions, bounds, missing data."""

from __future__ import annotations

import dataclasses
import time

from orchestrator.checks.evaluate import RunFacts, check_model, designed_target, predict_heap
from orchestrator.checks.noise_floor import RUNTIME_FLOOR_BYTES
from orchestrator.checks.payload import backlog_bytes, key_bytes, owned_bytes
from orchestrator.checks.verdict import Verdict
from orchestrator.journal import HeapSample, HeapSource, Journal
from orchestrator.model.predict import predict
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import ModelCheck, Scenario, TargetSpec

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: unit
targets:
  - {name: kv, store: mutexmap, replicas: 2, replicate: {queue: QUEUE, capacity: 1000}}
load:
  keys: {space: 50000}
  value: {type: "[32]byte"}
phases:
  - {name: fill, duration: 5s}
  - {name: cut, duration: 5s}
  - {name: after, duration: 5s}
checks:
  - {model: live_heap, target: kv, tolerance: 5%, at: [after.end]}
  - {model: live_heap, target: kv, tolerance: 5%, at: [cut.end], since: fill.end,
     design: {replicate: {queue: bounded, capacity: 1000}}}
"""

GO_TYPE = "map[string][32]byte"


def _sample(
    point: str, replica: int, live: int, entries: int, backlog: tuple[int, ...] = (), settled: bool = True
) -> HeapSample:
    return HeapSample(
        target="kv", replica=replica, point=point, wall=time.time(), live_bytes=live, entries=entries,
        high_water=entries, goroutines=10, go_version="go1.26.8", go_type=GO_TYPE, settled=settled,
        replication_backlog=backlog,
    )  # fmt: skip


def _scenario(queue: str = "bounded") -> Scenario:
    return load_scenario_text(SCENARIO.replace("QUEUE", queue))


def _model_check(scenario: Scenario, index: int) -> ModelCheck:
    check = scenario.checks[index]
    assert isinstance(check, ModelCheck)
    return check


def _designed(entries: int) -> int:
    return predict(GO_TYPE, entries).live_bytes + key_bytes(entries).expected


def _journal(*samples: HeapSample) -> Journal:
    journal = Journal()
    for s in samples:
        journal.add_sample(s)
    return journal


def test_exact_heap_passes_and_a_leak_fails() -> None:
    scenario = _scenario()
    check = _model_check(scenario, 0)
    facts = RunFacts({"kv": [20_000, 20_000]}, None)
    base = 700_000
    exact = _journal(
        _sample("deploy", 0, base, 0), _sample("deploy", 1, base, 0),
        _sample("after.end", 0, base + _designed(20_000), 20_000),
        _sample("after.end", 1, base + _designed(20_000), 20_000),
    )  # fmt: skip
    result = check_model(check, scenario, exact, facts)
    assert result.verdict is Verdict.PASS, result.summary
    assert result.evidence["samples"][0]["error"] == 0.0

    leak = _journal(
        _sample("deploy", 0, base, 0), _sample("deploy", 1, base, 0),
        _sample("after.end", 0, base + _designed(20_000), 20_000),
        _sample("after.end", 1, base + int(_designed(20_000) * 1.2), 20_000),
    )  # fmt: skip
    assert check_model(check, scenario, leak, facts).verdict is Verdict.FAIL


def test_wrong_entry_count_at_the_end_fails_and_a_missing_sample_is_inconclusive() -> None:
    scenario = _scenario()
    check = _model_check(scenario, 0)
    facts = RunFacts({"kv": [20_000, 20_000]}, None)
    short = _journal(
        _sample("deploy", 0, 0, 0), _sample("deploy", 1, 0, 0),
        _sample("after.end", 0, _designed(19_000), 19_000), _sample("after.end", 1, _designed(20_000), 20_000),
    )  # fmt: skip
    assert check_model(check, scenario, short, facts).verdict is Verdict.FAIL
    missing = _journal(_sample("deploy", 0, 0, 0), _sample("after.end", 0, _designed(20_000), 20_000))
    assert check_model(check, scenario, missing, facts).verdict is Verdict.INCONCLUSIVE


def test_since_predicts_only_the_backlog_when_the_keys_did_not_change() -> None:
    scenario = _scenario()
    check = _model_check(scenario, 1)
    facts = RunFacts({"kv": [20_000, 20_000]}, None)
    per_op = 16 + 32  # key + [32]byte value, one noscan []byte per queued op
    grown = backlog_bytes((800,), per_op, 1000).expected
    assert grown == 32768 + 800 * 48  # one 32 KiB chunk of slots + 800 payloads of 48 B
    journal = _journal(
        _sample("fill.end", 0, 5_000_000, 20_000, (0,)), _sample("fill.end", 1, 5_000_000, 20_000, (0,)),
        _sample("cut.end", 0, 5_000_000 + grown, 20_000, (800,)), _sample("cut.end", 1, 5_000_000, 20_000, (0,)),
    )  # fmt: skip
    result = check_model(check, scenario, journal, facts)
    assert result.verdict is Verdict.PASS, result.summary
    assert [r["predicted_bytes"] for r in result.evidence["samples"]] == [grown, 0]


def test_a_queue_that_lost_its_designed_bound_fails() -> None:
    # Deployed unbounded (e.g. --set …queue=unbounded); the check's design still says 1000 ops per peer.
    scenario = _scenario("unbounded")
    check = _model_check(scenario, 1)
    designed = designed_target(scenario.target("kv"), check.design)
    assert designed.replicate is not None and designed.replicate.queue == "bounded"
    facts = RunFacts({"kv": [20_000, 20_000]}, None)
    held = backlog_bytes((5000,), 48, None).expected  # what an unbounded queue of 5000 ops really holds
    journal = _journal(
        _sample("fill.end", 0, 5_000_000, 20_000, (0,)), _sample("fill.end", 1, 5_000_000, 20_000, (0,)),
        _sample("cut.end", 0, 5_000_000 + held, 20_000, (5000,)), _sample("cut.end", 1, 5_000_000, 20_000, (0,)),
    )  # fmt: skip
    result = check_model(check, scenario, journal, facts)
    assert result.verdict is Verdict.FAIL, result.summary
    assert result.evidence["samples"][0]["predicted_bytes"] == backlog_bytes((1000,), 48, None).expected


def test_an_intermediate_sample_under_load_above_range_is_inconclusive_not_failed() -> None:
    text = SCENARIO.replace("QUEUE", "bounded").replace("at: [after.end]}", "at: [fill.end]}")
    scenario = load_scenario_text(text)
    facts = RunFacts({"kv": [20_000, 20_000]}, None)
    journal = _journal(
        _sample("deploy", 0, 0, 0), _sample("deploy", 1, 0, 0),
        _sample("fill.end", 0, int(_designed(10_000) * 1.3), 10_000, settled=False),
        _sample("fill.end", 1, _designed(10_000), 10_000, settled=False),
    )  # fmt: skip
    assert check_model(_model_check(scenario, 0), scenario, journal, facts).verdict is Verdict.INCONCLUSIVE


def test_owned_objects_follow_typed_pointers_only() -> None:
    from orchestrator.model.gotypes import container_of

    node = container_of("map[string]*struct{V [32]byte; Prev unsafe.Pointer; Meta *struct{N unsafe.Pointer; S uint64}}")
    assert owned_bytes(node.elem) == 48 + 16  # node (48 B, pointerful: class 48) + meta (16 B)
    assert owned_bytes(container_of("map[string][32]byte").elem) == 0


LEGACY = """\
apiVersion: mapquake/v1
kind: Scenario
name: legacy
go: "1.23"
targets: [{name: cache, store: syncmap}]
load: {user: USER, keys: {space: 100000}, value: {type: "[32]byte"}}
phases: [{name: churn, duration: 5s}]
"""


def test_a_legacy_sync_map_read_by_the_load_may_hold_its_double_copy() -> None:
    """Go ≤ 1.23: missed Loads promote the dirty map and the next new key copies it, so a reading
    workload's heap may hold two copies of the map structure; a write-only one never does."""
    go_type = "sync.Map[string][32]byte"
    sample = HeapSample(
        target="cache", replica=0, point="churn.end", wall=time.time(), live_bytes=0, entries=25_000,
        high_water=25_000, goroutines=10, go_version="go1.23.5", go_type=go_type, settled=True,
    )  # fmt: skip
    model = predict(go_type, 25_000, go_version="1.23")
    reading = predict_heap(
        load_scenario_text(LEGACY.replace("USER", "SyncMapChurnUser")), _target("SyncMapChurnUser"), go_type,
        sample, 25_000,
    )  # fmt: skip
    writing = predict_heap(
        load_scenario_text(LEGACY.replace("USER", "MapWriteUser")), _target("MapWriteUser"), go_type, sample, 25_000
    )
    assert writing.high - writing.beside < model.peak_bytes
    assert reading.high - writing.high == model.details["peak_high_bytes"] - model.live_bytes
    assert model.details["peak_high_bytes"] > model.peak_bytes > model.live_bytes
    assert reading.expected == writing.expected


def _target(user: str) -> TargetSpec:
    return load_scenario_text(LEGACY.replace("USER", user)).targets[0]


SUBSLICE = """\
apiVersion: mapquake/v1
kind: Scenario
name: subslice
targets:
  - {name: pinned, store: subslice, slice_buffer: 4096}
  - {name: cloned, store: subslice}
load: {keys: {space: 1000}, value: {type: "[]byte", size: 32}}
phases: [{name: fill, duration: 5s}]
"""


def test_a_value_sliced_from_a_buffer_is_charged_the_whole_buffer() -> None:
    scenario = load_scenario_text(SUBSLICE)
    pinned, cloned = scenario.targets
    sample = HeapSample(
        target="pinned", replica=0, point="fill.end", wall=time.time(), live_bytes=0, entries=1000,
        high_water=1000, goroutines=10, go_version="go1.26.8", go_type="map[string][]byte", settled=True,
    )  # fmt: skip
    heavy = predict_heap(scenario, pinned, "map[string][]byte", sample, 1000)
    light = predict_heap(scenario, cloned, "map[string][]byte", sample, 1000)
    assert heavy.container == light.container  # the same map: only what the slots point at differs
    assert heavy.beside - light.beside == 1000 * (4096 - 32)


def test_values_that_pin_buffers_fail_a_design_that_copies_them() -> None:
    """A service designed to copy values (design: slice_buffer 0) but keeping slices of its read
    buffers holds 4 KiB per entry where the design allows 32 B: the check fails."""
    text = (
        SUBSLICE
        + """checks:
  - {model: live_heap, target: pinned, tolerance: 5%, at: [fill.end]}
  - {model: live_heap, target: pinned, tolerance: 5%, at: [fill.end], design: {slice_buffer: 0}}
"""
    )
    scenario = load_scenario_text(text)
    as_deployed, as_designed = _model_check(scenario, 0), _model_check(scenario, 1)
    pinned = scenario.target("pinned")
    sample = HeapSample(
        target="pinned", replica=0, point="fill.end", wall=time.time(), live_bytes=0, entries=1000,
        high_water=1000, goroutines=10, go_version="go1.26.8", go_type="map[string][]byte", settled=True,
    )  # fmt: skip
    holds = predict_heap(scenario, pinned, "map[string][]byte", sample, 1000).expected
    journal = _journal(
        dataclasses.replace(sample, point="deploy", live_bytes=1_000_000, entries=0, high_water=0),
        dataclasses.replace(sample, live_bytes=1_000_000 + holds),
    )
    facts = RunFacts({"pinned": [1000]}, None)
    assert check_model(as_deployed, scenario, journal, facts).verdict is Verdict.PASS
    result = check_model(as_designed, scenario, journal, facts)
    assert result.verdict is Verdict.FAIL, result.summary


REBUILT = """\
apiVersion: mapquake/v1
kind: Scenario
name: unit-rebuild
targets:
  - {name: kv, store: deleteretain, rebuild_every: EVERY}
load:
  user: DeleteChurnUser
  keys: {space: 20000, distribution: sequential}
  value: {type: "[32]byte"}
phases:
  - {name: churn, duration: 5s}
checks:
  - {model: live_heap, target: kv, tolerance: 5%, at: [churn.end]}
"""


def _rebuilt(every: int) -> tuple[Scenario, ModelCheck]:
    scenario = load_scenario_text(REBUILT.replace("EVERY", str(every)))
    return scenario, _model_check(scenario, 0)


def test_a_rebuilt_map_is_judged_over_its_rebuild_cycle() -> None:
    from orchestrator.model.rebuild import rebuild_cycle

    scenario, check = _rebuilt(1_000)
    entries = 6_500
    facts = RunFacts({"kv": [entries]}, None)
    cycle = rebuild_cycle(GO_TYPE, entries, 1_000, go_version=scenario.target("kv").go)
    keys = key_bytes(entries).expected
    slack = max(int(0.05 * (cycle.expected + keys)), RUNTIME_FLOOR_BYTES[HeapSource.GC])  # relative, or the floor
    base = 700_000

    def verdict(container: int) -> tuple[Verdict, dict[str, object]]:
        journal = _journal(_sample("deploy", 0, base, 0), _sample("churn.end", 0, base + container + keys, entries))
        result = check_model(check, scenario, journal, facts)
        return result.verdict, result.evidence["samples"][0]

    # Just rebuilt, just before the next rebuild, and the mean: all pass; the row shows the cycle.
    for container in (cycle.low, cycle.start, cycle.expected, cycle.end, cycle.high):
        got, row = verdict(container)
        assert got is Verdict.PASS, (container, row)
        assert row["rebuild_cycle"]["rebuild_every"] == 1_000  # type: ignore[index]
        assert row["predicted_range"] == [cycle.low + keys, cycle.high + keys]
    # Beyond the cycle's top (what churn without rebuilds grows to) it fails.
    assert verdict(cycle.high + slack + 1)[0] is Verdict.FAIL
    assert verdict(cycle.low - slack - 1)[0] is Verdict.FAIL


def test_a_store_that_never_rebuilds_is_held_to_its_live_entries() -> None:
    scenario, check = _rebuilt(0)
    entries = 6_500
    facts = RunFacts({"kv": [entries]}, None)
    fresh = predict(GO_TYPE, entries).live_bytes + key_bytes(entries).expected
    grown = fresh + 8 * 57_376  # churn added 8 tables of 1024 slots (57 376 B each) that it never gives back
    ok = _journal(_sample("deploy", 0, 0, 0), _sample("churn.end", 0, fresh, entries))
    leaked = _journal(_sample("deploy", 0, 0, 0), _sample("churn.end", 0, grown, entries))
    assert check_model(check, scenario, ok, facts).verdict is Verdict.PASS
    result = check_model(check, scenario, leaked, facts)
    assert result.verdict is Verdict.FAIL
    assert "rebuild_cycle" not in result.evidence["samples"][0]


def test_a_tiny_prediction_is_judged_against_the_noise_floor_not_relatively() -> None:
    """96 replicas with a handful of keys each: +1,322 % of a 1.3 KB prediction is the runtime's noise."""
    scenario = _scenario()
    check = _model_check(scenario, 0)
    facts = RunFacts({"kv": [8, 8]}, None)
    floor = RUNTIME_FLOOR_BYTES[HeapSource.GC]
    noise = floor // 2  # many times the prediction, well under the floor

    def run(extra: int) -> tuple[Verdict, dict[str, object]]:
        journal = _journal(
            _sample("deploy", 0, 700_000, 0), _sample("deploy", 1, 700_000, 0),
            _sample("after.end", 0, 700_000 + _designed(8) + extra, 8),
            _sample("after.end", 1, 700_000 + _designed(8), 8),
        )  # fmt: skip
        result = check_model(check, scenario, journal, facts)
        return result.verdict, result.evidence["samples"][0]

    verdict, row = run(noise)
    assert verdict is Verdict.PASS, row
    assert row["floor"] == {"bytes": floor, "runtime": floor, "spread": 0, "idle": 0, "gc": 0, "decided_by": "runtime"}  # type: ignore[comparison-overlap]
    assert row["tolerance_bytes"] == floor and row["relative_bytes"] < floor  # type: ignore[operator]
    high = row["predicted_range"][1] - _designed(8)  # type: ignore[index]
    assert run(floor + high + 1)[0] is Verdict.FAIL  # a leak above the floor still fails


def test_an_unchanged_replica_s_growth_is_the_other_replicas_floor() -> None:
    scenario = _scenario()
    check = _model_check(scenario, 1)  # cut.end since fill.end
    facts = RunFacts({"kv": [10, 10]}, None)
    idle_growth = 300_000  # replica 1 held the same keys and grew this much: noise the run measured
    journal = _journal(
        _sample("fill.end", 0, 1_000_000, 10), _sample("cut.end", 0, 1_000_000 + 200_000, 10),
        _sample("fill.end", 1, 1_000_000, 10), _sample("cut.end", 1, 1_000_000 + idle_growth, 10),
    )  # fmt: skip
    rows = {r["replica"]: r for r in check_model(check, scenario, journal, facts).evidence["samples"]}
    assert rows[0]["floor"]["idle"] == round(1.5 * idle_growth) and rows[0]["within_tolerance"]
    assert rows[1]["floor"]["idle"] == round(1.5 * 200_000)  # never its own
