"""The report's plots, as inline SVG text made with matplotlib.

Why matplotlib: the report must be one self-contained file that opens offline
(CI artifacts, air-gapped game days) and renders the same in every browser
without JavaScript; matplotlib writes plain SVG on the headless Agg backend,
needs no browser or network at build time, and draws phase bands, fault
windows and error bars with a few calls. The backend is set to Agg before
pyplot is imported, so no display is ever needed.

Every function takes plain data (the report.json document and series.json
data) and returns an ``<svg>`` string, or None when there is nothing to draw.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN = 10.0, 3.6
PHASE_COLOURS = ("#f2f2f2", "#e3ebf5")
FAULT_COLOUR = "#d62728"
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
matplotlib.rcParams["svg.hashsalt"] = "mapquake"  # stable element ids: same data, same SVG


@dataclass(frozen=True)
class Band:
    name: str
    start: float
    end: float
    """Seconds since the run started."""


def phase_bands(report: dict[str, Any]) -> list[Band]:
    """Phase windows from the timeline, relative to the run start (pure)."""
    timeline = report.get("timeline", {})
    t0 = timeline.get("started_wall", 0.0)
    starts = {e["name"]: e["wall"] for e in timeline.get("events", []) if e["kind"] == "phase-start"}
    ends = {e["name"]: e["wall"] for e in timeline.get("events", []) if e["kind"] == "phase-end"}
    return [Band(name, start - t0, ends[name] - t0) for name, start in starts.items() if name in ends]


def fault_windows(report: dict[str, Any]) -> list[Band]:
    """Fault windows: each fault-applied to the next fault-healed of the same name, or to the end (pure)."""
    timeline = report.get("timeline", {})
    events = timeline.get("events", [])
    t0 = timeline.get("started_wall", 0.0)
    end = max((e["wall"] for e in events), default=t0)
    open_: dict[str, float] = {}
    bands = []
    for e in events:
        if e["kind"] == "fault-applied":
            open_[e["name"]] = e["wall"]
        elif e["kind"] == "fault-healed" and e["name"] in open_:
            bands.append(Band(e["name"], open_.pop(e["name"]) - t0, e["wall"] - t0))
    bands += [Band(name, start - t0, end - t0) for name, start in open_.items()]
    return bands


def _figure() -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    return fig, ax


def _decorate(ax: Any, report: dict[str, Any], ylabel: str, title: str) -> None:
    top = ax.get_ylim()[1]
    for i, band in enumerate(phase_bands(report)):
        ax.axvspan(band.start, band.end, color=PHASE_COLOURS[i % 2], zorder=0)
        ax.text((band.start + band.end) / 2, top, band.name, ha="center", va="bottom", fontsize=8, color="#555")
    for j, band in enumerate(fault_windows(report)):
        ax.axvspan(
            band.start,
            band.end,
            facecolor="none",
            edgecolor=FAULT_COLOUR,
            hatch="//",
            alpha=0.5,
            label="fault window" if j == 0 else None,
            zorder=1,
        )
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10, pad=14)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def series_lines(series: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    return [line for line in ((series or {}).get("series", {}).get(key) or {}).get("lines", []) if line["points"]]


def _label(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in labels.items()) or "all"


def model_points(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Absolute heap per model check row: the sample it is measured from (deploy, or the check's
    ``since`` point) plus the predicted range, and the observed sample (pure).

    Returns dicts with t (s since start), target, replica, predicted, low, high, observed.
    """
    timeline = report.get("timeline", {})
    t0 = timeline.get("started_wall", 0.0)
    samples = {(s["target"], s["replica"], s["point"]): s for s in timeline.get("samples", [])}
    targets = {c["name"]: c.get("params", {}).get("target") for c in report.get("plan", {}).get("checks", [])}
    out = []
    for check in report.get("checks", []):
        if check["kind"] != "model":
            continue
        target = targets.get(check["name"])
        for row in check.get("evidence", {}).get("samples", []):
            base = samples.get((target, row["replica"], row.get("since", "deploy")))
            here = samples.get((target, row["replica"], row["point"]))
            if base is None or here is None or "predicted_bytes" not in row:
                continue
            low, high = row["predicted_range"]
            out.append(
                {
                    "t": here["wall"] - t0,
                    "target": target,
                    "replica": row["replica"],
                    "predicted": base["live_bytes"] + row["predicted_bytes"],
                    "low": base["live_bytes"] + low,
                    "high": base["live_bytes"] + high,
                    "observed": here["live_bytes"],
                }
            )
    return out


def heap_plot(report: dict[str, Any], series: dict[str, Any] | None) -> str | None:
    """Live heap (and heap alloc) per replica over time vs the model's prediction at its check points."""
    live, alloc = series_lines(series, "heap_live"), series_lines(series, "heap_alloc")
    model = model_points(report)
    if not live and not alloc and not model:
        return None
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    fig, ax = _figure()
    mib = 1024 * 1024
    for line in live:
        ax.plot(
            [t - t0 for t, _ in line["points"]],
            [v / mib for _, v in line["points"]],
            label=f"live heap {_label(line['labels'])}",
            linewidth=1.4,
        )
    for line in alloc:
        ax.plot(
            [t - t0 for t, _ in line["points"]],
            [v / mib for _, v in line["points"]],
            label=f"heap alloc {_label(line['labels'])}",
            linewidth=0.8,
            linestyle="--",
        )
    for i, p in enumerate(model):
        ax.errorbar(
            [p["t"]],
            [p["predicted"] / mib],
            yerr=[[(p["predicted"] - p["low"]) / mib], [(p["high"] - p["predicted"]) / mib]],
            fmt="D",
            color="black",
            capsize=4,
            label="model prediction (range)" if i == 0 else None,
            zorder=5,
        )
        ax.plot(
            [p["t"]],
            [p["observed"] / mib],
            "o",
            color="#2ca02c",
            markersize=7,
            label="observed after GC (exact)" if i == 0 else None,
            zorder=6,
        )
    _decorate(ax, report, "MiB", "Heap: observed per replica vs model")
    return _svg(fig)


def latency_plot(report: dict[str, Any], series: dict[str, Any] | None) -> str | None:
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    keys = [k for k in ("latency_p50", "latency_p90", "latency_p99") if series_lines(series, k)]
    if not keys:
        return None
    fig, ax = _figure()
    for key in keys:
        for line in series_lines(series, key):
            ax.plot(
                [t - t0 for t, _ in line["points"]],
                [v * 1000 for _, v in line["points"]],
                label=key.removeprefix("latency_"),
            )
    _decorate(ax, report, "ms", "Client latency quantiles (merged over workers)")
    return _svg(fig)


def throughput_plot(report: dict[str, Any], series: dict[str, Any] | None) -> str | None:
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    writes, requests = series_lines(series, "writes_per_s"), series_lines(series, "requests_per_s")
    if not writes and not requests:
        return None
    fig, ax = _figure()
    for line in writes:
        ax.plot([t - t0 for t, _ in line["points"]], [v for _, v in line["points"]], label="map writes/s (targets)")
    _decorate(ax, report, "writes/s", "Throughput")
    if requests:
        ax2 = ax.twinx()
        for line in requests:
            ax2.plot(
                [t - t0 for t, _ in line["points"]],
                [v for _, v in line["points"]],
                color="#ff7f0e",
                linestyle=":",
                label="requests/s (clients)",
            )
        ax2.set_ylabel("requests/s")
        ax2.legend(fontsize=8, loc="lower right")
    return _svg(fig)


def backlog_plot(report: dict[str, Any], series: dict[str, Any] | None) -> str | None:
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    lines = series_lines(series, "backlog")
    if not lines:
        return None
    fig, ax = _figure()
    for line in lines:
        ax.plot([t - t0 for t, _ in line["points"]], [v for _, v in line["points"]], label=_label(line["labels"]))
    _decorate(ax, report, "queued ops", "Replication backlog per peer")
    return _svg(fig)


def goroutines_plot(report: dict[str, Any], series: dict[str, Any] | None) -> str | None:
    t0 = report.get("timeline", {}).get("started_wall", 0.0)
    lines = series_lines(series, "goroutines")
    if not lines:
        return None
    fig, ax = _figure()
    for line in lines:
        ax.plot([t - t0 for t, _ in line["points"]], [v for _, v in line["points"]], label=_label(line["labels"]))
    _decorate(ax, report, "goroutines", "Goroutines per replica")
    return _svg(fig)


def trend_plot(points: list[tuple[str, float | None]], *, title: str, ylabel: str, flagged: set[int]) -> str | None:
    """One metric over runs (label, value); flagged indices are marked red."""
    values = {i: v for i, (_, v) in enumerate(points) if v is not None}
    xs = list(values)
    if not xs:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6), layout="constrained")
    ax.plot(xs, [values[i] for i in xs], marker="o", color="#1f77b4")
    bad = [i for i in xs if i in flagged]
    if bad:
        ax.plot(bad, [values[i] for i in bad], "o", color=FAULT_COLOUR, markersize=10, label="regression")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(points)), [label for label, _ in points], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(True, alpha=0.3)
    return _svg(fig)
