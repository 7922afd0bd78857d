"""charts/mapquake against the real test cluster: server-side dry-run, then RBAC of an installed release.

Uses the session fixture ``k8s_cluster`` (tests/k8s/conftest.py: ``.kubeconfig`` Path, ``.api()`` a
kubernetes ApiClient with admin rights). Every namespace here is made for the test and deleted after;
no agent pod is started (the DaemonSet's nodeSelector matches no node: only RBAC is under test).

RBAC is checked twice: SubjectAccessReviews for every (verb, resource) of the contract and the
forbidden neighbours, and real requests impersonating the controller's ServiceAccount.
"""

from __future__ import annotations

import copy
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.k8s.test_chart import CHART_DIR, CONTRACT_RUN_NAMESPACE_RULES, find_helm, render_manifests

pytestmark = pytest.mark.integration

FIELD_MANAGER = "mapquake"
HELM_TIMEOUT_S = 180
NAMESPACE_GONE_TIMEOUT_S = 90
# A nodeSelector no node has: the release's agent DaemonSet schedules nothing on the shared node.
NO_NODE = {"mapquake.io/chart-test": "no-such-node"}
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class Namespaces:
    release: str
    runs: str
    other: str  # labelled for runs, but not in runNamespaces: the chart grants nothing there

    def all(self) -> tuple[str, str, str]:
        return (self.release, self.runs, self.other)


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    found = find_helm()
    if found is None:
        pytest.skip("no helm binary: run cluster/build-binaries.sh (or set MAPQUAKE_HELM)")
    return found


@pytest.fixture(scope="module")
def api(k8s_cluster: Any) -> Iterator[client.ApiClient]:
    with k8s_cluster.api() as admin:
        yield admin


def values_for(ns: Namespaces) -> dict[str, Any]:
    return {
        "runNamespaces": [ns.runs],
        "createRunNamespaces": True,
        "apiServerOverride": {"host": "198.19.0.1"},
        "image": {"pullPolicy": "Never"},
        "agent": {"nodeSelector": NO_NODE},
        # Suspended: a schedule that fires during the test would start a real run.
        "nightly": {"enabled": True, "suspend": True, "scenarios": {"quickstart": "name: quickstart\n"}},
    }


def create_namespace(api: client.ApiClient, name: str, labels: dict[str, str] | None = None) -> None:
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
    client.CoreV1Api(api).create_namespace(body)


def delete_namespaces(api: client.ApiClient, names: tuple[str, ...]) -> None:
    """Delete and wait until they are gone (the namespace controller empties them first)."""
    core = client.CoreV1Api(api)
    for name in names:
        try:
            core.delete_namespace(name)
        except ApiException as err:
            if err.status != 404:
                raise
    deadline = time.monotonic() + NAMESPACE_GONE_TIMEOUT_S
    remaining = list(names)
    while remaining and time.monotonic() < deadline:
        remaining = [n for n in remaining if namespace_exists(core, n)]
        if remaining:
            time.sleep(0.5)  # polling a condition with a deadline, not a readiness guess
    assert not remaining, f"namespaces still terminating after {NAMESPACE_GONE_TIMEOUT_S}s: {remaining}"


def namespace_exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def fresh_namespaces() -> Namespaces:
    suffix = secrets.token_hex(3)
    return Namespaces(release=f"mqchart-{suffix}", runs=f"mqchart-{suffix}-runs", other=f"mqchart-{suffix}-other")


@pytest.fixture
def namespaces(api: client.ApiClient) -> Iterator[Namespaces]:
    ns = fresh_namespaces()
    try:
        yield ns
    finally:
        delete_namespaces(api, ns.all())


def apply(dynamic: DynamicClient, obj: dict[str, Any], *, dry_run: bool) -> Any:
    resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return resource.server_side_apply(
        body=obj,
        namespace=obj["metadata"].get("namespace"),
        field_manager=FIELD_MANAGER,
        dry_run="All" if dry_run else None,
    )


def test_rendered_chart_is_accepted_by_server_side_dry_run(
    api: client.ApiClient, helm_binary: Path, namespaces: Namespaces, tmp_path: Path
) -> None:
    create_namespace(api, namespaces.release)
    create_namespace(api, namespaces.runs)
    objects = render_manifests(helm_binary, values_for(namespaces), tmp_path, namespace=namespaces.release)
    dynamic = DynamicClient(api)
    for obj in objects:
        applied = apply(dynamic, obj, dry_run=True)
        assert applied.metadata.name == obj["metadata"]["name"]

    # The dry run created nothing...
    apps = client.AppsV1Api(api)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_daemon_set("mapquake-agent", namespaces.release)
    assert missing.value.status == 404
    # ...and it validates: the same DaemonSet with an impossible port is refused.
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "DaemonSet"))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(ApiException) as refused:
        apply(dynamic, broken, dry_run=True)
    assert refused.value.status == 422 and "containerPort" in str(refused.value.body)


@dataclass(frozen=True)
class Release:
    namespaces: Namespaces
    controller: str  # the controller ServiceAccount's user name
    agent: str
    helm: tuple[str, ...]  # helm with --kubeconfig and --namespace of this release
    name: str
    notes: str  # what `helm install` printed


@pytest.fixture(scope="module")
def release(
    k8s_cluster: Any, api: client.ApiClient, helm_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """The chart installed by helm once for the module; uninstalled and its namespaces deleted after."""
    rbac = client.RbacAuthorizationV1Api(api)
    try:
        rbac.read_cluster_role("mapquake-controller")
        pytest.skip("another mapquake release is installed on this cluster (its cluster-wide names allow one)")
    except ApiException as err:
        if err.status != 404:
            raise
    namespaces = fresh_namespaces()
    values_file = tmp_path_factory.mktemp("release") / "values.yaml"
    values_file.write_text(yaml.safe_dump(values_for(namespaces)))
    helm = [str(helm_binary), "--kubeconfig", str(k8s_cluster.kubeconfig), "--namespace", namespaces.release]
    release_name = "mapquake"
    try:
        create_namespace(api, namespaces.other, {"mapquake.io/allow-runs": "true"})
        installed = subprocess.run(
            [*helm, "install", release_name, str(CHART_DIR), "--create-namespace", "-f", str(values_file)],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr
        yield Release(
            namespaces=namespaces,
            controller=f"system:serviceaccount:{namespaces.release}:mapquake-controller",
            agent=f"system:serviceaccount:{namespaces.release}:mapquake-agent",
            helm=tuple(helm),
            name=release_name,
            notes=installed.stdout,
        )
    finally:
        subprocess.run(
            [*helm, "uninstall", release_name, "--wait", "--timeout", "90s"],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            check=False,
        )
        # The run namespace and the trend claim are kept by helm (resource-policy keep): delete them.
        delete_namespaces(api, namespaces.all())


def allowed(
    api: client.ApiClient,
    user: str,
    verb: str,
    resource: str,
    *,
    namespace: str = "",
    group: str = "",
    name: str = "",
) -> bool:
    """Would the apiserver let this ServiceAccount do it? (SubjectAccessReview, groups as for a token)."""
    namespace_of_sa = user.split(":")[2]
    resource_name, _, subresource = resource.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace_of_sa}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=group,
                resource=resource_name,
                subresource=subresource,
                name=name,
            ),
        )
    )
    status = client.AuthorizationV1Api(api).create_subject_access_review(review).status
    return bool(status.allowed)


def test_controller_may_do_exactly_the_contract_in_a_run_namespace(api: client.ApiClient, release: Release) -> None:
    runs = release.namespaces.runs
    for (group, resource), verbs in CONTRACT_RUN_NAMESPACE_RULES.items():
        for verb in ALL_VERBS:
            expected = verb in verbs
            got = allowed(api, release.controller, verb, resource, namespace=runs, group=group)
            assert got == expected, f"{verb} {group or 'core'}/{resource} in {runs}: allowed={got}"


def test_controller_may_do_nothing_in_another_namespace(api: client.ApiClient, release: Release) -> None:
    for namespace in (release.namespaces.other, "default", "kube-system"):
        for (group, resource), verbs in CONTRACT_RUN_NAMESPACE_RULES.items():
            for verb in sorted(verbs):
                got = allowed(api, release.controller, verb, resource, namespace=namespace, group=group)
                assert not got, f"{verb} {group or 'core'}/{resource} in {namespace} is allowed"


@pytest.mark.parametrize(
    ("verb", "resource", "where", "group", "name"),
    [
        ("get", "secrets", "runs", "", "run-admin-token"),
        ("list", "secrets", "runs", "", ""),
        ("watch", "secrets", "runs", "", ""),
        ("delete", "secrets", "runs", "", "run-admin-token"),
        ("get", "secrets", "release", "", "some-other-secret"),
        ("list", "secrets", "release", "", ""),
        ("update", "secrets", "release", "", "mapquake-agent-token"),
        ("get", "nodes", "", "", ""),
        ("list", "nodes", "", "", ""),
        ("list", "namespaces", "", "", ""),
        ("list", "pods", "", "", ""),
        ("create", "pods/exec", "runs", "", ""),
        ("get", "pods/exec", "runs", "", ""),
        ("create", "pods", "release", "", ""),
        ("delete", "pods", "release", "", ""),
        ("create", "deployments", "runs", "apps", ""),
        ("create", "roles", "runs", "rbac.authorization.k8s.io", ""),
        ("update", "namespaces", "", "", ""),
    ],
)
def test_controller_is_refused_outside_its_contract(
    api: client.ApiClient, release: Release, verb: str, resource: str, where: str, group: str, name: str
) -> None:
    namespace = {"runs": release.namespaces.runs, "release": release.namespaces.release, "": ""}[where]
    assert not allowed(api, release.controller, verb, resource, namespace=namespace, group=group, name=name)


def test_controller_reads_agents_its_token_and_namespace_labels(api: client.ApiClient, release: Release) -> None:
    ns = release.namespaces
    assert allowed(api, release.controller, "get", "secrets", namespace=ns.release, name="mapquake-agent-token")
    assert allowed(api, release.controller, "list", "pods", namespace=ns.release)
    assert allowed(api, release.controller, "get", "namespaces", name=ns.runs)


def test_agent_only_reads_pods(api: client.ApiClient, release: Release) -> None:
    for verb in ("get", "list", "watch"):
        assert allowed(api, release.agent, verb, "pods")
    for verb, resource in (("delete", "pods"), ("create", "pods/exec"), ("get", "secrets"), ("list", "nodes")):
        assert not allowed(api, release.agent, verb, resource, namespace=release.namespaces.runs)


@pytest.fixture
def as_controller(k8s_cluster: Any, release: Release) -> Iterator[client.ApiClient]:
    """An ApiClient whose every request impersonates the controller's ServiceAccount."""
    impersonating = config.new_client_from_config(config_file=str(k8s_cluster.kubeconfig))
    # The apiserver adds the ServiceAccount's groups itself when only the user is impersonated.
    impersonating.set_default_header("Impersonate-User", release.controller)
    try:
        yield impersonating
    finally:
        impersonating.close()


def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    try:
        call(*args, **kwargs)
    except ApiException as err:
        return int(err.status)
    return 200


def test_impersonated_controller_requests(as_controller: client.ApiClient, release: Release) -> None:
    ns = release.namespaces
    core = client.CoreV1Api(as_controller)
    # The opt-in check: the run namespace the chart created carries the label.
    assert core.read_namespace(ns.runs).metadata.labels["mapquake.io/allow-runs"] == "true"
    # Server-side apply of a run object works in the run namespace, not in another labelled one.
    run_object = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mapquake-run-0badc0de"}}
    dynamic = DynamicClient(as_controller)
    applied = apply(dynamic, {**run_object, "metadata": {**run_object["metadata"], "namespace": ns.runs}}, dry_run=True)
    assert applied.metadata.namespace == ns.runs
    with pytest.raises(ApiException) as refused:
        apply(dynamic, {**run_object, "metadata": {**run_object["metadata"], "namespace": ns.other}}, dry_run=True)
    assert refused.value.status == 403
    # The agent token, and no other Secret.
    assert core.read_namespaced_secret("mapquake-agent-token", ns.release).data["token"]
    assert status_of(core.list_namespaced_secret, ns.release) == 403
    assert status_of(core.list_namespaced_secret, ns.runs) == 403
    assert status_of(core.read_namespaced_secret, "mapquake-agent-token", "kube-system") == 403
    assert status_of(core.list_node) == 403
    assert status_of(core.list_namespace) == 403


def agent_token(api: client.ApiClient, namespace: str) -> str:
    return str(client.CoreV1Api(api).read_namespaced_secret("mapquake-agent-token", namespace).data["token"])


def test_agent_token_survives_an_upgrade(api: client.ApiClient, release: Release) -> None:
    before = agent_token(api, release.namespaces.release)
    upgraded = subprocess.run(
        [*release.helm, "upgrade", release.name, str(CHART_DIR), "--reuse-values"],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert agent_token(api, release.namespaces.release) == before


def test_install_notes_show_how_to_find_the_agents(release: Release) -> None:
    assert "app.kubernetes.io/component=agent" in release.notes
    assert f"--namespace {release.namespaces.runs}" in release.notes
