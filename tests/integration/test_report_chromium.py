"""report.html in a real headless Chromium (Debian's package): the plots render, the console stays quiet.

Chromium logs every console message of the page to stderr as ``INFO:CONSOLE``
with ``--enable-logging=stderr``; the report has no script at all, so any
console line is an error. A page that does throw is the control: it shows the
capture works, so a quiet report is not quiet by accident.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.reporting import report
from tests import reportdata

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (make setup installs it)"),
]

WINDOW = (1200, 2400)


def screenshot(page: Path, out: Path, profile: Path) -> tuple[Path, list[str]]:
    """Render ``page`` headless; return the PNG and the console lines Chromium logged."""
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return out, console


def pixel_spread(png: Path) -> tuple[tuple[int, int], float, int]:
    """Size, the standard deviation of grey levels, and the number of distinct grey levels."""
    image = Image.open(png).convert("L")
    counts = image.histogram()  # 256 grey levels
    total = sum(counts)
    mean = sum(level * n for level, n in enumerate(counts)) / total
    variance = sum(n * (level - mean) ** 2 for level, n in enumerate(counts)) / total
    return image.size, variance**0.5, sum(1 for n in counts if n)


def test_report_html_renders_its_plots_without_console_errors(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    report.write(reportdata.record(report_dir), reportdata.series())
    png, console = screenshot(report_dir / "report.html", tmp_path / "shot.png", tmp_path / "profile")
    assert console == []
    assert png.stat().st_size > 20_000
    size, spread, levels = pixel_spread(png)
    assert size == WINDOW
    assert spread > 20 and levels > 50  # plots and text, not a blank or single-colour page


def test_the_console_capture_sees_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><h1>x</h1><script>console.error('bad'); throw new Error('boom')</script></body></html>"
    )
    _, console = screenshot(page, tmp_path / "bad.png", tmp_path / "profile")
    assert any("Uncaught Error: boom" in line for line in console)
