"""The Kubernetes engine: nsenter into a pod by its container pid, same nft document, label-guarded."""

from __future__ import annotations

import json

import pytest

from chaos.agent.ownership import Refused
from chaos.engines import nft
from chaos.engines.command import CommandResult
from chaos.engines.k8s import PodNamespaces, PodRef, container_pid
from tests.unit.chaos.test_nft import FakeRunner

RUN = "0a0b0c0d"
PODS = [
    PodRef("mq", "cache-0", {"mapquake.io/run": RUN}, "containerd://abc"),
    PodRef("mq", "other", {"app": "db"}, "containerd://def"),
]


def runner() -> FakeRunner:
    return FakeRunner(
        {
            "inspect abc": CommandResult(0, '{"info": {"pid": 4242}}', ""),
            "inspect def": CommandResult(0, '{"info": {"pid": 5151}}', ""),
        }
    )


def test_container_pid() -> None:
    assert container_pid("containerd://abc", runner()) == 4242


def test_pod_handle_uses_nsenter_and_the_same_nft_document() -> None:
    fake = runner()
    pods = PodNamespaces([RUN], lambda: PODS, fake)
    handle = pods.handle(RUN, "pod/mq/cache-0")
    rules = nft.NamespaceRules(cuts=[nft.Cut("p.0", ("10.0.0.7",), "drop")])
    nft.apply(handle, RUN, rules, fake)
    argv, stdin = fake.calls[-1]
    assert argv == ["nsenter", "--net=/proc/4242/ns/net", "nft", "-j", "-f", "-"]
    assert json.loads(stdin or "") == nft.render(RUN, rules)
    assert [(h.prefix, ifname) for h, ifname in pods.interfaces(RUN)] == [
        (("nsenter", "--net=/proc/4242/ns/net"), "eth0")
    ]


def test_refuses_pods_without_the_run_label_and_unknown_runs() -> None:
    pods = PodNamespaces([RUN], lambda: PODS, runner())
    with pytest.raises(Refused, match="did not create"):
        pods.handle(RUN, "pod/mq/other")
    with pytest.raises(Refused, match="not one this agent serves"):
        pods.handle("ffffffff", "pod/mq/cache-0")
    with pytest.raises(Refused, match="not a pod on this node"):
        pods.handle(RUN, "pod/mq/nope")
