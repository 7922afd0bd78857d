"""What this kernel can do for faults, found by trying it in a throwaway namespace.

``probe_kernel()`` creates a namespace ``mqprobe-<hex>``, tries a netem qdisc on
its loopback and one nftables table with every expression the engines use
(numgen, reject with tcp reset / icmpx, nat redirect), then deletes the
namespace (which takes the table and qdisc with it). ``mechanisms_for`` says,
per fault, which mechanism the agent will use given those capabilities.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.resolve import ResolvedFault

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0

_NFT_PROBE = """
table inet mapquake_probe {
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr 198.18.255.254 meta l4proto tcp reject with tcp reset
    ip saddr 198.18.255.254 reject with icmpx admin-prohibited
    ip saddr 198.18.255.253 numgen random mod 10000 < 500 drop
  }
  chain prerouting {
    type nat hook prerouting priority -110; policy accept;
    ip saddr 198.18.255.252 meta l4proto tcp tcp dport != 1 redirect to :1
  }
}
"""


@dataclass(frozen=True)
class Capabilities:
    """Kernel features found by ``probe_kernel`` (True = works here)."""

    nft: bool
    netem: bool
    detail: str = ""

    @property
    def delay_mechanism(self) -> str:
        return "tc netem" if self.netem else "delay proxy (no sch_netem here: nft redirect to a userspace proxy)"


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)


def probe_kernel() -> Capabilities:
    """Try netem and nftables in a throwaway namespace. Side effects: creates and deletes ``mqprobe-<hex>``."""
    ns = f"mqprobe-{secrets.token_hex(4)}"
    created = _run(["ip", "netns", "add", ns])
    if created.returncode != 0:
        return Capabilities(nft=False, netem=False, detail=f"cannot create a namespace: {created.stderr.strip()}")
    try:
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        netem = _run(["tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "handle", "6d71:", "netem", "delay", "1ms"])
        try:
            nft = _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=_NFT_PROBE)
            nft_ok, nft_err = nft.returncode == 0, nft.stderr.strip()
        except FileNotFoundError:
            nft_ok, nft_err = False, "nft is not installed (Debian package nftables)"
        notes = []
        if netem.returncode != 0:
            notes.append(f"netem: {netem.stderr.strip() or 'unavailable'}")
        if not nft_ok:
            notes.append(f"nft: {nft_err}")
        caps = Capabilities(nft=nft_ok, netem=netem.returncode == 0, detail="; ".join(notes))
    finally:
        _run(["ip", "netns", "del", ns])
    log.info("kernel probe: nft=%s netem=%s %s", caps.nft, caps.netem, caps.detail)
    return caps


def mechanisms_for(fault: ResolvedFault, caps: Capabilities) -> list[str]:
    """Which mechanism each part of ``fault`` will use on a kernel with ``caps``."""
    out = []
    if fault.kind == "partition":
        mode = fault.cuts[0].mode if fault.cuts else "drop"
        what = "drop" if mode == "drop" else "reject (tcp reset, icmp admin-prohibited)"
        out.append(f"nftables {what} on input, one table per run" + ("" if caps.nft else " — UNAVAILABLE: nft missing"))
    elif fault.kind == "netem":
        rule = fault.netem[0] if fault.netem else None
        if rule is not None and rule.loss:
            out.append("loss: nftables numgen random" + ("" if caps.nft else " — UNAVAILABLE: nft missing"))
        if rule is not None and rule.delay_s:
            out.append(f"delay: {caps.delay_mechanism}")
    elif fault.kind == "kill":
        out.append("SIGKILL to the replica's recorded pid")
    elif fault.kind == "pause":
        out.append("SIGSTOP to the replica's recorded pid, SIGCONT at heal")
    return out
