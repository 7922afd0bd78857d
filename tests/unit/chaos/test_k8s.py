"""The Kubernetes engine on a fake /proc and freezer tree: pids from cgroups, label and node refusals, nsenter
handles with the same nft document, pause as a frozen pod cgroup thawed at heal, kill by the container's pid.

The real-cluster version is tests/k8s/test_agent_k8s.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.agent.ownership import Refused
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.server import FaultTable
from chaos.engines import k8s, nft, podproc
from chaos.engines.k8s import PodNamespaces, PodRef
from chaos.probe import Capabilities
from tests.unit.chaos.test_fault_table import Clock
from tests.unit.chaos.test_nft import FakeRunner

RUN = "0a0b0c0d"
NODE = "node-a"
UID = "11111111-2222-3333-4444-555555555555"
APP = "a" * 64
SIDE = "b" * 64
SANDBOX = "c" * 64
POD_DIR = f"/kubepods/besteffort/pod{UID}"


def fake_pid(proc: Path, pid: int, ppid: int, start: int, cgroup_path: str, state: str = "S") -> None:
    base = proc / str(pid)
    base.mkdir(parents=True)
    lines = [f"9:name=systemd:{cgroup_path}", "8:pids:" + cgroup_path, f"6:freezer:{cgroup_path}",
             f"2:cpu,cpuacct:{cgroup_path}"]  # fmt: skip
    (base / "cgroup").write_text("\n".join(lines) + "\n")
    fields = [state, str(ppid)] + ["0"] * 17 + [str(start), "0", "0"]  # state is field 3, starttime field 22
    (base / "stat").write_text(f"{pid} (app x) " + " ".join(fields) + "\n")


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A node's /proc: the pod's sandbox (pause), its app container (init 500 and a child), a sidecar, a stranger."""
    root = tmp_path / "proc"
    fake_pid(root, 400, 90, 1000, f"{POD_DIR}/{SANDBOX}")  # pause, child of the shim (90)
    fake_pid(root, 500, 91, 1100, f"{POD_DIR}/{APP}")  # the app's init, child of its shim
    fake_pid(root, 501, 500, 1200, f"{POD_DIR}/{APP}")  # a worker it forked
    fake_pid(root, 600, 92, 1300, f"{POD_DIR}/{SIDE}")
    fake_pid(root, 700, 1, 50, "/system.slice/containerd.service")
    (root / "self").mkdir()  # not a pid: skipped
    return root


@pytest.fixture
def freezer(tmp_path: Path) -> Path:
    root = tmp_path / "freezer"
    (root / POD_DIR.lstrip("/")).mkdir(parents=True)
    (root / POD_DIR.lstrip("/") / "freezer.state").write_text("THAWED\n")
    return root


def pod(name: str = "cache-0", *, labels: dict[str, str] | None = None, node: str = NODE) -> PodRef:
    return PodRef(
        namespace="mq",
        name=name,
        uid=UID,
        node=node,
        labels={k8s.RUN_LABEL: RUN} if labels is None else labels,
        container_ids=(f"containerd://{APP}", f"containerd://{SIDE}"),
    )


class FakeSource:
    """What the API server would answer: the selector is applied like the real list call."""

    node = NODE

    def __init__(self, pods: list[PodRef]) -> None:
        self.pods = pods

    def pods_of_run(self, run_id: str) -> list[PodRef]:
        return [p for p in self.pods if p.node == self.node and p.labels.get(k8s.RUN_LABEL) == run_id]

    def find(self, namespace: str, name: str) -> PodRef | None:
        return next((p for p in self.pods if (p.namespace, p.name) == (namespace, name)), None)

    def runs(self) -> set[str]:
        return {p.labels[k8s.RUN_LABEL] for p in self.pods if k8s.RUN_LABEL in p.labels and p.node == self.node}


def test_parse_cgroup_v1_v2_and_co_mounted() -> None:
    text = "6:freezer:/kubepods/x\n2:cpu,cpuacct:/k/y\n9:name=systemd:/s\n0::/v2\n"
    assert podproc.parse_cgroup(text) == {
        "freezer": "/kubepods/x", "cpu": "/k/y", "cpuacct": "/k/y", "name=systemd": "/s", "": "/v2",
    }  # fmt: skip


def test_container_process_is_the_containers_init_found_by_cgroup(proc: Path) -> None:
    found = podproc.container_process(f"containerd://{APP}", proc)
    assert (found.pid, found.start_time) == (500, 1100)  # not 501, whose parent is in the container
    assert found.cgroups["freezer"] == f"{POD_DIR}/{APP}"
    assert podproc.container_process(f"containerd://{SIDE}", proc).pid == 600


def test_systemd_driver_scope_names_match(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    fake_pid(root, 800, 1, 5, f"/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-{APP}.scope")
    assert podproc.container_process(f"containerd://{APP}", root).pid == 800


def test_missing_zombie_and_malformed_containers_are_errors(proc: Path, tmp_path: Path) -> None:
    with pytest.raises(podproc.PodProcessError, match="no running process of container dddddddddddd"):
        podproc.container_process("containerd://" + "d" * 64, proc)
    zombie = tmp_path / "zproc"
    fake_pid(zombie, 900, 1, 5, f"{POD_DIR}/{APP}", state="Z")
    with pytest.raises(podproc.PodProcessError, match="no running process"):
        podproc.container_process(f"containerd://{APP}", zombie)
    with pytest.raises(podproc.PodProcessError, match="not <runtime>://<hex id>"):
        podproc.container_process("containerd://../../etc", proc)


def test_sandbox_is_the_sibling_cgroup_of_no_app_container(proc: Path) -> None:
    app = podproc.container_process(f"containerd://{APP}", proc)
    sandbox = podproc.sandbox_process(app, [f"containerd://{APP}", f"containerd://{SIDE}"], proc)
    assert sandbox is not None and sandbox.pid == 400


def test_freezer_dir_is_the_pod_cgroup_and_never_above_it(proc: Path, freezer: Path) -> None:
    app = podproc.container_process(f"containerd://{APP}", proc)
    assert podproc.pod_freezer_dir(app, UID, freezer) == freezer / POD_DIR.lstrip("/")
    with pytest.raises(podproc.PodProcessError, match="is not the cgroup of pod"):
        podproc.pod_freezer_dir(app, "99999999-0000-0000-0000-000000000000", freezer)
    stray = podproc.ContainerProcess(700, 50, {"freezer": "/system.slice/containerd.service"})
    with pytest.raises(podproc.PodProcessError, match="is not the cgroup of pod"):
        podproc.pod_freezer_dir(stray, UID, freezer)


def test_handle_enters_through_the_sandbox_and_applies_the_same_document(proc: Path) -> None:
    fake = FakeRunner()
    pods = PodNamespaces(FakeSource([pod()]), proc=proc)
    handle = pods.handle(RUN, "pod/mq/cache-0")
    assert handle.name == "pod/mq/cache-0"
    rules = nft.NamespaceRules(cuts=[nft.Cut("p.0", ("198.19.0.12",), "drop")])
    nft.apply(handle, RUN, rules, nft.NftCommand(fake))
    argv, stdin = fake.calls[-1]
    assert argv == ["nsenter", "--net=/proc/400/ns/net", "nft", "-j", "-f", "-"]
    assert json.loads(stdin or "") == nft.render(RUN, rules)
    assert [(h.prefix, ifname) for h, ifname in pods.interfaces(RUN)] == [
        (("nsenter", "--net=/proc/400/ns/net"), "eth0")
    ]


def test_refusals_name_what_is_wrong(proc: Path) -> None:
    source = FakeSource(
        [
            pod(),
            pod("db-0", labels={"app": "db"}),
            pod("other-run", labels={k8s.RUN_LABEL: "ffffffff"}),
            pod("elsewhere", node="node-b"),
            PodRef("mq", "starting", UID, NODE, {k8s.RUN_LABEL: RUN}, ()),
        ]
    )
    pods = PodNamespaces(source, proc=proc)
    cases = {
        "pod/mq/db-0": f"not labelled {k8s.RUN_LABEL}={RUN} \\(no {k8s.RUN_LABEL} label\\)",
        "pod/mq/other-run": f"not labelled {k8s.RUN_LABEL}={RUN} \\({k8s.RUN_LABEL}=ffffffff\\)",
        "pod/mq/elsewhere": "runs on node node-b, this agent serves node node-a",
        "pod/mq/nope": "pod/mq/nope: no such pod",
        "pod/mq/starting": "has no running container",
        f"mq-{RUN}-a": "not a pod",
        "pod/mq": "not a pod",
    }
    for netns, message in cases.items():
        with pytest.raises(Refused, match=message):
            pods.handle(RUN, netns)
    with pytest.raises(Refused, match="not labelled"):
        pods.handle("ffffffff", "pod/mq/cache-0")  # the right pod, another run's fault


def test_the_label_is_read_again_on_every_call(proc: Path) -> None:
    source = FakeSource([pod()])
    pods = PodNamespaces(source, proc=proc)
    pods.handle(RUN, "pod/mq/cache-0")
    source.pods = [pod(labels={})]  # someone removed the label
    with pytest.raises(Refused, match="not labelled"):
        pods.handle(RUN, "pod/mq/cache-0")


def test_process_is_the_main_container_and_pid_zero_means_it(proc: Path) -> None:
    pods = PodNamespaces(FakeSource([pod()]), proc=proc)
    assert pods.process(RUN, 0, "pod/mq/cache-0").pid == 500
    assert pods.process(RUN, 500, "pod/mq/cache-0").start_time == 1100
    with pytest.raises(Refused, match="pid 501 is not the main process of pod/mq/cache-0 \\(that is pid 500\\)"):
        pods.process(RUN, 501, "pod/mq/cache-0")


def signal(fid: str, action: str, pid: int = 0) -> pb.Fault:
    return pb.Fault(id=fid, run_id=RUN, summary="s", signal=pb.Signal(action=action, netns="pod/mq/cache-0", pid=pid))


def test_pause_freezes_the_pod_cgroup_and_heal_and_lease_thaw_it(proc: Path, freezer: Path) -> None:
    state = freezer / POD_DIR.lstrip("/") / "freezer.state"
    clock = Clock()
    pods = PodNamespaces(FakeSource([pod()]), proc=proc, freezer_root=freezer)
    table = FaultTable(pods, Capabilities(nft=True, netem=False), runner=FakeRunner(), clock=clock)
    held = table.apply(signal("s.0", "pause"), 5.0)
    assert held.mechanisms == ["cgroup freezer (the whole pod)"]
    assert state.read_text() == "FROZEN"
    with pytest.raises(Refused, match="frozen already"):
        table.apply(signal("s.1", "pause"), 5.0)
    assert table.heal(RUN, ["s.0"]) == (["s.0"], [])
    assert state.read_text() == "THAWED"
    table.apply(signal("s.2", "pause"), 5.0)
    clock.now += 5.1
    assert table.reap() == [(RUN, "s.2")]
    assert state.read_text() == "THAWED"


def test_thaw_frozen_sweeps_what_a_dead_agent_left(proc: Path, freezer: Path) -> None:
    state = freezer / POD_DIR.lstrip("/") / "freezer.state"
    state.write_text("FROZEN")
    pods = PodNamespaces(FakeSource([pod()]), proc=proc, freezer_root=freezer)
    assert pods.thaw_frozen(RUN) == ["thawed pod/mq/cache-0"]
    assert state.read_text() == "THAWED"


def test_kill_signals_the_main_process_by_pid_and_start_time(proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int | None]] = []
    monkeypatch.setattr(k8s.process, "kill", lambda pid, start: sent.append((pid, start)))
    pods = PodNamespaces(FakeSource([pod(), pod("db-0", labels={})]), proc=proc)
    table = FaultTable(pods, Capabilities(nft=True, netem=False), runner=FakeRunner(), clock=Clock())
    assert table.apply(signal("k.0", "kill"), 5.0).mechanisms == ["SIGKILL to the container's main process"]
    assert sent == [(500, 1100)]
    bad = pb.Fault(id="k.1", run_id=RUN, summary="s", signal=pb.Signal(action="kill", netns="pod/mq/db-0"))
    with pytest.raises(Refused, match="not labelled"):
        table.apply(bad, 5.0)
    assert sent == [(500, 1100)]


def test_a_pod_gone_before_heal_is_not_entered_and_its_heal_succeeds(proc: Path) -> None:
    fake = FakeRunner()
    table = FaultTable(PodNamespaces(FakeSource([pod()]), proc=proc), Capabilities(nft=True, netem=False),
                       runner=fake, clock=Clock())  # fmt: skip
    cut = pb.Fault(id="c.0", run_id=RUN, summary="c", partition=pb.Partition(
        mode="drop", cuts=[pb.Cut(netns="pod/mq/cache-0", sources=["198.19.0.12"])]))  # fmt: skip
    table.apply(cut, 5.0)
    assert fake.calls[-1][0][:2] == ["nsenter", "--net=/proc/400/ns/net"]
    n = len(fake.calls)
    stat = proc / "400" / "stat"
    stat.write_text(stat.read_text().replace(" 1000 0 0", " 9999 0 0"))  # pid 400 reused by another process
    assert table.heal(RUN, ["c.0"]) == (["c.0"], [])
    assert len(fake.calls) == n  # never entered the stranger's namespace
