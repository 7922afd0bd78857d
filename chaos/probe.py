"""What this kernel can do for faults, found by trying it in a throwaway namespace.

``probe_kernel()`` creates a namespace ``mqprobe-<hex>``, tries a netem qdisc on
its loopback and one nftables table with every expression the engines use
(numgen, reject with tcp reset / icmpx, nat redirect), then deletes the
namespace (which takes the table and qdisc with it). The agent probes at start and
picks its mechanisms from the result; ``chaos.resolve.mechanisms_for`` says, per
resolved fault, which one it will use (for ``--dry-run``).
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from dataclasses import dataclass

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
