"""A run's network with real kernel objects: reachability inside, nothing out, nothing left.

Traffic goes only between namespaces these tests create (198.18.0.0/15) and the
host's side of the run bridge, plus one connect to 198.51.100.1 (TEST-NET-2)
that must fail with ENETUNREACH before any packet is sent: a node has no route to it.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.backends.local.network import RUN_POOL, LocalNetwork, cleanup_all_dead_runs, cleanup_run, list_netns
from orchestrator.core.errors import InfrastructureError
from orchestrator.core.ledger import Ledger, list_runs, new_run_id, process_start_time
from tests.integration.netfixtures import leftovers, make_network, needs_root, read_line, state_dir

__all__ = ["make_network", "state_dir"]  # fixtures used by name

pytestmark = [pytest.mark.integration, needs_root]

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    srv = socket.socket()
    srv.bind((sys.argv[1], 0))
    srv.listen()
    srv.settimeout(30)
    print(srv.getsockname()[1], flush=True)
    for _ in range(int(sys.argv[2])):
        conn, peer = srv.accept()
        with conn:
            conn.settimeout(10)
            conn.sendall(b"pong " + conn.recv(64) + b" from " + peer[0].encode())
    """
)

CLIENT = textwrap.dedent(
    """
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as s:
        s.sendall(b"ping")
        print(s.recv(128).decode())
    """
)

NO_ROUTE_PROBE = textwrap.dedent(
    """
    import socket
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("198.51.100.1", 9))
    except OSError as exc:
        print(exc.errno)
    else:
        print("connected")
    """
)


def test_nodes_reach_each_other_and_the_host(make_network: Callable[[], LocalNetwork]) -> None:
    net = make_network()
    a, b = net.add_node("a"), net.add_node("b")
    assert net.subnet.subnet_of(RUN_POOL)
    assert (a.address, b.address) == (str(net.subnet.network_address + 2), str(net.subnet.network_address + 3))

    server = b.popen([sys.executable, "-c", ECHO_SERVER, b.address, "2"], stdout=subprocess.PIPE)
    port = int(read_line(server, timeout=30))

    client = a.run([sys.executable, "-c", CLIENT, b.address, str(port)], timeout=30)
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == f"pong ping from {a.address}"

    # the host (controller, a Prometheus on the host) reaches nodes through the bridge's .1
    with socket.create_connection((b.address, port), timeout=10) as s:
        s.sendall(b"ping")
        assert s.recv(128).decode() == f"pong ping from {net.host_address}"
    assert server.wait(timeout=30) == 0


def test_node_has_only_the_subnet_route_and_cannot_leave(make_network: Callable[[], LocalNetwork]) -> None:
    net = make_network()
    a = net.add_node("a")
    routes = net.routes(a)
    assert [r["dst"] for r in routes] == [str(net.subnet)]
    assert all(r["dst"] != "default" for r in routes)
    probe = a.run([sys.executable, "-c", NO_ROUTE_PROBE], timeout=30)
    assert probe.stdout.strip() == str(errno.ENETUNREACH), probe.stdout + probe.stderr


def test_teardown_removes_everything_and_is_idempotent(make_network: Callable[[], LocalNetwork]) -> None:
    net = make_network()
    a = net.add_node("a")
    net.add_node("b")
    sleeper = a.popen(["sleep", "300"])
    assert sorted(n for n in list_netns() if net.run_id in n) == [f"mq-{net.run_id}-a", f"mq-{net.run_id}-b"]
    assert len(leftovers(net.run_id)) == 5  # 2 netns, 2 veths, 1 bridge

    net.teardown(grace_s=5)
    assert sleeper.poll() == -signal.SIGTERM
    assert leftovers(net.run_id) == []
    assert net.ledger.open_resources() == []
    net.teardown(grace_s=5)  # again: nothing to do, no error


def test_invalid_node_names_are_refused(make_network: Callable[[], LocalNetwork]) -> None:
    net = make_network()
    net.add_node("cache-0")
    for bad in ("Cache", "a/b", "", "-x", "x" * 33, "cache-0"):
        with pytest.raises(InfrastructureError):
            net.add_node(bad)


def test_two_runs_get_distinct_subnets(make_network: Callable[[], LocalNetwork]) -> None:
    first, second = make_network(), make_network()
    assert not first.subnet.overlaps(second.subnet)


CONTROLLER = textwrap.dedent(
    """
    # A stand-in controller: builds a run network with a sleeping node process, then hangs.
    import sys, time
    from pathlib import Path
    from orchestrator.core.ledger import Ledger, ResourceKind
    from orchestrator.backends.local.network import LocalNetwork
    run_id = sys.argv[1]
    ledger = Ledger.create(run_id)
    net = LocalNetwork.create(run_id, ledger)
    a, b = net.add_node("a"), net.add_node("b")
    sleeper = a.popen(["sleep", "300"])
    for data in (ledger.dir / "prometheus", Path(sys.argv[2])):  # in the run state; under a report dir
        ledger.record(ResourceKind.DIR, str(data))
        data.mkdir(parents=True)
    print(sleeper.pid, flush=True)
    time.sleep(120)  # bounded: the test SIGKILLs us long before
    """
)


@pytest.fixture
def controller(state_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway controller process that the test SIGKILLs; anything it left is cleaned after."""
    run_id = new_run_id()
    report_dir = tmp_path / "my-report" / "prometheus"
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, run_id, str(report_dir)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        yield run_id, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if Path(state_dir / "runs" / run_id).exists() or leftovers(run_id):
            cleanup_run(run_id, force=True, grace_s=5)
        assert leftovers(run_id) == []


def test_cleanup_after_sigkilled_controller(
    controller: tuple[str, subprocess.Popen[bytes]], state_dir: Path, tmp_path: Path
) -> None:
    run_id, proc = controller
    sleeper_pid = int(read_line(proc, timeout=60))
    sleeper_start = process_start_time(sleeper_pid)
    assert sleeper_start is not None
    assert len(leftovers(run_id)) == 5

    # while the controller lives, cleanup refuses
    with pytest.raises(InfrastructureError, match="still running"):
        cleanup_run(run_id)

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ledger = Ledger.load(run_id)
    assert not ledger.is_controller_alive()
    kinds = sorted(r.kind.value for r in ledger.open_resources())
    assert kinds == ["bridge", "dir", "dir", "netns", "netns", "process", "veth", "veth"]
    assert process_start_time(sleeper_pid) == sleeper_start  # orphaned, still sleeping in its namespace

    [report] = cleanup_all_dead_runs(grace_s=5)
    assert report.run_id == run_id and report.errors == []
    assert report.processes == [sleeper_pid]
    assert sorted(report.netns) == [f"mq-{run_id}-a", f"mq-{run_id}-b"]
    assert len(report.links) == 3
    assert report.dirs == [str(state_dir / "runs" / run_id / "prometheus"), str(state_dir / "runs" / run_id)]
    assert report.kept == [str(tmp_path / "my-report" / "prometheus")]  # no run id in its path: kept
    assert (tmp_path / "my-report" / "prometheus").is_dir()
    assert leftovers(run_id) == []
    deadline = time.monotonic() + 10
    while process_start_time(sleeper_pid) == sleeper_start and time.monotonic() < deadline:
        time.sleep(0.01)  # reaped by init
    assert not (state_dir / "runs" / run_id).exists()
    assert [r.run_id for r in list_runs()] == []


def test_cleanup_never_touches_a_live_run_or_foreign_objects(make_network: Callable[[], LocalNetwork]) -> None:
    live = make_network()
    live.add_node("a")
    before = leftovers(live.run_id)
    assert cleanup_all_dead_runs(grace_s=5) == []  # its controller (this process) is alive
    assert leftovers(live.run_id) == before
    with pytest.raises(InfrastructureError, match="no ledger"):
        cleanup_run("0f0f0f0f")


def test_cleanup_finds_an_unrecorded_child_by_its_run_id_environment(
    make_network: Callable[[], LocalNetwork],
) -> None:
    net = make_network()
    a = net.add_node("a")
    # a process the ledger never heard of (as if the controller died between fork and record)
    env = dict(os.environ, MAPQUAKE_RUN_ID=net.run_id)
    stray = subprocess.Popen(["ip", "netns", "exec", a.netns, "sleep", "300"], env=env)
    other = subprocess.Popen(["sleep", "300"])  # not the run's: must survive
    try:
        report = cleanup_run(net.run_id, force=True, grace_s=5)
        assert stray.wait(timeout=10) == -signal.SIGTERM
        assert report.processes == [stray.pid]
        assert other.poll() is None
        assert leftovers(net.run_id) == []
        assert not net.ledger.dir.exists()
    finally:
        for p in (stray, other):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
