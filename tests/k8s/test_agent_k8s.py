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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from chaos.agent.client import AgentClient
from chaos.agent.pb import agent_pb2 as pb
from chaos.engines import podproc
from chaos.engines.k8s import RUN_LABEL
from chaos.nemesis import Nemesis
from chaos.resolve import NodeInfo, RunTopology, resolve_fault
from orchestrator.core.processes import stop_process
from orchestrator.scenario.spec import build_fault

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (nsenter, nft, freezer)")

REPO = Path(__file__).resolve().parents[2]
RUN = "a9e4c0de"
PORT = 8080
POD_TIMEOUT_S = 60.0
AGENT_TIMEOUT_S = 20.0
LEASE_S = 5.0


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
                pid = podproc.container_process(statuses[0].container_id).pid
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
        client.apply(partition_message("lease.0", kv["kv-1"], kv["kv-0"]), 1.0)  # never renewed
        assert not http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5)
        wait_for("the lease heals the cut", lambda: http_answers(kv["kv-0"], kv["kv-1"], timeout_s=0.5), 1.0 + 5.0)
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
