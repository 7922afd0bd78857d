"""Locust users that drive maptarget, and the per-worker state they share.

Only Locust processes import this module (it imports locust, which
monkey-patches the process). A worker holds one ``WorkerState``: the plan, the
key streams (one per purpose, shared by all users of the worker, so the order
of draws is deterministic: a worker is a single gevent thread), the op budget,
the client-side metrics and the counters that become the worker's summary.

Accounting, so the controller can compute exact expected entries: a draw is
*pending* on its target from just before the request until its answer; then it
is acknowledged or, if the request failed, *uncertain*. A draw still pending
when the worker quits (its greenlet was killed mid-request) is uncertain too.

Users (``MapquakeUser`` subclasses, all protocol-agnostic; the plan picks HTTP
or gRPC):

- ``MapWriteUser``: writes ``batch`` keys per task (gRPC Put per key, BatchPut
  or PutStream per target; HTTP PUT per key).
- ``SyncMapChurnUser``: LoadOrStore, the sync.Map pattern: Get, then Put on a
  miss. Pick a space much larger than the ops for a miss-heavy run.
- ``DeleteChurnUser``: insert one key and delete the one inserted ``L`` ops
  earlier, so each worker keeps ``L`` keys live (see keyspace.ChurnStream).
- ``ReadWriteMix``: a fraction ``read_ratio`` of tasks read one key (from a
  separate read stream), the others write like MapWriteUser.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import User, task
from locust.exception import StopUser

from workloads.delivery import CPU_WINDOW_S, PhaseMeter
from workloads.grpc_user import GrpcClient
from workloads.keyspace import KEY_BYTES_FORMAT, ChurnStream, KeyStream, key_name, seeded_random, target_of_index
from workloads.metrics import ClientMetrics
from workloads.plan import SUMMARY_LOG_MARKER, SUMMARY_TO_LOG, WorkerSummary, WorkloadPlan, value_bytes
from workloads.shape import Timeline, paced_start

log = logging.getLogger(__name__)

DEADLINE_EXIT_CODE = 3
# After a failed task a user backs off 10 ms, doubling per consecutive failure up to 1 s,
# so a dead target (racymap's expected crash, a kill fault) does not turn users into busy loops.
ERROR_BACKOFF_S = 0.01
ERROR_BACKOFF_MAX_S = 1.0


class WorkerState:
    """What the users of one worker share; created once per worker by ``start_worker``."""

    def __init__(self, plan: WorkloadPlan, environment: Any) -> None:
        self.plan = plan
        self.environment = environment
        self.index = max(plan.worker_index, 0)
        self.count = plan.worker_count if plan.worker_index >= 0 else 1
        self.replicas = len(plan.targets)
        self.timeline = Timeline(plan.phases)
        self.meter = PhaseMeter(self.timeline)
        self.value = value_bytes(plan.value_type, plan.value_size)
        self.metrics = ClientMetrics(plan.protocol)
        self.writes = KeyStream(plan.keys, self.index, self.count, "write")
        self.reads = KeyStream(plan.keys, self.index, self.count, "read")
        self.mix = seeded_random(plan.keys, self.index, "mix")
        self.churn = ChurnStream(plan.keys, self.index, self.count) if plan.user == "DeleteChurnUser" else None
        self.ops_claimed = 0
        self.acked = [0] * self.replicas
        self.pending = [0] * self.replicas
        self.uncertain = [0] * self.replicas
        self.reads_done = 0
        self.read_hits = 0
        self.deletes = 0
        self.requests = 0
        self.errors: Counter[str] = Counter()
        self.started_at: float | None = None
        self.created_at = time.monotonic()
        self.stopped_by = "quit"
        self._grpc: GrpcClient | None = None
        self._summary_written = False

    # --- clients ----------------------------------------------------------------------------

    def client_for(self, user: User) -> Any:
        """gRPC: one client (channels) per worker; HTTP: one FastHttpSession per user and target."""
        if self.plan.protocol == "grpc":
            if self._grpc is None:
                self._grpc = GrpcClient(
                    self.plan.targets,
                    self.environment.events.request,
                    allowed=self.plan.allowed,
                    timeout_s=self.plan.request_timeout_s,
                )
            return self._grpc
        from workloads.http_client import HttpClient

        return HttpClient(
            self.plan.targets, self.environment, user, allowed=self.plan.allowed, timeout_s=self.plan.request_timeout_s
        )

    # --- budget and time --------------------------------------------------------------------

    def claim(self, n: int) -> int:
        """Reserve up to ``n`` ops of the worker's budget; 0 means the budget is spent."""
        limit = self.plan.max_ops_per_worker
        if limit is None:
            self.ops_claimed += n
            return n
        granted = max(0, min(n, limit - self.ops_claimed))
        self.ops_claimed += granted
        if granted == 0:
            self.stopped_by = "max_ops"
        return granted

    def run_time(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def rate_per_user(self) -> float | None:
        return self.timeline.rate_per_user(self.run_time())

    # --- accounting -------------------------------------------------------------------------

    def target(self, index: int) -> int:
        return target_of_index(index, self.replicas)

    def route(self, indices: list[int]) -> dict[int, list[int]]:
        """The key indices grouped by the target that holds them (``target_of``), in draw order."""
        if self.replicas == 1:
            return {0: indices}
        groups: dict[int, list[int]] = {}
        replicas = self.replicas
        for i in indices:
            groups.setdefault(target_of_index(i, replicas), []).append(i)
        return groups

    def begin(self, target: int, n: int = 1) -> None:
        self.pending[target] += n

    def finish(self, target: int, n: int, ok: bool, *, wrote: bool = True) -> None:
        """The request for ``n`` pending draws on ``target`` answered; ``wrote`` when it was a write."""
        self.pending[target] -= n
        if not ok:
            self.uncertain[target] += n
        elif wrote:
            self.acked[target] += n
            self.metrics.add_writes(n)
            self.meter.wrote(time.monotonic(), n)

    def on_request(self, request_type: str, name: str, response_time: float, exception: Any = None, **_: Any) -> None:
        """Locust request event listener: client histogram and error counts."""
        self.requests += 1
        failed = exception is not None
        if failed:
            self.errors[name] += 1
        self.metrics.observe(name, (response_time or 0.0) / 1000.0, failed=failed)
        self.meter.request(time.monotonic(), failed=failed)

    # --- summary ----------------------------------------------------------------------------

    def draws(self) -> int:
        return self.churn.drawn if self.churn is not None else self.writes.drawn

    def summary(self) -> WorkerSummary:
        self.meter.sample(time.monotonic())  # the last, partial CPU window
        return WorkerSummary(
            worker_index=self.index,
            worker_count=self.count,
            user=self.plan.user,
            protocol=self.plan.protocol,
            draws=self.draws(),
            writes=sum(self.acked),
            writes_per_target=list(self.acked),
            uncertain_per_target=[u + p for u, p in zip(self.uncertain, self.pending, strict=True)],
            reads=self.reads_done,
            read_hits=self.read_hits,
            deletes=self.deletes,
            requests=self.requests,
            errors=sum(self.errors.values()),
            errors_by_op=dict(self.errors),
            elapsed_s=round(self.run_time(), 3),
            stopped_by=self.stopped_by,
            extra=dict(self.plan.extra),
            phases=self.meter.phases(),
        )

    def write_summary(self) -> None:
        """Write the summary JSON (and the final metrics exposition next to it); once."""
        if self._summary_written or not self.plan.summary_path:
            return
        self._summary_written = True
        if self.plan.summary_path == SUMMARY_TO_LOG:
            # One line on stdout: on Kubernetes the controller reads it from the pod's log.
            print(SUMMARY_LOG_MARKER + json.dumps(self.summary().to_dict(), sort_keys=True), flush=True)
            return
        path = Path(self.plan.summary_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.summary().to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)
        path.with_suffix(".prom").write_bytes(self.metrics.exposition())
        log.info("worker %d summary written to %s", self.index, path)

    def close(self) -> None:
        if self._grpc is not None:
            self._grpc.close()


_state: WorkerState | None = None


def state() -> WorkerState:
    if _state is None:
        raise RuntimeError("the mapquake worker state is not initialised (start_worker was not called)")
    return _state


def start_worker(environment: Any, plan: WorkloadPlan) -> WorkerState:
    """Set up this worker: state, metrics server, event listeners, and the hard deadline."""
    global _state
    st = WorkerState(plan, environment)
    _state = st
    environment.events.request.add_listener(st.on_request)

    def on_test_start(**_: Any) -> None:
        if st.started_at is None:
            st.started_at = time.monotonic()
            st.meter.start(st.started_at)
            gevent.spawn(_read_cpu, st)

    lingered: list[bool] = []

    def on_quit(**_: Any) -> None:
        st.write_summary()
        st.close()
        # Once: a SIGTERM while lingering (the controller's teardown) quits again, and must not wait again.
        if plan.linger_s > 0 and plan.metrics_addr and not lingered:
            lingered.append(True)
            log.info("worker %d serves its final metrics for %.1fs more", st.index, plan.linger_s)
            gevent.sleep(plan.linger_s)

    environment.events.test_start.add_listener(on_test_start)
    environment.events.quit.add_listener(on_quit)
    if plan.metrics_addr:
        st.metrics.serve(plan.metrics_addr)
        log.info("worker %d serves client metrics on http://%s/metrics", st.index, plan.metrics_addr)

    def deadline() -> None:
        # Backstop: the master stops the run long before this. A worker still
        # alive here (master lost, run wedged) records what it did and ends.
        log.error("worker %d reached its hard deadline of %.0fs; exiting", st.index, plan.deadline_s)
        st.stopped_by = "deadline"
        st.write_summary()
        os._exit(DEADLINE_EXIT_CODE)

    gevent.spawn_later(plan.deadline_s, deadline)
    return st


def _read_cpu(st: WorkerState) -> None:
    """Close a CPU window every CPU_WINDOW_S until the worker quits (the greenlet dies with it)."""
    while not st._summary_written:
        gevent.sleep(CPU_WINDOW_S)
        st.meter.sample(time.monotonic())


class MapquakeUser(User):
    """Base of the mapquake users: shared state, per-phase throttle, and the write path."""

    abstract = True

    _st: WorkerState
    _last_start: float | None
    _task_failed: bool
    _failures: int

    def wait_time(self) -> float:
        # Locust asks for the wait after every task: one task done.
        now = time.monotonic()
        self._st.meter.task(now)
        start = paced_start(self._st.rate_per_user(), self._last_start, now)
        wait = max(0.0, start - now)
        self._failures = self._failures + 1 if self._task_failed else 0
        self._task_failed = False
        if self._failures:
            wait = max(wait, min(ERROR_BACKOFF_MAX_S, ERROR_BACKOFF_S * 2 ** (self._failures - 1)))
        # The schedule, not the wake-up: a late task is made up; a back-off is not (no burst after it).
        self._last_start = max(start, now + wait)
        return wait

    def on_start(self) -> None:
        self._st = state()
        self._last_start = time.monotonic()  # the first task starts now
        self._task_failed = False
        self._failures = 0
        self.client = self._st.client_for(self)

    def on_stop(self) -> None:
        if self._st.plan.protocol == "http":
            self.client.close()

    def _claim(self, n: int) -> int:
        granted = self._st.claim(n)
        if granted == 0:
            raise StopUser()
        return granted

    def _finish(self, target: int, n: int, ok: bool, *, wrote: bool = True) -> None:
        if not ok:
            self._task_failed = True
        self._st.finish(target, n, ok, wrote=wrote)

    def write_keys(self, n: int) -> None:
        """Draw ``n`` keys from the write stream and write them, per target, as the plan says."""
        st = self._st
        granted = self._claim(n)
        groups = st.route(st.writes.take(granted))
        for target, indices in groups.items():
            st.begin(target, len(indices))
            if st.plan.protocol == "http" or st.plan.write_mode == "put":
                for i in indices:
                    ok = self.client.put(target, key_name(i), st.value)
                    self._finish(target, 1, ok)
                continue
            # key_bytes(i), inlined: a call per key costs 4% of a worker
            keys = [KEY_BYTES_FORMAT % i for i in indices]
            if st.plan.write_mode == "stream":
                self._finish(target, len(keys), self.client.put_stream(target, keys, st.value))
            else:
                self._finish(target, len(keys), self.client.batch_put(target, keys, st.value))


class MapWriteUser(MapquakeUser):
    """High-frequency map writes: ``batch`` keys per task."""

    @task
    def write(self) -> None:
        self.write_keys(self._st.plan.batch)


class SyncMapChurnUser(MapquakeUser):
    """LoadOrStore over the key space: Get, and Put when the key is missing."""

    @task
    def load_or_store(self) -> None:
        st = self._st
        self._claim(1)
        index = st.writes.next_index()
        key = key_name(index)
        target = st.target(index)
        st.begin(target)
        found = self.client.get(target, key)
        if found is None:
            self._finish(target, 1, False)
            return
        st.reads_done += 1
        if found:
            st.read_hits += 1
            self._finish(target, 1, True, wrote=False)
            return
        self._finish(target, 1, self.client.put(target, key, st.value))


class DeleteChurnUser(MapquakeUser):
    """Delete + insert at a constant live size per worker."""

    @task
    def churn(self) -> None:
        st = self._st
        assert st.churn is not None
        self._claim(1)
        op = st.churn.next_op()
        ins_key = key_name(op.insert)
        ins_target = st.target(op.insert)
        st.begin(ins_target)
        if op.delete is not None:
            del_target = st.target(op.delete)
            st.begin(del_target)
        self._finish(ins_target, 1, self.client.put(ins_target, ins_key, st.value))
        if op.delete is not None:
            ok = self.client.delete(del_target, key_name(op.delete))
            self._finish(del_target, 1, ok, wrote=False)
            if ok:
                st.deletes += 1


class ReadWriteMix(MapquakeUser):
    """A fraction ``read_ratio`` of tasks read one key; the others write ``batch`` keys."""

    @task
    def mixed(self) -> None:
        st = self._st
        if st.mix.random() >= st.plan.read_ratio:
            self.write_keys(st.plan.batch)
            return
        self._claim(1)
        index = st.reads.next_index()
        found = self.client.get(st.target(index), key_name(index))
        if found is None:
            self._task_failed = True
        else:
            st.reads_done += 1
            st.read_hits += int(found)


USER_LOCUSTFILE_MODULE = "mapquake_user_locustfile"


def load_user_classes(path: str) -> dict[str, type[User]]:
    """Import the user's locustfile (once, under a fixed module name) and return its User classes.

    Its directory goes on sys.path first, so it can import its own helpers beside it. A failure to
    import is logged with the file's name and re-raised: the Locust process exits, and the
    controller reports the file (it also tries the import before the run starts).
    """
    import importlib.util
    import sys

    directory = str(Path(path).resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(USER_LOCUSTFILE_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[USER_LOCUSTFILE_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        log.exception("cannot import the locustfile %s", path)
        raise
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, User) and value is not User and not value.abstract
    }
