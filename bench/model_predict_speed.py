"""How fast ``predict`` answers, from 1 to 10^9 entries, per model family (closed forms and
windowed binomial sums: the target is milliseconds even for 10^9).

    .venv/bin/python bench/model_predict_speed.py [--repeat 20]

Prints one Markdown table: the median and max wall time of ``predict`` per (type, Go, N),
measured side by side in one process.
"""

from __future__ import annotations

import argparse
import statistics
import time

from orchestrator.model import predict

CASES = [
    ("map[string]any(int64)", "1.26"),
    ("[32]map[string][]byte", "1.26"),
    ("sync.Map[string][32]byte", "1.26"),
    ("map[string]any(int64)", "1.23"),
    ("sync.Map[string][32]byte", "1.23"),
]
COUNTS = [1, 1000, 10**6, 10**9]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print("| type | Go | N | median | max |")
    print("|---|---|---|---|---|")
    for go_type, go in CASES:
        for n in COUNTS:
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                predict(go_type, n, go_version=go)
                times.append(time.perf_counter() - t0)
            median, worst = statistics.median(times) * 1e3, max(times) * 1e3
            print(f"| `{go_type}` | {go} | {n:.0e} | {median:.2f} ms | {worst:.2f} ms |")


if __name__ == "__main__":
    main()
