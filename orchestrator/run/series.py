"""The raw series a report plots, range-queried from the run's Prometheus before it stops.

``collect`` asks Prometheus, over the whole run window, for every series the
HTML report draws and the trend store summarises, and returns plain JSON-able
data (stored as ``series.json`` in the report directory):

- ``heap_alloc``, ``heap_live``: go_memstats_heap_alloc_bytes (plotted dashed, never a sample) and
  the live heap marked by the last GC (LIVE_HEAP_BY_REPLICA) of every target replica (labels target,
  replica);
- ``latency_p50`` / ``latency_p90`` / ``latency_p99``: client-side latency
  quantiles merged across the Locust workers (mapquake_client_request_seconds);
- ``writes_per_s`` (map writes the targets applied) and ``requests_per_s``
  (requests the clients completed);
- ``backlog``: mapquake_replication_backlog by target, replica and peer;
- ``goroutines``: go_goroutines of every target replica;

plus ``summary``: whole-load figures from one instant query each at the end
of the last phase (p50/p90/p99 of the merged histogram over the load, mean
writes/s and requests/s). A query that fails is recorded under ``errors`` and
its series left out: a report with fewer plots is better than none, and the
checks never read these series (a missing one cannot turn into a pass).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.core.errors import MapquakeError

if TYPE_CHECKING:
    from orchestrator.journal import Journal
    from orchestrator.prometheus.client import PrometheusAPI
    from orchestrator.scenario.spec import Scenario

log = logging.getLogger(__name__)

SERIES_SCHEMA_VERSION = 1
MAX_POINTS = 2000
"""Points per series at most: the step grows for long runs (Prometheus refuses more than 11 000)."""
RATE_WINDOW_SCRAPES = 4
"""rate() windows span this many scrape intervals, so each holds several samples."""
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class SeriesQuery:
    """One plotted quantity: its key in series.json, the PromQL, the unit, the labels that tell lines apart."""

    key: str
    expr: str
    unit: str
    title: str
    by: tuple[str, ...] = ()


@dataclass
class Line:
    labels: dict[str, str]
    points: list[list[float]]
    """[unix seconds, value] pairs in time order (NaN values dropped)."""


@dataclass
class CollectedSeries:
    query: str
    unit: str
    title: str
    lines: list[Line] = field(default_factory=list)


LIVE_HEAP_BY_REPLICA = (
    'max by (target, replica) (mapquake_heap_live_bytes{job="targets"}) '
    'or max by (target, replica) (go_gc_heap_live_bytes{job="targets"})'
)
"""The live heap per replica: mapprobe's series (any registration has it, the default Go collector has
no go_gc_heap_live_bytes), else the Go collector's (a service without mapprobe). One per replica: a
service with several labelled maps serves mapprobe's figure once per map."""


def rate_window(scrape_interval_s: float) -> str:
    """The range of rate()/increase() selectors: RATE_WINDOW_SCRAPES scrapes, at least 2 s."""
    return f"{max(2.0, RATE_WINDOW_SCRAPES * scrape_interval_s):g}s"


def queries(scrape_interval_s: float) -> list[SeriesQuery]:
    """Every range query ``collect`` runs, for a given scrape interval (pure)."""
    w = rate_window(scrape_interval_s)
    replica = ("target", "replica")
    latency = [
        SeriesQuery(
            f"latency_p{round(q * 100)}",
            f"histogram_quantile({q:g}, sum by (le) (rate(mapquake_client_request_seconds_bucket[{w}])))",
            "seconds",
            f"client latency p{round(q * 100)}",
        )
        for q in QUANTILES
    ]
    return [
        SeriesQuery("heap_alloc", 'go_memstats_heap_alloc_bytes{job="targets"}', "bytes", "heap alloc", replica),
        SeriesQuery("heap_live", LIVE_HEAP_BY_REPLICA, "bytes", "live heap after GC", replica),
        *latency,
        SeriesQuery(
            "writes_per_s", f'sum(rate(mapquake_writes_total{{job="targets"}}[{w}]))', "1/s", "map writes applied"
        ),
        SeriesQuery(
            "requests_per_s", f"sum(rate(mapquake_client_request_seconds_count[{w}]))", "1/s", "client requests"
        ),
        SeriesQuery(
            "backlog",
            'mapquake_replication_backlog{job="targets"}',
            "ops",
            "replication backlog",
            ("target", "replica", "peer"),
        ),
        SeriesQuery("goroutines", 'go_goroutines{job="targets"}', "goroutines", "goroutines", replica),
    ]


def summary_queries(load_seconds: float) -> dict[str, str]:
    """Whole-load figures, evaluated once at the end of the last phase (pure)."""
    d = f"{max(1, round(load_seconds))}s"
    buckets = f"sum by (le) (increase(mapquake_client_request_seconds_bucket[{d}]))"
    out = {f"p{round(q * 100)}_s": f"histogram_quantile({q:g}, {buckets})" for q in QUANTILES}
    out["writes_per_s"] = f'sum(increase(mapquake_writes_total{{job="targets"}}[{d}])) / {max(1, round(load_seconds))}'
    out["requests_per_s"] = f"sum(increase(mapquake_client_request_seconds_count[{d}])) / {max(1, round(load_seconds))}"
    return out


def run_window(journal: Journal) -> tuple[float, float]:
    """From the journal's start to its last event (wall clock)."""
    end = max((e.wall for e in journal.events), default=journal.started_wall)
    return journal.started_wall, max(end, journal.started_wall + 1.0)


def load_window(journal: Journal) -> tuple[float, float] | None:
    """From the first phase's start to the last phase's end, or None if no phase finished."""
    phases = journal.phases()
    if not phases:
        return None
    return min(p.start_wall for p in phases), max(p.end_wall for p in phases)


def step_for(start: float, end: float, scrape_interval_s: float) -> float:
    """The scrape interval, or coarser so that no series has more than MAX_POINTS points."""
    return max(scrape_interval_s, math.ceil((end - start) / MAX_POINTS))


def collect(client: PrometheusAPI, scenario: Scenario, journal: Journal) -> dict[str, Any]:
    """Range-query every plotted series over the run window; JSON-able, never raises for a failed query.

    Call it while Prometheus still runs (before teardown). Side effects: HTTP
    queries only.
    """
    start, end = run_window(journal)
    step = step_for(start, end, scenario.scrape_interval_s)
    out: dict[str, Any] = {
        "schema_version": SERIES_SCHEMA_VERSION,
        "start": start,
        "end": end,
        "step": step,
        "rate_window": rate_window(scenario.scrape_interval_s),
        "series": {},
        "summary": {},
        "errors": {},
    }
    for q in queries(scenario.scrape_interval_s):
        try:
            result = client.query_range(q.expr, start=start, end=end, step=step)
        except MapquakeError as err:
            out["errors"][q.key] = err.message
            log.warning("series %s: %s", q.key, err.message)
            continue
        collected = CollectedSeries(q.expr, q.unit, q.title)
        for s in sorted(result, key=lambda s: [s.labels.get(k, "") for k in q.by]):
            points = [[t, v] for t, v in s.points if not math.isnan(v)]
            collected.lines.append(Line({k: s.labels[k] for k in q.by if k in s.labels}, points))
        out["series"][q.key] = asdict(collected)
    window = load_window(journal)
    if window is not None:
        load_start, load_end = window
        out["summary"]["load_start"] = load_start
        out["summary"]["load_end"] = load_end
        for key, expr in summary_queries(load_end - load_start).items():
            try:
                samples = client.query(expr, at=load_end)
            except MapquakeError as err:
                out["errors"][f"summary.{key}"] = err.message
                continue
            values = [s.value for s in samples if not math.isnan(s.value)]
            out["summary"][key] = values[0] if values else None
    return out
