"""nftables: one table per run per namespace, rewritten atomically from the active faults.

The agent keeps, per namespace, the rules of every active fault and renders them
into ``table inet mapquake_<run>``; every change replaces the whole table in one
nft transaction (create-if-missing, delete, create), so a namespace never holds a
half-applied set and healing one fault leaves the others in place. When the last
fault of a namespace heals the table is deleted. Tables with any other name are
never read, flushed or deleted.

Rules (all in the input hook, priority -10, so they run before anything else and
for every packet, not only new connections; established connections are cut):

* drop: ``ip saddr {…} drop`` — the sender sees silence (timeouts).
* reject: ``ip saddr {…} meta l4proto tcp reject with tcp reset`` then
  ``reject with icmpx admin-prohibited`` — the sender sees a reset / unreachable
  at once. The resets and unreachables our own rejects send back are let through
  on the other side (``tcp flags rst``, ``icmp destination-unreachable``
  accepted first), or a symmetric reject would swallow them and turn into a drop.
* loss: ``numgen random mod 10000 < N drop`` with N = loss × 10000; a loss of 100%
  is a plain ``drop`` (nft takes no ``< 10000``: numgen's values are 0-9999).
* delay proxy: a nat prerouting ``redirect to :port`` of every TCP connection
  arriving from outside, and a reset of connections that arrived before the
  redirect (``ct direction original ct status & dnat == 0``), so clients reconnect
  through the proxy.

The rules reach nft only as a libnftables JSON document built from
Python dicts: every address is parsed as IPv4 (``ipaddress``), ports are integers, the
run id and comments must match strict patterns, and all of them are JSON values,
never text spliced into a script, so no field can add a statement, a table or an
``include``. The document goes to libnftables in-process (nftlib.LibNft: a context opened
inside the namespace, well under a millisecond a transaction) or, where the binding is missing, to
``nsenter … nft -j -f -`` (NftCommand).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.engines.command import NetnsHandle, Runner, check, subprocess_runner

log = logging.getLogger(__name__)

TABLE_PREFIX = "mapquake_"
FILTER_PRIORITY = -10
NAT_PRIORITY = -110


def table_name(run_id: str) -> str:
    return f"{TABLE_PREFIX}{run_id}"


@dataclass(frozen=True)
class Cut:
    """Refuse packets from ``sources`` (drop or reject), on behalf of fault ``fault_id``."""

    fault_id: str
    sources: tuple[str, ...]
    mode: str  # drop | reject


@dataclass(frozen=True)
class Loss:
    fault_id: str
    fraction: float


@dataclass(frozen=True)
class Redirect:
    fault_id: str
    port: int


@dataclass
class NamespaceRules:
    """Everything active in one namespace. Empty → the table is deleted."""

    cuts: list[Cut] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.cuts or self.losses or self.redirects)

    def without(self, fault_id: str) -> NamespaceRules:
        return NamespaceRules(
            cuts=[c for c in self.cuts if c.fault_id != fault_id],
            losses=[x for x in self.losses if x.fault_id != fault_id],
            redirects=[r for r in self.redirects if r.fault_id != fault_id],
        )


_RUN_ID_RE = re.compile(r"^[0-9a-f]{8}$")
_COMMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
Json = dict[str, Any]


def _checked_run_id(run_id: str) -> str:
    if not _RUN_ID_RE.match(run_id):
        raise ValueError(f"run id {run_id!r} is not 8 lowercase hex digits")
    return run_id


def _saddr(addresses: Sequence[str]) -> Json:
    """``ip saddr { … }``: every address parsed as IPv4 (a ValueError otherwise), never pasted as text."""
    parsed = [str(ipaddress.IPv4Address(a)) for a in addresses]
    if not parsed:
        raise ValueError("a cut needs at least one source address")
    return _match("==", {"payload": {"protocol": "ip", "field": "saddr"}}, {"set": parsed})


def _match(op: str, left: Json, right: object) -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


_L4_TCP = _match("==", {"meta": {"key": "l4proto"}}, "tcp")
_FROM_OUTSIDE = _match("!=", {"meta": {"key": "iifname"}}, "lo")
_ACCEPT: Json = {"accept": None}
_DROP: Json = {"drop": None}
_TCP_RESET: Json = {"reject": {"type": "tcp reset"}}


def render(run_id: str, rules: NamespaceRules) -> Json:
    """The libnftables JSON document (``nft -j -f -``) that replaces this run's table with ``rules`` in one
    transaction. Pure. Addresses, ports and comments are JSON values, so no field can add a statement."""
    table = table_name(_checked_run_id(run_id))
    inp: list[tuple[str, list[Json]]] = []  # (fault id, expressions)
    for cut in rules.cuts:
        if cut.mode == "reject":
            rst = _match("==", {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, "rst"]}, "rst")
            unreach = _match("==", {"payload": {"protocol": "icmp", "field": "type"}}, "destination-unreachable")
            inp.append((cut.fault_id, [_saddr(cut.sources), rst, _ACCEPT]))
            inp.append((cut.fault_id, [_saddr(cut.sources), unreach, _ACCEPT]))
    for cut in rules.cuts:
        if cut.mode == "drop":
            inp.append((cut.fault_id, [_saddr(cut.sources), _DROP]))
    for cut in rules.cuts:
        if cut.mode == "reject":
            inp.append((cut.fault_id, [_saddr(cut.sources), _L4_TCP, _TCP_RESET]))
            inp.append((cut.fault_id, [_saddr(cut.sources), {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]))
        elif cut.mode != "drop":
            raise ValueError(f"cut mode {cut.mode!r} is not drop or reject")
    for loss in rules.losses:
        n = max(0, min(10000, round(loss.fraction * 10000)))
        # nft refuses "< 10000" (numgen's values are 0-9999): all is a plain drop.
        numgen = {"numgen": {"mode": "random", "mod": 10000, "offset": 0}}
        inp.append((loss.fault_id, [_DROP] if n >= 10000 else [_match("<", numgen, n), _DROP]))
    pre: list[tuple[str, list[Json]]] = []
    for r in rules.redirects:
        port = int(r.port)
        if not 0 < port < 65536:
            raise ValueError(f"redirect port {r.port!r} is not a TCP port")
        original = _match("==", {"ct": {"key": "direction"}}, "original")
        not_dnat = _match("!", {"ct": {"key": "status"}}, "dnat")
        inp.append((r.fault_id, [_FROM_OUTSIDE, _L4_TCP, original, not_dnat, _TCP_RESET]))
        not_proxy = _match("!=", {"payload": {"protocol": "tcp", "field": "dport"}}, port)
        pre.append((r.fault_id, [_FROM_OUTSIDE, _L4_TCP, not_proxy, {"redirect": {"port": port}}]))
    ref = {"family": "inet", "table": table}
    commands: list[Json] = [*_replace_table(table)]
    commands.append({"add": {"chain": {**ref, "name": "input", "type": "filter", "hook": "input",
                                       "prio": FILTER_PRIORITY, "policy": "accept"}}})  # fmt: skip
    if pre:
        commands.append({"add": {"chain": {**ref, "name": "prerouting", "type": "nat", "hook": "prerouting",
                                           "prio": NAT_PRIORITY, "policy": "accept"}}})  # fmt: skip
    for chain, lines in (("input", inp), ("prerouting", pre)):
        for fault_id, expr in lines:
            commands.append({"add": {"rule": {**ref, "chain": chain, "expr": expr, "comment": _comment(fault_id)}}})
    return {"nftables": commands}


def _comment(fault_id: str) -> str:
    if not _COMMENT_RE.match(fault_id):
        raise ValueError(f"fault id {fault_id!r} does not match {_COMMENT_RE.pattern}")
    return fault_id


def _replace_table(table: str) -> list[Json]:
    """Create the table if missing, then delete it (so the delete never fails), then create it empty."""
    ident = {"table": {"family": "inet", "name": table}}
    return [{"add": ident}, {"delete": ident}, {"add": ident}]


class Nft(Protocol):
    """How a JSON document reaches nftables in a namespace: NftCommand, or nftlib.LibNft in-process."""

    name: str

    def run(self, handle: NetnsHandle, document: Json, what: str) -> None:
        """One transaction; InfrastructureError naming ``what`` if nft refused it."""
        ...

    def tables(self, handle: NetnsHandle) -> list[str]:
        """Names of the inet tables in the namespace (read only; empty if it cannot be read)."""
        ...

    def forget(self, handle: NetnsHandle) -> None:
        """The namespace holds no table of this run now (what was kept open for it may go, later)."""
        ...

    def evict(self) -> int:
        """Release what was kept open for namespaces idle for a while or gone; returns how many."""
        ...


class NftCommand:
    """``nsenter … nft -j -f -`` per transaction, through a Runner (tests pass a fake one)."""

    name = "nft command"

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def run(self, handle: NetnsHandle, document: Json, what: str) -> None:
        check(self.runner(handle.argv("nft", "-j", "-f", "-"), json.dumps(document)), what)

    def tables(self, handle: NetnsHandle) -> list[str]:
        result = self.runner(handle.argv("nft", "list", "tables", "inet"), None)
        if result.returncode != 0:
            return []
        return [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table inet ")]

    def forget(self, handle: NetnsHandle) -> None:
        pass

    def evict(self) -> int:
        return 0


def apply(handle: NetnsHandle, run_id: str, rules: NamespaceRules, nft: Nft | None = None) -> None:
    """Make the run's table in ``handle`` hold exactly ``rules`` (deleted when empty). Side effect: nft transaction."""
    nft = nft or NftCommand()
    if rules.empty():
        delete_table(handle, run_id, nft)
        return
    nft.run(handle, render(run_id, rules), f"nft in {handle.name}")


def list_tables(handle: NetnsHandle, nft: Nft | None = None) -> list[str]:
    """Names of the inet tables in the namespace (read only)."""
    return (nft or NftCommand()).tables(handle)


def delete_table(handle: NetnsHandle, run_id: str, nft: Nft | None = None) -> None:
    """Delete this run's table from the namespace (one idempotent transaction). Touches no other table."""
    nft = nft or NftCommand()
    table = table_name(_checked_run_id(run_id))
    nft.run(handle, {"nftables": _replace_table(table)[:2]}, f"nft delete inet {table} in {handle.name}")
    nft.forget(handle)
