"""The Kubernetes backend's objects as data: names, labels, ownership, peers, probes, Jobs (no cluster)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends.kubernetes import manifests as m
from orchestrator.backends.kubernetes.backend import KubernetesBackend, scenario_errors, split_targets
from orchestrator.backends.kubernetes.pods import container_exit, is_ready, pod_ip
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import Scenario

BASE = """\
apiVersion: mapquake/v1
kind: Scenario
name: k8s
backend: kubernetes
targets: [{name: ring, store: ringbuffer, replicas: 3, replicate: {queue: bounded}}]
load: {keys: {space: 10}, workers: 2}
phases: [{name: p, duration: 1s}]
"""
NAMES = m.RunNames("0a1b2c3d", "runs")
OWNER = m.Owner("mapquake-run-0a1b2c3d", "uid-1")


def scenario(*overrides: str, text: str = BASE) -> Scenario:
    return load_scenario_text(text, overrides=list(overrides))


def statefulset(s: Scenario) -> dict[str, Any]:
    target = s.targets[0]
    return m.target_statefulset(
        NAMES, OWNER, target, image="img", pull_policy="Never", args=m.store_args(target, NAMES), env={},
        ready_path="/healthz", ready_port=m.HTTP_PORT,
    )  # fmt: skip


def test_every_object_carries_the_run_labels_and_is_owned_by_the_run_object() -> None:
    s = scenario()
    objects = [
        m.admin_secret(NAMES, OWNER, "t"),
        m.target_service(NAMES, OWNER, s.targets[0]),
        statefulset(s),
        m.load_config(NAMES, OWNER, {"master.json": "{}"}),
        m.locust_master_job(NAMES, OWNER, image="i", pull_policy="Never", args=[], env={}, deadline_s=60),
        m.locust_workers_job(NAMES, OWNER, workers=2, image="i", pull_policy="Never", args=[], env={}, deadline_s=60),
        m.prometheus_config(NAMES, OWNER, "x"),
        m.prometheus_pod(NAMES, OWNER, image="i", pull_policy="Never"),
    ]
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "runs"
        assert meta["labels"][m.RUN_LABEL] == "0a1b2c3d"
        assert meta["labels"][m.MANAGED_BY_LABEL] == "mapquake"
        assert meta["ownerReferences"] == [OWNER.reference()], meta["name"]
        assert len(meta["name"]) <= 63
    run = m.run_object(NAMES, scenario="s", controller="host:1", heartbeat="now")
    assert "ownerReferences" not in run["metadata"]
    assert run["metadata"]["labels"][m.COMPONENT_LABEL] == "run"


def test_replicas_replicate_to_every_stable_name_but_their_own() -> None:
    args = m.store_args(scenario().targets[0], NAMES)
    peers = args[args.index("--peers") + 1].split(",")
    assert peers == [f"mq-0a1b2c3d-ring-{i}.mq-0a1b2c3d-ring.runs.svc.cluster.local:9090" for i in range(3)]
    # The kubelet expands $(POD_NAME) per pod; maptarget drops that entry from --peers.
    assert args[args.index("--self") + 1] == "$(POD_NAME).mq-0a1b2c3d-ring.runs.svc.cluster.local:9090"
    assert args[args.index("--peer-queue") + 1] == "bounded"


def test_a_single_replica_or_no_replication_has_no_peers() -> None:
    single = BASE.replace("replicas: 3, replicate: {queue: bounded}", "replicas: 2")
    assert "--peers" not in m.store_args(scenario(text=single).targets[0], NAMES)


def test_target_pods_get_the_run_id_the_admin_token_and_a_readiness_probe() -> None:
    sts = statefulset(scenario())
    spec = sts["spec"]
    assert spec["serviceName"] == "mq-0a1b2c3d-ring" and spec["replicas"] == 3
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["MAPQUAKE_RUN_ID"]["value"] == "0a1b2c3d"
    assert env["MAPTARGET_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == NAMES.admin_secret
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_resources_go_to_the_container_as_written() -> None:
    text = BASE.replace("replicate: {queue: bounded}", "resources: {limits: {memory: 256Mi}, requests: {cpu: 100m}}")
    sts = statefulset(scenario(text=text))
    assert sts["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"memory": "256Mi"},
        "requests": {"cpu": "100m"},
    }


def test_a_bad_quantity_is_a_scenario_error() -> None:
    text = BASE.replace("replicate: {queue: bounded}", "resources: {limits: {memory: lots}}")
    with pytest.raises(Exception, match="memory"):
        scenario(text=text)


def test_workers_are_an_indexed_job_under_their_service_and_read_their_own_plan() -> None:
    master = m.Owner(NAMES.master_job, "uid-2", "Job", "batch/v1")
    job = m.locust_workers_job(
        NAMES, master, workers=2, image="i", pull_policy="Never", args=["--worker"], env={}, deadline_s=9
    )
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["apiVersion"], owner["name"]) == ("Job", "batch/v1", NAMES.master_job)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 2
    assert spec["activeDeadlineSeconds"] == 9 and spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == NAMES.workers_service and pod["restartPolicy"] == "Never"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["MAPQUAKE_PLAN"] == f"{m.PLAN_DIR}/worker-{{index}}.json"
    assert NAMES.worker_host(1) == "mq-0a1b2c3d-locust-workers-1.mq-0a1b2c3d-workers.runs.svc.cluster.local"


def _locust_resources(s: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    """The master's and the workers' container resources, as the backend builds their Jobs."""
    master = m.locust_master_job(
        NAMES, OWNER, image="i", pull_policy="Never", args=[], env={}, deadline_s=9,
        resources=s.kubernetes.locust_master,
    )  # fmt: skip
    workers = m.locust_workers_job(
        NAMES, OWNER, workers=2, image="i", pull_policy="Never", args=[], env={}, deadline_s=9,
        resources=s.kubernetes.locust_worker,
    )  # fmt: skip
    return tuple(job["spec"]["template"]["spec"]["containers"][0]["resources"] for job in (master, workers))  # type: ignore[return-value]


def test_the_locust_pods_get_modest_cpu_requests_by_default_and_no_limits() -> None:
    # A busy node must not starve the load (a BestEffort worker delivered 20 % of its design), and the
    # single 2-core test node must still schedule every run: 100m + 250m per worker, nothing capped.
    master, worker = _locust_resources(scenario())
    assert master == {"requests": {"cpu": "100m"}}
    assert worker == {"requests": {"cpu": "250m"}}


def test_the_locust_pods_resources_come_from_the_scenario() -> None:
    text = BASE + "kubernetes: {locust: {worker: {requests: {cpu: '1', memory: 256Mi}, limits: {memory: 1Gi}}}}\n"
    master, worker = _locust_resources(scenario(text=text))
    assert master == {"requests": {"cpu": "100m"}}
    assert worker == {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    master, worker = _locust_resources(scenario("kubernetes.locust.master={}", "kubernetes.locust.worker={}"))
    assert master == worker == {}  # BestEffort, if a user asks for it
    with pytest.raises(Exception, match=r"kubernetes\.locust\.worker\.requests\.cpu"):
        scenario("kubernetes.locust.worker.requests.cpu=lots")


def test_the_kubernetes_settings_come_from_the_scenario() -> None:
    text = BASE + "kubernetes: {namespace: load-tests, images: {maptarget: r/m:1}, pull_policy: Never}\n"
    k = scenario(text=text).kubernetes
    assert (k.namespace, k.maptarget_image, k.mapquake_image, k.pull_policy) == ("load-tests", "r/m:1", None, "Never")
    assert scenario().kubernetes.namespace == "mapquake-runs"


def test_what_kubernetes_cannot_run_is_named_with_the_way_out() -> None:
    assert scenario_errors(scenario()) == []
    errors = scenario_errors(scenario('targets.0.go="1.23"'))
    assert len(errors) == 1 and "Go 1.26" in errors[0] and "backend: local" in errors[0]
    store = "{name: ring, store: ringbuffer, replicas: 3, replicate: {queue: bounded}}"
    no_image = scenario(text=BASE.replace(store, "{name: svc, command: [/bin/true]}"))
    assert scenario_errors(no_image) == ["target 'svc': give image: (a container image of your service)"]
    per_pod = scenario(text=BASE.replace(store, "{name: svc, image: r/svc:1, args: ['--peers={peers}']}"))
    assert scenario_errors(per_pod) == []


def test_a_service_whose_args_differ_per_replica_gets_one_statefulset_per_replica() -> None:
    store = "{name: ring, store: ringbuffer, replicas: 3, replicate: {queue: bounded}}"
    service = (
        "{name: svc, image: r/svc:1, replicas: 3, args: ['--peers={peers}', '--id={replica}', '--http={http_addr}']}"
    )
    s = scenario(text=BASE.replace(store, service))
    assert split_targets(s) == {"svc"} and split_targets(scenario()) == frozenset()
    backend = KubernetesBackend(run_id="0a1b2c3d", run_dir=Path("/nonexistent"))
    backend.configure(replace(s, kubernetes=replace(s.kubernetes, namespace="runs")))
    backend.owner = OWNER
    objects = backend._statefulsets(s.targets[0], m.default_images())
    assert [o["metadata"]["name"] for o in objects] == [f"mq-0a1b2c3d-svc-{i}" for i in range(3)]
    one = objects[1]
    assert one["spec"]["replicas"] == 1 and one["spec"]["serviceName"] == "mq-0a1b2c3d-svc"
    assert one["spec"]["template"]["metadata"]["labels"][m.REPLICA_LABEL] == "1"
    args = one["spec"]["template"]["spec"]["containers"][0]["args"]
    peers = [f"mq-0a1b2c3d-svc-{i}-0.mq-0a1b2c3d-svc.runs.svc.cluster.local:8080" for i in (0, 2)]
    assert args == [f"--peers={','.join(peers)}", "--id=1", "--http=0.0.0.0:8080"]
    assert backend.names.replica_pod("svc", 2) == "mq-0a1b2c3d-svc-2-0"


def test_pod_state_readers() -> None:
    pod: dict[str, Any] = {
        "status": {
            "podIP": "198.19.0.12",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"restartCount": 2, "lastState": {"terminated": {"exitCode": 2}}, "state": {}}],
        }
    }
    assert pod_ip(pod) == "198.19.0.12" and is_ready(pod)
    assert container_exit(pod) == (2, 2)
    assert container_exit({"status": {"containerStatuses": [{"restartCount": 0, "state": {"running": {}}}]}}) is None
    done = {"status": {"containerStatuses": [{"restartCount": 0, "state": {"terminated": {"exitCode": 0}}}]}}
    assert container_exit(done) == (1, 0)
    assert not is_ready({"status": {}}) and pod_ip(None) is None
