"""The ``baseline`` check: is this run worse than earlier runs of the same scenario? (Mann-Whitney U)

``{baseline: EXPR, during: [phases], worse_if: higher|lower, alpha: 0.05, min_runs: 3}``

This run's samples are the values of EXPR over the named phase windows (one
per scrape interval, every series pooled). The baseline is the samples the same
check stored in the trend store for the latest BASELINE_RUNS earlier runs of the
same scenario on the same machine with the same expression, pooled.

The test is a one-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``) of
"this run's values tend to be higher (worse_if: higher) / lower than the
baseline's". Shown: U (of this run's sample), the p-value, the method (exact or
asymptotic), Cliff's delta (= the rank-biserial correlation, 2U/(n₁n₂) − 1,
from −1 to 1, positive when this run is higher) with its magnitude, both
medians and both sample counts.

- fail: p < alpha in the worse direction;
- pass: otherwise;
- inconclusive: fewer than ``min_runs`` earlier runs, fewer than MIN_SAMPLES
  samples on either side, or so few that even the most extreme ordering could
  not reach ``alpha`` (smallest one-sided p = 1 / C(n₁+n₂, n₁)).

Samples of one run are autocorrelated (neighbouring rate() windows overlap),
so the p-value is optimistic; the effect size and medians are shown so a
reader can judge the size of a difference, not only its significance.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.checks.verdict import CheckResult, Verdict
from orchestrator.journal import Journal
from orchestrator.scenario.spec import BaselineCheck, Scenario

BASELINE_RUNS = 10
"""Earlier runs pooled into the baseline at most."""
MIN_SAMPLES = 3
"""Samples needed on each side."""


@dataclass(frozen=True)
class Comparison:
    n_current: int
    n_baseline: int
    median_current: float
    median_baseline: float
    u: float
    """Mann-Whitney U of the current sample: pairs (current, baseline) with current > baseline, ties half."""
    p_value: float
    alternative: str
    method: str
    cliffs_delta: float
    magnitude: str
    min_p_value: float
    """The smallest p-value these sample counts allow (exact, one-sided)."""


def cliffs_delta(u: float, n1: int, n2: int) -> float:
    """Cliff's delta from U of the first sample: P(X > Y) − P(X < Y) = 2U/(n₁n₂) − 1 (pure)."""
    return 2 * u / (n1 * n2) - 1


def magnitude(delta: float) -> str:
    """Romano et al.'s labels for |delta|: negligible < 0.147 ≤ small < 0.33 ≤ medium < 0.474 ≤ large."""
    size = abs(delta)
    if size < 0.147:
        return "negligible"
    if size < 0.33:
        return "small"
    if size < 0.474:
        return "medium"
    return "large"


def smallest_p(n1: int, n2: int) -> float:
    """The smallest one-sided exact Mann-Whitney p-value for sample sizes n1, n2: 1 / C(n1+n2, n1)."""
    return 1 / math.comb(n1 + n2, n1)


def compare(current: list[float], baseline: list[float], worse_if: str) -> Comparison:
    """One-sided Mann-Whitney U of current vs baseline in the worse direction (pure)."""
    alternative = "greater" if worse_if == "higher" else "less"
    method = "exact" if len(current) < 8 and len(baseline) < 8 and not set(current) & set(baseline) else "asymptotic"
    # Imported here: scipy.stats takes about 1.5 s to import, and only baseline checks need it
    # (a run preloads it while its phases run: orchestrator.core.preload).
    from scipy.stats import mannwhitneyu

    result = mannwhitneyu(current, baseline, alternative=alternative, method=method)
    u = float(result.statistic)
    delta = cliffs_delta(u, len(current), len(baseline))
    return Comparison(
        n_current=len(current),
        n_baseline=len(baseline),
        median_current=statistics.median(current),
        median_baseline=statistics.median(baseline),
        u=u,
        p_value=float(result.pvalue),
        alternative=alternative,
        method=method,
        cliffs_delta=delta,
        magnitude=magnitude(delta),
        min_p_value=smallest_p(len(current), len(baseline)),
    )


def run_samples(
    check: BaselineCheck, scenario: Scenario, journal: Journal, facts: Any
) -> tuple[list[float], list[dict[str, Any]]]:
    """This run's values of the expression over the named phases, and per-phase counts."""
    expr = check.expr
    values: list[float] = []
    windows: list[dict[str, Any]] = []
    for name in check.during:
        window = journal.phase(name)
        if window is None:
            windows.append({"phase": name, "missing": "did not run to its end"})
            continue
        series = facts.prometheus.query_range(expr, window.start_wall, window.end_wall, scenario.scrape_interval_s)
        phase_values = [v for s in series for _, v in s.values if math.isfinite(v)]
        windows.append(
            {"phase": name, "start": window.start_wall, "end": window.end_wall, "samples": len(phase_values)}
        )
        values += phase_values
    return values, windows


def check_baseline(check: BaselineCheck, scenario: Scenario, journal: Journal, facts: Any) -> CheckResult:
    """Evaluate a baseline check (``facts`` is comparator.RunFacts; only its ``prometheus`` is used)."""
    expr = check.expr
    worse_if, alpha, min_runs = check.worse_if, check.alpha, check.min_runs
    evidence: dict[str, Any] = {
        "query": expr,
        "during": list(check.during),
        "worse_if": worse_if,
        "alpha": alpha,
        "min_runs": min_runs,
        "test": "Mann-Whitney U, one-sided",
    }

    def result(verdict: Verdict, summary: str) -> CheckResult:
        return CheckResult(check.name, "baseline", verdict, summary, evidence)

    if facts.prometheus is None:
        return result(Verdict.INCONCLUSIVE, "Prometheus was not available")
    current, windows = run_samples(check, scenario, journal, facts)
    evidence["windows"] = windows
    evidence["samples"] = current
    history: list[tuple[str, list[float]]] = []
    if facts.history is not None:
        evidence["trend_store"] = facts.history.source
        history = facts.history.earlier_runs(
            scenario=scenario.name, check=check.name, query=expr, before=journal.started_wall, limit=BASELINE_RUNS
        )
    baseline = [v for _, samples in history for v in samples if math.isfinite(v)]
    evidence["baseline_runs"] = [run_id for run_id, _ in history]
    evidence["baseline_samples"] = len(baseline)
    if len(history) < min_runs:
        return result(
            Verdict.INCONCLUSIVE,
            f"`{expr}`: {len(history)} earlier run{'s' if len(history) != 1 else ''} of '{scenario.name}' in the "
            f"trend store, {min_runs} needed; this run's {len(current)} samples are stored for the next runs",
        )
    if len(current) < MIN_SAMPLES or len(baseline) < MIN_SAMPLES:
        return result(
            Verdict.INCONCLUSIVE,
            f"`{expr}`: too few samples ({len(current)} in this run, {len(baseline)} in the baseline; "
            f"{MIN_SAMPLES} needed on each side)",
        )
    if smallest_p(len(current), len(baseline)) > alpha:
        return result(
            Verdict.INCONCLUSIVE,
            f"`{expr}`: {len(current)} vs {len(baseline)} samples cannot reach alpha {alpha:g} "
            f"(smallest possible p {smallest_p(len(current), len(baseline)):.3g})",
        )
    comparison = compare(current, baseline, worse_if)
    evidence.update(asdict(comparison))
    text = (
        f"`{expr}`: median {comparison.median_current:.6g} vs baseline {comparison.median_baseline:.6g} "
        f"({comparison.n_current} vs {comparison.n_baseline} samples from {len(history)} runs); "
        f"U={comparison.u:g}, p={comparison.p_value:.3g} ({worse_if} is worse, alpha {alpha:g}), "
        f"Cliff's delta {comparison.cliffs_delta:+.2f} ({comparison.magnitude})"
    )
    if comparison.p_value < alpha:
        return result(Verdict.FAIL, f"worse than the baseline: {text}")
    return result(Verdict.PASS, f"not worse than the baseline: {text}")
