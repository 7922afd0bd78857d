"""What the agent accepts from the wire: every field of a request checked before anything acts on it.

The agent runs as root and listens on the network, so a request is read as hostile until
every field has been parsed into what it claims to be: a lease is a finite positive number
of seconds, an address is an IPv4 address (``ipaddress``), a run id is 8 hex digits, a fault
id, a namespace and an interface name match strict patterns, netem settings are finite and
in range, a signal is kill or pause of a pid (or 0: the pod's main process, on Kubernetes).
A request that fails any check is refused whole with ``Invalid`` (gRPC ``INVALID_ARGUMENT``)
before a namespace is entered or a command runs. Ownership (is this namespace, this pid the
run's?) is checked after this, by ``ownership``; rules reach nft only as a JSON document (``chaos.engines.nft``).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Sequence

from chaos.agent.pb import agent_pb2 as pb
from orchestrator.core.errors import MapquakeError

MAX_LEASE_S = 600.0  # longer leases are cut to this (a dead controller's faults must end)
MAX_DELAY_S = 60.0  # delay and jitter, each
MAX_SOURCES = 1024  # addresses in one cut
MAX_NODES = 1024  # cuts or netem nodes in one fault
MAX_FAULTS = 1024  # faults in one Prepare, ids in one Renew or Heal
MAX_SUMMARY = 500
PID_MAX = 4_194_304  # the kernel's limit for /proc/sys/kernel/pid_max

RUN_ID_RE = re.compile(r"^[0-9a-f]{8}$")  # orchestrator.core.ledger.new_run_id
FAULT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")  # e.g. "degraded.0"
NETNS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}(/[A-Za-z0-9][A-Za-z0-9._-]{0,126}){0,2}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$")  # IFNAMSIZ - 1
MODES = ("drop", "reject")
ACTIONS = ("kill", "pause")


class Invalid(MapquakeError):
    """A malformed request (gRPC INVALID_ARGUMENT): refused whole, nothing was done."""


def lease(lease_s: float) -> float:
    """The lease to hold, in seconds: finite and positive, cut to MAX_LEASE_S. Raises Invalid."""
    if not isinstance(lease_s, (int, float)) or not math.isfinite(lease_s) or lease_s <= 0:
        raise Invalid(
            f"lease_s must be a finite number of seconds > 0 (at most {MAX_LEASE_S:g} is held), not {lease_s!r}"
        )
    return min(float(lease_s), MAX_LEASE_S)


def run_id(value: str) -> str:
    if not RUN_ID_RE.match(value):
        raise Invalid(f"run id {value!r} is not 8 lowercase hex digits")
    return value


def fault_id(value: str) -> str:
    if not FAULT_ID_RE.match(value):
        raise Invalid(f"fault id {value!r} does not match {FAULT_ID_RE.pattern}")
    return value


def fault_ids(values: Sequence[str]) -> list[str]:
    if len(values) > MAX_FAULTS:
        raise Invalid(f"{len(values)} fault ids in one call (at most {MAX_FAULTS})")
    return [fault_id(v) for v in values]


def netns(value: str) -> str:
    if not NETNS_RE.match(value) or ".." in value:
        raise Invalid(f"namespace {value!r} does not match {NETNS_RE.pattern}")
    return value


def ifname(value: str) -> str:
    if not IFNAME_RE.match(value):
        raise Invalid(f"interface name {value!r} does not match {IFNAME_RE.pattern}")
    return value


def address(value: str) -> str:
    """An IPv4 address in its canonical form (what the rules match: ``ip saddr``). Raises Invalid."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise Invalid(f"source {value!r} is not an IPv4 address") from None


def addresses(values: Iterable[str]) -> tuple[str, ...]:
    out = tuple(address(v) for v in values)
    if not out:
        raise Invalid("a cut has no source addresses")
    if len(out) > MAX_SOURCES:
        raise Invalid(f"a cut has {len(out)} source addresses (at most {MAX_SOURCES})")
    return out


def _seconds(what: str, value: float, limit: float) -> None:
    if not math.isfinite(value) or not 0.0 <= value <= limit:
        raise Invalid(f"{what} must be finite and between 0 and {limit:g} s, not {value!r}")


def degrade(node: pb.Degrade) -> None:
    netns(node.netns)
    ifname(node.ifname)
    _seconds("delay_s", node.delay_s, MAX_DELAY_S)
    _seconds("jitter_s", node.jitter_s, MAX_DELAY_S)
    if not math.isfinite(node.loss) or not 0.0 <= node.loss <= 1.0:
        raise Invalid(f"loss must be finite and a fraction between 0 and 1 (0–100 %), not {node.loss!r}")


def fault(msg: pb.Fault) -> None:
    """Check every field of ``msg``. Raises Invalid naming the first bad one; pure."""
    fault_id(msg.id)
    run_id(msg.run_id)
    where = f"fault {msg.id}"
    if len(msg.summary) > MAX_SUMMARY or not msg.summary.isprintable():
        raise Invalid(f"{where}: summary is not printable text of at most {MAX_SUMMARY} characters")
    kind = msg.WhichOneof("kind")
    try:
        if kind == "partition":
            mode = msg.partition.mode or "drop"
            if mode not in MODES:
                raise Invalid(f"partition mode {mode!r} is not drop or reject")
            _count("cuts", msg.partition.cuts)
            for cut in msg.partition.cuts:
                netns(cut.netns)
                addresses(cut.sources)
        elif kind == "netem":
            _count("nodes", msg.netem.nodes)
            for node in msg.netem.nodes:
                degrade(node)
        elif kind == "signal":
            if msg.signal.action not in ACTIONS:
                raise Invalid(f"signal action {msg.signal.action!r} is not kill or pause")
            netns(msg.signal.netns)
            if msg.signal.pid != 0 and not 1 < msg.signal.pid <= PID_MAX:
                raise Invalid(f"pid {msg.signal.pid} is not a process id (2..{PID_MAX}, or 0: the pod's main process)")
        else:
            raise Invalid("no kind (partition, netem or signal)")
    except Invalid as err:
        raise Invalid(f"{where}: {err.message}") from None


def faults(msgs: Sequence[pb.Fault]) -> None:
    if len(msgs) > MAX_FAULTS:
        raise Invalid(f"{len(msgs)} faults in one call (at most {MAX_FAULTS})")
    for msg in msgs:
        fault(msg)


def _count(what: str, items: Sequence[object]) -> None:
    if not items:
        raise Invalid(f"no {what}")
    if len(items) > MAX_NODES:
        raise Invalid(f"{len(items)} {what} (at most {MAX_NODES})")
