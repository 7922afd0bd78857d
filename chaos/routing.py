"""Which agent applies which part of a fault: a fault split by the host of each node it touches. Pure.

Locally one agent reaches every namespace (every host is None). On Kubernetes an agent reaches
only the pods of its own node, so a partition among replicas on two nodes becomes two faults
with the same id: the cuts in node A's pods go to A's agent, those in B's to B's. Each part is
a whole fault for its agent (its own lease, heal and renew under the same id).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TypeVar

from chaos.resolve import CutRule, NetemRule, ResolvedFault

K = TypeVar("K", bound=Hashable)


def split_by_host(fault: ResolvedFault, agent_of: Callable[[str | None], K]) -> dict[K, ResolvedFault]:
    """``fault`` cut into one fault per agent (``agent_of(host)``, which raises for a host without one).

    Parts keep the fault's key, kind and summary and hold only their agent's cuts, netem rules or
    signal, in the fault's order. A fault with no rule at all goes whole to ``agent_of(None)``.
    """
    cuts: dict[K, list[CutRule]] = {}
    netem: dict[K, list[NetemRule]] = {}
    order: list[K] = []

    def slot(host: str | None) -> K:
        key = agent_of(host)
        if key not in order:
            order.append(key)
        return key

    for cut in fault.cuts:
        cuts.setdefault(slot(cut.host), []).append(cut)
    for rule in fault.netem:
        netem.setdefault(slot(rule.host), []).append(rule)
    signal_key = slot(fault.signal.host) if fault.signal is not None else None
    if not order:
        return {agent_of(None): fault}
    return {
        key: replace(
            fault,
            cuts=tuple(cuts.get(key, ())),
            netem=tuple(netem.get(key, ())),
            signal=fault.signal if signal_key == key and fault.signal is not None else None,
        )
        for key in order
    }
