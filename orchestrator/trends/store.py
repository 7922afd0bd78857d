"""The trend store: every run and every check, in SQLite, for nightly trends and baseline checks.

One row per run (``runs``) and one per check of that run (``checks``), keyed by
scenario, git sha, Go version and machine, with the key metrics of the run:
the live heap the model checks observed and predicted, the peak live heap,
whole-load client p99 and map writes/s. A baseline check's own samples are
stored with its row, so later runs can compare against them.

Where it lives (first that is set):

1. ``--trend-store PATH`` (``mapquake report trend``);
2. the ``MAPQUAKE_TREND_STORE`` environment variable (also read by
   ``mapquake run`` when it records a run and by the baseline check);
3. ``$XDG_DATA_HOME/mapquake/trends.sqlite``, i.e.
   ``~/.local/share/mapquake/trends.sqlite``: the store outlives report
   directories and checkouts (a nightly CronJob points the variable at a volume).

The schema is versioned with SQLite's ``PRAGMA user_version``: ``MIGRATIONS[i]``
takes version ``i`` to ``i + 1`` and runs once, in a transaction, when a store
is opened by a newer mapquake. A store newer than this mapquake is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.provenance import git_sha, machine_name
from orchestrator.reporting.report import dumps as report_dumps

if TYPE_CHECKING:
    from orchestrator.reporting.report import RunRecord

log = logging.getLogger(__name__)

TREND_STORE_ENV = "MAPQUAKE_TREND_STORE"

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        scenario TEXT NOT NULL,
        git_sha TEXT NOT NULL,
        go_version TEXT NOT NULL,
        machine TEXT NOT NULL,
        started REAL NOT NULL,
        duration_s REAL NOT NULL,
        verdict TEXT NOT NULL,
        exit_code INTEGER NOT NULL,
        reason TEXT NOT NULL,
        report_dir TEXT NOT NULL,
        mapquake_version TEXT NOT NULL,
        heap_observed_bytes INTEGER,
        heap_predicted_bytes INTEGER,
        heap_peak_bytes REAL,
        p99_s REAL,
        throughput_wps REAL
    );
    CREATE INDEX runs_by_scenario ON runs (scenario, machine, started);
    CREATE TABLE checks (
        run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        verdict TEXT NOT NULL,
        summary TEXT NOT NULL,
        query TEXT,
        samples TEXT,
        evidence TEXT NOT NULL,
        PRIMARY KEY (run, name)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunRow:
    run_id: str
    scenario: str
    git_sha: str
    go_version: str
    machine: str
    started: float
    """Unix seconds."""
    duration_s: float
    verdict: str
    exit_code: int
    reason: str
    report_dir: str
    mapquake_version: str
    heap_observed_bytes: int | None = None
    """Live heap the targets gained, summed over the model checks' replicas at their last point."""
    heap_predicted_bytes: int | None = None
    heap_peak_bytes: float | None = None
    """Highest sum over replicas of go_gc_heap_live_bytes during the run."""
    p99_s: float | None = None
    """Client p99 over the whole load (merged histogram)."""
    throughput_wps: float | None = None
    """Map writes per second the targets applied, averaged over the load."""


@dataclass(frozen=True)
class CheckRow:
    name: str
    kind: str
    verdict: str
    summary: str
    query: str | None = None
    samples: list[float] | None = None
    """A baseline check's samples of its expression in this run."""
    evidence: dict[str, Any] = field(default_factory=dict)


_RUN_COLUMNS = tuple(RunRow.__dataclass_fields__)


def default_path() -> Path:
    """``$XDG_DATA_HOME/mapquake/trends.sqlite`` (``~/.local/share/...`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mapquake" / "trends.sqlite"


def resolve_path(explicit: Path | str | None = None) -> Path:
    """The trend store to use: the explicit path, else MAPQUAKE_TREND_STORE, else the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(TREND_STORE_ENV)
    return Path(env) if env else default_path()


class TrendStore:
    """An open trend store. Use as a context manager, or ``close()`` it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30.0)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as err:
            raise InfrastructureError(
                f"cannot open the trend store {path}: {err}",
                hint=f"choose another with --trend-store or {TREND_STORE_ENV}",
            ) from err

    @classmethod
    def open(cls, path: Path | str | None = None) -> TrendStore:
        return cls(resolve_path(path))

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise InfrastructureError(
                f"trend store {self.path} has schema version {version}; this mapquake knows up to {SCHEMA_VERSION}",
                hint="upgrade mapquake, or use another store",
            )
        for target in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target + 1}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrendStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------------

    def add_run(self, run: RunRow, checks: Sequence[CheckRow]) -> None:
        """Insert a run and its checks in one transaction; a run id already stored is replaced."""
        values = [getattr(run, c) for c in _RUN_COLUMNS]
        with self._transaction():
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
            cursor = self._db.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", values
            )
            pk = cursor.lastrowid
            self._db.executemany(
                "INSERT INTO checks (run, name, kind, verdict, summary, query, samples, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        pk,
                        c.name,
                        c.kind,
                        c.verdict,
                        c.summary,
                        c.query,
                        None if c.samples is None else report_dumps(c.samples),
                        report_dumps(c.evidence),  # strict: NaN never enters the store
                    )
                    for c in checks
                ],
            )

    # --- reading -------------------------------------------------------------------------------

    def runs(
        self, *, scenario: str | None = None, since: float | None = None, machine: str | None = None
    ) -> list[RunRow]:
        """Runs in start order, optionally of one scenario, on one machine, started at or after ``since``."""
        where: list[str] = []
        args: list[object] = []
        for column, value in (("scenario", scenario), ("machine", machine)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.execute(sql + " ORDER BY started, id", args).fetchall()
        return [RunRow(*row) for row in rows]

    def checks(self, run_id: str) -> list[CheckRow]:
        rows = self._db.execute(
            "SELECT c.name, c.kind, c.verdict, c.summary, c.query, c.samples, c.evidence "
            "FROM checks c JOIN runs r ON c.run = r.id WHERE r.run_id = ? ORDER BY c.rowid",
            (run_id,),
        ).fetchall()
        return [
            CheckRow(
                name,
                kind,
                verdict,
                summary,
                query,
                None if samples is None else json.loads(samples),
                json.loads(evidence),
            )
            for name, kind, verdict, summary, query, samples, evidence in rows
        ]

    def baseline_history(
        self, *, scenario: str, check: str, query: str, machine: str, before: float | None = None, limit: int = 10
    ) -> list[tuple[str, list[float]]]:
        """The stored samples of one baseline check in the latest ``limit`` earlier runs, oldest first.

        Only runs of the same scenario on the same machine whose check had the
        same expression and stored samples count.
        """
        sql = (
            "SELECT r.run_id, c.samples FROM checks c JOIN runs r ON c.run = r.id "
            "WHERE r.scenario = ? AND r.machine = ? AND c.name = ? AND c.kind = 'baseline' AND c.query = ? "
            "AND c.samples IS NOT NULL"
        )
        args: list[Any] = [scenario, machine, check, query]
        if before is not None:
            sql += " AND r.started < ?"
            args.append(before)
        rows = self._db.execute(sql + " ORDER BY r.started DESC, r.id DESC LIMIT ?", [*args, limit]).fetchall()
        return [(run_id, json.loads(samples)) for run_id, samples in reversed(rows)]


class StoreHistory:
    """The trend store as the baseline checks' history (checks.evaluate.BaselineHistory): earlier runs
    of the same scenario on this machine. A store that does not exist yet has no runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = str(path)

    def earlier_runs(
        self, *, scenario: str, check: str, query: str, before: float, limit: int
    ) -> list[tuple[str, list[float]]]:
        if not self.path.exists():
            return []
        with TrendStore(self.path) as store:
            return store.baseline_history(
                scenario=scenario, check=check, query=query, machine=machine_name(), before=before, limit=limit
            )


# --- a run's row ---------------------------------------------------------------------------------


def model_heap(checks: Sequence[dict[str, Any]]) -> tuple[int | None, int | None]:
    """(observed, predicted) live heap bytes at each model check's last point, summed over checks and replicas.

    None when there is no model check or a replica has no sample there (pure).
    """
    observed = predicted = 0
    found = False
    for check in checks:
        if check["kind"] != "model":
            continue
        rows = check.get("evidence", {}).get("samples", [])
        if not rows:
            return None, None
        last = rows[-1]["point"]
        for row in (r for r in rows if r["point"] == last):
            if "observed_bytes" not in row:
                return None, None
            observed += int(row["observed_bytes"])
            predicted += int(row["predicted_bytes"])
            found = True
    return (observed, predicted) if found else (None, None)


def peak_of_sum(series: dict[str, Any] | None, key: str = "heap_live") -> float | None:
    """The highest value over time of the sum of a series' lines at each timestamp (pure)."""
    lines = ((series or {}).get("series", {}).get(key) or {}).get("lines", [])
    totals: dict[float, float] = {}
    for line in lines:
        for t, v in line["points"]:
            totals[t] = totals.get(t, 0.0) + v
    return max(totals.values()) if totals else None


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def rows_from_report(
    report: dict[str, Any], series: dict[str, Any] | None, *, git: str, machine: str
) -> tuple[RunRow, list[CheckRow]]:
    """The trend rows of one run, from its report.json document and series.json data (pure)."""
    samples = report.get("timeline", {}).get("samples", [])
    versions = sorted({s["go_version"] for s in samples if s.get("go_version")})
    go_version = ",".join(versions) or ",".join(sorted({f"go{v}" for v in report.get("go_versions", [])})) or "unknown"
    observed, predicted = model_heap(report["checks"])
    summary = (series or {}).get("summary", {})
    run = RunRow(
        run_id=report["run_id"],
        scenario=report["scenario"]["name"],
        git_sha=git,
        go_version=go_version,
        machine=machine,
        started=float(report.get("timeline", {}).get("started_wall") or time.time()),
        duration_s=float(report["duration_s"]),
        verdict=report["verdict"],
        exit_code=int(report["exit_code"]),
        reason=report["reason"],
        report_dir=str(report.get("report_dir", "")),
        mapquake_version=report["mapquake_version"],
        heap_observed_bytes=observed,
        heap_predicted_bytes=predicted,
        heap_peak_bytes=peak_of_sum(series),
        p99_s=_finite(summary.get("p99_s")),
        throughput_wps=_finite(summary.get("writes_per_s")),
    )
    checks = [
        CheckRow(
            name=c["name"],
            kind=c["kind"],
            verdict=c["verdict"],
            summary=c["summary"],
            query=c.get("evidence", {}).get("query"),
            samples=c.get("evidence", {}).get("samples") if c["kind"] == "baseline" else None,
            evidence=c.get("evidence", {}),
        )
        for c in report["checks"]
    ]
    return run, checks


def record_run(store: TrendStore, record: RunRecord, series: dict[str, Any] | None) -> RunRow:
    """Add a finished run (its RunRecord and collected series) to the store; returns the run's row."""
    from orchestrator.reporting.report import to_json

    doc = json.loads(json.dumps(to_json(record), default=str))
    run, checks = rows_from_report(doc, series, git=doc.get("git_sha") or git_sha(), machine=machine_name())
    store.add_run(run, checks)
    log.info("run %s recorded in the trend store %s", record.run_id, store.path)
    return run


def record_report_dir(store: TrendStore, report_dir: Path) -> RunRow:
    """Add a run from its report directory (report.json, and series.json if there)."""
    try:
        doc = json.loads((report_dir / "report.json").read_text())
    except (OSError, ValueError) as err:
        raise InfrastructureError(f"cannot read {report_dir / 'report.json'}: {err}") from err
    series_path = report_dir / "series.json"
    series = json.loads(series_path.read_text()) if series_path.exists() else None
    machine = doc.get("machine", {}).get("hostname") or machine_name()
    run, checks = rows_from_report(doc, series, git=doc.get("git_sha") or "unknown", machine=machine)
    store.add_run(run, checks)
    return run
