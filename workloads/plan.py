"""The run plan a Locust process reads (env MAPQUAKE_PLAN = path of a JSON file), and the summaries it writes.

The controller (``orchestrator.backends.local.locust``) writes one plan per process: the
master's (worker_index -1) drives the phases, each worker's carries its own
index, metrics address and summary path. This module never imports locust, so
the controller can use it.

Load goes only to addresses on the plan's ``allowed`` list (``orchestrator.core.safety``), the
one allow-list the backend supplies to the run; the default is loopback only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from orchestrator.core.safety import LOOPBACK_ONLY, AddressAllowList, split_host_port
from workloads.keyspace import ChurnStream, KeySpec, expected_distinct_keys, expected_live_after_churn

PLAN_ENV = "MAPQUAKE_PLAN"
LOAD_STARTED_MARKER = "mapquake: load started"
"""The master logs this line when the first phase starts (all workers connected)."""
GATE_WAITING_MARKER = "mapquake: every worker joined; waiting for the start gate"
"""With a ``start_gate``, the master logs this line once every worker joined, before the gate opens."""
SUMMARY_TO_LOG = "-"
"""``summary_path`` value meaning: print the summary as one log line (pods: the controller reads logs)."""
SUMMARY_LOG_MARKER = "mapquake-summary: "
"""Prefix of that line; the JSON summary follows on the same line."""
WORKER_INDEX_PLACEHOLDER = "{index}"
"""In MAPQUAKE_PLAN: replaced by the worker's index from JOB_COMPLETION_INDEX (an indexed Job's pods
share one template, so one path names every worker's plan)."""

USERS: tuple[str, ...] = ("MapWriteUser", "SyncMapChurnUser", "DeleteChurnUser", "ReadWriteMix")
#: Users whose ops include reads. On Go ≤ 1.23 reads that miss a sync.Map's read map promote its
#: dirty map, and the next new key copies every entry into a fresh dirty map (research §4).
READING_USERS: tuple[str, ...] = ("SyncMapChurnUser", "ReadWriteMix")
PROTOCOLS: tuple[str, ...] = ("http", "grpc")
WRITE_MODES: tuple[str, ...] = ("put", "batch", "stream")
VALUE_TYPES: tuple[str, ...] = (
    "[]byte", "string", "int64", "[8]byte", "[16]byte", "[32]byte", "[64]byte", "[128]byte", "[256]byte",
)  # fmt: skip


@dataclass(frozen=True)
class Phase:
    """One span of the run timeline."""

    name: str
    duration_s: float
    """How long the phase lasts; phases follow each other on one timeline from the start of the run."""
    users: int
    """Concurrent users over all workers during the phase (0 pauses the load)."""
    spawn_rate: float | None = None
    """Users started (or stopped) per second when entering the phase; default: all in one second."""
    rate: float | None = None
    """Optional request rate limit over all users (requests/s); None runs every user flat out."""

    @property
    def effective_spawn_rate(self) -> float:
        return self.spawn_rate if self.spawn_rate is not None else float(max(1, self.users))

    def errors(self, where: str) -> list[str]:
        out: list[str] = []
        if not self.name:
            out.append(f"{where}.name: must not be empty")
        if not isinstance(self.duration_s, int | float) or not math.isfinite(self.duration_s) or self.duration_s <= 0:
            out.append(f"{where}.duration_s: must be a positive number of seconds, got {self.duration_s!r}")
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 0:
            out.append(f"{where}.users: must be an integer >= 0, got {self.users!r}")
        if self.spawn_rate is not None and (not isinstance(self.spawn_rate, int | float) or self.spawn_rate <= 0):
            out.append(f"{where}.spawn_rate: must be > 0, got {self.spawn_rate!r}")
        if self.rate is not None and (not isinstance(self.rate, int | float) or self.rate <= 0):
            out.append(f"{where}.rate: must be > 0 requests/s, got {self.rate!r}")
        return out


@dataclass(frozen=True)
class WorkloadPlan:
    """Everything a Locust process needs to run its part of a workload. ``errors()`` lists every problem."""

    user: str
    """User class: MapWriteUser, SyncMapChurnUser, DeleteChurnUser or ReadWriteMix."""
    protocol: Literal["http", "grpc"]
    targets: tuple[str, ...]
    """host:port of each target replica for ``protocol``, in replica order (the routing order)."""
    keys: KeySpec
    phases: tuple[Phase, ...]
    allowed: AddressAllowList = LOOPBACK_ONLY
    """Where load may go: the run's address allow-list, which the backend supplies (orchestrator.core.safety).
    Every target must be on it; the workers' clients check it again before they dial."""
    value_type: str = "[]byte"
    """The targets' --value-type; int64 values are sent as decimal text, [N]byte as N bytes."""
    value_size: int = 32
    """Bytes per value for []byte and string (ignored for int64 and [N]byte)."""
    write_mode: Literal["put", "batch", "stream"] = "batch"
    """gRPC writes: one Put per key, BatchPut of ``batch`` keys, or a PutStream of ``batch`` keys."""
    batch: int = 1
    """Keys per write request (gRPC only; HTTP writes one key per request)."""
    read_ratio: float = 0.5
    """ReadWriteMix: the fraction of ops that are reads."""
    replicated: bool = False
    """Targets replicate writes to each other, so every target ends up holding every key."""
    worker_index: int = -1
    """This worker's index in [0, worker_count); -1 in the master's plan."""
    worker_count: int = 1
    metrics_addr: str | None = None
    """host:port where this worker serves its client-side Prometheus metrics (None: not served)."""
    summary_path: str | None = None
    """Where this worker writes its summary JSON when it quits."""
    max_ops_per_worker: int | None = None
    """Stop a worker's users after this many key draws (ops); None: bounded by time only."""
    cap_s: float = 30.0
    """Hard bound beyond the phases: a process still running at sum(phases) + startup_s + cap_s ends itself."""
    startup_s: float = 60.0
    """How long workers may take to connect before the run starts (part of the hard bound)."""
    stop_timeout_s: float = 10.0
    """Users finish their in-flight request for up to this long when the load stops."""
    request_timeout_s: float = 10.0
    linger_s: float = 0.0
    """After the load stopped, a worker keeps serving its final metrics this long before it exits,
    so Prometheus's last scrape sees the final counts (set it to about two scrape intervals)."""
    locustfile: str | None = None
    """The user's own locustfile (absolute path): ``user`` is a class in it, not one of mapquake's; its
    requests are measured like mapquake's own, and it gets no keys (its service counts its maps)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form labels carried through to the summaries (scenario name, run id)."""
    start_gate: str | None = None
    """A file the master waits for (up to ``startup_s``) before its first phase; None: the first phase
    starts once every worker joined. The controller starts the processes early (Python and Locust take
    a second or two to start) and creates the file once the targets' baselines are taken."""

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable-looking and immutable.
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "phases", tuple(self.phases))

    # --- validation -----------------------------------------------------------------------

    def errors(self) -> list[str]:
        """Every problem with the plan, as 'field: message' (empty when valid)."""
        out: list[str] = []
        if self.locustfile is None and self.user not in USERS:
            out.append(f"user: unknown user class {self.user!r} (choose one of {list(USERS)})")
        if self.locustfile is not None and not self.user.isidentifier():
            out.append(f"user: {self.user!r} is not a Python class name in {self.locustfile}")
        if self.protocol not in PROTOCOLS:
            out.append(f"protocol: must be one of {list(PROTOCOLS)}, got {self.protocol!r}")
        if not self.targets:
            out.append("targets: at least one target address is needed")
        for i, addr in enumerate(self.targets):
            try:
                self.allowed.check(addr)
            except ValueError as err:
                out.append(f"targets[{i}]: {err}")
        if not self.phases:
            out.append("phases: at least one phase is needed")
        for i, phase in enumerate(self.phases):
            out.extend(phase.errors(f"phases[{i}]"))
        if self.value_type not in VALUE_TYPES:
            out.append(f"value_type: unknown value type {self.value_type!r} (choose one of {list(VALUE_TYPES)})")
        if isinstance(self.value_size, bool) or not isinstance(self.value_size, int) or self.value_size < 0:
            out.append(f"value_size: must be an integer >= 0, got {self.value_size!r}")
        if self.write_mode not in WRITE_MODES:
            out.append(f"write_mode: must be one of {list(WRITE_MODES)}, got {self.write_mode!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            out.append(f"batch: must be an integer >= 1, got {self.batch!r}")
        elif self.protocol == "http" and self.batch != 1:
            out.append("batch: HTTP writes one key per request (PUT /kv/{key}); use protocol grpc for batches")
        if not isinstance(self.read_ratio, int | float) or not 0 <= self.read_ratio <= 1:
            out.append(f"read_ratio: must be in [0, 1], got {self.read_ratio!r}")
        if self.worker_count < 1:
            out.append(f"worker_count: must be >= 1, got {self.worker_count!r}")
        if not -1 <= self.worker_index < self.worker_count:
            out.append(f"worker_index: must be -1 (master) or in [0, {self.worker_count}), got {self.worker_index}")
        if self.max_ops_per_worker is not None and self.max_ops_per_worker < 1:
            out.append(f"max_ops_per_worker: must be >= 1, got {self.max_ops_per_worker!r}")
        for name in ("cap_s", "startup_s", "stop_timeout_s", "request_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                out.append(f"{name}: must be a positive number of seconds, got {value!r}")
        if not isinstance(self.linger_s, int | float) or not 0 <= self.linger_s <= 600:
            out.append(f"linger_s: must be between 0 and 600 seconds, got {self.linger_s!r}")
        if self.metrics_addr is not None:
            try:
                split_host_port(self.metrics_addr)
            except ValueError as err:
                out.append(f"metrics_addr: {err}")
        out.extend(self._key_space_errors())
        return out

    def _key_space_errors(self) -> list[str]:
        space, workers = self.keys.space, self.worker_count
        if self.keys.distribution == "sequential" and space < workers:
            return [f"keys.space: {space} keys cannot give each of {workers} workers its own sequential stride"]
        if self.user == "DeleteChurnUser":
            for w in range(workers):
                try:
                    ChurnStream(self.keys, w, workers)
                except ValueError as err:
                    return [f"keys: {err}"]
        return []

    def validate(self) -> WorkloadPlan:
        """Return self, or raise ValueError listing every problem."""
        errors = self.errors()
        if errors:
            raise ValueError("invalid workload plan:\n  " + "\n  ".join(errors))
        return self

    # --- timeline -------------------------------------------------------------------------

    @property
    def load_s(self) -> float:
        """The sum of the phase durations: how long load runs once every worker connected."""
        return float(sum(p.duration_s for p in self.phases))

    @property
    def deadline_s(self) -> float:
        """The hard bound on any Locust process's life, from its start."""
        return self.startup_s + self.load_s + self.stop_timeout_s + self.linger_s + self.cap_s

    # --- per process ----------------------------------------------------------------------

    def for_worker(self, index: int, *, metrics_addr: str | None, summary_path: str | os.PathLike[str]) -> WorkloadPlan:
        return replace(self, worker_index=index, metrics_addr=metrics_addr, summary_path=str(summary_path))

    def for_master(self) -> WorkloadPlan:
        return replace(self, worker_index=-1, metrics_addr=None, summary_path=None)

    # --- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["phases"] = [asdict(p) for p in self.phases]
        data["keys"] = self.keys.to_dict()
        data["allowed"] = self.allowed.to_json()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadPlan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown workload plan field(s) {unknown}")
        data = dict(data)
        data["keys"] = KeySpec.from_dict(data["keys"])
        if "allowed" in data:
            data["allowed"] = AddressAllowList.from_json(data["allowed"])
        data["phases"] = tuple(Phase(**p) for p in data["phases"])
        data["targets"] = tuple(data["targets"])
        return cls(**data)

    def write(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> WorkloadPlan:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_env(cls) -> WorkloadPlan:
        path = os.environ.get(PLAN_ENV)
        if not path:
            raise RuntimeError(f"{PLAN_ENV} is not set: the mapquake locustfile needs a plan (see docs/workloads.md)")
        if WORKER_INDEX_PLACEHOLDER in path:
            index = os.environ.get("JOB_COMPLETION_INDEX", "")
            if not index.isdigit():
                raise RuntimeError(f"{PLAN_ENV} names {WORKER_INDEX_PLACEHOLDER} but JOB_COMPLETION_INDEX is {index!r}")
            path = path.replace(WORKER_INDEX_PLACEHOLDER, index)
        return cls.read(path).validate()


def value_bytes(value_type: str, value_size: int) -> bytes:
    """The value every write sends: decimal text for int64, N bytes for [N]byte, else value_size bytes."""
    if value_type == "int64":
        return b"42"
    if value_type.startswith("[") and value_type.endswith("]byte") and value_type != "[]byte":
        return bytes(i % 251 for i in range(int(value_type[1:-5])))
    return bytes(i % 251 for i in range(value_size))


# --- summaries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseDelivery:
    """What one worker delivered during one phase, by its own clock since the load started
    (workloads/delivery.py measures it; orchestrator/checks/delivery.py compares it with the design)."""

    phase: str
    tasks: int = 0
    """User tasks that ran (mapquake's users: one paced "request" of the scenario's ``rate`` each)."""
    requests: int = 0
    """Requests sent (every user, yours too; a task over several replicas sends one per replica)."""
    writes: int = 0
    """Map writes a target acknowledged."""
    errors: int = 0
    """Requests that failed."""
    seconds: float = 0.0
    """Wall seconds of the CPU windows attributed to the phase (about its duration)."""
    cpu_seconds: float = 0.0
    """CPU the worker process used in those windows, all threads (what Locust's CPU warning reads)."""
    cpu_peak: float = 0.0
    """The highest share of one core in a single window (1.0: one core busy all the window)."""
    wait_seconds: float | None = None
    """Time the worker's main thread was ready to run but waited for a CPU (/proc schedstat): a busy
    machine or node; None where the kernel does not say."""
    first_task_s: float | None = None
    """When the phase's first task ended, in seconds from the phase's start (None: no task): a load
    that started late shows here."""

    @property
    def cpu_share(self) -> float:
        """The phase's mean CPU, as a share of one core."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def wait_share(self) -> float | None:
        if self.wait_seconds is None or self.seconds <= 0:
            return None
        return self.wait_seconds / self.seconds


@dataclass(frozen=True)
class WorkerSummary:
    """What one worker did, written as JSON at quit; the controller's input to the expected key counts."""

    worker_index: int
    worker_count: int
    user: str
    protocol: str
    draws: int
    """Keys drawn from the worker's write stream (MapWriteUser, ReadWriteMix: keys written;
    SyncMapChurnUser: LoadOrStore ops; DeleteChurnUser: churn ops). What ``expected_*`` regenerate."""
    writes: int
    """Map writes acknowledged by a target (BatchPut/PutStream entries count one each)."""
    writes_per_target: list[int]
    uncertain_per_target: list[int]
    """Draws whose effect on a target is unknown: the request failed or was cut off mid-flight."""
    reads: int = 0
    read_hits: int = 0
    deletes: int = 0
    requests: int = 0
    errors: int = 0
    errors_by_op: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    stopped_by: str = "master"
    """Why the worker stopped: master (the shape ended), max_ops, deadline or signal."""
    extra: dict[str, Any] = field(default_factory=dict)
    phases: tuple[PhaseDelivery, ...] = ()
    """Per phase of the plan, in order: what this worker delivered and its CPU (empty: not measured)."""

    @property
    def uncertain(self) -> int:
        return sum(self.uncertain_per_target)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerSummary:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["phases"] = tuple(PhaseDelivery(**p) for p in values.get("phases", ()))
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> WorkerSummary:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class ExpectedEntries:
    """Expected live keys per target, with the bounds that failed or interrupted requests leave open."""

    expected: list[int]
    """Exact when ``exact``: the number of entries each target must hold."""
    low: list[int]
    high: list[int]
    exact: bool


def expected_entries(plan: WorkloadPlan, summaries: Sequence[WorkerSummary]) -> ExpectedEntries:
    """The entries each target should hold once the workers in ``summaries`` (one per worker) are done.

    For every user but DeleteChurnUser, ``expected`` counts the distinct keys
    drawn; a key whose write failed may be missing, so ``low`` subtracts the
    uncertain draws. For DeleteChurnUser a failed insert or delete can move the
    count either way by one per uncertain op.
    """
    ordered = sorted(summaries, key=lambda s: s.worker_index)
    indices = [s.worker_index for s in ordered]
    if indices != list(range(plan.worker_count)):
        raise ValueError(f"need one summary per worker 0..{plan.worker_count - 1}, got workers {indices}")
    replicas = len(plan.targets)
    if plan.locustfile is not None:  # the user's requests: the service reports its entries (mapprobe)
        return ExpectedEntries(expected=[0] * replicas, low=[0] * replicas, high=[0] * replicas, exact=False)
    draws = [s.draws for s in ordered]
    if plan.user == "DeleteChurnUser":
        expected = expected_live_after_churn(plan.keys, draws, replicas, plan.replicated)
    else:
        expected = expected_distinct_keys(plan.keys, draws, replicas, plan.replicated)
    uncertain = [0] * replicas
    for s in ordered:
        per_target = list(s.uncertain_per_target) + [0] * (replicas - len(s.uncertain_per_target))
        total = sum(per_target)
        for t in range(replicas):
            uncertain[t] += total if plan.replicated else per_target[t]
    if plan.user == "DeleteChurnUser":
        high = [e + u for e, u in zip(expected, uncertain, strict=True)]
    else:
        high = list(expected)
    low = [max(0, e - u) for e, u in zip(expected, uncertain, strict=True)]
    return ExpectedEntries(expected=expected, low=low, high=high, exact=not any(uncertain))
