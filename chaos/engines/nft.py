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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

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


def _set(addresses: Sequence[str]) -> str:
    return "{ " + ", ".join(addresses) + " }"


def _comment(fault_id: str) -> str:
    return f'comment "{fault_id[:100]}"'


def render(run_id: str, rules: NamespaceRules) -> str:
    """The nft script that replaces this run's table with ``rules`` in one transaction. Pure."""
    table = f"inet {table_name(run_id)}"
    inp: list[str] = []
    for cut in rules.cuts:
        if cut.mode == "reject":
            inp.append(f"ip saddr {_set(cut.sources)} tcp flags & rst == rst accept {_comment(cut.fault_id)}")
            inp.append(
                f"ip saddr {_set(cut.sources)} icmp type destination-unreachable accept {_comment(cut.fault_id)}"
            )
    for cut in rules.cuts:
        if cut.mode == "drop":
            inp.append(f"ip saddr {_set(cut.sources)} drop {_comment(cut.fault_id)}")
    for cut in rules.cuts:
        if cut.mode == "reject":
            inp.append(f"ip saddr {_set(cut.sources)} meta l4proto tcp reject with tcp reset {_comment(cut.fault_id)}")
            inp.append(f"ip saddr {_set(cut.sources)} reject with icmpx admin-prohibited {_comment(cut.fault_id)}")
    for loss in rules.losses:
        n = max(0, min(10000, round(loss.fraction * 10000)))
        # nft refuses "< 10000" (numgen's values are 0-9999): all is a plain drop.
        condition = "" if n >= 10000 else f"numgen random mod 10000 < {n} "
        inp.append(f"{condition}drop {_comment(loss.fault_id)}")
    pre: list[str] = []
    for r in rules.redirects:
        inp.append(
            f'iifname != "lo" meta l4proto tcp ct direction original ct status & dnat == 0 '
            f"reject with tcp reset {_comment(r.fault_id)}"
        )
        pre.append(
            f'iifname != "lo" meta l4proto tcp tcp dport != {r.port} redirect to :{r.port} {_comment(r.fault_id)}'
        )
    body = [f"  chain input {{\n    type filter hook input priority {FILTER_PRIORITY}; policy accept;"]
    body += [f"    {line}" for line in inp]
    body.append("  }")
    if pre:
        body.append(f"  chain prerouting {{\n    type nat hook prerouting priority {NAT_PRIORITY}; policy accept;")
        body += [f"    {line}" for line in pre]
        body.append("  }")
    return f"table {table} {{}}\ndelete table {table}\ntable {table} {{\n" + "\n".join(body) + "\n}\n"


def apply(handle: NetnsHandle, run_id: str, rules: NamespaceRules, runner: Runner = subprocess_runner) -> None:
    """Make the run's table in ``handle`` hold exactly ``rules`` (deleted when empty). Side effect: nft transaction."""
    if rules.empty():
        delete_table(handle, run_id, runner)
        return
    check(runner(handle.argv("nft", "-f", "-"), render(run_id, rules)), f"nft in {handle.name}")


def list_tables(handle: NetnsHandle, runner: Runner = subprocess_runner) -> list[str]:
    """Names of the inet tables in the namespace (read only)."""
    result = runner(handle.argv("nft", "list", "tables", "inet"), None)
    if result.returncode != 0:
        return []
    return [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table inet ")]


def delete_table(handle: NetnsHandle, run_id: str, runner: Runner = subprocess_runner) -> None:
    """Delete this run's table from the namespace (one idempotent transaction). Touches no other table."""
    table = f"inet {table_name(run_id)}"
    script = f"table {table} {{}}\ndelete table {table}\n"
    check(runner(handle.argv("nft", "-f", "-"), script), f"nft delete {table} in {handle.name}")
