"""Where mapquake may send traffic: the one address allow-list.

Load, scrapes and faults go only to loopback or to addresses a backend created for the run (the
local backend's namespaces in 198.18.0.0/15, with no route out; a cluster's pods and the run's own
Service names). The backend states its list (`Backend.allowed_addresses()`); the run hands that
same list to the Locust plan, the Prometheus configuration and mapload, which each refuse
anything outside it. Pure: no I/O, no name resolution (a name is allowed only if the list names
it, since a name could resolve anywhere).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
BENCHMARK_NETWORK = ipaddress.ip_network("198.18.0.0/15")
"""RFC 2544's benchmarking range: the local backend's run networks are /24s inside it."""


class UnsafeAddressError(ValueError):
    """An address outside the allow-list: mapquake never sends traffic there."""


def split_host_port(addr: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port"; raises ValueError on anything else."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


@dataclass(frozen=True)
class AddressAllowList:
    """Networks and exact host names traffic may go to. "localhost" counts as loopback."""

    networks: tuple[IPNetwork, ...]
    names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, *networks: str, names: tuple[str, ...] = ()) -> AddressAllowList:
        return cls(tuple(ipaddress.ip_network(n) for n in networks), frozenset(n.lower() for n in names))

    def allows_host(self, host: str) -> bool:
        host = host.strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            name = host.lower().rstrip(".")
            if name == "localhost":
                return any(net.is_loopback for net in self.networks)
            return name in self.names
        return any(ip in net for net in self.networks)

    def check(self, addr: str) -> str:
        """Return ``addr`` (host:port) if its host is allowed, else raise UnsafeAddressError (or ValueError)."""
        host, _ = split_host_port(addr)
        if not self.allows_host(host):
            raise UnsafeAddressError(
                f"{addr!r} is outside {self.describe()}; mapquake only sends traffic to what the run created"
            )
        return addr

    def describe(self) -> str:
        """Human wording, e.g. "loopback or 198.18.0.0/15"."""
        parts: list[str] = []
        if any(net in LOOPBACK_NETWORKS for net in self.networks):
            parts.append("loopback")
        parts += [str(net) for net in self.networks if net not in LOOPBACK_NETWORKS]
        if self.names:
            parts.append("the names " + ", ".join(sorted(self.names)))
        return " or ".join(parts) if parts else "nothing"

    def to_json(self) -> dict[str, Any]:
        return {"networks": [str(n) for n in self.networks], "names": sorted(self.names)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AddressAllowList:
        return cls.of(*doc["networks"], names=tuple(doc.get("names", ())))

    def cli_value(self) -> str:
        """The comma-separated form mapload's --allow flag takes (networks and names)."""
        return ",".join([*(str(n) for n in self.networks), *sorted(self.names)])


LOOPBACK_ONLY = AddressAllowList(LOOPBACK_NETWORKS)
LOCAL_RUN = AddressAllowList((*LOOPBACK_NETWORKS, BENCHMARK_NETWORK))
"""The local backend's list: loopback and the run namespaces' 198.18.0.0/15."""
