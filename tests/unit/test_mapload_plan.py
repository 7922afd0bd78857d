"""mapload's command line: the run's allow-list goes with every load."""

from __future__ import annotations

from orchestrator.core.safety import LOCAL_RUN, LOOPBACK_ONLY, AddressAllowList
from orchestrator.targets.mapload import LoadPlan


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_allow_list_is_passed_as_allow() -> None:
    assert _flag(LoadPlan(addr="127.0.0.1:9090", allowed=LOOPBACK_ONLY).argv(), "--allow") == "127.0.0.0/8,::1/128"
    local = LoadPlan(addr="198.18.7.2:9090", allowed=LOCAL_RUN).argv()
    assert _flag(local, "--addr") == "198.18.7.2:9090"
    assert _flag(local, "--allow") == "127.0.0.0/8,::1/128,198.18.0.0/15"
    cluster = AddressAllowList.of("10.244.0.0/16", names=("cache-0.mq-run.svc",))
    assert _flag(LoadPlan(addr="cache-0.mq-run.svc:9090", allowed=cluster).argv(), "--allow") == (
        "10.244.0.0/16,cache-0.mq-run.svc"
    )
