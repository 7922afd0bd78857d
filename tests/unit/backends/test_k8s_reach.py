"""How the controller dials a pod: the pod network when it answers, else port-forwards (no cluster here)."""

from __future__ import annotations

import socket

import pytest

from orchestrator.backends.kubernetes.reach import PodNetwork, reaches
from orchestrator.core.errors import InfrastructureError


def test_the_pod_network_dials_the_pod_ip() -> None:
    assert PodNetwork().address("ns", "kv-0", "198.19.0.12", 8080) == "198.19.0.12:8080"
    with pytest.raises(InfrastructureError, match="kv-0 has no IP"):
        PodNetwork().address("ns", "kv-0", None, 8080)


def test_reaches_tells_an_answering_port_from_a_closed_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        assert reaches("127.0.0.1", port)
    assert not reaches("127.0.0.1", port, timeout_s=0.5)  # closed now: refused at once
