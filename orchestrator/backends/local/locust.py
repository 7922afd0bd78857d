"""Run a distributed Locust load (one master, N workers) as subprocesses, and collect what it did.

The controller never imports locust (it monkey-patches the process on import):
the master and the workers are ``python -m locust`` processes running
``workloads/locustfile.py``, each reading its own plan file through
MAPQUAKE_PLAN. The caller may start them through its own ``popen`` (the runner
starts workers inside network namespaces); whatever starts them, this class
alone stops them, by pid, on every exit path.

Lifecycle::

    with LocustCluster(plan, workers=2, work_dir=run_dir / "load") as cluster:
        cluster.start()            # ready: every worker serves its metrics port, the first phase began
        result = cluster.wait()    # the workers quit after the last phase
    result.check()                 # InfrastructureError if a process failed or a summary is missing
    expected = result.expected()   # entries each target must hold (workloads.plan.ExpectedEntries)

Readiness is the workers' metrics endpoints answering (each worker serves it
from Locust's init event, after it connected to the master), then the master's
log line ``LOAD_STARTED_MARKER`` (logged when the first phase starts, once all
workers are connected), polled against a deadline; a process that exits first
fails the start with its log tail.

``start(gated=True)`` starts the processes but holds the first phase until
``release()``: the master waits for a gate file (``plan.start_gate``) and logs
``GATE_WAITING_MARKER`` once every worker joined. The runner starts the load's
processes while Prometheus looks for its first scrape, and releases them once
the targets' baselines are taken. The load has ended when every worker has
written its summary (the master tells them to quit after the last phase); the
master's own shutdown (its CSVs, half a second's polls) finishes meanwhile, and
``stop()`` gives it time to end by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import workloads
from orchestrator.backends.locustargs import master_args, user_env, worker_args
from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.core.processes import read_log_tail
from orchestrator.core.safety import split_host_port
from workloads.plan import (
    GATE_WAITING_MARKER,
    LOAD_STARTED_MARKER,
    PLAN_ENV,
    ExpectedEntries,
    WorkerSummary,
    WorkloadPlan,
    expected_entries,
)

log = logging.getLogger(__name__)

LOCUSTFILE = Path(workloads.__file__).resolve().parent / "locustfile.py"

# Module constants so a slow machine (or a test) can raise them.
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
MASTER_EXIT_GRACE_S = 5.0
"""Once the workers are done, how long stop() lets the master finish by itself (it writes its CSVs)."""
SCRAPE_INTERVAL_S = 1.0
_POLL_S = 0.05

# Never through an HTTP proxy from the environment: workers are on loopback or in our namespaces.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

PopenFn = Callable[[list[str], dict[str, str], Path], "subprocess.Popen[bytes]"]
"""Starts one process: ``popen(argv, env, log_path)``; stdout and stderr must go to ``log_path``."""


def local_popen(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The default ``PopenFn``: a plain child process in its own session, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (Locust cannot bind port 0 for its master)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class LocustProcess:
    """One process of the cluster: its role, pid handle and log."""

    role: str
    """"master" or "worker-<i>"."""
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 25) -> str:
        return read_log_tail(self.log_path, lines)


@dataclass
class LocustResult:
    """What a finished run left: summaries, CSVs, exit codes, the last metrics each worker served."""

    plan: WorkloadPlan
    summaries: list[WorkerSummary]
    exit_codes: dict[str, int | None]
    csv_files: dict[str, Path]
    """Locust's CSVs by kind: stats, stats_history, failures, exceptions."""
    logs: dict[str, Path]
    last_metrics: dict[int, str] = field(default_factory=dict)
    """Worker index -> the last /metrics text scraped from it while it ran."""
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self) -> LocustResult:
        """Return self, or raise InfrastructureError listing every problem."""
        if self.problems:
            raise InfrastructureError("the Locust load did not complete cleanly:\n  " + "\n  ".join(self.problems))
        return self

    def expected(self) -> ExpectedEntries:
        """The entries each target should hold (needs every worker's summary)."""
        return expected_entries(self.plan, self.summaries)

    @property
    def writes(self) -> int:
        return sum(s.writes for s in self.summaries)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.summaries)


class LocustCluster:
    """A Locust master and ``workers`` workers running ``plan``; stopped by pid on every exit path."""

    def __init__(
        self,
        plan: WorkloadPlan,
        *,
        workers: int = 1,
        work_dir: Path,
        popen: PopenFn | None = None,
        master_popen: PopenFn | None = None,
        master_bind_host: str = "127.0.0.1",
        master_host: str | None = None,
        master_port: int | None = None,
        metrics_addrs: Sequence[str] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
        loglevel: str = "INFO",
    ) -> None:
        self.workers = workers
        """Number of worker processes."""
        self.work_dir = Path(work_dir)
        """Plans, summaries, CSVs and logs go here."""
        self.popen = popen or local_popen
        """Starts the workers (and the master unless ``master_popen`` is given)."""
        self.master_popen = master_popen or self.popen
        self.master_bind_host = master_bind_host
        """Where the master listens for workers."""
        self.master_host = master_host or master_bind_host
        """The address workers dial to reach the master (differs from the bind host across namespaces)."""
        self.master_port = master_port or free_port(master_bind_host)
        self.metrics_addrs = (
            list(metrics_addrs) if metrics_addrs else [_format_addr("127.0.0.1", free_port()) for _ in range(workers)]
        )
        """Worker i serves its client metrics on metrics_addrs[i] (Prometheus scrapes them)."""
        self.python = python
        self.env = dict(os.environ if env is None else env)
        self.ready_timeout_s = ready_timeout_s
        self.loglevel = loglevel
        self.csv_prefix = self.work_dir / "locust"
        self.plan = replace(plan, worker_count=workers).for_master()
        self.worker_plans = [
            self.plan.for_worker(i, metrics_addr=self.metrics_addrs[i], summary_path=self._summary_path(i))
            for i in range(workers)
        ]
        self.processes: list[LocustProcess] = []
        self.last_metrics: dict[int, str] = {}
        self._started_at: float | None = None
        self.gate: Path | None = None
        """The start gate file of a gated start (None: the first phase starts once the workers joined)."""
        self.load_started_at: float | None = None
        """time.monotonic() when the first phase started (set by start())."""
        self._validate()

    def _validate(self) -> None:
        problems = self.plan.errors()
        if self.workers < 1:
            problems.append(f"workers: need at least one worker, got {self.workers}")
        if len(self.metrics_addrs) != self.workers:
            problems.append(f"metrics_addrs: need one address per worker ({self.workers}), got {self.metrics_addrs}")
        for p in self.worker_plans:
            problems.extend(f"worker {p.worker_index}: {e}" for e in p.errors() if e not in problems)
        if problems:
            raise UsageError("invalid Locust workload:\n  " + "\n  ".join(dict.fromkeys(problems)))

    def _summary_path(self, index: int) -> Path:
        return self.work_dir / f"summary-worker-{index}.json"

    # --- commands ---------------------------------------------------------------------------

    def master_argv(self) -> list[str]:
        args = master_args(
            self.plan,
            workers=self.workers,
            bind_host=self.master_bind_host,
            port=self.master_port,
            csv_prefix=self.csv_prefix,
            loglevel=self.loglevel,
        )
        return [self.python, "-m", "locust", "-f", str(LOCUSTFILE), *args]

    def worker_argv(self, index: int) -> list[str]:
        args = worker_args(self.plan, master_host=self.master_host, port=self.master_port, loglevel=self.loglevel)
        return [self.python, "-m", "locust", "-f", str(LOCUSTFILE), *args]

    def _env(self, plan_path: Path) -> dict[str, str]:
        env = {**self.env, **user_env(self.plan)}
        env[PLAN_ENV] = str(plan_path)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, *, gated: bool = False) -> None:
        """Start the master and the workers; return once every worker serves its metrics port and
        the master started the first phase (``load_started_at``). With ``gated``, return once every
        worker joined the master, which then waits for ``release()`` to start the first phase."""
        if self.processes:
            raise InfrastructureError("this Locust cluster was already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.workers):
            self._summary_path(i).unlink(missing_ok=True)
        self.gate = self.work_dir / "start-gate" if gated else None
        if self.gate is not None:
            self.gate.unlink(missing_ok=True)
        master = replace(self.plan, start_gate=str(self.gate) if self.gate is not None else None)
        try:
            master_plan = master.write(self.work_dir / "plan-master.json")
            self._spawn("master", self.master_popen, self.master_argv(), master_plan)
            for i, wp in enumerate(self.worker_plans):
                path = wp.write(self.work_dir / f"plan-worker-{i}.json")
                self._spawn(f"worker-{i}", self.popen, self.worker_argv(i), path)
            self._started_at = time.monotonic()
            self._wait_ready(GATE_WAITING_MARKER if self.gate is not None else LOAD_STARTED_MARKER)
        except BaseException:
            self.stop()
            raise

    def release(self) -> None:
        """Open the gate of a ``start(gated=True)``; return once the master started the first phase."""
        if self.gate is None or not self.processes:
            raise InfrastructureError("this Locust cluster was not started gated")
        self.gate.touch()
        try:
            self._wait_ready(LOAD_STARTED_MARKER)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, role: str, popen: PopenFn, argv: list[str], plan_path: Path) -> None:
        log_path = self.work_dir / f"{role}.log"
        proc = popen(argv, self._env(plan_path), log_path)
        self.processes.append(LocustProcess(role=role, proc=proc, log_path=log_path))
        log.info("started locust %s (pid %d)", role, proc.pid)

    def _wait_ready(self, marker: str) -> None:
        """Every worker serves its metrics port, then the master logs ``marker`` (the first phase
        started, or every worker joined and the master waits at the gate)."""
        deadline = time.monotonic() + self.ready_timeout_s
        pending = set(range(self.workers))
        master = self.processes[0]
        while True:
            for p in self.processes:
                if p.proc.poll() is not None:
                    raise InfrastructureError(
                        f"locust {p.role} (pid {p.pid}) exited with code {p.proc.returncode} before the run started:\n"
                        f"{p.log_tail()}"
                    )
            for i in sorted(pending):
                text = _scrape(self.metrics_addrs[i], timeout_s=1.0)
                if text is not None:
                    self.last_metrics[i] = text
                    pending.discard(i)
            if not pending and _log_contains(master.log_path, marker):
                if marker == LOAD_STARTED_MARKER:
                    self.load_started_at = time.monotonic()
                    log.info("locust load started: %d workers connected", self.workers)
                return
            if time.monotonic() > deadline:
                waiting = [f"worker-{i} metrics on {self.metrics_addrs[i]}" for i in sorted(pending)] or [
                    "the master to start the first phase" if marker == LOAD_STARTED_MARKER else "every worker to join"
                ]
                raise InfrastructureError(
                    f"locust was not ready within {self.ready_timeout_s:.0f}s: waiting for {', '.join(waiting)}\n"
                    + "\n".join(p.log_tail(10) for p in self.processes)
                )
            time.sleep(_POLL_S)

    def wait(self, timeout_s: float | None = None, *, leave_lingering: bool = False) -> LocustResult:
        """Wait until the load has ended (the master ends the run after the last phase), then collect.

        The load has ended when every worker has exited or written its summary (the master tells
        them to quit after the last phase, or they quit at their deadline). With ``leave_lingering``,
        the master finishes its shutdown and workers that wrote their summary keep serving their
        final metrics (``plan.linger_s``) for Prometheus's last scrape while the run goes on; they
        exit by themselves, and stop() (the backend's teardown) ends any still there. Otherwise, and
        on every other path, stop() ends whatever still runs before this returns.

        ``timeout_s`` counts from this call; the default is what is left of the plan's hard bound
        (``plan.deadline_s`` plus a grace, from start()). Processes still running then are stopped
        and the result says so. Scrapes each worker's metrics about once a second while waiting.
        """
        if not self.processes:
            raise InfrastructureError("this Locust cluster was not started")
        if timeout_s is not None:
            bound = timeout_s
            deadline = time.monotonic() + timeout_s
        else:
            bound = self.plan.deadline_s + STOP_GRACE_S
            deadline = (self._started_at or time.monotonic()) + bound
        next_scrape = 0.0
        timed_out = False
        ended = False
        try:
            while not self.load_ended():
                now = time.monotonic()
                if now > deadline:
                    timed_out = True
                    log.error("locust run exceeded its bound of %.0fs; stopping it", bound)
                    break
                if now >= next_scrape:
                    self.scrape_workers()
                    next_scrape = now + SCRAPE_INTERVAL_S
                self._wait_any(min(next_scrape, deadline) - time.monotonic())
            ended = not timed_out
        finally:
            if not (ended and leave_lingering):
                self.stop()
        return self._collect(timed_out, bound)

    def load_ended(self) -> bool:
        """Every worker has exited or written its summary (then it lingers); the master may still be
        shutting down (Locust's own half-second polls), which stop() waits for."""
        if not self.processes:
            return False
        _, *workers = self.processes
        return all(w.proc.poll() is not None or self._summary_path(i).exists() for i, w in enumerate(workers))

    def _wait_any(self, timeout_s: float) -> None:
        """Sleep a poll interval (at most ``timeout_s``); the loop then looks at the workers again."""
        time.sleep(min(_POLL_S, max(0.0, timeout_s)))

    def scrape_workers(self) -> dict[int, str]:
        """Scrape every running worker's /metrics now; updates and returns ``last_metrics``."""
        for i, addr in enumerate(self.metrics_addrs):
            proc = self.processes[1 + i].proc if len(self.processes) > 1 + i else None
            if proc is not None and proc.poll() is None:
                text = _scrape(addr, timeout_s=0.5)
                if text is not None:
                    self.last_metrics[i] = text
        return self.last_metrics

    def run(self) -> LocustResult:
        """start() then wait(); every process is stopped whatever happens."""
        self.start()
        return self.wait()

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process still running (our pids only), wait, then SIGKILL. Returns exit codes.

        When every worker wrote its summary (the load ended as planned), the master is let finish
        its own shutdown first (it writes its CSVs as it exits), for up to ``MASTER_EXIT_GRACE_S``."""
        if self.processes and all(self._summary_path(i).exists() for i in range(self.workers)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.processes[0].proc.wait(timeout=MASTER_EXIT_GRACE_S)
        alive = [p for p in self.processes if p.proc.poll() is None]
        # Workers first: their SIGTERM handler stops the users and writes the summary.
        for p in sorted(alive, key=lambda p: p.role == "master"):
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for p in alive:
            try:
                p.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("locust %s (pid %d) ignored SIGTERM; killing it", p.role, p.pid)
                p.proc.kill()
                p.proc.wait()
        return {p.role: p.proc.returncode for p in self.processes}

    def _collect(self, timed_out: bool, bound: float = 0.0) -> LocustResult:
        problems: list[str] = []
        if timed_out:
            problems.append(f"the run did not end within its bound of {bound:.0f}s; its processes were stopped")
        exit_codes = {p.role: p.proc.returncode for p in self.processes}
        for p in self.processes:
            if p.proc.returncode not in (0, None):
                problems.append(f"locust {p.role} (pid {p.pid}) exited with code {p.proc.returncode}:\n{p.log_tail()}")
        summaries: list[WorkerSummary] = []
        for i in range(self.workers):
            path = self._summary_path(i)
            with contextlib.suppress(OSError):  # the final exposition, written with the summary
                self.last_metrics[i] = path.with_suffix(".prom").read_text()
            try:
                summaries.append(WorkerSummary.read(path))
            except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
                problems.append(f"worker {i} left no readable summary at {path}: {err}")
        csv_files = {
            kind: path
            for kind in ("stats", "stats_history", "failures", "exceptions")
            if (path := Path(f"{self.csv_prefix}_{kind}.csv")).exists()
        }
        return LocustResult(
            plan=self.plan,
            summaries=summaries,
            exit_codes=exit_codes,
            csv_files=csv_files,
            logs={p.role: p.log_path for p in self.processes},
            last_metrics=dict(self.last_metrics),
            problems=problems,
            timed_out=timed_out,
        )

    def __enter__(self) -> LocustCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _log_contains(path: Path, marker: str) -> bool:
    try:
        with open(path, "rb") as f:
            return marker.encode() in f.read()
    except FileNotFoundError:
        return False


def _scrape(addr: str, *, timeout_s: float) -> str | None:
    """GET http://addr/metrics; None when nothing answers yet."""
    split_host_port(addr)
    try:
        with _OPENER.open(f"http://{addr}/metrics", timeout=timeout_s) as resp:
            return bytes(resp.read()).decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
