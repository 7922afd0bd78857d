"""Pure parts of the local network: names (orchestrator.core.names), run-id recognition, subnet choice."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator.backends.local.network import MAX_NODES, RUN_POOL, choose_subnet
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.names import IFNAME_MAX, bridge_name, is_bridge_name, netns_name, run_id_of, veth_names


def net(s: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(s)


def test_names_carry_the_run_id_and_fit_ifnamsiz() -> None:
    assert netns_name("0a1b2c3d", "cache-0") == "mq-0a1b2c3d-cache-0"
    assert bridge_name("0a1b2c3d") == "mqb0a1b2c3d"
    host, peer = veth_names("0a1b2c3d", MAX_NODES - 1)
    assert (host, peer) == ("mq0a1b2c3dh252", "mq0a1b2c3dn252")
    assert len(host) <= IFNAME_MAX and len(bridge_name("0a1b2c3d")) <= IFNAME_MAX
    with pytest.raises(InfrastructureError, match="longer than 15"):
        veth_names("0a1b2c3d", 10000)


@pytest.mark.parametrize(
    ("name", "run_id"),
    [
        ("mq-0a1b2c3d-cache-0", "0a1b2c3d"),
        ("mqb0a1b2c3d", "0a1b2c3d"),
        ("mq0a1b2c3dh0", "0a1b2c3d"),
        ("mq0a1b2c3dn17", "0a1b2c3d"),
        ("mqbb1234567h0", None),  # neither a bridge nor a veth shape
        ("mqb12345678h3", None),
        ("mqbb1234567", "b1234567"),  # bridge of run b1234567
        ("mqb1234567h3", "b1234567"),  # veth of run b1234567
        ("eth0", None),
        ("mq-0A1B2C3D-x", None),
        ("docker0", None),
        ("mq-0a1b2c3d", None),
    ],
)
def test_run_id_of(name: str, run_id: str | None) -> None:
    assert run_id_of(name) == run_id


def test_is_bridge_name() -> None:
    assert is_bridge_name(bridge_name("0a1b2c3d"))
    assert not is_bridge_name(veth_names("0a1b2c3d", 0)[0])
    assert not is_bridge_name(netns_name("0a1b2c3d", "b"))


def test_choose_subnet_is_deterministic_and_inside_the_pool() -> None:
    a = choose_subnet("00000000", [])
    assert a == net("198.18.0.0/24")
    assert choose_subnet("00000101", []) == net("198.18.1.0/24")  # 0x101 = 257 -> wraps in the /16
    assert choose_subnet("deadbeef", []).subnet_of(RUN_POOL)
    # The test cluster lives in 198.19.0.0/16: no local run may land there, whatever its id.
    assert all(not choose_subnet(f"{i:08x}", []).subnet_of(net("198.19.0.0/16")) for i in range(0, 2**32, 2**20))


def test_choose_subnet_skips_used_networks() -> None:
    used = [net("198.18.0.0/23"), net("198.18.2.7/32"), net("0.0.0.0/0"), net("10.0.0.0/8")]
    assert choose_subnet("00000000", used) == net("198.18.3.0/24")
    # wraps around the end of the pool
    assert choose_subnet("000000ff", [net("198.18.255.0/24")]) == net("198.18.0.0/24")


def test_choose_subnet_when_pool_is_covered() -> None:
    with pytest.raises(InfrastructureError, match="collides"):
        choose_subnet("00000000", [net("198.16.0.0/12")])
