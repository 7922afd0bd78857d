"""The pods on this node, read from the Kubernetes API server (``PodSource`` for ``chaos.engines.k8s``).

The agent's ServiceAccount may get, list and watch pods (ClusterRole in the chart). Every
call reads the API server now, so a label removed a moment ago is seen at the next Apply:
the pods of a run are listed with ``fieldSelector=spec.nodeName=<node>`` and
``labelSelector=mapquake.io/run=<run>``, a small answer. Configuration: a kubeconfig file
when given, otherwise the in-cluster ServiceAccount (KUBERNETES_SERVICE_HOST/PORT; the chart
may point KUBERNETES_SERVICE_HOST at the API server directly where no kube-proxy runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from chaos.engines.k8s import RUN_LABEL, PodRef
from orchestrator.core.errors import InfrastructureError, UsageError

REQUEST_TIMEOUT_S = 5.0


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """An API client from ``kubeconfig``, or the in-cluster configuration when None. Raises UsageError."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as err:
        if kubeconfig is not None:
            raise UsageError(
                f"cannot load kubeconfig {kubeconfig}: {err}", hint="check the --kubeconfig path"
            ) from None
        raise UsageError(
            f"cannot load the in-cluster configuration (is this a pod?): {err}",
            hint="pass --kubeconfig PATH outside a cluster",
        ) from None
    return client.ApiClient(configuration)


def pod_ref(pod: Any) -> PodRef:
    """A ``V1Pod`` → PodRef: its running containers' ids in spec order."""
    statuses = {s.name: s for s in (pod.status.container_statuses or [])}
    ids = []
    for container in pod.spec.containers:
        status = statuses.get(container.name)
        if status is not None and status.container_id and status.state is not None and status.state.running:
            ids.append(status.container_id)
    return PodRef(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node=pod.spec.node_name or "",
        labels=dict(pod.metadata.labels or {}),
        container_ids=tuple(ids),
    )


class ApiPods:
    """``PodSource`` reading the API server for node ``node``."""

    def __init__(self, api: client.ApiClient, node: str) -> None:
        self.core = client.CoreV1Api(api)
        self.node = node

    def _list(self, selector: str) -> list[PodRef]:
        try:
            pods = self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={self.node}", label_selector=selector, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as err:
            raise InfrastructureError(
                f"listing pods on node {self.node} ({selector}): {err.status} {err.reason}"
            ) from None
        except Exception as err:  # urllib3 connection errors: the API server is unreachable
            raise InfrastructureError(f"listing pods on node {self.node}: {err}") from None
        return [pod_ref(p) for p in pods.items]

    def pods_of_run(self, run_id: str) -> list[PodRef]:
        return self._list(f"{RUN_LABEL}={run_id}")

    def runs(self) -> set[str]:
        return {p.labels[RUN_LABEL] for p in self._list(RUN_LABEL)}

    def find(self, namespace: str, name: str) -> PodRef | None:
        try:
            return pod_ref(self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT_S))
        except ApiException as err:
            if err.status == 404:
                return None
            raise InfrastructureError(f"reading pod {namespace}/{name}: {err.status} {err.reason}") from None
        except Exception as err:
            raise InfrastructureError(f"reading pod {namespace}/{name}: {err}") from None
