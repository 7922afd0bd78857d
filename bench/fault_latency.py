"""How late faults land against their schedule: apply and heal latency through the real agent.

    sudo .venv/bin/python bench/fault_latency.py [--rounds 60] [--interval 0.25] [--replicas 4] [--prepare-batch 8]
                                                 [--engines libnftables command] [--background-load N]

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
nft command); ``--engines`` measures each engine in turn in the same run (the agent is started
once per engine), and ``--background-load N`` keeps N busy-loop processes running meanwhile
(each bounded: it ends by itself after the bench's expected time, and is stopped by pid at the
end). Goal (issue 14): p99 under 20 ms and max under 50 ms for every kind the runner uses
(the cold delay row is a comparison: the runner always prepares delay). Everything it creates is
removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos.agent.client import start_local_agent
from chaos.agent.server import MAX_PREPARED_PROXIES, NFT_ENGINE_ENV
from chaos.engines.nftlib import LibNft
from chaos.nemesis import Nemesis
from chaos.resolve import RunTopology, resolve_fault
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


def start_burners(count: int, *, seconds: float) -> list[subprocess.Popen[bytes]]:
    """``count`` busy loops, each ending by itself after ``seconds`` (a bound, not the stop signal)."""
    loop = f"import time\nend = time.monotonic() + {seconds:.0f}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def measure(
    engine: str, ledger: Ledger, topo: RunTopology, args: argparse.Namespace, batch: int
) -> list[tuple[str, str, list[float], list[float]]]:
    """Every kind's apply and heal lateness through an agent using ``engine`` (started and closed here)."""
    rows = []
    os.environ[NFT_ENGINE_ENV] = engine  # the agent process inherits it
    with tempfile.TemporaryDirectory() as tmp:
        agent = start_local_agent(ledger, Path(tmp))
        nemesis = Nemesis(agent.client, ledger.run_id, agent=agent)
        try:
            for label, (spec, prepare) in KINDS.items():
                apply_late, heal_late = [], []
                start = time.monotonic() + args.interval
                mechanisms: list[str] = []
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
                    mechanisms = applied.mechanisms
                rows.append((label, ", ".join(mechanisms), apply_late, heal_late))
        finally:
            problems = nemesis.close()
            if problems:
                print("problems:", problems, file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--prepare-batch", type=int, default=8, help="rounds prepared at once (prepared kinds)")
    parser.add_argument("--engines", nargs="+", choices=("libnftables", "command"), default=["libnftables"])
    parser.add_argument("--background-load", type=int, default=0, metavar="N", help="busy-loop processes meanwhile")
    args = parser.parse_args()
    if not (1 <= args.rounds <= 1000 and 0.05 <= args.interval <= 10 and 1 <= args.replicas <= 16):
        parser.error("rounds 1..1000, interval 0.05..10 s, replicas 1..16")
    if not 0 <= args.background_load <= 8:
        parser.error("background-load: 0..8")
    if "libnftables" in args.engines and LibNft.load() is None:
        parser.error("libnftables is not usable here: install python3-nftables (make setup)")
    batch = max(1, min(args.prepare_batch, MAX_PREPARED_PROXIES // args.replicas))
    ledger = Ledger.create()
    net = LocalNetwork.create(ledger.run_id, ledger)
    results: dict[str, list[tuple[str, str, list[float], list[float]]]] = {}
    burners: list[subprocess.Popen[bytes]] = []
    load_before = f"{os.getloadavg()[0]:.1f}"
    try:
        for i in range(args.replicas):
            net.add_node(f"kv-{i}")
        net.add_node("load")
        topo = topology_from_network(net, {f"kv-{i}": ("kv", i) for i in range(args.replicas)})
        expected_s = len(args.engines) * len(KINDS) * args.rounds * 2 * args.interval + 60
        burners = start_burners(args.background_load, seconds=expected_s)
        for engine in args.engines:
            results[engine] = measure(engine, ledger, topo, args, batch)
    finally:
        for burner in burners:  # ours, by pid; each would also end by itself
            burner.terminate()
            burner.wait()
        net.teardown()
        cleanup_run(ledger.run_id, force=True)
    ms = 1000.0
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, kernel {platform.release()}, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    print(f"command: bench/fault_latency.py --rounds {args.rounds} --interval {args.interval} --replicas "
          f"{args.replicas} --prepare-batch {batch} --engines {' '.join(args.engines)} "
          f"--background-load {args.background_load}")  # fmt: skip
    print(f"load average: {load_before} before, {os.getloadavg()[0]:.1f} after")
    print()
    print("| fault | nftables through | mechanism | apply p50 ms | apply p95 ms | apply p99 ms | apply max ms", end="")
    print(" | heal p50 ms | heal p99 ms | heal max ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for index in range(len(KINDS)):
        for engine, rows in results.items():
            label, mech, a, h = rows[index]
            cells = [statistics.median(a), percentile(a, 0.95), percentile(a, 0.99), max(a)]
            cells += [statistics.median(h), percentile(h, 0.99), max(h)]
            print(f"| {label} | {engine} | {mech} | " + " | ".join(f"{c * ms:.1f}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
