"""The chaos agent with --kubernetes on the real test cluster: cuts and heals traffic between two labelled pods,
refuses a pod without the run's label, heals by lease, freezes and thaws a pod.

The agent runs as a host process (root, host pids: what the privileged hostPID DaemonSet sees) with the
cluster's kubeconfig; the controller side is ``Nemesis.connect`` with the node as the pods' host. Traffic
is checked from inside one pod's network namespace (nsenter, a python socket to the other pod's IP:8080),
only to pod addresses in the cluster's 198.19.0.0/20.

Needs the ``k8s_cluster`` session fixture (tests/k8s/conftest.py: ``.kubeconfig``, ``.api()``,
``.load_images(paths)``) and ``cluster.images`` to build the maptarget image.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from chaos.agent.client import AgentClient
from chaos.agent.ownership import Refused
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import FaultTable
from chaos.engines import podproc
from chaos.engines.k8s import RUN_LABEL, PodNamespaces, PodRef
from chaos.nemesis import Nemesis
from chaos.probe import Capabilities
from chaos.resolve import NodeInfo, RunTopology, resolve_fault
from orchestrator.core.processes import stop_process
from orchestrator.scenario.spec import build_fault

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (nsenter, nft, freezer)")

REPO = Path(__file__).resolve().parents[2]
RUN = secrets.token_hex(4)  # per session: two sessions sharing a cluster never share a run
PORT = 8080
POD_TIMEOUT_S = 60.0
AGENT_TIMEOUT_S = 20.0
LEASE_S = 5.0
SHORT_LEASE_S = 3.0  # long enough to see the cut on a loaded machine, short enough to wait for


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def maptarget_ref(k8s_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from cluster import images  # the images helper (cluster/images.py)

    built = images.build(["maptarget"], tmp_path_factory.mktemp("images"))["maptarget"]
    k8s_cluster.load_images([built.tar])
    return built.ref


@dataclass
class Pod:
    namespace: str
    name: str
    ip: str
    pid: int  # its container's main process on the host

    @property
    def netns(self) -> str:
        return f"pod/{self.namespace}/{self.name}"


def http_answers(source: Pod, target: Pod, timeout_s: float = 1.0) -> bool:
    """Whether ``target``'s /healthz answers a request sent from inside ``source``'s network namespace."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({target.ip!r},{PORT}),timeout={timeout_s})\n"
        f"s.settimeout({timeout_s})\n"
        "s.sendall(b'GET /healthz HTTP/1.0\\r\\n\\r\\n')\n"
        "sys.exit(0 if s.recv(12).startswith(b'HTTP/') else 1)\n"
    )
    argv = ["nsenter", f"--net=/proc/{source.pid}/ns/net", sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, timeout=timeout_s * 4 + 5, check=False).returncode == 0


@pytest.fixture(scope="module")
def pods(k8s_cluster: Any, maptarget_ref: str) -> Iterator[tuple[str, dict[str, Pod]]]:
    """(node name, {kv-0, kv-1: labelled for RUN; stranger: unlabelled}) in a fresh namespace, deleted after."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_cluster.api())
    namespace = f"mq-agent-{secrets.token_hex(3)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels={"mapquake.io/allow-runs": "true"}))
    )
    try:

        def has_default_account() -> bool:  # the controller-manager makes it; pods are refused until then
            accounts = core.list_namespaced_service_account(namespace, field_selector="metadata.name=default")
            return bool(accounts.items)

        wait_for("the namespace's default ServiceAccount", has_default_account, POD_TIMEOUT_S, 0.2)
        for name, labels in (("kv-0", {RUN_LABEL: RUN}), ("kv-1", {RUN_LABEL: RUN}), ("stranger", {"app": "x"})):
            container = client.V1Container(
                name="target",
                image=maptarget_ref,
                image_pull_policy="Never",
                args=["--store", "shardedmap", "--http-addr", f"0.0.0.0:{PORT}", "--grpc-addr", "0.0.0.0:9090"],
            )
            spec = client.V1PodSpec(containers=[container], termination_grace_period_seconds=1)
            meta = client.V1ObjectMeta(name=name, labels=labels)
            core.create_namespaced_pod(namespace, client.V1Pod(metadata=meta, spec=spec))
        found: dict[str, Pod] = {}
        node = ""

        def running() -> bool:
            nonlocal node
            for name in ("kv-0", "kv-1", "stranger"):
                pod = core.read_namespaced_pod(name, namespace)
                statuses = pod.status.container_statuses or []
                if pod.status.phase != "Running" or not statuses or not statuses[0].container_id:
                    return False
                try:
                    pid = podproc.container_process(statuses[0].container_id).pid
                except podproc.PodProcessError:  # Running in the API a moment before its process shows
                    return False
                found[name] = Pod(namespace, name, pod.status.pod_ip, pid)
                node = pod.spec.node_name
            return True

        wait_for("three maptarget pods Running", running, POD_TIMEOUT_S, 0.5)
        wait_for("kv-1 answers kv-0", lambda: http_answers(found["kv-0"], found["kv-1"]), POD_TIMEOUT_S, 0.2)
        yield node, found
    finally:
        core.delete_namespace(namespace, grace_period_seconds=0)


@pytest.fixture(scope="module")
def agent(k8s_cluster: Any, pods: tuple[str, dict[str, Pod]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[str, str]
]:  # fmt: skip
    """A running ``python -m chaos.agent --kubernetes`` for the pods' node: ("127.0.0.1:port", token)."""
    node, _ = pods
    work = tmp_path_factory.mktemp("agent")
    token = secrets.token_hex(16)
    token_file = work / "token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)
    ready = work / "ready.json"
    argv = [
        sys.executable, "-m", "chaos.agent", "--kubernetes", "--listen", "127.0.0.1:0", "--token-file", str(token_file),
        "--node-name", node, "--kubeconfig", str(k8s_cluster.kubeconfig), "--ready-file", str(ready),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(work / "agent.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for("the agent serves", lambda: ready.exists() or proc.poll() is not None, AGENT_TIMEOUT_S)
        assert proc.poll() is None, (work / "agent.log").read_text()
        yield f"127.0.0.1:{json.loads(ready.read_text())['port']}", token
    finally:
        stop_process(proc, grace_s=10.0)
        print((work / "agent.log").read_text()[-4000:])


def topology(node: str, kv: dict[str, Pod]) -> RunTopology:
    nodes = tuple(
        NodeInfo(name, pod.netns, pod.ip, "eth0", "target", "kv", i, host=node)
        for i, (name, pod) in enumerate(sorted((n, p) for n, p in kv.items() if n.startswith("kv-")))
    )
    return RunTopology(RUN, nodes)


def test_partition_through_the_agent_cuts_and_heals(pods: tuple[str, dict[str, Pod]], agent: tuple[str, str]) -> None:
    node, kv = pods
    address, token = agent
    nemesis = Nemesis.connect({node: address}, token, RUN, lease_s=LEASE_S)
    try:
        assert http_answers(kv["kv-0"], kv["kv-1"])
        halves = build_fault("partition", {"shape": "halves", "among": "kv"})
        applied = nemesis.apply(resolve_fault(halves, topology(node, kv), phase="cut", index=0))
        assert applied.mechanisms == ["nft drop"] and applied.hosts == (node,)
        assert not http_answers(kv["kv-0"], kv["kv-1"])
        assert not http_answers(kv["kv-1"], kv["kv-0"])
        assert http_answers(kv["stranger"], kv["kv-1"])  # only the halves are cut from each other
    finally:
        nemesis.end_phase("cut")
        problems = nemesis.close()
    assert problems == []
    assert http_answers(kv["kv-0"], kv["kv-1"]) and http_answers(kv["kv-1"], kv["kv-0"])


def partition_message(fid: str, target: Pod, source: Pod, run: str = RUN) -> pb.Fault:
    cut = pb.Cut(netns=target.netns, sources=[source.ip])
    return pb.Fault(id=fid, run_id=run, summary="test cut", partition=pb.Partition(mode="drop", cuts=[cut]))


def test_a_pod_without_the_runs_label_and_a_wrong_token_are_refused(
    pods: tuple[str, dict[str, Pod]], agent: tuple[str, str]
) -> None:
    _, kv = pods
    address, token = agent
    client = AgentClient(address, token)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            client.apply(partition_message("x.0", kv["stranger"], kv["kv-0"]), LEASE_S)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"not labelled {RUN_LABEL}={RUN}" in refused.value.details()
        with pytest.raises(grpc.RpcError) as other_run:
            client.apply(partition_message("x.1", kv["kv-1"], kv["kv-0"], run="ffffffff"), LEASE_S)
        assert other_run.value.code() == grpc.StatusCode.PERMISSION_DENIED
        local_netns = pb.Cut(netns=f"mq-{RUN}-kv-0", sources=[kv["kv-1"].ip])  # a local agent's name
        with pytest.raises(grpc.RpcError) as not_a_pod:
            client.apply(
                pb.Fault(id="x.2", run_id=RUN, summary="s", partition=pb.Partition(mode="drop", cuts=[local_netns])),
                LEASE_S,
            )
        assert "not a pod" in not_a_pod.value.details()
        assert client.list(RUN) == [] and http_answers(kv["kv-0"], kv["stranger"])
    finally:
        client.close()
    stranger = AgentClient(address, "wrong-token-" + "0" * 16)
    try:
        with pytest.raises(grpc.RpcError) as denied:
            stranger.list()
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stranger.close()


def test_lease_expiry_heals_without_the_controller(pods: tuple[str, dict[str, Pod]], agent: tuple[str, str]) -> None:
    _, kv = pods
    address, token = agent
    client = AgentClient(address, token)
    try:
        applied_at = time.monotonic()
        client.apply(partition_message("lease.0", kv["kv-1"], kv["kv-0"]), SHORT_LEASE_S)  # never renewed
        assert not http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5)
        assert time.monotonic() - applied_at < SHORT_LEASE_S, "the check took longer than the lease: inconclusive"
        wait_for("the lease heals the cut", lambda: http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5),
                 SHORT_LEASE_S + 5.0)  # fmt: skip
        assert client.list(RUN) == []
    finally:
        client.heal(RUN)
        client.close()


def test_pause_freezes_the_pod_until_heal(pods: tuple[str, dict[str, Pod]], agent: tuple[str, str]) -> None:
    _, kv = pods
    address, token = agent
    client = AgentClient(address, token)
    pause = pb.Fault(id="pause.0", run_id=RUN, summary="pause kv-1", signal=pb.Signal(action="pause",
                     netns=kv["kv-1"].netns, pid=0))  # fmt: skip
    try:
        reply = client.apply(pause, LEASE_S)
        assert list(reply.mechanisms) == ["cgroup freezer (the whole pod)"]
        assert not http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5)  # the kernel may accept; nobody answers
        client.heal(RUN, ["pause.0"])
        wait_for("kv-1 answers once thawed", lambda: http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5), 5.0)
    finally:
        client.heal(RUN)
        client.close()


def test_kill_restarts_the_container_and_a_cut_outlives_it_until_heal(
    k8s_cluster: Any, pods: tuple[str, dict[str, Pod]], agent: tuple[str, str]
) -> None:
    """The cut is entered through the pod's sandbox, so it stays while the killed container restarts, and the
    heal (after the restart) still reaches the namespace."""
    from kubernetes import client as k8s

    _, kv = pods
    address, token = agent
    core = k8s.CoreV1Api(k8s_cluster.api())

    def restarts() -> int:
        statuses = core.read_namespaced_pod("kv-1", kv["kv-1"].namespace).status.container_statuses or []
        return sum(s.restart_count for s in statuses)

    before = restarts()
    agent_client = AgentClient(address, token)
    kill = pb.Fault(id="kill.0", run_id=RUN, summary="kill kv-1", signal=pb.Signal(action="kill",
                    netns=kv["kv-1"].netns, pid=0))  # fmt: skip
    try:
        agent_client.apply(partition_message("cut.9", kv["kv-1"], kv["kv-0"]), 60.0)  # outlives the restart
        reply = agent_client.apply(kill, LEASE_S)
        assert list(reply.mechanisms) == ["SIGKILL to the container's main process"]
        wait_for("kv-1's container restarted", lambda: restarts() > before, POD_TIMEOUT_S, 0.5)
        wait_for("kv-1 answers the stranger again", lambda: http_answers(kv["stranger"], kv["kv-1"]), 30.0, 0.2)
        assert not http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5)  # the cut is still in the pod's namespace
        assert list(agent_client.heal(RUN, ["cut.9", "kill.0"]).errors) == []
        assert http_answers(kv["kv-0"], kv["kv-1"])
    finally:
        agent_client.heal(RUN)
        agent_client.close()


# --- no cluster: the same agent engine on this kernel, a stand-in pod, its labels from a list ----------------


class ListedPods:
    """A PodSource answering from a list (what the API server would): the label and node checks still apply."""

    node = "stand-in-node"

    def __init__(self, pods: list[PodRef]) -> None:
        self.pods = pods

    def pods_of_run(self, run_id: str) -> list[PodRef]:
        return [p for p in self.pods if p.labels.get(RUN_LABEL) == run_id and p.node == self.node]

    def find(self, namespace: str, name: str) -> PodRef | None:
        return next((p for p in self.pods if (p.namespace, p.name) == (namespace, name)), None)

    def runs(self) -> set[str]:
        return {p.labels[RUN_LABEL] for p in self.pods if RUN_LABEL in p.labels}


@pytest.fixture
def stand_in_pod() -> Iterator[tuple[PodRef, int, int, Path]]:
    """A pod as the kubelet lays it out with the cgroupfs driver, made by hand: freezer cgroups
    ``<root>/pod<uid>/<sandbox id>`` holding a sleep in a new network namespace (the sandbox) and
    ``<root>/pod<uid>/<container id>`` holding a sleep in the same namespace (the app).
    Yields (its PodRef, sandbox pid, app pid, the pod's freezer cgroup); removes all of it after."""
    uid, sandbox_id, app_id = str(uuid.uuid4()), secrets.token_hex(32), secrets.token_hex(32)
    root = podproc.FREEZER_ROOT / f"mq-agentk8s-{secrets.token_hex(3)}"
    pod_dir = root / f"pod{uid}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cid in (sandbox_id, app_id):
            (pod_dir / cid).mkdir(parents=True)
        procs.append(subprocess.Popen(["unshare", "--net", "sleep", "600"]))
        wait_for("the sandbox's namespace", lambda: os.readlink(f"/proc/{procs[0].pid}/ns/net")
                 != os.readlink("/proc/self/ns/net"), 5.0, 0.01)  # fmt: skip
        procs.append(subprocess.Popen(["nsenter", f"--net=/proc/{procs[0].pid}/ns/net", "sleep", "600"]))
        wait_for("the app in the pod's namespace", lambda: os.readlink(f"/proc/{procs[1].pid}/ns/net")
                 == os.readlink(f"/proc/{procs[0].pid}/ns/net"), 5.0, 0.01)  # fmt: skip
        (pod_dir / sandbox_id / "cgroup.procs").write_text(str(procs[0].pid))
        (pod_dir / app_id / "cgroup.procs").write_text(str(procs[1].pid))
        pod = PodRef("mq", "stand-in", uid, ListedPods.node, {RUN_LABEL: RUN}, (f"containerd://{app_id}",))
        yield pod, procs[0].pid, procs[1].pid, pod_dir
    finally:
        if (pod_dir / "freezer.state").exists():
            (pod_dir / "freezer.state").write_text("THAWED")
        for p in procs:
            stop_process(p, grace_s=1.0)
        for d in (pod_dir / sandbox_id, pod_dir / app_id, pod_dir, root):
            if d.exists():
                d.rmdir()


def test_stand_in_pod_on_this_kernel_cut_pause_kill(stand_in_pod: tuple[PodRef, int, int, Path]) -> None:
    pod, sandbox, app, pod_cgroup = stand_in_pod
    stranger = PodRef("mq", "db", pod.uid, ListedPods.node, {}, pod.container_ids)
    table = FaultTable(PodNamespaces(ListedPods([pod, stranger])), Capabilities(nft=True, netem=False))
    assert table.namespaces.handle(RUN, pod.netns_key).prefix == ("nsenter", f"--net=/proc/{sandbox}/ns/net")

    def tables() -> str:
        argv = ["nsenter", f"--net=/proc/{app}/ns/net", "nft", "list", "tables"]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    cut = pb.Fault(id="c.0", run_id=RUN, summary="cut", partition=pb.Partition(
        mode="drop", cuts=[pb.Cut(netns=pod.netns_key, sources=["198.19.0.99"])]))  # fmt: skip
    try:
        assert table.apply(cut, LEASE_S).mechanisms == ["nft drop"]
        assert f"mapquake_{RUN}" in tables()
        with pytest.raises(Refused, match="not labelled"):
            table.apply(pb.Fault(id="c.1", run_id=RUN, summary="cut", partition=pb.Partition(
                mode="drop", cuts=[pb.Cut(netns="pod/mq/db", sources=["198.19.0.99"])])), LEASE_S)  # fmt: skip
        table.heal(RUN, ["c.0"])
        assert f"mapquake_{RUN}" not in tables()

        pause = pb.Fault(id="s.0", run_id=RUN, summary="pause", signal=pb.Signal(action="pause", netns=pod.netns_key))
        table.apply(pause, LEASE_S)
        assert (pod_cgroup / "freezer.state").read_text().strip() == "FROZEN"
        table.heal(RUN, ["s.0"])
        assert (pod_cgroup / "freezer.state").read_text().strip() == "THAWED"

        kill = pb.Fault(id="k.0", run_id=RUN, summary="kill", signal=pb.Signal(action="kill", netns=pod.netns_key))
        table.apply(kill, LEASE_S)
        wait_for("the app is gone", lambda: not Path(f"/proc/{app}").exists() or _state(app) == "Z", 5.0, 0.01)
        assert _state(sandbox) != "Z"  # the sandbox (and the pod's namespace) stay
    finally:
        table.heal_everything("test end")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
