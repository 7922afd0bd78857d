"""nftables in-process (chaos/engines/nftlib.py) on real network namespaces: rules land where they should.

Each test makes its own namespace and deletes it, pass or fail. What the in-process engine wrote is
read back through the nft command (NftCommand), an independent path into the same kernel tables.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from chaos.agent.ownership import LocalNamespaces
from chaos.agent.server import FaultTable
from chaos.engines import nft
from chaos.engines.command import NetnsHandle
from chaos.engines.nftlib import LibNft
from chaos.probe import Capabilities
from orchestrator.core.errors import InfrastructureError
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, needs_root]

RUN = "0f1e2d3c"
TABLE = nft.table_name(RUN)


@pytest.fixture
def netns() -> Iterator[NetnsHandle]:
    name = f"mq-nftlib-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        yield NetnsHandle.local(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True, timeout=10)


@pytest.fixture
def lib() -> Iterator[LibNft]:
    engine = LibNft.load()
    assert engine is not None, "python3-nftables is missing: `make setup` installs it"
    try:
        yield engine
    finally:
        engine.close()


def host_tables() -> list[str]:
    return nft.NftCommand().tables(NetnsHandle("host", ()))


def test_rules_land_in_the_fault_namespace_and_never_on_the_host(netns: NetnsHandle, lib: LibNft) -> None:
    rules = nft.NamespaceRules(cuts=[nft.Cut("cut-1", ("198.18.0.2", "198.18.0.3"), "drop")])
    nft.apply(netns, RUN, rules, lib)
    assert TABLE in nft.list_tables(netns, nft.NftCommand())
    assert TABLE not in host_tables()
    listed = subprocess.run(
        netns.argv("nft", "list", "table", "inet", TABLE), capture_output=True, text=True, check=True, timeout=10
    ).stdout
    assert "198.18.0.2" in listed and "drop" in listed and 'comment "cut-1"' in listed
    # A second fault is a rewrite of the same table, in one transaction.
    both = nft.NamespaceRules(cuts=[*rules.cuts], losses=[nft.Loss("loss-1", 0.25)])
    nft.apply(netns, RUN, both, lib)
    assert TABLE in lib.tables(netns)
    nft.apply(netns, RUN, nft.NamespaceRules(), lib)  # the last heal deletes the table
    assert TABLE not in nft.list_tables(netns, nft.NftCommand())


def test_a_context_is_kept_across_heals_and_freed_once_idle(netns: NetnsHandle, lib: LibNft) -> None:
    rules = nft.NamespaceRules(cuts=[nft.Cut("cut-1", ("198.18.0.2",), "drop")])
    nft.apply(netns, RUN, rules, lib)
    assert lib.evict(idle_s=0) == 0  # its namespace holds our table: never freed
    nft.apply(netns, RUN, nft.NamespaceRules(), lib)  # healed: the table is gone
    assert lib.evict(idle_s=3600) == 0  # kept for the next fault in this namespace
    nft.apply(netns, RUN, rules, lib)  # ... which reuses it
    nft.apply(netns, RUN, nft.NamespaceRules(), lib)
    assert lib.evict(idle_s=0) == 1
    nft.apply(netns, RUN, rules, lib)  # a new context, in the same namespace
    assert TABLE in nft.list_tables(netns, nft.NftCommand())
    nft.apply(netns, RUN, nft.NamespaceRules(), lib)


def test_a_document_nft_refuses_is_an_error_naming_what(netns: NetnsHandle, lib: LibNft) -> None:
    chain = {"family": "inet", "table": "mapquake_absent", "name": "input"}
    with pytest.raises(InfrastructureError, match="nft in the test namespace failed"):
        lib.run(netns, {"nftables": [{"flush": {"chain": chain}}]}, "nft in the test namespace")


def test_a_namespace_that_is_gone_is_an_error_not_a_write_elsewhere(lib: LibNft) -> None:
    missing = NetnsHandle.local(f"mq-nftlib-gone-{secrets.token_hex(3)}")
    with pytest.raises(InfrastructureError, match="cannot enter its network namespace"):
        nft.apply(missing, RUN, nft.NamespaceRules(cuts=[nft.Cut("c", ("198.18.0.2",), "drop")]), lib)
    assert TABLE not in host_tables()


def test_the_agent_writes_rules_in_process_where_the_binding_is_installed() -> None:
    table = FaultTable(LocalNamespaces([]), Capabilities(nft=True, netem=False))
    assert table.nft.name == "libnftables"
