"""A run's private network on this host: one bridge, one network namespace per node.

Layout (docs/operations-local.md has the picture)::

    host ── mqb<run>  (bridge, 198.18.N.1/24)
              ├── mq<run>h0 ══ veth ══ mq<run>n0 in netns mq-<run>-<node0>  198.18.N.2/24
              ├── mq<run>h1 ══ veth ══ mq<run>n1 in netns mq-<run>-<node1>  198.18.N.3/24
              └── ...

``N`` is chosen per run inside 198.18.0.0/16 (half of the benchmarking range) so that the
/24 collides with no address or route on the host. A namespace has loopback up
and exactly one route, the connected /24: no default route, so nothing a node
sends can leave the run's subnet. The host reaches every node through the bridge
(the controller, Prometheus on the host); nodes reach each other through it.

Every name carries the run id, every creation is written to the run's ledger
first, and ``cleanup_run`` removes exactly the objects named or recorded with a
dead run's id: processes (by pid and start time), namespaces, veths, the bridge,
the run's directories. All kernel work goes through iproute2 (``ip -j`` to read).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import (
    RUN_ID_ENV,
    Ledger,
    Resource,
    ResourceKind,
    check_run_id,
    list_runs,
    pid_matches,
    pid_running,
    process_start_time,
)
from orchestrator.core.names import bridge_name, is_bridge_name, netns_name, run_id_of, veth_names
from orchestrator.core.processes import environ_run_id, start_process, stop_process, terminate_pid

log = logging.getLogger(__name__)

RUN_POOL = ipaddress.IPv4Network("198.18.0.0/16")
"""Local runs take /24s of the lower half of 198.18.0.0/15; the test cluster (cluster/) lives in
198.19.0.0/16, so local runs and a cluster on the same machine never overlap."""
SUBNET_PREFIX = 24
MAX_NODES = 253  # .2 .. .254
NODE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
IP_TIMEOUT_S = 30.0  # one iproute2 call; they take milliseconds
STOP_GRACE_S = 10.0

_BRIDGE_NF_SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


# --- iproute2 ---------------------------------------------------------------------------


def _ip(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *args]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise InfrastructureError(
            "iproute2 (`ip`) is not installed", hint="run `make setup` (Debian package iproute2)"
        ) from None
    if check and result.returncode != 0:
        hint = "mapquake's local backend needs root (CAP_NET_ADMIN)" if os.geteuid() != 0 else None
        raise InfrastructureError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()}", hint=hint)
    return result


def _ip_json(args: Sequence[str]) -> list[dict[str, Any]]:
    out = _ip(["-j", *args]).stdout.strip()
    return json.loads(out) if out else []


def list_netns() -> list[str]:
    """Names of all named network namespaces on the host (``ip -j netns list``)."""
    return [entry["name"] for entry in _ip_json(["netns", "list"])]


def list_links() -> list[str]:
    """Names of all links in the host namespace."""
    return [entry["ifname"] for entry in _ip_json(["link", "show"])]


def link_exists(name: str) -> bool:
    return _ip(["link", "show", "dev", name], check=False).returncode == 0


def netns_pids(netns: str) -> list[int]:
    """Pids of processes whose network namespace is ``netns``."""
    result = _ip(["netns", "pids", netns], check=False)
    return [int(tok) for tok in result.stdout.split() if tok.isdigit()] if result.returncode == 0 else []


def host_networks() -> list[ipaddress.IPv4Network]:
    """IPv4 networks already in use on the host: every address's network and every non-default route."""
    nets: list[ipaddress.IPv4Network] = []
    for link in _ip_json(["addr", "show"]):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                nets.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    for route in _ip_json(["-4", "route", "show", "table", "all"]):
        dst = route.get("dst", "default")
        if dst != "default":
            try:
                nets.append(ipaddress.IPv4Network(dst, strict=False))
            except ValueError:
                continue
    return nets


def choose_subnet(run_id: str, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of RUN_POOL (198.18.0.0/16), from a start derived from ``run_id``, overlapping nothing in ``used``.

    Pure. Raises when all 512 are taken.
    """
    used = [n for n in used if n.prefixlen > 0]  # a 0.0.0.0/0 "network" says nothing
    subnets = list(RUN_POOL.subnets(new_prefix=SUBNET_PREFIX))
    start = int(check_run_id(run_id), 16) % len(subnets)
    for i in range(len(subnets)):
        candidate = subnets[(start + i) % len(subnets)]
        if not any(candidate.overlaps(n) for n in used):
            return candidate
    raise InfrastructureError(
        f"every /{SUBNET_PREFIX} of {RUN_POOL} collides with an address or route on this host",
        hint=f"run `mapquake cleanup` to remove dead runs, or free part of {RUN_POOL}",
    )


def _subnets_of_other_runs(run_id: str) -> list[ipaddress.IPv4Network]:
    nets = []
    for info in list_runs():
        if info.run_id == run_id:
            continue
        for res in Ledger.load(info.run_id).open_resources():
            if res.kind == ResourceKind.BRIDGE and "subnet" in res.detail:
                nets.append(ipaddress.IPv4Network(res.detail["subnet"]))
    return nets


def bridge_filtering_warning() -> str | None:
    """Why bridged traffic between nodes might be filtered by the host firewall, or None.

    With br_netfilter loaded and ``net.bridge.bridge-nf-call-iptables=1`` (the
    default once loaded), frames between two nodes on the bridge traverse the
    host's iptables/nftables FORWARD hook. A FORWARD policy of DROP (Docker sets
    one) then silently drops node-to-node traffic. mapquake does not change the
    host firewall; the host-to-node path (INPUT/OUTPUT) is not affected.
    """
    try:
        value = _BRIDGE_NF_SYSCTL.read_text().strip()
    except OSError:
        return None  # br_netfilter not loaded: bridged frames never see iptables
    if value != "1":
        return None
    return (
        "br_netfilter is loaded with bridge-nf-call-iptables=1: traffic between nodes passes the host's "
        "FORWARD chain; if its policy is DROP, allow the run bridge (iptables -I FORWARD -i mqb+ -o mqb+ -j ACCEPT) "
        "or set net.bridge.bridge-nf-call-iptables=0"
    )


# --- the network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One network namespace on the run's bridge.

    ``address`` is the node's IPv4 address (no prefix); ``ifname`` its interface
    inside ``netns``; ``host_veth`` the bridge port on the host side.
    """

    name: str
    netns: str
    address: str
    ifname: str
    host_veth: str
    network: LocalNetwork = field(repr=False, compare=False)

    def popen(self, argv: Sequence[str], *, name: str | None = None, **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside this node's namespace; its pid is the program's own.

        Side effects: ledger lines (before the fork, then pid + start time); the
        process is stopped by ``LocalNetwork.teardown`` if still running then.
        ``popen_kwargs`` are passed to ``subprocess.Popen``.
        """
        label = name or f"{self.name}:{Path(str(argv[0])).name}:{len(self.network.processes)}"
        proc = start_process(argv, ledger=self.network.ledger, name=label, netns=self.netns, **popen_kwargs)
        self.network.processes.append((label, proc))
        return proc

    def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and wait for it (bounded by ``timeout``).

        Not written to the ledger; it carries the run id in its environment so
        cleanup can still find it if the controller dies meanwhile.
        """
        full_env = dict(os.environ if env is None else env)
        full_env[RUN_ID_ENV] = self.network.run_id
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )


class LocalNetwork:
    """The run's bridge and nodes. Create with ``LocalNetwork.create``; always ``teardown()``."""

    def __init__(self, run_id: str, ledger: Ledger, subnet: ipaddress.IPv4Network) -> None:
        self.run_id = run_id
        self.ledger = ledger
        self.subnet = subnet
        self.bridge = bridge_name(run_id)
        self.host_address = str(subnet.network_address + 1)
        self.nodes: dict[str, Node] = {}
        self.processes: list[tuple[str, subprocess.Popen[Any]]] = []
        self._next_index = 0

    @classmethod
    def create(cls, run_id: str, ledger: Ledger) -> LocalNetwork:
        """Pick a free /24, create the bridge with the host's .1 on it, up.

        Side effects: a bridge ``mqb<run_id>`` in the host namespace (recorded first).
        """
        check_run_id(run_id)
        if run_id != ledger.run_id:
            raise InfrastructureError(f"network for run {run_id} given the ledger of run {ledger.run_id}")
        subnet = choose_subnet(run_id, [*host_networks(), *_subnets_of_other_runs(run_id)])
        net = cls(run_id, ledger, subnet)
        warning = bridge_filtering_warning()
        if warning:
            log.info("run %s: %s", run_id, warning, extra={"run_id": run_id})
        ledger.record(ResourceKind.BRIDGE, net.bridge, detail={"subnet": str(subnet)})
        try:
            _ip(["link", "add", net.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            _ip(["link", "set", "dev", net.bridge, "addrgenmode", "none"])  # no IPv6 link-local, no DAD noise
            _ip(["addr", "add", f"{net.host_address}/{SUBNET_PREFIX}", "dev", net.bridge])
            _ip(["link", "set", "dev", net.bridge, "up"])
        except BaseException:
            try:
                net.teardown()
            except InfrastructureError as exc:  # report the original failure; cleanup gets the rest
                log.error("run %s: %s", run_id, exc, extra={"run_id": run_id})
            raise
        log.info("run %s: bridge %s %s", run_id, net.bridge, subnet, extra={"run_id": run_id})
        return net

    def add_node(self, name: str) -> Node:
        """Create namespace ``mq-<run>-<name>`` with a veth into the bridge and the next address.

        Side effects: a netns and a veth pair (each recorded first). The namespace
        gets loopback up, the address, and only the connected /24 route.
        """
        if not NODE_NAME_RE.match(name):
            raise InfrastructureError(
                f"node name {name!r} is not valid",
                hint="use 1-32 lowercase letters, digits and '-', starting with a letter or digit",
            )
        if name in self.nodes:
            raise InfrastructureError(f"run {self.run_id} already has a node named {name!r}")
        index = self._next_index
        if index >= MAX_NODES:
            raise InfrastructureError(f"a run network holds at most {MAX_NODES} nodes")
        self._next_index += 1
        ns = netns_name(self.run_id, name)
        host_if, peer_if = veth_names(self.run_id, index)
        address = str(self.subnet.network_address + 2 + index)

        node = Node(name=name, netns=ns, address=address, ifname=peer_if, host_veth=host_if, network=self)
        self.nodes[name] = node  # from here on teardown removes whatever part of it exists
        self.ledger.record(ResourceKind.NETNS, ns)
        _ip(["netns", "add", ns])
        self.ledger.record(ResourceKind.VETH, host_if, netns=ns, detail={"peer": peer_if})
        _ip(["-n", ns, "link", "set", "dev", "lo", "up"])
        _ip(["link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", ns])
        _ip(["link", "set", "dev", host_if, "addrgenmode", "none"])
        _ip(["-n", ns, "link", "set", "dev", peer_if, "addrgenmode", "none"])
        _ip(["link", "set", "dev", host_if, "master", self.bridge, "up"])
        _ip(["-n", ns, "addr", "add", f"{address}/{SUBNET_PREFIX}", "dev", peer_if])
        _ip(["-n", ns, "link", "set", "dev", peer_if, "up"])
        log.info("run %s: node %s at %s in %s", self.run_id, name, address, ns, extra={"run_id": self.run_id})
        return node

    def routes(self, node: Node) -> list[dict[str, Any]]:
        """The node's IPv4 routing table (``ip -j -n <ns> -4 route``)."""
        return _ip_json(["-n", node.netns, "-4", "route", "show"])

    def teardown(self, *, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the processes this network started, then delete veths, namespaces and the bridge.

        Idempotent; kills nothing it did not start; each removal is written to the
        ledger. Continues past failures and raises one error listing them at the end.
        """
        errors: list[str] = []
        for label, proc in reversed(self.processes):
            try:
                if proc.poll() is None:
                    stop_process(proc, grace_s=grace_s)
                self.ledger.released(ResourceKind.PROCESS, label)
            except Exception as exc:  # keep going: the namespaces must still go
                errors.append(f"process {label} (pid {proc.pid}): {exc}")
        self.processes.clear()
        for node in reversed(list(self.nodes.values())):
            errors += _delete_veth(node.host_veth, self.ledger)
            errors += _delete_netns(node.netns, self.ledger)
        self.nodes.clear()
        errors += _delete_bridge(self.bridge, self.ledger)
        if errors:
            raise InfrastructureError(
                f"run {self.run_id}: teardown left something behind:\n  " + "\n  ".join(errors),
                hint=f"run `mapquake cleanup` (or cleanup_run('{self.run_id}')) once this controller exits",
            )
        log.info("run %s: network removed", self.run_id, extra={"run_id": self.run_id})

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _delete_veth(name: str, ledger: Ledger | None) -> list[str]:
    if link_exists(name):
        result = _ip(["link", "del", "dev", name], check=False)
        if result.returncode != 0 and link_exists(name):
            return [f"veth {name}: {result.stderr.strip()}"]
    if ledger:
        ledger.released(ResourceKind.VETH, name)
    return []


def _delete_netns(name: str, ledger: Ledger | None) -> list[str]:
    if name in list_netns():
        stragglers = netns_pids(name)
        if stragglers:
            log.warning("netns %s still holds pids %s that mapquake did not start; leaving them", name, stragglers)
        result = _ip(["netns", "del", name], check=False)
        if result.returncode != 0 and name in list_netns():
            return [f"netns {name}: {result.stderr.strip()}"]
    if ledger:
        ledger.released(ResourceKind.NETNS, name)
    return []


def _delete_bridge(name: str, ledger: Ledger | None) -> list[str]:
    if link_exists(name):
        result = _ip(["link", "del", "dev", name], check=False)
        if result.returncode != 0 and link_exists(name):
            return [f"bridge {name}: {result.stderr.strip()}"]
    if ledger:
        ledger.released(ResourceKind.BRIDGE, name)
    return []


# --- cleanup of dead runs -------------------------------------------------------------------


@dataclass
class CleanupReport:
    """What ``cleanup_run`` removed (or failed to remove) for one run."""

    run_id: str
    processes: list[int] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # recorded dirs whose path lacks the run id: not deleted
    errors: list[str] = field(default_factory=list)

    @property
    def removed_anything(self) -> bool:
        return bool(self.processes or self.netns or self.links or self.dirs)


def _run_processes(run_id: str, recorded: Sequence[Resource]) -> list[tuple[int, int | None]]:
    """(pid, start time) of processes that are provably this run's: recorded in its ledger with
    a matching start time, or started with MAPQUAKE_RUN_ID=<run_id> in their environment."""
    found: dict[int, int | None] = {}
    for res in recorded:
        if res.kind == ResourceKind.PROCESS and res.pid is not None and pid_matches(res.pid, res.start_time):
            found[res.pid] = res.start_time
    me = os.getpid()
    ancestors = {me, os.getppid()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in found or pid in ancestors:
            continue
        if environ_run_id(pid) == run_id:
            start = process_start_time(pid)
            if start is not None:
                found[pid] = start
    return sorted(found.items())


def cleanup_run(run_id: str, *, force: bool = False, grace_s: float = STOP_GRACE_S) -> CleanupReport:
    """Remove everything a run left: its processes, namespaces, veths, bridge and directories.

    Refuses (InfrastructureError) while the run's controller is alive, or when the
    run has no ledger, unless ``force``. Touches only objects named with ``run_id``
    or recorded in its ledger; processes only by recorded pid + start time or by the
    run id in their environment, SIGTERM then SIGKILL. Removes the run's state
    directory at the end if nothing failed.
    """
    check_run_id(run_id)
    report = CleanupReport(run_id=run_id)
    try:
        ledger: Ledger | None = Ledger.load(run_id)
    except InfrastructureError:
        ledger = None
    if ledger is None and not force:
        raise InfrastructureError(
            f"run {run_id} has no ledger in this state directory, so mapquake cannot tell whether it is still running",
            hint="check `ps` and `ip netns list`, then pass --force to remove its objects by name",
        )
    if ledger is not None and ledger.is_controller_alive() and not force:
        raise InfrastructureError(
            f"run {run_id} is still running (controller pid {ledger.controller_pid})",
            hint="stop that `mapquake run` (Ctrl-C tears down), or pass --force",
        )
    recorded = ledger.open_resources() if ledger else []
    log.info("cleanup of run %s: %d open ledger entries", run_id, len(recorded), extra={"run_id": run_id})

    for pid, start in _run_processes(run_id, recorded):
        if pid == os.getpid():  # the run's watchdog, cleaning up after a dead controller
            continue
        if terminate_pid(pid, start, grace_s=grace_s):
            report.processes.append(pid)
        elif pid_running(pid, start):
            report.errors.append(f"pid {pid} survived SIGKILL")
    for res in recorded:
        if res.kind == ResourceKind.PROCESS and ledger:
            ledger.released(ResourceKind.PROCESS, res.name)

    def ours(name: str) -> bool:
        return run_id_of(name) == run_id

    recorded_links = {r.name for r in recorded if r.kind in (ResourceKind.VETH, ResourceKind.BRIDGE)}
    links = [n for n in list_links() if ours(n) or (n in recorded_links and run_id in n)]  # names carry the id
    for name in sorted(links, key=is_bridge_name):  # veths first, bridge last
        kind = ResourceKind.BRIDGE if is_bridge_name(name) else ResourceKind.VETH
        errs = _delete_bridge(name, ledger) if kind == ResourceKind.BRIDGE else _delete_veth(name, ledger)
        report.errors += errs
        if not errs:
            report.links.append(name)
    for ns in list_netns():
        if ours(ns):
            errs = _delete_netns(ns, ledger)
            report.errors += errs
            if not errs:
                report.netns.append(ns)
    if ledger:
        for res in recorded:  # recorded but already gone: close the books
            if res.kind in (ResourceKind.VETH, ResourceKind.BRIDGE, ResourceKind.NETNS) and res.name not in (
                report.links + report.netns
            ):
                ledger.released(res.kind, res.name)
        for res in recorded:
            if res.kind == ResourceKind.DIR:
                path = Path(res.name)
                if not any(run_id in part for part in path.parts):
                    # e.g. a Prometheus workdir under a user-chosen --report-dir: evidence, and not
                    # provably ours alone to delete. Leave it, but close the books on it.
                    log.warning("cleanup of run %s: keeping %s (its path does not carry the run id)", run_id, path)
                    report.kept.append(str(path))
                    ledger.released(ResourceKind.DIR, res.name)
                    continue
                if path.exists():
                    shutil.rmtree(path, ignore_errors=True)
                    report.dirs.append(str(path))
                ledger.released(ResourceKind.DIR, res.name)
        if not report.errors:
            ledger.remove()
            report.dirs.append(str(ledger.dir))
    for line in report.errors:
        log.error("cleanup of run %s: %s", run_id, line, extra={"run_id": run_id})
    return report


def cleanup_all_dead_runs(*, grace_s: float = STOP_GRACE_S) -> list[CleanupReport]:
    """``cleanup_run`` for every run in the state directory whose controller is gone."""
    reports = []
    for info in list_runs():
        if info.controller_alive:
            log.info("run %s is alive (controller pid %s); leaving it", info.run_id, info.controller_pid)
            continue
        reports.append(cleanup_run(info.run_id, grace_s=grace_s))
    return reports


def orphaned_run_ids() -> list[str]:
    """Run ids seen in host netns/link names that have no ledger here (cleanup needs ``force``)."""
    known = {info.run_id for info in list_runs()}
    seen = {run_id_of(n) for n in [*list_netns(), *list_links()]}
    return sorted(r for r in seen if r and r not in known)
