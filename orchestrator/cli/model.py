"""``mapquake model predict|measure``: the reference model of Go map memory on the command line."""

from __future__ import annotations

import argparse
import json
import sys

from orchestrator.core.errors import UsageError
from orchestrator.model.predict import DEFAULT_GO, Prediction, predict

_TYPE_HELP = (
    "Go type: map[K]V, [S]map[K]V (S shards), sync.Map[K]V; any(T) is an interface slot "
    "holding a T, e.g. 'map[string]any(int64)' or 'map[string]struct{Value int64; Version uint64}'"
)


def _count(text: str) -> int:
    try:
        value = int(float(text)) if ("e" in text.lower() and "x" not in text.lower()) else int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.cli.main import add_command

    model = add_command(
        subparsers,
        "model",
        help="reference model of Go map memory",
        description="Predict (or measure on the real runtime) the heap bytes of Go maps and sync.Map.",
    )
    sub = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    p = add_command(
        sub,
        "predict",
        help="predict live and cumulative heap bytes of a container",
        description="Predict the heap bytes a Go container allocates (no Go needed).\n\n"
        "example: mapquake model predict 'map[string]any(int64)' --entries 100000 --go 1.26 --json",
    )
    p.add_argument("type", metavar="TYPE", help=_TYPE_HELP)
    p.add_argument("--entries", type=_count, required=True, help="distinct live keys")
    p.add_argument("--high-water", type=_count, default=None, help="most keys ever held (maps never shrink)")
    p.add_argument("--hint", type=_count, default=None, help="make(map[K]V, hint) size hint")
    p.add_argument("--go", default=DEFAULT_GO, help=f"Go version (default {DEFAULT_GO}; 1.22 … 1.27)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_predict)

    m = add_command(
        sub,
        "measure",
        help="measure a container on the real Go runtime",
        description="Generate a Go program for TYPE, build it with the requested toolchain, run it\n"
        "(GOMAXPROCS=1, GC off) and print the measured live and cumulative bytes.\n\n"
        "toolchains: 1.26 = go on PATH, 1.23 = /usr/lib/go-1.23 (make toolchains), "
        "1.27 = GOTOOLCHAIN=go1.27.3",
    )
    m.add_argument("type", metavar="TYPE", help=_TYPE_HELP)
    m.add_argument("--entries", type=_count, required=True, help="distinct live keys")
    m.add_argument("--high-water", type=_count, default=None, help="insert this many, then delete down")
    m.add_argument("--hint", type=_count, default=None, help="make(map[K]V, hint) size hint")
    m.add_argument("--go", default=DEFAULT_GO, help=f"Go version (default {DEFAULT_GO})")
    m.add_argument(
        "--replicas",
        type=_count,
        default=1,
        help="build R containers side by side (each its own hash seed) and print the mean per "
        "container: what the model's expected value predicts where the layout is random",
    )
    m.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    m.set_defaults(handler=_measure)


def _human(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def _print_text(p: Prediction) -> None:
    lo, hi = p.live_bytes_range
    print(f"{p.go_type} with {p.entries} entries on Go {p.go_version} ({p.family})")
    print(f"  live bytes        {p.live_bytes:>16,d}  ({_human(p.live_bytes)}; range {lo:,d} … {hi:,d})")
    print(f"  cumulative bytes  {p.cumulative_bytes:>16,d}")
    if p.peak_bytes != p.live_bytes:
        print(f"  peak bytes        {p.peak_bytes:>16,d}")
    for part, value in p.breakdown.items():
        if value:
            print(f"    {part:<22s}{value:>16,d}")
    bound = p.churn.live_bytes_high
    print(f"  churn bound       {'none' if bound is None else f'{bound:,d}':>16s}  {p.churn.note}")
    for note in p.notes:
        print(f"  note: {note}")


def _predict(args: argparse.Namespace) -> int:
    p = predict(args.type, args.entries, go_version=args.go, high_water=args.high_water, hint=args.hint)
    if args.json:
        json.dump(p.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_text(p)
    return 0


def _measure(args: argparse.Namespace) -> int:
    from orchestrator.model.measure import measure

    if args.high_water is not None and args.high_water < args.entries:
        raise UsageError(
            f"--high-water {args.high_water} is below --entries {args.entries}",
            hint="the high-water mark is the most keys ever held, so at least --entries",
        )
    if args.replicas < 1:
        raise UsageError("--replicas must be at least 1", hint="1 measures a single container")
    m = measure(
        args.type,
        args.entries,
        go_version=args.go,
        high_water=args.high_water,
        hint=args.hint,
        replicas=args.replicas,
    )
    json.dump(m.to_json(), sys.stdout)
    sys.stdout.write("\n")
    return 0
