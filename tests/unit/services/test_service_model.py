"""The model check on a user's service: heap growth against its mapprobe map's predicted growth."""

from __future__ import annotations

from orchestrator.checks.service_model import APPROXIMATE_EXTRA, check_service_model
from orchestrator.checks.verdict import Verdict
from orchestrator.journal import HeapSample, Journal, MapReading
from orchestrator.model.predict import predict
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import ModelCheck

GO_TYPE = "map[uint64]struct{Qty int64; PriceCents int64; Updated int64; Name [24]byte}"
SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: svc
targets: [{name: inv, command: [/bin/true], replicas: 1}]
load: {locustfile: LOCUSTFILE, user: Shopper}
phases: [{name: fill, duration: 1s}, {name: churn, duration: 1s}]
checks:
  - {name: heap, model: live_heap, target: inv, map: items, tolerance: 10%, at: [churn.end], since: fill.end}
"""


def scenario(tmp_path, check_override: str = ""):  # type: ignore[no-untyped-def]
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("class Shopper:\n    pass\n")
    text = SCENARIO.replace("LOCUSTFILE", str(locustfile))
    return load_scenario_text(text, str(tmp_path / "s.yaml"), [check_override] if check_override else [])


def sample(point: str, live: int, entries: int, *, approximate: bool = False, maps: bool = True) -> HeapSample:
    readings = (MapReading("items", entries, entries, GO_TYPE), MapReading("sessions", 3, 3, "map[string]int64"))
    return HeapSample(
        live_bytes=live,
        entries=0,
        high_water=0,
        goroutines=9,
        go_version="go1.26.8",
        go_type="",
        maps=readings if maps else (),
        approximate=approximate,
    ).placed(target="inv", replica=0, point=point, wall=0.0, settled=True)


def journal(*samples: HeapSample) -> Journal:
    j = Journal()
    for s in samples:
        j.add_sample(s)
    return j


def model_bytes(entries: int) -> int:
    return predict(GO_TYPE, entries, go_version="1.26").live_bytes


def run(tmp_path, *samples: HeapSample):  # type: ignore[no-untyped-def]
    sc = scenario(tmp_path)
    check = sc.checks[0]
    assert isinstance(check, ModelCheck)
    return check_service_model(check, sc, journal(*samples))


def test_growth_the_map_explains_passes_and_shows_the_left_over(tmp_path) -> None:  # type: ignore[no-untyped-def]
    grown = model_bytes(20_000) - model_bytes(10_000)
    result = run(tmp_path, sample("fill.end", 5_000_000, 10_000), sample("churn.end", 5_000_000 + grown + 1000, 20_000))
    assert result.verdict is Verdict.PASS, result.summary
    (row,) = result.evidence["samples"]
    assert row["attributed_bytes"] == grown and row["left_over_bytes"] == 1000
    assert row["entries"] == [10_000, 20_000] and row["map"] == "items"
    assert "1,000 B left over" in result.summary


def test_growth_beyond_the_map_fails_a_leak(tmp_path) -> None:  # type: ignore[no-untyped-def]
    leak = model_bytes(10_000)  # as much again as the whole map, held outside it
    result = run(tmp_path, sample("fill.end", 5_000_000, 10_000), sample("churn.end", 5_000_000 + leak, 10_000))
    assert result.verdict is Verdict.FAIL
    assert result.evidence["samples"][0]["attributed_bytes"] == 0


def test_the_tolerance_is_of_the_maps_size_and_widens_for_approximate_samples(tmp_path) -> None:  # type: ignore[no-untyped-def]
    size = model_bytes(10_000)
    noise = int(0.2 * size)  # over 10 %, under 10 % + APPROXIMATE_EXTRA
    exact = run(tmp_path, sample("fill.end", 1_000_000, 10_000), sample("churn.end", 1_000_000 + noise, 10_000))
    assert exact.verdict is Verdict.FAIL
    approx = run(
        tmp_path,
        sample("fill.end", 1_000_000, 10_000, approximate=True),
        sample("churn.end", 1_000_000 + noise, 10_000, approximate=True),
    )
    assert approx.verdict is Verdict.PASS
    assert approx.evidence["samples"][0]["tolerance_bytes"] == round((0.10 + APPROXIMATE_EXTRA) * size)


def test_a_service_without_the_map_is_inconclusive_not_a_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run(tmp_path, sample("fill.end", 1, 1, maps=False), sample("churn.end", 1, 1, maps=False))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "serves no mapprobe map" in result.summary
