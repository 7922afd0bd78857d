"""predict(): the stable API, the JSON contract and the CLI."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli.main import main
from orchestrator.core.errors import UsageError
from orchestrator.model import Prediction, predict


def test_contract_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "predict", "map[string]any(int64)", "--entries", "100000", "--go", "1.26", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["live_bytes"], int)
    lo, hi = out["live_bytes_range"]
    assert lo <= out["live_bytes"] <= hi
    assert out["cumulative_bytes"] >= out["live_bytes"]
    assert sum(out["breakdown"].values()) == pytest.approx(out["live_bytes"], abs=len(out["breakdown"]))
    assert out["family"] == "swiss"
    # 128 tables × (32 + 264·128 → 33 800 → 5 pages 40 960) + dir + Map, + 8 B tiny box per entry
    assert out["live_bytes"] == pytest.approx(48 + 1152 + 128 * (32 + 40960) + 800_000, abs=300)


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "predict", "sync.Map[string][32]byte", "--entries", "1e6", "--go", "1.23"]) == 0
    out = capsys.readouterr().out
    assert "read/dirty" in out and "peak bytes" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "predict", "map[[]byte]int", "--entries", "1"],
        ["model", "predict", "map[string]int", "--entries", "1", "--go", "1.19"],
        ["model", "predict", "map[uint8]int", "--entries", "300"],
        ["model", "measure", "map[string]int", "--entries", "10", "--high-water", "5"],
    ],
)
def test_usage_errors_exit_2_without_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mapquake: error:") and "Traceback" not in err and "hint:" in err


def test_families_by_version() -> None:
    assert predict("map[int64]int64", 10, go_version="1.26").family == "swiss"
    assert predict("map[int64]int64", 10, go_version="go1.24.4").family == "swiss"
    assert predict("map[int64]int64", 10, go_version="1.23").family == "classic hmap"
    assert predict("sync.Map[int64]int64", 10, go_version="1.27").family == "sync.Map hash-trie"
    assert predict("sync.Map[int64]int64", 10, go_version="1.22").family == "sync.Map read/dirty"
    with pytest.raises(UsageError):
        predict("map[int64]int64", 10, go_version="2.0")


def test_sharded_maps_split_the_keys() -> None:
    one = predict("map[string][]byte", 3125)
    sharded = predict("[32]map[string][]byte", 100_000)
    assert isinstance(sharded, Prediction)
    assert sharded.breakdown["shard_array"] == 256
    assert sharded.live_bytes == pytest.approx(32 * one.live_bytes + 256, abs=32)


def test_high_water_and_hint() -> None:
    full = predict("map[string]int64", 100_000)
    drained = predict("map[string]int64", 10, high_water=100_000)
    assert drained.live_bytes == pytest.approx(full.live_bytes, abs=200)
    assert any("high-water" in n for n in drained.notes)
    hinted = predict("map[int64]int64", 1_000_000, hint=1_000_000)
    assert hinted.live_bytes == 37_832_752


def test_churn_bounds() -> None:
    assert predict("map[int64]int64", 100_000, go_version="1.24").churn.live_bytes_high is None
    b126 = predict("map[int64]int64", 100_000, go_version="1.26")
    assert b126.churn.live_bytes_high is not None
    assert 1.9 * b126.live_bytes < b126.churn.live_bytes_high < 2.2 * b126.live_bytes
    b123 = predict("map[int64]int64", 100_000, go_version="1.23")
    assert b123.churn.live_bytes_high is not None and b123.churn.live_bytes_high > b123.live_bytes


def test_huge_counts_answer() -> None:
    p = predict("map[string]any(int64)", 10**9)
    assert 80e9 < p.live_bytes < 110e9
    assert p.live_bytes_range[0] <= p.live_bytes <= p.live_bytes_range[1]
    assert predict("sync.Map[string]int64", 10**9, go_version="1.23").live_bytes > 0
