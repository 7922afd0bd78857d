"""The model check on a user's service: heap growth against what its mapprobe maps explain."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.checks.noise_floor import GC_HEADROOM_FACTOR, RUNTIME_FLOOR_BYTES, SPREAD_FACTOR
from orchestrator.checks.service_model import NO_HEAP_SOURCE_FIX, check_service_model
from orchestrator.checks.verdict import CheckResult, Verdict
from orchestrator.journal import HeapSample, HeapSource, Journal, MapReading
from orchestrator.model.predict import predict
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import ModelCheck
from orchestrator.targets.service import live_heap_from_metrics, maps_from_gc_json, maps_from_metrics

GO_TYPE = "map[uint64]struct{Qty int64; PriceCents int64; Updated int64; Name [24]byte}"
SESSIONS = "map[string]*struct{User string; Expires int64}"
EXACT_FLOOR = RUNTIME_FLOOR_BYTES[HeapSource.GC]
SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: svc
targets: [{name: inv, command: [/bin/true], replicas: REPLICAS}]
load: {locustfile: LOCUSTFILE, user: Shopper}
phases: [{name: fill, duration: 1s}, {name: churn, duration: 1s}]
checks:
  - {name: heap, model: live_heap, target: inv, map: items, tolerance: 10%, at: [churn.end], since: fill.end}
"""


def check_of(tmp_path: Path, *overrides: str, replicas: int = 1) -> tuple[ModelCheck, object]:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("class Shopper:\n    pass\n")
    text = SCENARIO.replace("LOCUSTFILE", str(locustfile)).replace("REPLICAS", str(replicas))
    sc = load_scenario_text(text, str(tmp_path / "s.yaml"), list(overrides))
    check = sc.checks[0]
    assert isinstance(check, ModelCheck)
    return check, sc


def sample(
    point: str,
    live: int,
    entries: int,
    *,
    replica: int = 0,
    source: HeapSource = HeapSource.GC,
    sessions: MapReading | None = None,
    maps: bool = True,
) -> HeapSample:
    readings = (MapReading("items", entries, entries, GO_TYPE), sessions or MapReading("sessions", 3, 3, SESSIONS))
    return HeapSample(
        live_bytes=live,
        entries=0,
        high_water=0,
        goroutines=9,
        go_version="go1.26.8",
        go_type="",
        maps=readings if maps else (),
        approximate=source != HeapSource.GC,
        source=source,
    ).placed(target="inv", replica=replica, point=point, wall=0.0, settled=True)


def run(tmp_path: Path, *samples: HeapSample, overrides: tuple[str, ...] = (), replicas: int = 1) -> CheckResult:
    check, sc = check_of(tmp_path, *overrides, replicas=replicas)
    journal = Journal()
    for s in samples:
        journal.add_sample(s)
    return check_service_model(check, sc, journal)  # type: ignore[arg-type]


def model_bytes(entries: int, go_type: str = GO_TYPE) -> int:
    return predict(go_type, entries, go_version="1.26").live_bytes


def test_growth_the_map_explains_passes_and_shows_the_left_over(tmp_path: Path) -> None:
    grown = model_bytes(20_000) - model_bytes(10_000)
    result = run(tmp_path, sample("fill.end", 5_000_000, 10_000), sample("churn.end", 5_000_000 + grown + 1000, 20_000))
    assert result.verdict is Verdict.PASS, result.summary
    (row,) = result.evidence["samples"]
    assert row["attributed_bytes"] == grown and row["left_over_bytes"] == 1000
    assert row["entries"] == [10_000, 20_000] and row["map"] == "items"
    assert row["sources"] == ["gc"]
    assert "1,000 B left over" in result.summary and "gc samples" in result.summary


def test_growth_beyond_the_map_fails_a_leak(tmp_path: Path) -> None:
    leak = model_bytes(10_000)  # as much again as the whole map, held outside it
    result = run(tmp_path, sample("fill.end", 5_000_000, 10_000), sample("churn.end", 5_000_000 + leak, 10_000))
    assert result.verdict is Verdict.FAIL
    assert result.evidence["samples"][0]["attributed_bytes"] == 0


def test_an_unchanged_map_is_judged_against_the_floor_not_against_zero(tmp_path: Path) -> None:
    noise = EXACT_FLOOR - 1  # far over 10 % of a 100-entry map, under the floor
    ok = run(tmp_path, sample("fill.end", 1_000_000, 100), sample("churn.end", 1_000_000 + noise, 100))
    assert ok.verdict is Verdict.PASS, ok.summary
    row = ok.evidence["samples"][0]
    assert row["tolerance_bytes"] == EXACT_FLOOR and row["floor"]["decided_by"] == "runtime"
    assert "the noise floor (runtime)" in ok.summary
    beyond = EXACT_FLOOR + row["predicted_range"][1] + 1  # the model's own range, then the floor
    over = run(tmp_path, sample("fill.end", 1_000_000, 100), sample("churn.end", 1_000_000 + beyond, 100))
    assert over.verdict is Verdict.FAIL


def test_approximate_samples_get_the_wider_floor_of_their_source(tmp_path: Path) -> None:
    noise = 3 * EXACT_FLOOR
    exact = run(tmp_path, sample("fill.end", 1_000_000, 100), sample("churn.end", 1_000_000 + noise, 100))
    assert exact.verdict is Verdict.FAIL
    live = HeapSource.MAPPROBE_LIVE
    approx = run(
        tmp_path,
        sample("fill.end", 1_000_000, 100, source=live),
        sample("churn.end", 1_000_000 + noise, 100, source=live),
    )
    assert approx.verdict is Verdict.PASS
    row = approx.evidence["samples"][0]
    assert row["tolerance_bytes"] == RUNTIME_FLOOR_BYTES[live] and row["sources"] == ["mapprobe_live"]
    assert row["approximate"] is True


def test_an_approximate_sample_s_gc_headroom_is_its_floor(tmp_path: Path) -> None:
    """The last GC counted as live what was allocated while it marked, up to its goal."""
    live = HeapSource.MAPPROBE_LIVE
    headroom = 4 * RUNTIME_FLOOR_BYTES[live]
    base = dataclasses.replace(sample("fill.end", 4_000_000, 100, source=live), gc_headroom_bytes=headroom)
    here = sample("churn.end", 4_000_000 - 2 * RUNTIME_FLOOR_BYTES[live], 100, source=live)
    result = run(tmp_path, base, here)
    assert result.verdict is Verdict.PASS, result.summary
    row = result.evidence["samples"][0]
    assert row["floor"]["gc"] == round(GC_HEADROOM_FACTOR * headroom) and row["floor"]["decided_by"] == "gc"
    exact = run(
        tmp_path,
        dataclasses.replace(sample("fill.end", 4_000_000, 100), gc_headroom_bytes=headroom),
        sample("churn.end", 4_000_000 - 2 * RUNTIME_FLOOR_BYTES[live], 100),
    )
    assert exact.evidence["samples"][0]["floor"]["gc"] == 0  # after two forced GCs there is no mark to doubt
    # A leak raises the goal with the heap: the point's headroom is not the check's to excuse it with.
    grown = run(
        tmp_path,
        sample("fill.end", 4_000_000, 100, source=live),
        dataclasses.replace(sample("churn.end", 9_000_000, 100, source=live), gc_headroom_bytes=9_000_000),
    )
    assert grown.evidence["samples"][0]["floor"]["gc"] == 0 and grown.verdict is Verdict.FAIL


def test_the_spread_of_repeated_samples_widens_the_floor_and_the_median_speaks(tmp_path: Path) -> None:
    base = [sample("fill.end", 1_000_000 + d, 100) for d in (0, 10_000, 20_000)]
    # Under load the repeats move by what is in flight: 0, 100 KB, 50 KB over the baseline.
    here = [sample("churn.end", 1_000_000 + d, 100) for d in (0, 100_000, 50_000)]
    result = run(tmp_path, *base, *here)
    assert result.verdict is Verdict.PASS, result.summary
    row = result.evidence["samples"][0]
    assert row["repeats"] == [3, 3]
    assert row["floor"]["spread"] == round(SPREAD_FACTOR * (20_000 + 100_000))
    assert row["left_over_bytes"] == 50_000 - 10_000  # median against median
    assert row["floor"]["decided_by"] == "spread"


def test_an_idle_replica_s_noise_is_the_others_floor_never_its_own(tmp_path: Path) -> None:
    idle_noise = 200_000
    samples = [
        sample("fill.end", 1_000_000, 100, replica=0),
        sample("churn.end", 1_000_000 + 150_000, 100, replica=0),  # busy replica: unexplained 150 KB
        sample("fill.end", 1_000_000, 0, replica=1),
        sample("churn.end", 1_000_000 + idle_noise, 0, replica=1),  # idle replica, map empty
    ]
    result = run(tmp_path, *samples, replicas=2)
    rows = {r["replica"]: r for r in result.evidence["samples"]}
    assert rows[0]["floor"]["idle"] == round(1.5 * idle_noise) and rows[0]["within_tolerance"]
    # Replica 1's own noise is not in its own floor: only replica 0's (unchanged map too) is.
    assert rows[1]["floor"]["idle"] == round(1.5 * 150_000)
    assert rows[1]["within_tolerance"] and result.verdict is Verdict.PASS


def test_what_entries_own_is_attributed_to_the_map(tmp_path: Path) -> None:
    """A growing map[string]*T: the slots alone leave the pointees and the key bytes over."""
    then, now = 10_000, 30_000
    per_entry = 48.0 + 32.0  # a 40-byte struct in its 48-byte class, a 20-byte key in its 32-byte class
    slots = model_bytes(now, SESSIONS) - model_bytes(then, SESSIONS)
    growth = slots + round(per_entry * (now - then))

    def at(point: str, live: int, n: int, owned: bool) -> HeapSample:
        reading = MapReading(
            "sessions",
            n,
            n,
            SESSIONS,
            owned_key_bytes=32.0 if owned else None,
            owned_value_bytes=48.0 if owned else None,
            owned_sampled=256 if owned else 0,
        )
        return sample(point, live, 100, sessions=reading)

    measured = run(
        tmp_path,
        at("fill.end", 2_000_000, then, True),
        at("churn.end", 2_000_000 + growth, now, True),
        overrides=("checks.0.map=sessions",),
    )
    assert measured.verdict is Verdict.PASS, measured.summary
    row = measured.evidence["samples"][0]
    assert row["owned_bytes"] == round(per_entry * (now - then)) and row["slot_bytes"] == slots
    assert row["maps"][0]["owned_from"] == "mapprobe"
    slots_only = run(
        tmp_path,
        at("fill.end", 2_000_000, then, False),
        at("churn.end", 2_000_000 + growth, now, False),
        overrides=("checks.0.map=sessions",),
    )
    assert slots_only.verdict is Verdict.FAIL
    declared = run(
        tmp_path,
        at("fill.end", 2_000_000, then, False),
        at("churn.end", 2_000_000 + growth, now, False),
        overrides=("checks.0.map=sessions", "checks.0.owns=80"),
    )
    assert declared.verdict is Verdict.PASS, declared.summary
    assert declared.evidence["samples"][0]["maps"][0]["owned_from"] == "declared"


def test_values_that_pin_more_than_they_show_are_named_in_the_evidence(tmp_path: Path) -> None:
    pinned = 4096 * 10_000  # each new entry keeps a 4 KiB buffer alive
    slots = model_bytes(20_000) - model_bytes(10_000)
    result = run(tmp_path, sample("fill.end", 0, 10_000), sample("churn.end", slots + pinned, 20_000))
    assert result.verdict is Verdict.FAIL
    assert "sub-slices" in result.evidence["samples"][0]["note"] and "per new entry" in result.summary


@pytest.mark.parametrize("names", ["[items, sessions]", '"*"'])
def test_a_check_over_several_maps_attributes_their_sum(tmp_path: Path, names: str) -> None:
    grown = model_bytes(20_000) - model_bytes(10_000)
    big = MapReading("sessions", 50_000, 50_000, SESSIONS)
    sessions_grown = model_bytes(50_000, SESSIONS) - model_bytes(3, SESSIONS)
    result = run(
        tmp_path,
        sample("fill.end", 5_000_000, 10_000),
        sample("churn.end", 5_000_000 + grown + sessions_grown, 20_000, sessions=big),
        overrides=(f"checks.0.map={names}",),
    )
    assert result.verdict is Verdict.PASS, result.summary
    row = result.evidence["samples"][0]
    assert [m["map"] for m in row["maps"]] == ["items", "sessions"]
    assert row["attributed_bytes"] == grown + sessions_grown
    alone = run(
        tmp_path,
        sample("fill.end", 5_000_000, 10_000),
        sample("churn.end", 5_000_000 + grown + sessions_grown, 20_000, sessions=big),
    )
    assert alone.verdict is Verdict.FAIL  # the same heap, checked against items alone


def test_a_map_the_service_does_not_register_is_inconclusive(tmp_path: Path) -> None:
    result = run(
        tmp_path, sample("fill.end", 1, 1), sample("churn.end", 1, 1), overrides=("checks.0.map=[items, carts]",)
    )
    assert result.verdict is Verdict.INCONCLUSIVE and "no mapprobe map 'carts'" in result.summary


def test_a_service_without_the_map_is_inconclusive_not_a_pass(tmp_path: Path) -> None:
    result = run(tmp_path, sample("fill.end", 1, 1, maps=False), sample("churn.end", 1, 1, maps=False))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "serves no mapprobe map" in result.summary


def test_a_service_with_no_live_heap_figure_is_inconclusive_with_the_fix(tmp_path: Path) -> None:
    none = HeapSource.NONE
    result = run(tmp_path, sample("fill.end", 0, 1, source=none), sample("churn.end", 0, 1, source=none))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert NO_HEAP_SOURCE_FIX in result.summary and "mapquake_heap_live_bytes" in result.summary


def test_heap_alloc_is_never_a_heap_sample() -> None:
    alloc = [("go_memstats_heap_alloc_bytes", {}, 9e6), ("go_goroutines", {}, 7.0)]
    assert live_heap_from_metrics(alloc) == (0, HeapSource.NONE)
    collector = [*alloc, ("go_gc_heap_live_bytes", {}, 3e6)]
    assert live_heap_from_metrics(collector) == (3_000_000, HeapSource.GO_COLLECTOR_LIVE)
    probe = [*collector, ("mapquake_heap_live_bytes", {"map": "sessions"}, 2_500_000.0)]
    assert live_heap_from_metrics(probe) == (2_500_000, HeapSource.MAPPROBE_LIVE)


def test_owned_bytes_are_read_from_metrics_and_the_gc_handler() -> None:
    scrape = [
        ("mapquake_store_entries", {"map": "s"}, 10.0),
        ("mapquake_store_info", {"map": "s", "go_type": SESSIONS}, 1.0),
        ("mapquake_store_entry_owned_bytes", {"map": "s", "part": "key"}, 32.0),
        ("mapquake_store_entry_owned_bytes", {"map": "s", "part": "value"}, 48.5),
        ("mapquake_store_entry_owned_sampled_entries", {"map": "s"}, 10.0),
    ]
    (reading,) = maps_from_metrics(scrape)
    assert (reading.owned_key_bytes, reading.owned_value_bytes, reading.owned_sampled) == (32.0, 48.5, 10)
    answer = {
        "maps": [
            {
                "map": "s",
                "entries": 10,
                "go_type": SESSIONS,
                "owned": {"key_bytes_per_entry": 32.0, "value_bytes_per_entry": 48.5, "sampled": 10},
            },
            {"map": "t", "entries": 1, "go_type": "map[int]int"},
        ]
    }
    owned, plain = maps_from_gc_json(answer)
    assert (owned.owned_key_bytes, owned.owned_value_bytes, owned.owned_sampled) == (32.0, 48.5, 10)
    assert plain.owned_key_bytes is None and plain.owned_value_bytes is None
