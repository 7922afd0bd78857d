"""``python -m chaos.agent``: run the chaos agent for one or more runs on this host.

    python -m chaos.agent --run 3f9a0c1e --token-file T --ready-file R [--listen 127.0.0.1:0]
                          [--controller-pid PID]

Probes the kernel, sweeps what an earlier agent of these runs left, serves gRPC,
and writes the ready file (JSON: port, pid, nft, netem) once serving. Exits on
SIGTERM/SIGINT (healing everything first), or once the controller pid is gone
and every fault has healed and every prepared one been dropped (by heal or by lease).
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
from chaos.agent.server import Agent, local_table
from chaos.probe import probe_kernel
from orchestrator.core.ledger import pid_running, process_start_time

log = logging.getLogger("chaos.agent")

WATCH_INTERVAL_S = 0.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.agent", description="mapquake chaos agent")
    parser.add_argument("--run", action="append", required=True, help="run id this agent serves (repeatable)")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--controller-pid", type=int, default=0, help="exit once this pid is gone and all healed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos-agent %(levelname)s %(message)s")

    bad = [r for r in args.run if not validate.RUN_ID_RE.match(r)]
    if bad:
        log.error("--run %s: a run id is 8 lowercase hex digits", ", ".join(map(repr, bad)))
        return 2
    token = args.token_file.read_text().strip()
    if len(token) < 16:
        log.error("token in %s is too short (16+ characters)", args.token_file)
        return 2
    controller_start = process_start_time(args.controller_pid) if args.controller_pid else None
    caps = probe_kernel()
    table = local_table(args.run, caps)
    for run_id in args.run:
        table.sweep(run_id)
    agent = Agent(table, token, args.listen)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    ready = {"port": agent.port, "pid": os.getpid(), "nft": caps.nft, "netem": caps.netem, "detail": caps.detail}
    tmp = args.ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(ready))
    tmp.replace(args.ready_file)
    log.info("serving on port %d for runs %s (nft=%s netem=%s)", agent.port, ",".join(args.run), caps.nft, caps.netem)
    reason = "signal"
    while not stop.wait(WATCH_INTERVAL_S):
        controller_gone = args.controller_pid and not pid_running(args.controller_pid, controller_start)
        if controller_gone and not table.holds_anything():
            reason = "controller gone, all faults healed"
            break
    log.info("stopping: %s", reason)
    agent.stop(reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
