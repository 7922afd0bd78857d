"""The names of a run's kernel objects, which carry its run id: pure, no I/O.

The local network creates them (orchestrator/backends/local/network.py), cleanup
recognises them by the run id they carry, and the chaos agent checks that a
namespace it is asked to touch is named for a run it serves::

    netns   mq-<run>-<node>        e.g. mq-3f9a0c1e-cache-0
    bridge  mqb<run>               e.g. mqb3f9a0c1e
    veths   mq<run>h<i> (host side), mq<run>n<i> (namespace side) of node i
"""

from __future__ import annotations

import re

from orchestrator.core.errors import InfrastructureError

IFNAME_MAX = 15  # the kernel's IFNAMSIZ - 1

_NETNS_RE = re.compile(r"^mq-([0-9a-f]{8})-[a-z0-9-]+$")
_BRIDGE_RE = re.compile(r"^mqb([0-9a-f]{8})$")
_VETH_RE = re.compile(r"^mq([0-9a-f]{8})[hn][0-9]+$")


def netns_name(run_id: str, node: str) -> str:
    return f"mq-{run_id}-{node}"


def bridge_name(run_id: str) -> str:
    return f"mqb{run_id}"


def veth_names(run_id: str, index: int) -> tuple[str, str]:
    """(host side, namespace side) interface names of node ``index``; both ≤ 15 characters."""
    host, peer = f"mq{run_id}h{index}", f"mq{run_id}n{index}"
    if len(host) > IFNAME_MAX:
        raise InfrastructureError(f"node index {index} gives interface name {host!r} longer than {IFNAME_MAX}")
    return host, peer


def run_id_of(name: str) -> str | None:
    """The run id in a mapquake netns, bridge or veth name; None for anything else."""
    for pattern in (_NETNS_RE, _BRIDGE_RE, _VETH_RE):
        m = pattern.match(name)
        if m:
            return m.group(1)
    return None


def is_bridge_name(name: str) -> bool:
    """Whether ``name`` has the shape of a run's bridge (``mqb<run>``)."""
    return _BRIDGE_RE.match(name) is not None
