"""tc netem delay on a node's interface, where the kernel has sch_netem.

The qdisc is the interface's root with handle ``6d71:`` ("mq"): that handle is
how the agent knows the qdisc is its own. It never replaces a root qdisc it did
not make (anything other than the kernel defaults), and removes only a root
with its handle. Delay applies to every packet the node sends.
"""

from __future__ import annotations

import json

from chaos.engines.command import NetnsHandle, Runner, check, subprocess_runner
from orchestrator.core.errors import InfrastructureError

HANDLE = "6d71:"
DEFAULT_ROOTS = {"noqueue", "pfifo_fast", "fq_codel", "mq", "pfifo", "fq"}


def netem_args(delay_s: float, jitter_s: float = 0.0) -> list[str]:
    args = ["netem", "delay", f"{round(delay_s * 1e6)}us"]
    if jitter_s:
        args.append(f"{round(jitter_s * 1e6)}us")
    return args


def root_qdisc(handle: NetnsHandle, ifname: str, runner: Runner = subprocess_runner) -> dict[str, str] | None:
    result = check(runner(handle.argv("tc", "-j", "qdisc", "show", "dev", ifname), None), f"tc show {ifname}")
    for q in json.loads(result.stdout or "[]"):
        if q.get("root"):
            return {"kind": str(q.get("kind")), "handle": str(q.get("handle"))}
    return None


def apply(
    handle: NetnsHandle, ifname: str, delay_s: float, jitter_s: float = 0.0, runner: Runner = subprocess_runner
) -> None:
    """Set (or change) our netem root on ``ifname``. Side effect: a root qdisc with handle 6d71:."""
    root = root_qdisc(handle, ifname, runner)
    if root is not None and root["handle"] != HANDLE and root["kind"] not in DEFAULT_ROOTS:
        raise InfrastructureError(
            f"{handle.name} {ifname} already has a root qdisc {root['kind']} {root['handle']}"
            " that mapquake did not make"
        )
    argv = handle.argv(
        "tc", "qdisc", "replace", "dev", ifname, "root", "handle", HANDLE, *netem_args(delay_s, jitter_s)
    )
    check(runner(argv, None), f"tc netem in {handle.name}")


def remove(handle: NetnsHandle, ifname: str, runner: Runner = subprocess_runner) -> bool:
    """Delete the root qdisc of ``ifname`` only if it is ours (handle 6d71:). True if one was removed."""
    root = root_qdisc(handle, ifname, runner)
    if root is None or root["handle"] != HANDLE:
        return False
    check(runner(handle.argv("tc", "qdisc", "del", "dev", ifname, "root", "handle", HANDLE), None), "tc del")
    return True
