"""Partition shapes as grudges: pure functions, no I/O.

A *grudge* (Jepsen's word) maps a node to the set of nodes whose packets it
refuses to hear. A symmetric cut between A and B is the grudge where every node
of A holds a grudge against every node of B and vice versa; a one-way cut holds
it on one side only. Node order is the caller's (replica order); nothing here is
random, so a scenario's partition is the same on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Grudge = dict[str, frozenset[str]]
"""node → nodes whose packets it drops (nodes without a grudge are absent)."""


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``nodes`` in two, the first half the smaller: [1 2 3 4 5] → [1 2], [3 4 5] (as Jepsen)."""
    mid = len(nodes) // 2
    return list(nodes[:mid]), list(nodes[mid:])


def complete_grudge(components: Sequence[Sequence[str]]) -> Grudge:
    """Every node drops every node outside its own component."""
    everyone = {n for component in components for n in component}
    grudge: Grudge = {}
    for component in components:
        others = frozenset(everyone - set(component))
        for node in component:
            if others:
                grudge[node] = others
    return grudge


def one_way_grudge(senders: Sequence[str], receivers: Sequence[str]) -> Grudge:
    """Packets from ``senders`` to ``receivers`` are dropped; the other direction is untouched."""
    blocked = frozenset(senders)
    return {node: blocked for node in receivers} if blocked else {}


def isolate_one(nodes: Sequence[str]) -> Grudge:
    """The first node is cut from all others, both directions."""
    _require(nodes, 2, "isolate-one")
    return complete_grudge([[nodes[0]], list(nodes[1:])])


def halves(nodes: Sequence[str]) -> Grudge:
    """Two halves (the first the smaller), cut from each other both ways."""
    _require(nodes, 2, "halves")
    return complete_grudge(bisect(nodes))


def one_way(nodes: Sequence[str]) -> Grudge:
    """The halves of ``bisect``, cut in one direction: the first half's packets never reach the second."""
    _require(nodes, 2, "one-way")
    first, second = bisect(nodes)
    return one_way_grudge(first, second)


def bridge(nodes: Sequence[str]) -> Grudge:
    """Halves cut from each other, except the first node of the second half, which hears and is heard by all."""
    _require(nodes, 3, "bridge")
    first, second = bisect(nodes)
    middle = second[0]
    grudge = complete_grudge([first, second])
    return {n: others - {middle} for n, others in grudge.items() if n != middle and others - {middle}}


def majorities_ring(nodes: Sequence[str]) -> Grudge:
    """Each node hears a majority, and no two nodes hear the same majority (nodes in ring order).

    Node i hears the window of ``n // 2 + 1`` nodes around it (i - m//2 … i - m//2 + m - 1, mod n)
    and drops the rest. With odd n the grudge is symmetric; with even n some cuts are one-way (as Jepsen's).
    """
    _require(nodes, 3, "majorities-ring")
    n = len(nodes)
    m = n // 2 + 1
    grudge: Grudge = {}
    for i, node in enumerate(nodes):
        window = {nodes[(i - m // 2 + k) % n] for k in range(m)}
        grudge[node] = frozenset(set(nodes) - window)
    return grudge


SHAPES = {
    "isolate-one": isolate_one,
    "halves": halves,
    "one-way": one_way,
    "bridge": bridge,
    "majorities-ring": majorities_ring,
}


def shape_grudge(shape: str, nodes: Sequence[str]) -> Grudge:
    """The grudge of a named shape over ``nodes``; raises ValueError for an unknown shape or too few nodes."""
    try:
        fn = SHAPES[shape]
    except KeyError:
        raise ValueError(f"partition shape '{shape}' is not one of: {', '.join(SHAPES)}") from None
    return fn(nodes)


def cut_pairs(grudge: Mapping[str, frozenset[str]]) -> list[tuple[str, str]]:
    """Directed (sender, receiver) pairs the grudge blocks, sorted."""
    return sorted((src, dst) for dst, srcs in grudge.items() for src in srcs)


def components_of(grudge: Mapping[str, frozenset[str]], nodes: Sequence[str]) -> list[list[str]]:
    """Groups of ``nodes`` that still hear each other both ways (connected components of the symmetric rest)."""
    hears: dict[str, set[str]] = {n: set() for n in nodes}
    for a in nodes:
        for b in nodes:
            if a != b and b not in grudge.get(a, frozenset()) and a not in grudge.get(b, frozenset()):
                hears[a].add(b)
    seen: set[str] = set()
    out = []
    for n in nodes:
        if n in seen:
            continue
        stack, comp = [n], []
        while stack:
            x = stack.pop()
            if x in seen:
                continue
            seen.add(x)
            comp.append(x)
            stack.extend(sorted(hears[x] - seen))
        out.append(sorted(comp, key=list(nodes).index))
    return out


def _require(nodes: Sequence[str], count: int, shape: str) -> None:
    if len(nodes) < count:
        raise ValueError(f"shape '{shape}' needs at least {count} nodes, got {len(nodes)}")
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"shape '{shape}': duplicate nodes in {list(nodes)}")
