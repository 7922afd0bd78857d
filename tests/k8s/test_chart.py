"""charts/mapquake rendered by the real helm binary: lint, values schema, labels, RBAC, pod specs.

helm is the one cluster/build-binaries.sh builds (v3.22 with KubeVersion 1.34 linked in), found in
its cache directory; MAPQUAKE_HELM names another. No cluster is needed: test_chart_cluster.py has
the server-side dry-run and the RBAC impersonation tests.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "mapquake"
RELEASE = "mapquake"
RELEASE_NAMESPACE = "mapquake-system"
RUN_NAMESPACE = "mapquake-runs"
HELM_TIMEOUT_S = 60

ALL = {"get", "list", "watch", "create", "patch", "delete"}
# The controller's Role in a run namespace, from /work/k8s-contract.md ("RBAC for the controller"):
# (API group, resource) -> verbs. Nothing more, nothing less.
CONTRACT_RUN_NAMESPACE_RULES: dict[tuple[str, str], set[str]] = {
    ("", "configmaps"): ALL,
    ("", "services"): ALL,
    ("apps", "statefulsets"): ALL,
    ("batch", "jobs"): ALL,
    ("", "pods"): {"get", "list", "watch", "create", "delete"},
    ("", "pods/log"): {"get"},
    ("", "pods/portforward"): {"create"},
    ("", "events"): {"get", "list", "watch"},
    ("", "secrets"): {"create"},
    ("monitoring.coreos.com", "servicemonitors"): {"get", "list", "create", "patch", "delete"},
}
COMMON_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
AGENT_COMMAND = [
    "python",
    "-m",
    "chaos.agent",
    "--kubernetes",
    "--listen",
    "$(NODE_IP):7070",
    "--token-file",
    "/etc/mapquake-agent/token",
    "--node-name",
    "$(NODE_NAME)",
]
SCENARIO_TEXT = "name: quickstart\n  # indented comment: kept verbatim\ntargets: []\n"
# Values that switch every optional part on, so one render shows every object kind.
FULL_VALUES: dict[str, Any] = {
    "runNamespaces": [RUN_NAMESPACE, "mapquake-gameday"],
    "createRunNamespaces": True,
    "apiServerOverride": {"host": "198.19.0.1", "port": 6443},
    "commonLabels": {"team": "capacity"},
    "nightly": {"enabled": True, "scenarios": {"quickstart": SCENARIO_TEXT, "map-grow": "name: map-grow\n"}},
}


def find_helm() -> Path | None:
    """helm from MAPQUAKE_HELM, else from cluster/build-binaries.sh's cache (newest build first)."""
    named = os.environ.get("MAPQUAKE_HELM")
    if named:
        return Path(named)
    # The same cache root as cluster/build-binaries.sh (it prints <root>/<versions key>).
    cache_root = os.environ.get("MAPQUAKE_CLUSTER_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mapquake" / "cluster-bin"
    )
    built = [p for p in Path(cache_root).glob("*/helm") if os.access(p, os.X_OK)]
    return max(built, key=lambda p: p.stat().st_mtime) if built else None


@pytest.fixture(scope="session")
def helm() -> Path:
    found = find_helm()
    if found is None:
        pytest.skip("no helm binary: run cluster/build-binaries.sh (or set MAPQUAKE_HELM)")
    return found


def run_helm(
    helm: Path, *args: str, values: dict[str, Any] | None = None, tmp: Path
) -> subprocess.CompletedProcess[str]:
    """Run helm with the values written to a file (no --set parsing surprises)."""
    extra: list[str] = []
    if values is not None:
        values_file = tmp / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        extra = ["-f", str(values_file)]
    return subprocess.run(
        [str(helm), *args, *extra], capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=False
    )


def render_manifests(
    helm: Path, values: dict[str, Any], tmp: Path, *, namespace: str = RELEASE_NAMESPACE
) -> list[dict[str, Any]]:
    """`helm template` of the chart as a list of objects; a render error fails with helm's message."""
    done = run_helm(helm, "template", RELEASE, str(CHART_DIR), "--namespace", namespace, values=values, tmp=tmp)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_error(helm: Path, values: dict[str, Any], tmp: Path) -> str:
    """helm's error text for values that must not render."""
    done = run_helm(helm, "template", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE, values=values, tmp=tmp)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    hits = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(hits) == 1, f"{kind} {namespace}/{name}: {len(hits)} rendered"
    return hits[0]


def rule_map(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> verbs of RBAC rules; a wildcard or resourceNames fails (never granted here)."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "resourceNames" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource, *rule["verbs"]), rule
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in objects:
        if o["kind"] == "DaemonSet":
            yield "DaemonSet", o["spec"]["template"]
        if o["kind"] == "CronJob":
            yield "CronJob job", o["spec"]["jobTemplate"]
            yield "CronJob pod", o["spec"]["jobTemplate"]["spec"]["template"]


def containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for _, template in pod_templates(objects):
        yield from template.get("spec", {}).get("containers", [])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_lint_strict_is_clean(helm: Path, tmp_path: Path) -> None:
    for values in ({}, FULL_VALUES):
        done = run_helm(
            helm, "lint", "--strict", str(CHART_DIR), "--namespace", RELEASE_NAMESPACE, values=values, tmp=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout
        assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def test_every_object_and_pod_template_carries_the_common_labels(helm: Path, tmp_path: Path) -> None:
    objects = render_manifests(helm, FULL_VALUES, tmp_path)
    assert {o["kind"] for o in objects} >= {"DaemonSet", "CronJob", "Role", "Namespace", "PersistentVolumeClaim"}
    labelled = [(f"{o['kind']} {o['metadata']['name']}", o["metadata"]) for o in objects]
    labelled += [(where, template["metadata"]) for where, template in pod_templates(objects)]
    for where, metadata in labelled:
        labels = metadata.get("labels", {})
        missing = [k for k in (*COMMON_LABELS, "team") if k not in labels]
        assert not missing, f"{where} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == version_in_source()


def version_in_source() -> str:
    match = re.search(r'__version__ = "([^"]+)"', (REPO / "orchestrator" / "__init__.py").read_text())
    assert match
    return match.group(1)


def test_chart_metadata_follows_the_source(tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == version_in_source()
    assert chart["kubeVersion"] == ">=1.28.0-0"


@pytest.mark.parametrize(
    ("values", "named", "why"),
    [
        ({"nightly": {"enabledd": True}}, "enabledd", "additional properties"),
        ({"runNamespace": [RUN_NAMESPACE]}, "runNamespace", "additional properties"),
        ({"agent": {"resources": {"requsts": {"cpu": "1"}}}}, "requsts", "additional properties"),
        ({"nightly": {"enabled": "yes"}}, "/nightly/enabled", "want boolean"),
        ({"apiServerOverride": {"port": "6443"}}, "/apiServerOverride/port", "want integer"),
        ({"runNamespaces": ["Runs_Here"]}, "Runs_Here", "does not match pattern"),
        ({"runNamespaces": [RUN_NAMESPACE, RUN_NAMESPACE]}, "/runNamespaces", "are equal"),
    ],
)
def test_values_schema_refuses_typos_and_wrong_types(
    helm: Path, tmp_path: Path, values: dict[str, Any], named: str, why: str
) -> None:
    error = render_error(helm, values, tmp_path)
    assert "values don't meet the specifications of the schema" in error
    assert named in error and why in error, error
    lint = run_helm(helm, "lint", "--strict", str(CHART_DIR), values=values, tmp=tmp_path)
    assert lint.returncode != 0 and named in lint.stdout + lint.stderr


def test_run_namespace_roles_grant_exactly_the_contract(helm: Path, tmp_path: Path) -> None:
    objects = render_manifests(helm, FULL_VALUES, tmp_path)
    for namespace in FULL_VALUES["runNamespaces"]:
        role = find(objects, "Role", "mapquake-controller", namespace)
        assert rule_map(role["rules"]) == CONTRACT_RUN_NAMESPACE_RULES
        binding = find(objects, "RoleBinding", "mapquake-controller", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "mapquake-controller",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mapquake-controller", "namespace": RELEASE_NAMESPACE}
        ]
    roles_elsewhere = [
        o["metadata"]["namespace"]
        for o in objects
        if o["kind"] == "Role" and o["metadata"]["namespace"] not in (*FULL_VALUES["runNamespaces"], RELEASE_NAMESPACE)
    ]
    assert roles_elsewhere == []


def test_cluster_wide_rights_are_namespace_get_and_agent_pod_reads(helm: Path, tmp_path: Path) -> None:
    objects = render_manifests(helm, FULL_VALUES, tmp_path)
    cluster_roles = {o["metadata"]["name"]: rule_map(o["rules"]) for o in objects if o["kind"] == "ClusterRole"}
    assert cluster_roles == {
        "mapquake-controller": {("", "namespaces"): {"get"}},
        "mapquake-agent": {("", "pods"): {"get", "list", "watch"}},
    }
    for name in ("mapquake-controller", "mapquake-agent"):
        binding = find(objects, "ClusterRoleBinding", name)
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": RELEASE_NAMESPACE}]


@pytest.mark.parametrize(("existing", "secret"), [("", "mapquake-agent-token"), ("my-token", "my-token")])
def test_release_namespace_role_reads_agent_pods_and_only_the_token_secret(
    helm: Path, tmp_path: Path, existing: str, secret: str
) -> None:
    objects = render_manifests(helm, {**FULL_VALUES, "agent": {"existingSecret": existing}}, tmp_path)
    role = find(objects, "Role", "mapquake-controller-agent-access", RELEASE_NAMESPACE)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]},
    ]
    volumes = find(objects, "DaemonSet", "mapquake-agent")["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "token"]
    assert volume["secret"]["secretName"] == secret
    cronjob_env = env_of(next(c for c in containers(objects) if c["name"] == "controller"))
    assert cronjob_env["MAPQUAKE_AGENT_TOKEN_SECRET"] == secret
    secrets = [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"]
    assert secrets == ([] if existing else ["mapquake-agent-token"])


def test_generated_agent_token_is_32_random_characters(helm: Path, tmp_path: Path) -> None:
    tokens = []
    for _ in range(2):
        secret = find(render_manifests(helm, {}, tmp_path), "Secret", "mapquake-agent-token", RELEASE_NAMESPACE)
        tokens.append(base64.b64decode(secret["data"]["token"]).decode())
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", t) for t in tokens), tokens
    assert tokens[0] != tokens[1]


def test_agent_daemonset_is_privileged_on_the_host_namespaces(helm: Path, tmp_path: Path) -> None:
    values = {"agent": {"tolerations": [{"operator": "Exists"}], "priorityClassName": "system-node-critical"}}
    daemonset = find(render_manifests(helm, values, tmp_path), "DaemonSet", "mapquake-agent", RELEASE_NAMESPACE)
    pod = daemonset["spec"]["template"]["spec"]
    assert (pod["hostPID"], pod["hostNetwork"], pod["dnsPolicy"]) == (True, True, "ClusterFirstWithHostNet")
    assert pod["serviceAccountName"] == "mapquake-agent"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    (agent,) = pod["containers"]
    assert agent["securityContext"] == {"privileged": True}
    assert agent["command"] == AGENT_COMMAND
    assert agent["image"] == f"mapquake.local/mapquake:{version_in_source()}"
    assert agent["imagePullPolicy"] == "IfNotPresent"
    env = env_of(agent)
    assert env["NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert agent["readinessProbe"]["tcpSocket"] == {"port": 7070}
    assert agent["volumeMounts"] == [
        {"name": "token", "mountPath": "/etc/mapquake-agent", "readOnly": True},
        {"name": "cgroup", "mountPath": "/sys/fs/cgroup"},  # pause freezes the pod's cgroup there
    ]
    assert agent["resources"]["limits"]["memory"]
    selector = daemonset["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "mapquake",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "agent",
    }


def test_api_server_override_reaches_every_pod_that_talks_to_the_api(helm: Path, tmp_path: Path) -> None:
    with_override = list(containers(render_manifests(helm, FULL_VALUES, tmp_path)))
    assert {c["name"] for c in with_override} == {"agent", "controller"}
    for container in with_override:
        env = env_of(container)
        assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("198.19.0.1", "6443")
    without = {**FULL_VALUES, "apiServerOverride": {"host": ""}}
    for container in containers(render_manifests(helm, without, tmp_path)):
        assert not {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} & env_of(container).keys()


def test_nightly_disabled_renders_no_cronjob_claim_or_scenarios(helm: Path, tmp_path: Path) -> None:
    values = {**FULL_VALUES, "nightly": {**FULL_VALUES["nightly"], "enabled": False}}
    kinds = {o["kind"] for o in render_manifests(helm, values, tmp_path)}
    assert kinds.isdisjoint({"CronJob", "PersistentVolumeClaim", "ConfigMap"}), kinds
    assert "DaemonSet" in kinds


def test_nightly_cronjob_runs_every_scenario_then_the_trend_report(helm: Path, tmp_path: Path) -> None:
    objects = render_manifests(helm, FULL_VALUES, tmp_path)
    cronjob = find(objects, "CronJob", "mapquake-nightly", RELEASE_NAMESPACE)
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["suspend"] is False
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "mapquake-controller"
    (controller,) = pod["containers"]
    assert controller["image"] == f"mapquake.local/mapquake:{version_in_source()}"
    assert env_of(controller)["MAPQUAKE_TREND_STORE"] == "/data/trends.sqlite"
    mounts = {m["mountPath"]: m["name"] for m in controller["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"] == {"claimName": "mapquake-trends"}
    assert volumes[mounts["/etc/mapquake/scenarios"]]["configMap"] == {"name": "mapquake-nightly-scenarios"}

    scenarios = find(objects, "ConfigMap", "mapquake-nightly-scenarios", RELEASE_NAMESPACE)["data"]
    assert scenarios == {"quickstart.yaml": SCENARIO_TEXT, "map-grow.yaml": "name: map-grow\n"}
    script = controller["args"][0]
    runs = re.findall(r'mapquake run "/etc/mapquake/scenarios/\$name\.yaml"', script)
    assert runs and "for name in map-grow quickstart; do" in script
    assert script.index("mapquake run") < script.index("mapquake report trend")
    claim = find(objects, "PersistentVolumeClaim", "mapquake-trends", RELEASE_NAMESPACE)
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "storageClassName" not in claim["spec"]  # empty value: the cluster's default class


def nightly_commands(helm: Path, tmp_path: Path) -> dict[str, list[str]]:
    """The script's mapquake command lines, shell variables replaced by sample values."""
    cronjob = find(render_manifests(helm, FULL_VALUES, tmp_path), "CronJob", "mapquake-nightly", RELEASE_NAMESPACE)
    script = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    joined = script.replace("\\\n", " ").replace("$name", "quickstart").replace("$stamp", "2026-01-01T000000Z")
    commands = {}
    for line in joined.splitlines():
        words = shlex.split(line.split("||")[0])
        if words[:1] == ["mapquake"]:
            commands[" ".join(words[1:3]) if words[1] == "report" else words[1]] = words[1:]
    return commands


def test_nightly_trend_report_uses_flags_the_cli_has(helm: Path, tmp_path: Path) -> None:
    argv = nightly_commands(helm, tmp_path)["report trend"]
    parsed = build_parser().parse_args(argv)
    assert (str(parsed.trend_store), str(parsed.out)) == (
        "/data/trends.sqlite",
        "/data/reports/trend-2026-01-01T000000Z",
    )
    assert parsed.since == 30


def test_nightly_run_uses_flags_the_cli_has(helm: Path, tmp_path: Path) -> None:
    argv = nightly_commands(helm, tmp_path)["run"]
    try:
        parsed = build_parser().parse_args(argv)
    except SystemExit as refused:
        pytest.fail(f"the CLI refuses the nightly command line {argv} (exit {refused.code})")
    assert (parsed.backend, parsed.namespace) == ("kubernetes", RUN_NAMESPACE)
    assert str(parsed.report_dir) == "/data/runs/quickstart-2026-01-01T000000Z"


def test_existing_claim_replaces_the_chart_claim(helm: Path, tmp_path: Path) -> None:
    values = {**FULL_VALUES, "nightly": {**FULL_VALUES["nightly"], "persistence": {"existingClaim": "trends"}}}
    objects = render_manifests(helm, values, tmp_path)
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    pod = find(objects, "CronJob", "mapquake-nightly")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "trends"}} in pod["volumes"]


def test_run_namespaces_are_created_with_the_opt_in_label_only_when_asked(helm: Path, tmp_path: Path) -> None:
    created = [o for o in render_manifests(helm, FULL_VALUES, tmp_path) if o["kind"] == "Namespace"]
    assert sorted(o["metadata"]["name"] for o in created) == sorted(FULL_VALUES["runNamespaces"])
    assert all(o["metadata"]["labels"]["mapquake.io/allow-runs"] == "true" for o in created)
    not_asked = {**FULL_VALUES, "createRunNamespaces": False}
    assert not [o for o in render_manifests(helm, not_asked, tmp_path) if o["kind"] == "Namespace"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"runNamespaces": [RELEASE_NAMESPACE]}, 'runNamespaces: "mapquake-system" is the release namespace'),
        ({"runNamespaces": [RUN_NAMESPACE], "nightly": {"enabled": True}}, "needs at least one scenario"),
        ({"nightly": {"enabled": True, "scenarios": {"a": "name: a\n"}}}, "nightly.enabled needs a run namespace"),
        (
            {
                "runNamespaces": [RUN_NAMESPACE],
                "nightly": {"enabled": True, "runNamespace": "elsewhere", "scenarios": {"a": "x: 1\n"}},
            },
            'nightly.runNamespace "elsewhere" is not in runNamespaces',
        ),
    ],
)
def test_inconsistent_values_fail_with_a_message_naming_the_value(
    helm: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    assert message in render_error(helm, values, tmp_path)


def leaf_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of values.yaml's documented keys (maps of free keys count as one value)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in ("agent.resources", "nightly.resources"):
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    readme = (CHART_DIR / "README.md").read_text()
    undocumented = [p for p in leaf_paths(values) if f"| `{p}` |" not in readme]
    assert undocumented == []
