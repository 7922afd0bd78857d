"""The few API calls the Kubernetes backend makes, over the official Python client.

Objects are written with server-side apply (field manager ``mapquake``), so applying the same
object twice is a no-op and a conflicting writer is named. Waiting is by watch (the API server
pushes changes), with a deadline; nothing polls on a sleep. API errors become InfrastructureError
naming the call, the object and what to do (403: the chart's RBAC; 404 namespace: create it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from orchestrator.backends.base import ClusterAccess
from orchestrator.core.errors import InfrastructureError

log = logging.getLogger(__name__)

API_TIMEOUT_S = 30
FIELD_MANAGER = "mapquake"

# kind -> (API path prefix, plural): the kinds mapquake writes.
_KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "Job": ("/apis/batch/v1", "jobs"),
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),  # if the Prometheus Operator's CRD is
}
RUN_KINDS = ("Job", "StatefulSet", "Pod", "Service", "ConfigMap")
"""What a label sweep removes, in this order: the controllers first, so none recreates a pod the
sweep deleted (seen: a StatefulSet's new pod stuck without its deleted Secret). Not the run's
Secret: the controller may create Secrets but neither list nor delete them (the chart's RBAC);
the garbage collector removes it with the run object that owns it."""


def api_error(err: ApiException, doing: str) -> InfrastructureError:
    """``err`` as a named infrastructure error with a hint for the usual causes."""
    reason = err.reason or ""
    try:
        message = json.loads(err.body or "{}").get("message", "") or reason
    except (ValueError, AttributeError):
        message = reason
    hint = None
    if err.status == 403:
        hint = (
            "the controller's identity lacks this permission: install charts/mapquake and run as its "
            "mapquake-controller ServiceAccount, with the namespace in runNamespaces (docs/kubernetes.md)"
        )
    elif err.status == 401:
        hint = "the kubeconfig's credentials were refused (check --kubeconfig / --context)"
    return InfrastructureError(f"Kubernetes API: {doing}: {err.status} {message}", hint=hint)


class Kube:
    """One API connection (thread-safe for the calls used here)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)

    @classmethod
    def connect(cls, access: ClusterAccess) -> Kube:
        """Load the kubeconfig (or the in-cluster service account) and check the API server answers."""
        configuration = client.Configuration()
        try:
            if access.kubeconfig is None and access.context is None and _in_cluster():
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(access.kubeconfig) if access.kubeconfig else None,
                    context=access.context,
                    client_configuration=configuration,
                )
        except (config.ConfigException, OSError, ValueError, TypeError) as err:
            raise InfrastructureError(
                f"cannot load the cluster configuration from {access.describe()}: {err}",
                hint="pass --kubeconfig FILE (and --context NAME), or run inside a pod with a ServiceAccount",
            ) from err
        # One retry on a broken connection, silently: an API server that is gone is reported once, by
        # the call that failed, not by urllib3's warning per retry.
        configuration.retries = 1
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        kube = cls(client.ApiClient(configuration))
        try:
            client.VersionApi(kube.api).get_code(_request_timeout=API_TIMEOUT_S)
        except ApiException as err:
            raise api_error(err, "GET /version") from err
        except (HTTPError, OSError) as err:
            raise InfrastructureError(
                f"the Kubernetes API server at {configuration.host} does not answer: {err}",
                hint=f"check the cluster is up and {access.describe()} points at it",
            ) from err
        return kube

    # --- writing ---------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` (create or update); returns the object as stored."""
        path = self._path(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        doing = f"apply {obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
        return self._call(
            "PATCH",
            path,
            doing,
            body=obj,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST ``obj`` (for kinds the controller may only create, such as its Secret)."""
        path = self._path(obj["kind"], obj["metadata"]["namespace"])
        doing = f"create {obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
        return self._call("POST", path, doing, body=obj, query=[("fieldManager", FIELD_MANAGER)])

    def delete(self, kind: str, namespace: str, name: str, *, foreground: bool = False) -> bool:
        """Delete one object; False if it was already gone."""
        propagation = "Foreground" if foreground else "Background"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            self._call("DELETE", self._path(kind, namespace, name), f"delete {kind} {namespace}/{name}", body=body)
        except _NotFound:
            return False
        return True

    def delete_labelled(self, kind: str, namespace: str, selector: str) -> int:
        """Delete every ``kind`` in ``namespace`` matching ``selector``; returns how many there were."""
        names = [item["metadata"]["name"] for item in self.list_objects(kind, namespace, selector)]
        return sum(self.delete(kind, namespace, name) for name in names)

    def patch_annotations(self, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self._call(
            "PATCH",
            self._path(kind, namespace, name),
            f"annotate {kind} {namespace}/{name}",
            body={"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    # --- reading ---------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", self._path(kind, namespace, name), f"get {kind} {namespace}/{name}")
        except _NotFound:
            return None

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self._call(
            "GET", self._path(kind, namespace), f"list {kind} in {namespace}", query=[("labelSelector", selector)]
        )
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def serves(self, group: str, version: str, plural: str) -> bool:
        """Whether the API server serves ``plural`` in ``group/version`` (a CRD installed), by discovery."""
        try:
            found = self._call("GET", f"/apis/{group}/{version}", f"discover {group}/{version}")
        except _NotFound:
            return False
        return any(r.get("name") == plural for r in found.get("resources", []))

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """The namespace's labels; None if it does not exist."""
        try:
            found = self._call("GET", f"/api/v1/namespaces/{namespace}", f"get namespace {namespace}")
        except _NotFound:
            return None
        labels: dict[str, str] = found.get("metadata", {}).get("labels") or {}
        return labels

    def pod_log(self, namespace: str, pod: str, *, previous: bool = False, tail: int | None = None) -> str:
        try:
            text: str = self.core.read_namespaced_pod_log(
                pod, namespace, previous=previous, tail_lines=tail, _request_timeout=API_TIMEOUT_S
            )
        except ApiException as err:
            if err.status in (400, 404):  # not started yet, or gone
                return ""
            raise api_error(err, f"read the log of pod {namespace}/{pod}") from err
        return text

    def follow_log(self, namespace: str, pod: str, *, timeout_s: float) -> Iterator[str]:
        """The pod's log lines as they are written, until the container ends or ``timeout_s`` passes."""
        try:
            response: Any = self.core.read_namespaced_pod_log(
                pod, namespace, follow=True, _preload_content=False, _request_timeout=(API_TIMEOUT_S, timeout_s)
            )
        except ApiException as err:
            raise api_error(err, f"follow the log of pod {namespace}/{pod}") from err
        try:
            pending = b""
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            response.release_conn()

    def wait_for(
        self,
        kind: str,
        namespace: str,
        selector: str,
        done: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout_s: float,
        what: str,
        failed: Callable[[list[dict[str, Any]]], str | None] = lambda _: None,
    ) -> list[dict[str, Any]]:
        """Watch ``kind`` objects matching ``selector`` until ``done(objects)``; InfrastructureError after
        ``timeout_s`` (naming ``what``) or as soon as ``failed(objects)`` returns a reason."""
        deadline = time.monotonic() + timeout_s
        current: dict[str, dict[str, Any]] = {
            o["metadata"]["name"]: o for o in self.list_objects(kind, namespace, selector)
        }
        while True:
            objects = list(current.values())
            if done(objects):
                return objects
            reason = failed(objects)
            if reason:
                raise InfrastructureError(f"{what}: {reason}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InfrastructureError(f"{what}: not done after {timeout_s:.0f}s", hint=_pending_hint(objects))
            list_fn = self._list_fn(kind)
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    list_fn,
                    namespace,
                    label_selector=selector,
                    timeout_seconds=max(1, int(remaining)),
                    _request_timeout=remaining + 5,
                ):
                    obj = self.api.sanitize_for_serialization(event["object"])  # type: ignore[no-untyped-call]
                    name = obj["metadata"]["name"]
                    if event["type"] == "DELETED":
                        current.pop(name, None)
                    else:
                        current[name] = obj
                    objects = list(current.values())
                    if done(objects) or failed(objects) or time.monotonic() >= deadline:
                        break
            except ApiException as err:
                if err.status != 410:  # 410: the watch expired; list again and resume
                    raise api_error(err, f"watch {kind} {selector} in {namespace}") from err
                current = {o["metadata"]["name"]: o for o in self.list_objects(kind, namespace, selector)}
            finally:
                stream.stop()  # type: ignore[no-untyped-call]

    # --- plumbing --------------------------------------------------------------------------

    def _list_fn(self, kind: str) -> Callable[..., Any]:
        return {
            "Pod": self.core.list_namespaced_pod,
            "Job": self.batch.list_namespaced_job,
            "StatefulSet": self.apps.list_namespaced_stateful_set,
            "ConfigMap": self.core.list_namespaced_config_map,
        }[kind]

    @staticmethod
    def _path(kind: str, namespace: str, name: str | None = None) -> str:
        prefix, plural = _KINDS[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    def _call(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            method, url, headers, serialized, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                # The client JSON-encodes a dict for JSON content types; an apply patch goes out as a
                # string as it is (JSON is valid YAML).
                body=json.dumps(body) if body is not None and content_type.endswith("yaml") else body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(
                method, url, header_params=headers, body=serialized, _request_timeout=API_TIMEOUT_S
            )
            raw: bytes = response.read()  # type: ignore[no-untyped-call]
        except (HTTPError, OSError) as err:
            raise InfrastructureError(f"Kubernetes API: {doing}: {err}") from err
        status = int(response.status)
        if not 200 <= status < 300:
            failure = ApiException(status=status, reason=response.reason, body=raw.decode("utf-8", "replace"))
            if status == 404 and method != "POST":
                raise _NotFound(doing) from failure
            raise api_error(failure, doing) from failure
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as bad:
            raise InfrastructureError(f"Kubernetes API: {doing}: the answer is not JSON: {raw[:200]!r}") from bad
        return data if isinstance(data, dict) else {}


class _NotFound(Exception):
    pass


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


def _pending_hint(objects: list[dict[str, Any]]) -> str | None:
    """Why pods are not ready, from their status (image not present, unschedulable, crash loop)."""
    reasons = []
    for obj in objects:
        status = obj.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                reasons.append(f"{obj['metadata']['name']}: {waiting['reason']} {waiting.get('message', '')}".strip())
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                reasons.append(f"{obj['metadata']['name']}: unschedulable: {cond.get('message', '')}")
    return "; ".join(reasons) or None
