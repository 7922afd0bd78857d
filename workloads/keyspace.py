"""Deterministic key spaces: which keys each Locust worker writes, and how many stay live.

The model's input is the number of distinct live keys each target holds. Every
key a worker writes comes from a stream that is a pure function of
(key spec, worker index, worker count, purpose), so the controller regenerates
the streams from the workers' draw counts and knows the answer without asking
the targets (``expected_distinct_keys``, ``expected_live_after_churn``).

Key ``i`` is named ``k<i>`` ("k0", "k17"), as in the Go load generator mapload.

Distributions over ``[0, space)``:

- ``sequential``: worker ``w`` of ``W`` owns the stride ``w, w+W, w+2W, ...``
  below ``space`` and walks it in order, starting over at its first key when it
  has written all of them. Strides never overlap, so the count is closed form.
- ``uniform``: every key equally likely.
- ``zipf``: bounded Zipf, P(key i) proportional to (i+1)^-s over the whole
  space (s > 1, like Go's rand.Zipf), drawn exactly by inverse CDF over the
  precomputed cumulative weights (8 bytes per key of the space, built once per
  process).
- ``hot-set``: a fraction ``hot_ops_fraction`` of the draws go to the first
  ``hot_fraction`` of the keys, the rest to the others, uniformly within each.

Each worker has one stream per purpose ("write", "read", "mix"), seeded from
(seed, worker, purpose) and shared by all the users of the worker: a Locust
worker is one gevent thread, so the order of draws is deterministic per worker
even though the users interleave. Only the number of draws matters.

Routing over R unreplicated targets: a key lives on target ``crc32(key) % R``.
With replication every target holds every key.
"""

from __future__ import annotations

import math
import random
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from itertools import accumulate
from typing import Any, Literal, get_args

Distribution = Literal["sequential", "uniform", "zipf", "hot-set"]
DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)
Purpose = Literal["write", "read", "mix"]


@dataclass(frozen=True)
class KeySpec:
    """A key space and how keys are drawn from it. Invalid specs raise ValueError naming the field.

    The one key-space type: a scenario's ``load.keys`` is built as this class (same field names,
    defaults equal to the scenario schema's), and the backends put it into the workload plan unchanged.
    """

    space: int
    """Number of keys: key indices are 0 .. space-1, named k0 .. k<space-1>."""
    distribution: Distribution = "sequential"
    """One of sequential, uniform, zipf, hot-set."""
    seed: int = 1
    """Seeds every worker's streams (together with the worker index and the purpose)."""
    s: float = 1.1
    """zipf: the exponent, > 1; larger is more skewed."""
    hot_fraction: float = 0.01
    """hot-set: the fraction of the space that is hot (at least one key)."""
    hot_ops_fraction: float = 0.9
    """hot-set: the fraction of draws that go to a hot key."""
    live: int | None = None
    """DeleteChurnUser: the constant number of live keys over all workers (default space // 2)."""

    def __post_init__(self) -> None:
        errors = self.errors()
        if errors:
            raise ValueError("; ".join(errors))

    def errors(self) -> list[str]:
        """Every problem with the spec, as 'field: message'."""
        out: list[str] = []
        if isinstance(self.space, bool) or not isinstance(self.space, int) or self.space < 1:
            out.append(f"space: must be a positive integer, got {self.space!r}")
        if self.distribution not in DISTRIBUTIONS:
            out.append(f"distribution: unknown {self.distribution!r} (choose one of {list(DISTRIBUTIONS)})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            out.append(f"seed: must be an integer, got {self.seed!r}")
        if not isinstance(self.s, int | float) or not math.isfinite(self.s) or self.s <= 1:
            out.append(f"s: zipf exponent must be a finite number > 1, got {self.s!r}")
        if not isinstance(self.hot_fraction, int | float) or not 0 < self.hot_fraction <= 1:
            out.append(f"hot_fraction: must be in (0, 1], got {self.hot_fraction!r}")
        if not isinstance(self.hot_ops_fraction, int | float) or not 0 <= self.hot_ops_fraction <= 1:
            out.append(f"hot_ops_fraction: must be in [0, 1], got {self.hot_ops_fraction!r}")
        if self.live is not None and (isinstance(self.live, bool) or not isinstance(self.live, int) or self.live < 1):
            out.append(f"live: must be a positive integer, got {self.live!r}")
        elif self.live is not None and isinstance(self.space, int) and self.live * 2 > self.space:
            out.append(f"live: at most half the space ({self.space // 2}) so churned keys are never reused early")
        return out

    @property
    def live_keys(self) -> int:
        """The DeleteChurnUser live size over all workers."""
        return self.live if self.live is not None else max(1, self.space // 2)

    @property
    def hot_keys(self) -> int:
        """hot-set: how many keys (the first ones) are hot."""
        return min(self.space, max(1, round(self.hot_fraction * self.space)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeySpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown key spec field(s) {unknown} (known: {sorted(known)})")
        return cls(**data)


KEY_PREFIX = "k"
KEY_LENGTH = 16
"""Keys are exactly 16 bytes ("k" and 15 zero-padded digits): one size-class-16 allocation each on
the target, so a key costs a known 16 B. Shorter keys would share 16-B tiny-allocator blocks, and
how they share depends on what else the server allocated in between: no model could predict it."""


def key_name(index: int) -> str:
    """The wire name of key ``index``: "k000000000000017" for 17, exactly as mapload names them."""
    return KEY_PREFIX + str(index).zfill(KEY_LENGTH - len(KEY_PREFIX))


KEY_BYTES_FORMAT = b"k%015d"
"""``KEY_BYTES_FORMAT % index`` is ``key_name(index)`` as UTF-8 bytes (hot loops format it inline)."""


def key_bytes(index: int) -> bytes:
    """``key_name(index)`` as UTF-8 bytes, built directly (the gRPC write path sends bytes)."""
    return KEY_BYTES_FORMAT % index


def target_of(key: str, replicas: int) -> int:
    """Which of ``replicas`` unreplicated targets holds ``key``: crc32 of its UTF-8 name, mod replicas."""
    return zlib.crc32(key.encode()) % replicas if replicas > 1 else 0


def target_of_index(index: int, replicas: int) -> int:
    """``target_of(key_name(index), replicas)``, without building the str."""
    return zlib.crc32(KEY_BYTES_FORMAT % index) % replicas if replicas > 1 else 0


def stride_size(space: int, worker: int, workers: int) -> int:
    """How many keys of [0, space) the sequential stride of ``worker`` holds: w, w+W, ... < space."""
    return max(0, (space - worker + workers - 1) // workers)


@lru_cache(maxsize=4)
def _zipf_cumulative(space: int, s: float) -> array[float]:
    """Cumulative weights sum_{j<=i} (j+1)^-s, for i in [0, space)."""
    return array("d", accumulate(k**-s for k in range(1, space + 1)))


def seeded_random(spec: KeySpec, worker: int, purpose: str) -> random.Random:
    # A str seed is hashed with SHA-512 by random.seed (version 2): the same
    # stream in every process, whatever PYTHONHASHSEED is.
    return random.Random(f"mapquake/{spec.seed}/{worker}/{purpose}")


class KeyStream:
    """The keys one worker draws for one purpose, in order. ``next_index`` is one draw."""

    def __init__(self, spec: KeySpec, worker: int, workers: int, purpose: Purpose | str = "write") -> None:
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker index {worker} is not in [0, {workers})")
        self.spec = spec
        self.worker = worker
        self.workers = workers
        self.purpose = purpose
        self.drawn = 0
        """How many keys were drawn so far: the number ``expected_distinct_keys`` needs."""
        self._rng = seeded_random(spec, worker, purpose)
        self._stride = stride_size(spec.space, worker, workers)
        if spec.distribution == "sequential" and self._stride == 0:
            raise ValueError(
                f"sequential key space of {spec.space} keys is smaller than the {workers} workers "
                f"(worker {worker} would have no key); raise keys.space"
            )
        self._cum = _zipf_cumulative(spec.space, float(spec.s)) if spec.distribution == "zipf" else None
        self._hot = spec.hot_keys

    def next_index(self) -> int:
        """Draw one key index."""
        n = self.drawn
        self.drawn = n + 1
        spec = self.spec
        dist = spec.distribution
        rnd = self._rng.random
        if dist == "sequential":
            return self.worker + (n % self._stride) * self.workers
        if dist == "uniform":
            return min(int(rnd() * spec.space), spec.space - 1)
        if dist == "zipf":
            cum = self._cum
            assert cum is not None
            return min(bisect_right(cum, rnd() * cum[-1]), spec.space - 1)
        # hot-set: always two draws, so the stream does not depend on the branch taken
        hot_side = rnd() < spec.hot_ops_fraction
        u = rnd()
        hot = self._hot
        if hot_side or hot >= spec.space:
            return min(int(u * hot), hot - 1)
        return hot + min(int(u * (spec.space - hot)), spec.space - hot - 1)

    def take(self, n: int) -> list[int]:
        """Draw ``n`` key indices; the same as ``n`` calls of ``next_index``."""
        if self.spec.distribution == "sequential":
            # The write path's hot loop: a batch of a stride is a range, built without a call per key.
            start, stride, workers = self.drawn, self._stride, self.workers
            self.drawn = start + n
            pos = start % stride
            if pos + n <= stride:
                first = self.worker + pos * workers
                return list(range(first, first + n * workers, workers))
            return [self.worker + ((start + j) % stride) * workers for j in range(n)]
        draw = self.next_index
        return [draw() for _ in range(n)]


def _count_per_target(indices: Iterable[int], replicas: int, replicated: bool) -> list[int]:
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if replicas == 1 or replicated:
        total = sum(1 for _ in indices) if not isinstance(indices, Sequence | set) else len(indices)
        return [total] * replicas
    counts = [0] * replicas
    for i in indices:
        counts[target_of_index(i, replicas)] += 1
    return counts


def _sequential_keys(spec: KeySpec, draws: Sequence[int]) -> Iterable[int]:
    workers = len(draws)
    for w, n in enumerate(draws):
        for p in range(min(n, stride_size(spec.space, w, workers))):
            yield w + p * workers


def expected_distinct_keys(
    spec: KeySpec, writes_per_worker: Sequence[int], replicas: int = 1, replicated: bool = False
) -> list[int]:
    """Distinct keys each target holds after each worker ``w`` drew ``writes_per_worker[w]`` write keys.

    Exact when every draw was written and nothing was deleted (MapWriteUser,
    SyncMapChurnUser's LoadOrStore, the writes of ReadWriteMix). Returns one
    count per target; with ``replicated`` every target holds all the keys.
    """
    workers = len(writes_per_worker)
    if workers == 0:
        return [0] * replicas
    if any(n < 0 for n in writes_per_worker):
        raise ValueError(f"write counts must be >= 0, got {list(writes_per_worker)}")
    if spec.distribution == "sequential":
        if replicas == 1 or replicated:
            total = sum(min(n, stride_size(spec.space, w, workers)) for w, n in enumerate(writes_per_worker))
            return [total] * max(replicas, 1)
        return _count_per_target(_sequential_keys(spec, writes_per_worker), replicas, replicated)
    seen: set[int] = set()
    for w, n in enumerate(writes_per_worker):
        if n:
            seen.update(KeyStream(spec, w, workers, "write").take(n))
    return _count_per_target(seen, replicas, replicated)


# --- DeleteChurnUser --------------------------------------------------------------------------


def churn_live_share(spec: KeySpec, worker: int, workers: int) -> int:
    """How many live keys ``worker`` keeps while churning: its share of ``spec.live_keys``."""
    live = spec.live_keys
    return live // workers + (1 if worker < live % workers else 0)


@dataclass(frozen=True)
class ChurnOp:
    """Churn op n of one worker: insert one key, then delete the one inserted ``live`` ops earlier."""

    insert: int
    delete: int | None


class ChurnStream:
    """DeleteChurnUser's keys for one worker: a sliding window over the worker's sequential stride.

    Op ``n`` inserts stride position ``n mod c`` and, once ``n >= L``, deletes
    position ``(n - L) mod c``, where ``c`` is the stride size and ``L`` the
    worker's live share (``L <= c / 2``, so a deleted key is re-inserted no
    earlier than ``L`` ops later). After ``N`` completed ops the worker's live
    keys are exactly the last ``min(N, L)`` positions inserted, provided fewer
    than ``L`` ops of the worker are in flight at once (fewer users per worker
    than ``L``). The distribution of the spec is not used: churn is sequential.
    """

    def __init__(self, spec: KeySpec, worker: int, workers: int) -> None:
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker index {worker} is not in [0, {workers})")
        self.worker = worker
        self.workers = workers
        self.stride = stride_size(spec.space, worker, workers)
        self.live = churn_live_share(spec, worker, workers)
        if self.live < 1:
            raise ValueError(f"keys.live ({spec.live_keys}) is smaller than the {workers} workers; raise it")
        if self.live * 2 > self.stride:
            raise ValueError(
                f"worker {worker} keeps {self.live} live keys in a stride of {self.stride}: "
                f"keys.space must be at least twice keys.live"
            )
        self.drawn = 0

    def _key(self, position: int) -> int:
        return self.worker + (position % self.stride) * self.workers

    def next_op(self) -> ChurnOp:
        n = self.drawn
        self.drawn = n + 1
        return ChurnOp(insert=self._key(n), delete=self._key(n - self.live) if n >= self.live else None)

    def live_after(self, ops: int) -> list[int]:
        """The worker's live key indices after ``ops`` completed ops."""
        return [self._key(n) for n in range(max(0, ops - self.live), ops)]


def expected_live_after_churn(
    spec: KeySpec, ops_per_worker: Sequence[int], replicas: int = 1, replicated: bool = False
) -> list[int]:
    """Live keys each target holds after DeleteChurnUser ran ``ops_per_worker[w]`` ops on worker ``w``.

    Exact when every op completed (no errors, none interrupted) and each worker
    ran fewer users than its live share; otherwise the summaries' ``uncertain``
    counts bound the difference (see ``workloads.plan.expected_entries``).
    """
    workers = len(ops_per_worker)
    keys: list[int] = []
    for w, n in enumerate(ops_per_worker):
        stream = ChurnStream(spec, w, workers)
        if replicas == 1 or replicated:
            keys.extend(range(min(n, stream.live)))  # only the count matters
        else:
            keys.extend(stream.live_after(n))
    if replicas == 1 or replicated:
        return [len(keys)] * max(replicas, 1)
    return _count_per_target(keys, replicas, replicated)
