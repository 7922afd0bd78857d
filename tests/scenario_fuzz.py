"""A seeded scenario fuzzer: mutate the shipped scenarios, run them through validate and --dry-run.

    results = fuzz(documents=1000, seed=1)
    assert not results.internal_errors

Each document starts from one of scenarios/*.yaml or examples/inventory/scenario.yaml
and gets one to four mutations: keys deleted or duplicated, values swapped for another
type, huge/NaN/negative numbers, odd durations and percentages, deep nesting, aliases
(cycles and a billion laughs), control characters, invalid UTF-8, long strings, and
``--set`` overrides. Each is run in-process through the functions ``mapquake validate``
(read/parse, check_scenario, build) and ``mapquake run --dry-run`` (load, the backend's
planned topology, describe_timeline) use. The only acceptable outcomes are success and a
MapquakeError (ScenarioInvalid, UsageError, ...); anything else is an internal error.
"""

from __future__ import annotations

import copy
import math
import os
import random
import resource
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.errors import MapquakeError

REPO = Path(__file__).resolve().parents[1]
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SEEDS = [*sorted((REPO / "scenarios").glob("*.yaml")), REPO / "examples" / "inventory" / "scenario.yaml"]

NUMBERS: list[Any] = [
    0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e308, 1e-320, 0.5, -0.5,
    math.nan, math.inf, -math.inf, True, False, None,
]  # fmt: skip
TEXTS = [
    "", " ", "0s", "-1s", "1" * 400 + "s", "99999999h", "1.5ms", "0.0001ms", "24h", "24h1s", "100%", "100.01%",
    "0%", "1000%", "99.99%", ".nan", "NaN", "inf", "~", "null", "[]", "{}", "a" * 25, "A", "-x", "x" * 10_000,
    "\u202e\u0000", "é" * 100, "../../etc/passwd", "/dev/zero", "{target}", "{port", "a\nb", "\t",
    "majorities-ring", "isolate-one", "bridge", "halves", "one-way", "kubernetes", "local", "http", "grpc",
    "baseline.end", "nope.start", "[]byte", "unbounded", "bounded", "live_heap",
]  # fmt: skip
SET_VALUES = [
    ".nan", ".inf", "-.inf", "1e999", "-1", "0", "0s", "100%", "101%", "[" * 200 + "]" * 200, "&a [*a]",
    "{a: 1}", "[1, 2]", "'" + "z" * 5000 + "'", "\x01", "", "~", "true", "1" * 5000, "24h1s", "100ms",
]  # fmt: skip


GENTLE = ["1", "2", "3", "0.5", "10", "5s", "250ms", "1m", "5%", "50%", "100%", "drop", "reject", "true", "false"]


@dataclass
class Document:
    """One fuzzed input: YAML text (or raw bytes, read from a file), its --set flags, where it came from."""

    seed_path: Path
    text: str | bytes
    overrides: list[str]
    mutations: list[str]


@dataclass
class Results:
    documents: int = 0
    valid: int = 0
    invalid: int = 0
    internal_errors: list[tuple[Document, str]] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest: Document | None = None
    peak_rss_mb: float = 0.0
    seconds: float = 0.0


def _paths(data: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path in the data (containers and leaves), depth-first."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def _random_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(NUMBERS)
    if roll < 0.8:
        return rng.choice(TEXTS)
    if roll < 0.9:
        return [rng.choice(NUMBERS + TEXTS) for _ in range(rng.randint(0, 5))]
    return {rng.choice(["name", "target", "x", "duration", "among"]): rng.choice(TEXTS) for _ in range(3)}


def _nest(value: Any, depth: int, rng: random.Random) -> Any:
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def _data_mutation(data: Any, rng: random.Random) -> tuple[Any, str]:
    paths = _paths(data)
    path = rng.choice(paths)
    kind = rng.choice(["delete", "swap", "number", "text", "nest", "long", "control", "duplicate-item"])
    target = _get(data, path)
    if kind == "delete" and path:
        parent = _get(data, path[:-1])
        del parent[path[-1]]
    elif kind == "swap":
        data = _set(data, path, _random_value(rng))
    elif kind == "number":
        data = _set(data, path, rng.choice(NUMBERS))
    elif kind == "text":
        data = _set(data, path, rng.choice(TEXTS))
    elif kind == "nest":
        data = _set(data, path, _nest(target, rng.choice([3, 20, 63, 70, 200]), rng))
    elif kind == "long":
        data = _set(data, path, rng.choice("abc-") * rng.choice([25, 1000, 100_000]))
    elif kind == "control" and isinstance(target, str):
        data = _set(data, path, target + chr(rng.choice([0, 1, 7, 0x1B, 0x7F, 0x85, 0xFFFE])))
    elif kind == "duplicate-item" and isinstance(target, list) and target:
        target.extend(rng.choice(target) for _ in range(rng.choice([1, 2, 50])))
    return data, f"{kind} at {'.'.join(map(str, path)) or '(document)'}"


def _text_mutation(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    lines = text.splitlines(keepends=True)
    kind = rng.choice(["duplicate-line", "delete-line", "cycle", "laughs", "undefined-alias", "deep", "bytes",
                       "truncate", "tabs", "control", "anchor"])  # fmt: skip
    at = rng.randrange(len(lines)) if lines else 0
    if kind == "duplicate-line" and lines:
        lines.insert(at, lines[at])
    elif kind == "delete-line" and lines:
        del lines[at]
    elif kind == "cycle":
        lines.append("x-cycle: &c [*c]\n")
    elif kind == "laughs":
        levels = rng.choice([3, 5, 9])
        lines.append('l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n')
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, levels)]
    elif kind == "undefined-alias":
        lines.append("x: *nowhere\n")
    elif kind == "deep":
        depth = rng.choice([50, 64, 65, 500, 5000])
        lines.append("deep: " + "[" * depth + "]" * depth + "\n")
    elif kind == "bytes":
        raw = "".join(lines).encode()
        cut = rng.randrange(len(raw) + 1)
        return raw[:cut] + rng.choice([b"\xff", b"\xc3", b"\x00", b"\xef\xbb\xbf"]) + raw[cut:], kind
    elif kind == "truncate" and lines:
        return "".join(lines)[: rng.randrange(len(text) + 1)], kind
    elif kind == "tabs" and lines:
        lines[at] = "\t" + lines[at]
    elif kind == "control" and lines:
        lines[at] = lines[at].rstrip("\n") + chr(rng.choice([1, 8, 0x1B, 0x7F])) + "\n"
    elif kind == "anchor" and len(lines) > 2:
        head, sep, _ = lines[at].partition(":")
        if sep:
            lines[at] = f"{head}: &a1 {lines[at].split(':', 1)[1].strip() or '{}'}\n"
            lines.append("again: *a1\n")
    return "".join(lines), kind


def _like(value: Any, rng: random.Random) -> str:
    """A value of the same kind as ``value`` (a number for a number, a duration for a duration, ...)."""
    if isinstance(value, bool):
        return rng.choice(["true", "false"])
    if isinstance(value, int):
        return str(rng.choice([0, 1, 2, 3, 4, 10, 1000, value]))
    if isinstance(value, float):
        return str(rng.choice([0.01, 0.5, 0.99, 1.5, value]))
    if isinstance(value, str) and value.endswith("%"):
        return rng.choice(["0%", "5%", "50%", "99.99%", "100%"])
    if isinstance(value, str) and value[:1].isdigit():
        return rng.choice(["0s", "100ms", "1s", "5s", "1m", "24h"])
    return rng.choice(GENTLE)


def _overrides(data: Any, rng: random.Random, *, gentle: bool) -> list[str]:
    """--set flags. Gentle ones set one existing leaf to a plausible value (most of those documents stay valid)."""
    paths = [p for p in _paths(data) if p] if isinstance(data, dict) else []
    if gentle:
        leaves = [p for p in paths if not isinstance(_get(data, p), (dict, list))]
        if not leaves:
            return [f"name={rng.choice(GENTLE)}"]
        leaf = rng.choice(leaves)
        return [f"{'.'.join(map(str, leaf))}={_like(_get(data, leaf), rng)}"]
    flags = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if paths and roll < 0.8:
            path = ".".join(map(str, rng.choice(paths)))
        elif roll < 0.9:
            path = ".".join(["load"] * rng.choice([2, 70]))
        else:
            path = rng.choice(["", "nope.x", "targets.99.name", "..", "load.", "z" * 2000])
        flags.append(f"{path}={rng.choice(SET_VALUES + TEXTS[:20] + GENTLE)}")
    return flags


def generate(rng: random.Random, seeds: dict[Path, tuple[str, Any]]) -> Document:
    """One document: data mutations first (then dumped once), then text mutations, then maybe --set flags.

    A quarter of the documents get only --set flags, so that many stay valid and reach the dry run.
    """
    seed_path = rng.choice(SEEDS)
    original, parsed = seeds[seed_path]
    mutations: list[str] = []
    data = copy.deepcopy(parsed)
    text: str | bytes = original
    count = 0 if rng.random() < 0.25 else rng.randint(1, 4)
    kinds = sorted(rng.random() < 0.6 for _ in range(count))  # data mutations (False) before text ones (True)
    if kinds and not kinds[0]:
        try:
            for _ in range(kinds.count(False)):
                data, what = _data_mutation(data, rng)
                mutations.append(what)
            text = yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=rng.random() < 0.5, width=10**9)
        except RecursionError:  # nested twice past what PyYAML's dumper can write: the deep text mutation covers it
            data, text = copy.deepcopy(parsed), original
            mutations.append("(nesting too deep to dump; reset)")
    for _ in range(kinds.count(True)):
        if isinstance(text, str):
            text, what = _text_mutation(text, rng)
            mutations.append(what)
    if count == 0:
        overrides = _overrides(data, rng, gentle=rng.random() < 0.7)
    else:
        overrides = _overrides(data, rng, gentle=False) if rng.random() < 0.3 else []
    return Document(seed_path, text, overrides, mutations)


def run_document(doc: Document, scratch: Path) -> bool:
    """Validate the document and, when valid, dry-run it. True: valid. Raises only on an internal error.

    MapquakeError (ScenarioInvalid, UsageError, InfrastructureError) is the CLI's exit 2 or 3 with a
    message: an answer, not a bug.
    """
    from chaos.resolve import describe_timeline
    from orchestrator.backends.registry import backend_factory
    from orchestrator.scenario import ScenarioInvalid, check_scenario
    from orchestrator.scenario.spec import build
    from orchestrator.scenario.yamlsource import parse, read

    try:
        if isinstance(doc.text, bytes):  # undecodable input goes through the file reader, as the CLI reads it
            path = scratch / "fuzzed.yaml"
            path.write_bytes(doc.text)
            located = read(path)
        else:
            # parse with the seed's path as origin, so relative paths (locustfile, build) resolve as they do there
            located = parse(doc.text, origin=str(doc.seed_path))
        errors = check_scenario(located, doc.overrides)
        for error in errors:
            str(error)  # every message must render
        if errors:
            raise ScenarioInvalid(errors)
        scenario = build(located.data, source=str(doc.seed_path))
        factory = backend_factory(scenario.backend)
        topology = factory(run_id="00000000", run_dir=Path(os.devnull)).planned_topology(scenario)
        describe_timeline(scenario, topology, None)
    except MapquakeError as err:
        str(err)
        return False
    return True


def fuzz(documents: int, seed: int, *, progress: Callable[[int], None] | None = None) -> Results:
    rng = random.Random(seed)
    seeds = {p: (p.read_text(), yaml.safe_load(p.read_text())) for p in SEEDS}
    results = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mq-fuzz-") as scratch:
        for n in range(documents):
            doc = generate(rng, seeds)
            t0 = time.monotonic()
            try:
                valid = run_document(doc, Path(scratch))
            except Exception:  # an internal error: the CLI would print "internal error" and exit 3
                results.internal_errors.append((doc, traceback.format_exc(limit=-4)))
                valid = False
            elapsed = time.monotonic() - t0
            if elapsed > results.slowest_s:
                results.slowest_s, results.slowest = elapsed, doc
            results.documents += 1
            results.valid += valid
            results.invalid += not valid
            if progress is not None:
                progress(n)
    results.seconds = time.monotonic() - started
    results.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def describe(doc: Document) -> str:
    text = doc.text if isinstance(doc.text, str) else repr(doc.text)
    return (
        f"from {doc.seed_path.relative_to(REPO)}; mutations: {', '.join(doc.mutations) or 'none'}; "
        f"--set: {[o[:100] for o in doc.overrides]}\n{text[:600]}"
    )
