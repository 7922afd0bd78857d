"""How late faults land against their schedule: apply and heal latency through the real agent.

    sudo .venv/bin/python bench/fault_latency.py [--rounds 30] [--interval 0.25] [--replicas 4] [--prepare-batch 8]

Builds a run network (``--replicas`` namespaces plus a load node), starts the chaos
agent as the controller does, then for each fault kind schedules ``--rounds`` applies
``--interval`` seconds apart on a monotonic timeline and heals each one an interval
later. Each round is its own phase (``r<i>``), as in a scenario. Kinds marked
"prepared" are prepared as the runner does (``Nemesis.prepare`` before the timeline),
``--prepare-batch`` rounds at a time (each round's proxies are distinct processes, and
the agent keeps at most 32 idle per run); the batch's timeline starts after its Prepare returns.
The cold delay kind is not prepared: its proxies start at apply. Lateness = the moment
the agent's reply says the rules are in the kernel minus the scheduled moment (the
nemesis's ``AppliedFault.lateness_s``). Prints a Markdown table (p50, p95, p99, max, in ms)
for BENCHMARKS.md, and which nftables engine the agent used (libnftables in-process, or the
nft command). Goal (issue 14): p99 under 20 ms and max under 50 ms for every kind the runner uses
(the cold delay row is a comparison: the runner always prepares delay). Everything it creates is
removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chaos.agent.client import start_local_agent
from chaos.agent.server import MAX_PREPARED_PROXIES
from chaos.engines.nftlib import LibNft
from chaos.nemesis import Nemesis
from chaos.resolve import resolve_fault
from orchestrator.backends.local.network import LocalNetwork, cleanup_run
from orchestrator.backends.local.topology import topology_from_network
from orchestrator.core.ledger import Ledger
from orchestrator.scenario.spec import PhaseSpec, build_fault

# label → (fault, prepared ahead?)
KINDS = {
    "partition halves (drop)": (build_fault("partition", {"shape": "halves", "among": "kv"}), False),
    "partition isolate-one (reject)": (
        build_fault("partition", {"shape": "isolate-one", "among": "kv", "mode": "reject"}),
        False,
    ),
    "netem loss 10%": (build_fault("netem", {"target": "kv", "loss": "10%"}), False),
    "netem delay 20ms, prepared": (build_fault("netem", {"target": "kv", "delay": "20ms"}), True),
    "netem delay 20ms, cold (not prepared)": (build_fault("netem", {"target": "kv", "delay": "20ms"}), False),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--prepare-batch", type=int, default=8, help="rounds prepared at once (prepared kinds)")
    args = parser.parse_args()
    if not (1 <= args.rounds <= 1000 and 0.05 <= args.interval <= 10 and 1 <= args.replicas <= 16):
        parser.error("rounds 1..1000, interval 0.05..10 s, replicas 1..16")
    batch = max(1, min(args.prepare_batch, MAX_PREPARED_PROXIES // args.replicas))
    load_before = f"{os.getloadavg()[0]:.1f}"
    ledger = Ledger.create()
    net = LocalNetwork.create(ledger.run_id, ledger)
    nemesis = None
    rows = []
    try:
        for i in range(args.replicas):
            net.add_node(f"kv-{i}")
        net.add_node("load")
        topo = topology_from_network(net, {f"kv-{i}": ("kv", i) for i in range(args.replicas)})
        with tempfile.TemporaryDirectory() as tmp:
            agent = start_local_agent(ledger, Path(tmp))
            nemesis = Nemesis(agent.client, ledger.run_id, agent=agent)
            for label, (spec, prepare) in KINDS.items():
                apply_late, heal_late = [], []
                start = time.monotonic() + args.interval
                for r in range(args.rounds):
                    phase = f"r{r}"
                    fault = resolve_fault(spec, topo, phase=phase, index=0)
                    if prepare and r % batch == 0:
                        phases = [PhaseSpec(f"r{i}", 2 * args.interval, None, None, (spec,))
                                  for i in range(r, min(r + batch, args.rounds))]  # fmt: skip
                        ready = nemesis.prepare(phases, topo)
                        assert len(ready) == len(phases), ready
                        start = time.monotonic() + args.interval - 2 * r * args.interval
                    at = start + 2 * r * args.interval
                    time.sleep(max(0.0, at - time.monotonic()))
                    applied = nemesis.apply(fault, scheduled_at=at)
                    apply_late.append(applied.lateness_s)
                    heal_at = at + args.interval
                    time.sleep(max(0.0, heal_at - time.monotonic()))
                    nemesis.end_phase(phase)
                    assert applied.healed_mono is not None
                    heal_late.append(applied.healed_mono - heal_at)
                mech = ", ".join(applied.mechanisms)
                rows.append((label, mech, apply_late, heal_late))
            problems = nemesis.close()
            nemesis = None
            if problems:
                print("problems:", problems, file=sys.stderr)
    finally:
        if nemesis is not None:
            nemesis.close()
        net.teardown()
        cleanup_run(ledger.run_id, force=True)
    ms = 1000.0
    print(f"machine: {platform.node()} {platform.machine()}, kernel {platform.release()}, {time.strftime('%Y-%m-%d')}")
    print(f"command: bench/fault_latency.py --rounds {args.rounds} --interval {args.interval}", end="")
    print(f" --replicas {args.replicas} --prepare-batch {batch}")
    engine = "libnftables, in-process" if LibNft.load() is not None else "nft command (no python3-nftables)"
    print(f"nftables engine: {engine}; load average during the run: {load_before} -> {os.getloadavg()[0]:.1f}")
    print()
    print("| fault | mechanism | apply p50 ms | apply p95 ms | apply p99 ms | apply max ms", end="")
    print(" | heal p50 ms | heal p99 ms | heal max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, mech, a, h in rows:
        cells = [statistics.median(a), percentile(a, 0.95), percentile(a, 0.99), max(a)]
        cells += [statistics.median(h), percentile(h, 0.99), max(h)]
        print(f"| {label} | {mech} | " + " | ".join(f"{c * ms:.1f}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
