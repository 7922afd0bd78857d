"""Finding the chart's chaos agents: one per node (a DaemonSet on the host network), and their token."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from orchestrator.backends.kubernetes.kube import Kube
from orchestrator.backends.kubernetes.pods import is_ready
from orchestrator.core.errors import InfrastructureError

AGENT_SELECTOR = "app.kubernetes.io/name=mapquake,app.kubernetes.io/component=agent"
AGENT_PORT = 7070
TOKEN_SECRET = "mapquake-agent-token"
TOKEN_KEY = "token"


@dataclass(frozen=True)
class Agent:
    """One node's agent: its pod (for a port-forward) and its host IP (it listens on the host network)."""

    node: str
    pod: str
    host_ip: str


def find_agents(kube: Kube, namespace: str, *, secret: str = TOKEN_SECRET) -> tuple[list[Agent], str]:
    """Every ready agent, and the token they require."""
    pods = kube.list_objects("Pod", namespace, AGENT_SELECTOR)
    agents = [
        Agent(pod["spec"]["nodeName"], pod["metadata"]["name"], pod["status"]["hostIP"])
        for pod in pods
        if is_ready(pod) and pod.get("spec", {}).get("nodeName") and (pod.get("status") or {}).get("hostIP")
    ]
    if not agents:
        raise InfrastructureError(
            f"no ready chaos agent in namespace '{namespace}' (pods labelled {AGENT_SELECTOR})",
            hint="install the chart (helm install mapquake charts/mapquake -n mapquake-system), or set "
            "kubernetes.agent_namespace to where it is",
        )
    found = kube.get("Secret", namespace, secret)
    encoded = ((found or {}).get("data") or {}).get(TOKEN_KEY)
    if not encoded:
        raise InfrastructureError(
            f"the agents' token Secret {namespace}/{secret} (key {TOKEN_KEY}) is missing",
            hint="the chart creates it; reinstall the chart or set agent.existingSecret",
        )
    return agents, base64.b64decode(encoded).decode()
