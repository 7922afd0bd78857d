"""Live progress for people watching a run: phase, time left, request rate, errors, heap per target.

On a terminal one line is redrawn every tick; in a CI log a line is printed every
LOG_EVERY_S seconds instead, so logs stay readable. Numbers come from the run's
Prometheus; a failed query shows "?" and never stops the run.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from orchestrator.core.errors import MapquakeError
from orchestrator.prometheus.client import PrometheusAPI
from orchestrator.run.series import LIVE_HEAP_BY_REPLICA
from orchestrator.scenario.spec import PhaseSpec, Scenario

LOG_EVERY_S = 5.0
RATE_WINDOW = "5s"


def _human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


class Progress:
    def __init__(self, scenario: Scenario, *, enabled: bool = True, stream: TextIO = sys.stderr) -> None:
        self.scenario = scenario
        self.enabled = enabled
        self.stream = stream
        self.tty = stream.isatty()
        self._last_log = 0.0
        self._line_open = False

    def _write_line(self, text: str) -> None:
        if self._line_open:
            self.stream.write("\r\033[K")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        if self.enabled:
            self._write_line(f"[mapquake] {text}")

    def event(self, text: str) -> None:
        if self.enabled:
            self._write_line(f"[mapquake] ! {text}")

    def tick(
        self,
        phase: PhaseSpec,
        remaining_s: float,
        prometheus: PrometheusAPI | None,
        active_faults: list[str] | None = None,
    ) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self._last_log < LOG_EVERY_S:
            return
        self._last_log = now
        line = f"[mapquake] {phase.name} {remaining_s:4.0f}s left | " + self._numbers(prometheus)
        if active_faults:
            line += " | faults: " + "; ".join(active_faults)
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self._line_open = True
        else:
            self._write_line(line)

    def _numbers(self, prometheus: PrometheusAPI | None) -> str:
        if prometheus is None:
            return "no metrics yet"
        rps = self._scalar(prometheus, f"sum(rate(mapquake_client_request_seconds_count[{RATE_WINDOW}]))")
        writes = self._scalar(prometheus, f"sum(rate(mapquake_writes_total[{RATE_WINDOW}]))")
        errors = self._scalar(prometheus, "sum(mapquake_client_errors_total)")
        heap = []
        try:
            for sample in prometheus.query(f"sum by (target) ({LIVE_HEAP_BY_REPLICA})"):
                heap.append(f"{sample.labels.get('target', '?')} {_human_bytes(sample.value)}")
        except MapquakeError:
            heap.append("?")
        return f"{_fmt(rps)} req/s, {_fmt(writes)} map writes/s, {_fmt(errors)} errors | heap " + ", ".join(heap)

    @staticmethod
    def _scalar(prometheus: PrometheusAPI, expr: str) -> float | None:
        try:
            samples = prometheus.query(expr)
        except MapquakeError:
            return None
        return samples[0].value if samples else 0.0

    def close(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
