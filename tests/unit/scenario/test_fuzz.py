"""The scenario fuzzer (tests/scenario_fuzz.py): 1000 mutated scenarios, no internal error (issue 12).

More documents: ``.venv/bin/python bench/scenario_fuzz.py --documents 20000 --seed 1`` (BENCHMARKS.md).
"""

from __future__ import annotations

from tests.scenario_fuzz import SEEDS, describe, fuzz

DOCUMENTS = 1000
SEED = 12


def test_the_fuzzer_starts_from_every_shipped_scenario() -> None:
    names = {p.relative_to(SEEDS[0].parents[1]).as_posix() for p in SEEDS}
    assert "examples/inventory/scenario.yaml" in names and "scenarios/quickstart.yaml" in names


def test_a_thousand_fuzzed_scenarios_give_no_internal_error() -> None:
    results = fuzz(DOCUMENTS, SEED)
    assert results.documents == DOCUMENTS
    assert not results.internal_errors, "\n\n".join(f"{describe(d)}\n{tb}" for d, tb in results.internal_errors[:3])
    assert results.slowest_s < 10, describe(results.slowest) if results.slowest else ""
    assert results.peak_rss_mb < 500
    assert results.valid > 0 and results.invalid > 0  # both paths (error listing and the dry run) are exercised
