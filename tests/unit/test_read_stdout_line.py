"""read_stdout_line: one line at a time from a child's stdout, never past a timeout."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.core.processes import read_stdout_line, stop_process


def test_lines_come_one_at_a_time_and_later_ones_stay_in_the_pipe() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "print('port 4242'); print('second')"], stdout=subprocess.PIPE)
    try:
        assert read_stdout_line(proc, 10) == ("port 4242", b"")
        assert read_stdout_line(proc, 10) == ("second", b"")
        assert read_stdout_line(proc, 10) == (None, b"")  # EOF
    finally:
        stop_process(proc, grace_s=1)


def test_a_line_that_never_ends_gives_what_came_at_the_timeout() -> None:
    code = "import sys, time; sys.stdout.write('half'); sys.stdout.flush(); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert read_stdout_line(proc, 0.5) == (None, b"half")
    finally:
        stop_process(proc, grace_s=1)
