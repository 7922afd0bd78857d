"""Recovery and baseline checks: exact statistics and verdicts from data built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.checks import baseline as checks_baseline
from orchestrator.checks.baseline import check_baseline, cliffs_delta, compare, magnitude, smallest_p
from orchestrator.checks.evaluate import RangeSeries, RunFacts
from orchestrator.checks.recovery import check_recovery, judge, worst_per_timestamp
from orchestrator.checks.verdict import Verdict
from orchestrator.core import provenance
from orchestrator.trends import store as trends
from tests import reportdata
from tests.reportdata import T0, FakeProm

# --- baseline statistics -------------------------------------------------------------------------


def test_complete_separation_gives_the_smallest_exact_p() -> None:
    c = compare([5, 6, 7], [1, 2, 3, 4], "higher")
    assert (c.u, c.n_current, c.n_baseline) == (12.0, 3, 4)
    assert c.p_value == pytest.approx(1 / 35)
    assert c.min_p_value == pytest.approx(1 / 35)
    assert c.cliffs_delta == 1.0
    assert c.magnitude == "large"
    assert (c.median_current, c.median_baseline) == (6, 2.5)
    assert (c.alternative, c.method) == ("greater", "exact")


def test_interleaved_samples_give_the_counted_exact_p() -> None:
    # U = 0 + 2 + 3 = 5; P(U >= 5) = 24 of the 35 rank subsets (rank sum >= 11).
    c = compare([1, 4, 6], [2, 3, 5, 7], "higher")
    assert c.u == 5.0
    assert c.p_value == pytest.approx(24 / 35)
    assert c.cliffs_delta == pytest.approx(-1 / 6)
    assert c.magnitude == "small"


def test_lower_is_worse_tests_the_other_tail() -> None:
    c = compare([1, 2, 3], [4, 5, 6, 7], "lower")
    assert c.alternative == "less"
    assert c.u == 0.0
    assert c.p_value == pytest.approx(1 / 35)
    assert c.cliffs_delta == -1.0


def test_effect_size_helpers() -> None:
    assert cliffs_delta(6, 3, 4) == 0.0
    assert smallest_p(2, 2) == pytest.approx(1 / 6)
    assert [magnitude(d) for d in (0.1, -0.2, 0.4, -0.9)] == ["negligible", "small", "medium", "large"]


# --- the baseline check against a trend store ----------------------------------------------------

BASELINE = {"name": "writes", "baseline": "sum(rate(w[4s]))", "during": ["heal"], "worse_if": "lower", "min_runs": 2}


def _facts(values: list[float]) -> RunFacts:
    points = [(T0 + 21 + i, v) for i, v in enumerate(values)]
    # The run hands the checks the trend store as their history (each test points the store's env at tmp).
    return RunFacts({}, FakeProm([RangeSeries({}, points)]), trends.StoreHistory(trends.resolve_path()))


def _store_history(path: Path, samples_per_run: list[list[float]], machine: str, prefix: str = "r") -> None:
    with trends.TrendStore(path) as store:
        for i, samples in enumerate(samples_per_run):
            run = trends.RunRow(
                f"{prefix}{i}",
                "unit",
                "sha",
                "go1.26.8",
                machine,
                T0 - 1000 + i,
                30.0,
                "pass",
                0,
                "completed",
                "/tmp",
                "0.1.0",
            )
            store.add_run(run, [trends.CheckRow("writes", "baseline", "pass", "", BASELINE["baseline"], samples)])


def test_baseline_is_inconclusive_without_enough_earlier_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trends.TREND_STORE_ENV, str(tmp_path / "t.sqlite"))
    _store_history(tmp_path / "t.sqlite", [[1000, 1010, 990]], provenance.machine_name())
    sc = reportdata.scenario(checks=[BASELINE])
    result = check_baseline(sc.checks[0], sc, reportdata.journal(), _facts([500, 510, 490]))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "1 earlier run of 'unit'" in result.summary
    assert result.evidence["samples"] == [500, 510, 490]


def test_baseline_fails_when_worse_and_shows_the_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trends.TREND_STORE_ENV, str(tmp_path / "t.sqlite"))
    _store_history(tmp_path / "t.sqlite", [[1000, 1010, 990], [1005, 995, 1020]], provenance.machine_name())
    _store_history(tmp_path / "t.sqlite", [[1, 1, 1]] * 3, "another-machine", "x")  # not this machine: ignored
    sc = reportdata.scenario(checks=[BASELINE])
    result = check_baseline(sc.checks[0], sc, reportdata.journal(), _facts([500, 510, 490]))
    assert result.verdict is Verdict.FAIL
    ev = result.evidence
    assert ev["baseline_runs"] == ["r0", "r1"]
    assert (ev["n_current"], ev["n_baseline"], ev["u"]) == (3, 6, 0.0)
    assert ev["p_value"] == pytest.approx(1 / 84)
    assert ev["cliffs_delta"] == -1.0
    assert (ev["median_current"], ev["median_baseline"]) == (500, 1002.5)
    assert "U=0, p=0.0119" in result.summary


def test_baseline_passes_when_not_worse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trends.TREND_STORE_ENV, str(tmp_path / "t.sqlite"))
    _store_history(tmp_path / "t.sqlite", [[1000, 1010, 990], [1005, 995, 1020]], provenance.machine_name())
    sc = reportdata.scenario(checks=[BASELINE])
    result = check_baseline(sc.checks[0], sc, reportdata.journal(), _facts([1001, 1012, 994]))
    assert result.verdict is Verdict.PASS


def test_baseline_with_too_few_samples_is_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trends.TREND_STORE_ENV, str(tmp_path / "t.sqlite"))
    _store_history(tmp_path / "t.sqlite", [[1000], [1005]], provenance.machine_name())
    sc = reportdata.scenario(checks=[BASELINE])
    result = check_baseline(sc.checks[0], sc, reportdata.journal(), _facts([500, 510, 490]))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "too few samples (3 in this run, 2 in the baseline" in result.summary
    assert checks_baseline.MIN_SAMPLES == 3


def test_baseline_without_prometheus_is_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trends.TREND_STORE_ENV, str(tmp_path / "none.sqlite"))
    sc = reportdata.scenario(checks=[BASELINE])
    assert check_baseline(sc.checks[0], sc, reportdata.journal(), RunFacts({}, None)).verdict is Verdict.INCONCLUSIVE


# --- recovery ------------------------------------------------------------------------------------


def _points(values: list[float], start: float = T0 + 20) -> list[tuple[float, float]]:
    return [(start + i, v) for i, v in enumerate(values)]


def test_worst_per_timestamp_takes_the_highest_series_and_skips_nan() -> None:
    a = [(1.0, 5.0), (2.0, float("nan")), (3.0, 0.0)]
    b = [(1.0, 2.0), (2.0, 7.0)]
    assert worst_per_timestamp([a, b]) == [(1.0, 5.0), (2.0, 7.0), (3.0, 0.0)]


def test_recovered_at_the_first_point_from_which_it_stays_below() -> None:
    values = [9, 8, 0, 5, 3, 0, 0, 0, 0, 0, 0]  # dips at +2, back above at +3, below from +5
    r = judge(_points(values), healed=T0 + 20, deadline=T0 + 30, below=1, step=1)
    assert (r.verdict, r.recovered_at, r.last_sample) == (Verdict.PASS, T0 + 25, T0 + 30)


def test_never_below_by_the_deadline_fails() -> None:
    r = judge(_points([9] * 11), healed=T0 + 20, deadline=T0 + 30, below=1, step=1)
    assert (r.verdict, r.recovered_at) == (Verdict.FAIL, None)


def test_data_ending_before_the_deadline_is_inconclusive_not_a_fail() -> None:
    r = judge(_points([9] * 5), healed=T0 + 20, deadline=T0 + 30, below=1, step=1)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert judge([], healed=T0 + 20, deadline=T0 + 30, below=1, step=1).verdict is Verdict.INCONCLUSIVE


RECOVERY = {"name": "backlog-drains", "recovery": "mapquake_replication_backlog", "below": 1, "within": "10s"}


def test_recovery_check_per_heal_with_evidence() -> None:
    sc = reportdata.scenario(checks=[RECOVERY])
    series = [
        RangeSeries({"replica": "0"}, _points([40, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        RangeSeries({"replica": "1"}, _points([30, 30, 30, 2, 0, 0, 0, 0, 0, 0, 0])),
    ]
    prom = FakeProm(series)
    result = check_recovery(sc.checks[0], sc, reportdata.journal(), RunFacts({}, prom))
    assert result.verdict is Verdict.PASS
    assert prom.asked == [("mapquake_replication_backlog", T0 + 20, T0 + 30, 1.0)]
    heal = result.evidence["heals"][0]
    assert (heal["healed_at"], heal["recovered_at"], heal["recovered_after_s"]) == (T0 + 20, T0 + 24, 4.0)
    assert heal["series"][:4] == [[T0 + 20, 40], [T0 + 21, 30], [T0 + 22, 30], [T0 + 23, 2]]
    assert result.summary == "`mapquake_replication_backlog`: partition-0: below 1 4s after the heal"


def test_recovery_without_a_heal_is_inconclusive() -> None:
    sc = reportdata.scenario(checks=[RECOVERY])
    result = check_recovery(sc.checks[0], sc, reportdata.journal(faults=False), RunFacts({}, FakeProm([])))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no fault was healed" in result.summary
