"""The local backend's nodes as chaos sees them (``chaos.resolve.RunTopology``): planned or live.

The local backend adds, in this order, one node per replica of every target (``<target>-<i>``),
then ``prometheus``, then ``load``; node k gets address .(k+2) of the run's /24, namespace
``mq-<run>-<node>`` and interface ``mq<run>n<k>`` (orchestrator.core.names).
``planned_topology`` lays that out for a scenario before anything exists (``--dry-run``);
``topology_from_network`` reads it off a live ``LocalNetwork``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chaos.resolve import GROUP_LOAD, GROUP_PROMETHEUS, ROLE_TARGET, NodeInfo, RunTopology
from orchestrator.core.names import netns_name, veth_names
from orchestrator.scenario.spec import Scenario

if TYPE_CHECKING:
    from orchestrator.backends.local.network import LocalNetwork

PLANNED_RUN_ID = "00000000"
PLANNED_SUBNET = "198.18.0.0/24"
PLANNED_NOTE = f"(addresses as planned in {PLANNED_SUBNET}; each run picks its own /24)"
"""What ``--dry-run`` prints above a timeline on the planned topology."""


def replica_node(target: str, replica: int) -> str:
    """The node name of replica ``replica`` of ``target``."""
    return f"{target}-{replica}"


def planned_topology(scenario: Scenario, run_id: str = PLANNED_RUN_ID, subnet: str = PLANNED_SUBNET) -> RunTopology:
    """The topology the local backend will build for ``scenario``: same node order and addresses, no pids.

    Node order as orchestrator/backends/local/backend.py adds them: every replica of every
    target, then ``prometheus``, then ``load``; addresses .2, .3, … of ``subnet``.
    """
    net = ipaddress.IPv4Network(subnet)
    specs: list[tuple[str, str, str | None, int | None]] = []
    for t in scenario.targets:
        for i in range(t.replicas):
            specs.append((replica_node(t.name, i), ROLE_TARGET, t.name, i))
    specs += [("prometheus", GROUP_PROMETHEUS, None, None), ("load", GROUP_LOAD, None, None)]
    nodes = tuple(
        NodeInfo(
            name=name,
            netns=netns_name(run_id, name),
            address=str(net.network_address + 2 + i),
            ifname=veth_names(run_id, i)[1],
            role=role,
            target=target,
            replica=replica,
        )
        for i, (name, role, target, replica) in enumerate(specs)
    )
    return RunTopology(run_id=run_id, nodes=nodes, note=PLANNED_NOTE)


def topology_from_network(
    network: LocalNetwork, replicas: Mapping[str, tuple[str, int]], pids: Mapping[str, int] | None = None
) -> RunTopology:
    """The topology of a live ``LocalNetwork`` (reads its node table only).

    ``replicas`` maps node name → (target, replica index) for the target replicas, as the backend
    placed them (never parsed back out of the name); nodes named ``load`` and ``prometheus`` get
    those roles, any other node its own name as role. ``pids`` maps node name → the replica's pid
    (for kill/pause).
    """
    pids = pids or {}
    nodes = []
    for node in network.nodes.values():
        role, target, replica = node.name, None, None
        if node.name in replicas:
            role, (target, replica) = ROLE_TARGET, replicas[node.name]
        nodes.append(
            NodeInfo(
                name=node.name,
                netns=node.netns,
                address=node.address,
                ifname=node.ifname,
                role=role,
                target=target,
                replica=replica,
                pid=pids.get(node.name),
            )
        )
    return RunTopology(run_id=network.run_id, nodes=tuple(nodes))
