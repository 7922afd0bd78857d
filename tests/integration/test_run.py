"""`mapquake run` for real: namespaces, Go targets, Locust master and workers, Prometheus, teardown.

Each test runs the CLI as a subprocess with its own state directory, so the
run's ledger (and so its run id) is found there, and checks afterwards that no
namespace, link, process or state the run made is left, also after SIGTERM and
after SIGKILL followed by `mapquake cleanup`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.backends.local.network import list_links, list_netns
from orchestrator.core.ledger import RUN_ID_ENV, list_runs
from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

pytestmark = [
    pytest.mark.integration,
    needs_root,
]

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: two-by-two
targets:
  - {name: kv, store: mutexmap, replicas: 2}
load:
  user: MapWriteUser
  protocol: grpc
  workers: 2
  users: 4
  batch: 50
  keys: {space: 20000, distribution: uniform, seed: 11}
  value: {type: "[16]byte"}
phases:
  - {name: fill, duration: 6s}
  - {name: steady, duration: 4s}
checks:
  - {name: heap, model: live_heap, target: kv, tolerance: 10%, at: [steady.end]}
  - {name: alive, crash: kv, expect: none}
"""


def _processes_of(run_id: str) -> list[int]:
    """Pids whose environment carries this run's id (every process a run starts does)."""
    found = []
    marker = f"{RUN_ID_ENV}={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def leftovers(run_id: str, state_dir: Path) -> dict[str, list[str]]:
    return {
        "netns": [n for n in list_netns() if run_id in n],
        "links": [link for link in list_links() if run_id in link],
        "processes": [str(p) for p in _processes_of(run_id)],
        "state": [str(p) for p in (state_dir / "runs").glob(f"{run_id}*")],
    }


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A private state directory; anything a test run leaves is cleaned up even if the test fails."""
    path = tmp_path / "state"
    yield path
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(path)}
    subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, capture_output=True, timeout=120)


def start_run(
    scenario: Path, report_dir: Path, state_dir: Path, *, ignore_sigint: bool = False, own_group: bool = False
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MAPQUAKE_STATE_DIR": str(state_dir),
        "MAPQUAKE_TREND_STORE": str(state_dir.parent / "trends.sqlite"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # nohup and some CI runners start jobs with SIGINT ignored; a group lets a test signal it whole.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
        start_new_session=own_group,
    )


def wait_for_load(report_dir: Path, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    """Block until the run's Locust workers are up (their plans and logs exist and a worker wrote its log)."""
    deadline = time.monotonic() + timeout_s
    marker = report_dir / "run" / "locust" / "worker-0.log"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early:\n{proc.stdout.read() if proc.stdout else ''}")
        if marker.exists() and marker.stat().st_size > 0:
            return
        time.sleep(0.1)
    raise AssertionError("the load never started")


def the_run_id(state_dir: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = list_runs(state_dir)
        if runs:
            return runs[0].run_id
        time.sleep(0.05)
    raise AssertionError("no run appeared in the state directory")


def test_two_replicas_two_workers_end_to_end(tmp_path: Path, state_dir: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state_dir)
    run_id = the_run_id(state_dir)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output

    report = json.loads((report_dir / "report.json").read_text())
    assert report["run_id"] == run_id
    assert report["verdict"] == "pass", output

    # Prometheus held series from every target replica and every worker.
    notes = [e for e in report["timeline"]["events"] if e["name"] == "prometheus-sources"]
    sources = notes[0]["data"]["sources"]
    assert {(s.get("target"), s.get("replica")) for s in sources if s["job"] == "targets"} == {("kv", "0"), ("kv", "1")}
    assert {s.get("worker") for s in sources if s["job"] == "load"} == {"0", "1"}

    # Each replica holds exactly the distinct keys the controller expected from the workers' streams.
    expected = report["expected_entries"]["per_target"]["kv"]
    samples = {s["replica"]: s for s in report["timeline"]["samples"] if s["point"] == "steady.end"}
    assert [samples[0]["entries"], samples[1]["entries"]] == expected
    assert sum(expected) > 10_000  # uniform draws over 20 000 keys: most of the space was written
    assert report["load"]["errors"] == 0

    for name in ("junit.xml", "report.html", "series.json"):
        assert (report_dir / name).stat().st_size > 0, name
    assert leftovers(run_id, state_dir) == {"netns": [], "links": [], "processes": [], "state": []}


def test_sigterm_mid_run_tears_down_and_reports(tmp_path: Path, state_dir: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("duration: 6s", "duration: 60s"))
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state_dir)
    run_id = the_run_id(state_dir)
    wait_for_load(report_dir, proc)
    assert leftovers(run_id, state_dir)["netns"], "the run should be live before it is stopped"
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["reason"] == "interrupted by SIGTERM"
    assert report["verdict"] == "inconclusive"
    assert leftovers(run_id, state_dir) == {"netns": [], "links": [], "processes": [], "state": []}


def test_after_sigkill_the_run_stops_itself(tmp_path: Path, state_dir: Path) -> None:
    """The controller dies without a word; its watchdog removes the run within seconds, and
    `mapquake cleanup` then finds nothing."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("duration: 6s", "duration: 60s"))
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state_dir)
    run_id = the_run_id(state_dir)
    wait_for_load(report_dir, proc)
    assert leftovers(run_id, state_dir)["netns"], "the run should be live before it is killed"
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while leftovers(run_id, state_dir) != {"netns": [], "links": [], "processes": [], "state": []}:
        assert time.monotonic() < deadline, (
            f"still there 30 s after the controller died: {leftovers(run_id, state_dir)}"
        )
        time.sleep(0.5)
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(state_dir)}
    cleanup = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, capture_output=True, text=True, timeout=120
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "nothing to clean up" in cleanup.stdout


def test_sigint_at_start_is_a_clean_exit_4(tmp_path: Path, state_dir: Path) -> None:
    """Early, before or while the run opens: no traceback, exit 4, nothing left."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    proc = start_run(scenario, tmp_path / "report", state_dir)
    time.sleep(1.0)  # Python is up and parsing; the run may not have created anything yet
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    assert "Traceback" not in output and "interrupted by SIGINT" in output
    for run in list_runs(state_dir):
        assert leftovers(run.run_id, state_dir) == {"netns": [], "links": [], "processes": [], "state": []}


def test_sigint_stops_a_run_that_inherited_it_ignored(tmp_path: Path, state_dir: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("duration: 6s", "duration: 60s"))
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state_dir, ignore_sigint=True)
    run_id = the_run_id(state_dir)
    wait_for_load(report_dir, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    assert json.loads((report_dir / "report.json").read_text())["reason"] == "interrupted by SIGINT"
    assert leftovers(run_id, state_dir) == {"netns": [], "links": [], "processes": [], "state": []}


def test_sigterm_to_the_process_group_mid_run(tmp_path: Path, state_dir: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("duration: 6s", "duration: 60s"))
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state_dir, own_group=True)
    run_id = the_run_id(state_dir)
    wait_for_load(report_dir, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # the controller's own group: it started it, the test owns it
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["reason"] == "interrupted by SIGTERM"
    assert (report_dir / "report.html").exists()
    assert leftovers(run_id, state_dir) == {"netns": [], "links": [], "processes": [], "state": []}
