"""A stand-in controller for the SIGKILL test: starts its own agent, applies a halves partition, waits.

    python -m tests.integration.chaos.controller RUN_ID WORK_DIR TOPOLOGY_JSON
prints "applied <agent pid>" once the partition is in place, then sleeps (bounded) until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from chaos.nemesis import Nemesis
from chaos.resolve import NodeInfo, RunTopology, resolve_fault
from orchestrator.core.ledger import Ledger
from orchestrator.scenario.spec import build_fault


def main(run_id: str, work_dir: str, topo_json: str) -> None:
    topo = RunTopology(run_id, tuple(NodeInfo(**n) for n in json.loads(topo_json)))
    nemesis = Nemesis.start_local(Ledger.load(run_id), Path(work_dir), lease_s=5.0)
    fault = resolve_fault(build_fault("partition", {"shape": "halves", "among": "kv"}), topo, phase="p", index=0)
    nemesis.apply(fault)
    assert nemesis.agent is not None
    print(f"applied {nemesis.agent.proc.pid}", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(*sys.argv[1:4])
