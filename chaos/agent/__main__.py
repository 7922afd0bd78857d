"""``python -m chaos.agent``: run the chaos agent for one or more runs on this host, or for a Kubernetes node.

    python -m chaos.agent --run 3f9a0c1e --token-file T --ready-file R [--listen 127.0.0.1:0]
                          [--controller-pid PID]
    python -m chaos.agent --kubernetes --listen HOST:PORT --token-file T --node-name NODE
                          [--kubeconfig PATH] [--ready-file R]

Probes the kernel, sweeps what an earlier agent of these runs left, serves gRPC,
and writes the ready file (JSON: port, pid, nft, netem) once serving. Exits on
SIGTERM/SIGINT (healing everything first), or once the controller pid is gone
and every fault has healed and every prepared one been dropped (by heal or by lease).

With ``--kubernetes`` (the DaemonSet: privileged, hostPID, host network) it serves any run
but touches only the pods on node NODE labelled ``mapquake.io/run=<the fault's run>``
(``chaos.engines.k8s``), reading them from the API server (in-cluster configuration unless
``--kubeconfig``); at start it sweeps the rules and frozen cgroups an earlier agent left in
those pods, and it runs until SIGTERM. Leases heal as locally.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from chaos.agent import validate
from chaos.agent.server import Agent, FaultTable, local_table
from chaos.engines.k8s import PodNamespaces
from chaos.probe import Capabilities, probe_kernel
from orchestrator.core.errors import MapquakeError
from orchestrator.core.ledger import pid_running, process_start_time

log = logging.getLogger("chaos.agent")

WATCH_INTERVAL_S = 0.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.agent", description="mapquake chaos agent")
    parser.add_argument("--run", action="append", default=[], help="run id this agent serves (repeatable; local)")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, help="written once serving (required locally)")
    parser.add_argument("--controller-pid", type=int, default=0, help="exit once this pid is gone and all healed")
    parser.add_argument("--kubernetes", action="store_true", help="serve the labelled pods of every run on a node")
    parser.add_argument("--node-name", default="", help="with --kubernetes: the node this agent serves")
    parser.add_argument("--kubeconfig", type=Path, help="with --kubernetes: default is the in-cluster config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos-agent %(levelname)s %(message)s")

    problem = _usage_problem(args)
    if problem:
        log.error("%s", problem)
        return 2
    try:
        token = args.token_file.read_text().strip()
    except OSError as err:
        log.error("--token-file %s: %s", args.token_file, err)
        return 2
    if len(token) < 16:
        log.error("token in %s is too short (16+ characters)", args.token_file)
        return 2
    controller_start = process_start_time(args.controller_pid) if args.controller_pid else None
    try:
        pods = _pod_namespaces(args.node_name, args.kubeconfig) if args.kubernetes else None  # before any probe
        caps = probe_kernel()
        table = local_table(args.run, caps) if pods is None else _swept_pod_table(pods, caps)
    except MapquakeError as err:
        log.error("%s%s", err.message, f" ({err.hint})" if err.hint else "")
        return err.exit_code
    for run_id in args.run:
        table.sweep(run_id)
    agent = Agent(table, token, args.listen)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    ready = {"port": agent.port, "pid": os.getpid(), "nft": caps.nft, "netem": caps.netem, "detail": caps.detail}
    if args.ready_file is not None:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.ready_file)
    serving = f"the labelled pods of node {args.node_name}" if args.kubernetes else f"runs {','.join(args.run)}"
    log.info("serving on port %d for %s (nft=%s netem=%s)", agent.port, serving, caps.nft, caps.netem)
    reason = "signal"
    while not stop.wait(WATCH_INTERVAL_S):
        controller_gone = args.controller_pid and not pid_running(args.controller_pid, controller_start)
        if controller_gone and not table.holds_anything():
            reason = "controller gone, all faults healed"
            break
    log.info("stopping: %s", reason)
    agent.stop(reason)
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, or None."""
    if args.kubernetes:
        if args.run:
            return "--run is for a local agent; with --kubernetes the agent serves every run's labelled pods"
        if not args.node_name:
            return "--kubernetes needs --node-name (the DaemonSet passes spec.nodeName)"
        if args.controller_pid:
            return "--controller-pid is for a local agent; on Kubernetes leases end a dead controller's faults"
        return None
    if args.node_name or args.kubeconfig:
        return "--node-name and --kubeconfig go with --kubernetes"
    if not args.run:
        return "a local agent needs --run RUN_ID (or pass --kubernetes)"
    bad = [r for r in args.run if not validate.RUN_ID_RE.match(r)]
    if bad:
        return f"--run {', '.join(map(repr, bad))}: a run id is 8 lowercase hex digits"
    if args.ready_file is None:
        return "a local agent needs --ready-file (its starter waits for it)"
    return None


def _pod_namespaces(node: str, kubeconfig: Path | None) -> PodNamespaces:
    """The labelled pods of ``node``, read through the API server (kubeconfig, or in-cluster)."""
    from chaos.engines.k8sapi import ApiPods, api_client  # only the DaemonSet needs the kubernetes client

    return PodNamespaces(ApiPods(api_client(kubeconfig), node))


def _swept_pod_table(pods: PodNamespaces, caps: Capabilities) -> FaultTable:
    """The fault table over ``pods``, after removing what an earlier agent left in them (tables, frozen cgroups)."""
    table = FaultTable(pods, caps)
    for run_id in sorted(pods.source.runs()):
        if validate.RUN_ID_RE.match(run_id):
            table.sweep(run_id)
            for line in pods.thaw_frozen(run_id):
                log.warning("sweep of run %s: %s", run_id, line)
    return table


if __name__ == "__main__":
    sys.exit(main())
