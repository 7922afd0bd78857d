"""``mapquake model measure``: build the measuring Go program and run it (research §6).

API::

    measure(go_type, entries, *, go_version="1.26", high_water=None, hint=None, replicas=1) -> Measurement
    measure_many(requests, *, go_version="1.26") -> list[Measurement]

With ``replicas`` R > 1 the program builds R containers of the request side by side, each
with its own hash seed, and the measurement is the mean per container. Where the layout is
random (trie nodes, Swiss table splits, classic overflow buckets) a single container varies
from run to run; the mean of enough of them is what the model's expected value predicts.

``measure_many`` builds one program for all the requests' types and runs them in one
process, one after another (each with its own baseline). Built programs are cached under
``$XDG_CACHE_HOME/mapquake/measure`` by source and toolchain, so repeated calls only run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InfrastructureError, UsageError
from orchestrator.model import goprogram, toolchains
from orchestrator.model.gotypes import Container, container_of
from orchestrator.model.predict import _check_counts, parse_go_version

log = logging.getLogger(__name__)

#: Patchable: a build of the small program takes seconds (the first one per toolchain
#: compiles the standard library into GOCACHE: up to a few minutes on a busy machine).
BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 900
GO_MOD = "module mapquakemeasure\n\ngo 1.22\n"


@dataclass(frozen=True)
class Request:
    go_type: str
    entries: int
    high_water: int | None = None
    hint: int | None = None
    replicas: int = 1


@dataclass(frozen=True)
class Measurement:
    """What the runtime really allocated for one request (HeapAlloc/TotalAlloc deltas)."""

    go_type: str
    go_version: str  # runtime.Version() of the measuring program, e.g. go1.26.8
    entries: int
    high_water: int
    hint: int | None
    live_bytes: int  # per container: the mean over ``replicas`` containers, rounded
    cumulative_bytes: int
    diagnostics: dict[str, Any] = field(default_factory=dict)  # summed over the replicas
    replicas: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.go_type,
            "go": self.go_version,
            "family": "measured",
            "entries": self.entries,
            "high_water": self.high_water,
            "hint": self.hint,
            "live_bytes": self.live_bytes,
            "live_bytes_range": [self.live_bytes, self.live_bytes],
            "cumulative_bytes": self.cumulative_bytes,
            "peak_bytes": self.live_bytes,
            "breakdown": {"heap_alloc_delta": self.live_bytes},
            "details": {**self.diagnostics, "replicas": self.replicas},
        }


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mapquake" / "measure"


def build(source: str, tc: toolchains.Toolchain) -> Path:
    """Build ``source`` with toolchain ``tc`` (cached); return the binary's path."""
    digest = hashlib.sha256(f"{tc.version}\n{tc.env}\n{source}".encode()).hexdigest()[:20]
    out_dir = cache_dir() / digest
    binary = out_dir / "measure"
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mapquake-measure-") as tmp:
        Path(tmp, "go.mod").write_text(GO_MOD)
        Path(tmp, "main.go").write_text(source)
        env = tc.environ()
        env.setdefault("GOFLAGS", "")
        env["GOFLAGS"] = (env["GOFLAGS"] + " -p=1").strip()
        env["GOWORK"] = "off"
        tmp_bin = Path(tmp, "measure")
        try:
            proc = subprocess.run(
                [tc.go, "build", "-o", str(tmp_bin), "."],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise InfrastructureError(
                f"building the measuring program with {tc.version} took over {BUILD_TIMEOUT_S}s",
                hint="the machine may be busy; retry, or raise orchestrator.model.measure.BUILD_TIMEOUT_S",
            ) from None
        if proc.returncode != 0:
            Path(out_dir, "main.go").write_text(source)
            raise InfrastructureError(
                f"building the measuring program with {tc.version} failed:\n{proc.stderr.strip()[:2000]}",
                hint=f"the generated source is in {out_dir / 'main.go'}; this is a mapquake bug if the TYPE is valid",
            )
        os.replace(tmp_bin, binary)
    return binary


def measure_many(requests: list[Request], *, go_version: str = "1.26") -> list[Measurement]:
    """Measure every request with one program built by the toolchain for ``go_version``."""
    parse_go_version(go_version)
    containers: list[Container] = []
    index: dict[str, int] = {}
    args: list[str] = []
    for r in requests:
        c = container_of(r.go_type)
        _check_counts(c, r.entries, r.high_water, r.hint)
        if c.text not in index:
            index[c.text] = len(containers)
            containers.append(c)
        arg = f"{index[c.text]}:{r.entries}"
        if r.high_water:
            arg += f":hw={r.high_water}"
        if r.hint:
            arg += f":hint={r.hint}"
        if r.replicas < 1:
            raise UsageError(f"replicas must be at least 1, got {r.replicas}")
        if r.replicas > 1:
            arg += f":reps={r.replicas}"
        args.append(arg)
    tc = toolchains.find(go_version)
    binary = build(goprogram.program(containers), tc)
    env = dict(os.environ, GOMAXPROCS="1", GOGC="off")
    env.pop("GODEBUG", None)
    try:
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InfrastructureError(
            f"the measuring program ran over {RUN_TIMEOUT_S}s", hint="measure fewer or smaller requests"
        ) from None
    if proc.returncode != 0:
        raise InfrastructureError(
            f"the measuring program failed (exit {proc.returncode}):\n{proc.stderr.strip()[:2000]}",
            hint="out of memory? measure fewer entries",
        )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != len(requests):
        raise InfrastructureError(
            f"the measuring program answered {len(lines)} of {len(requests)} requests",
            hint=proc.stderr.strip()[:500] or None,
        )
    out = []
    for r, _arg, line in zip(requests, args, lines, strict=True):
        res = line["result"]
        out.append(
            Measurement(
                go_type=container_of(r.go_type).text,
                go_version=line["go"],
                entries=r.entries,
                high_water=max(r.entries, r.high_water or 0),
                hint=r.hint,
                live_bytes=round(int(res["live"]) / r.replicas),
                cumulative_bytes=round(int(res["cumulative"]) / r.replicas),
                diagnostics=res.get("diag", {}),
                replicas=r.replicas,
            )
        )
    return out


def measure(
    go_type: str,
    entries: int,
    *,
    go_version: str = "1.26",
    high_water: int | None = None,
    hint: int | None = None,
    replicas: int = 1,
) -> Measurement:
    """Measure one container type holding ``entries`` keys on the real Go runtime."""
    return measure_many([Request(go_type, entries, high_water, hint, replicas)], go_version=go_version)[0]
