"""``python -m chaos.agent --kubernetes``: its command line, and V1Pod → PodRef (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from chaos.agent.__main__ import main
from chaos.engines.k8sapi import api_client, pod_ref
from orchestrator.core.errors import UsageError


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("0123456789abcdef0123")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kubernetes"], "--kubernetes needs --node-name"),
        (["--kubernetes", "--node-name", "n", "--run", "0a0b0c0d"], "--run is for a local agent"),
        (["--kubernetes", "--node-name", "n", "--controller-pid", "7"], "--controller-pid is for a local agent"),
        (["--node-name", "n", "--run", "0a0b0c0d"], "go with --kubernetes"),
        ([], "a local agent needs --run"),
        (["--run", "0a0b0c0d"], "needs --ready-file"),
        (["--run", "XYZ", "--ready-file", "r"], "8 lowercase hex"),
        (["--kubernetes", "--node-name", "n", "--kubeconfig", "/nonexistent/kubeconfig"], "cannot load kubeconfig"),
    ],
)
def test_bad_command_lines_exit_2_with_the_reason(
    args: list[str], message: str, token: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["--token-file", str(token), *args]) == 2
    assert message in caplog.text


def test_in_cluster_config_outside_a_pod_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UsageError, match="in-cluster configuration"):
        api_client(None)


def test_pod_ref_keeps_running_containers_in_spec_order() -> None:
    def status(name: str, cid: str | None, running: bool) -> client.V1ContainerStatus:
        state = client.V1ContainerState(running=client.V1ContainerStateRunning() if running else None)
        return client.V1ContainerStatus(
            name=name, container_id=cid, state=state, image="i", image_id="", ready=running, restart_count=0
        )

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(namespace="mq", name="kv-0", uid="u-1", labels={"mapquake.io/run": "0a0b0c0d"}),
        spec=client.V1PodSpec(
            node_name="node-a",
            containers=[client.V1Container(name=n) for n in ("app", "side", "waiting")],
        ),
        status=client.V1PodStatus(
            container_statuses=[
                status("waiting", None, False),
                status("side", "containerd://bb", True),
                status("app", "containerd://aa", True),
            ]
        ),
    )
    ref = pod_ref(pod)
    assert (ref.netns_key, ref.uid, ref.node) == ("pod/mq/kv-0", "u-1", "node-a")
    assert ref.container_ids == ("containerd://aa", "containerd://bb")
    assert ref.labels == {"mapquake.io/run": "0a0b0c0d"}
