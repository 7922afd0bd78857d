"""A validated scenario as frozen dataclasses, with every documented default applied.

Built only from data that passed validate.py, so construction here does not
re-check anything; defaults come from the schema so they are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.units import parse_duration
from orchestrator.scenario.schema import CHECK_KINDS, SCENARIO_SCHEMA
from workloads.keyspace import KeySpec


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}


_PROPS = SCENARIO_SCHEMA["properties"]
_TARGET_DEFAULTS = _defaults(_PROPS["targets"]["items"])
REPLICATE_DEFAULTS = _defaults(_PROPS["targets"]["items"]["properties"]["replicate"])
_LOAD_DEFAULTS = _defaults(_PROPS["load"])
_KEYS_DEFAULTS = _defaults(_PROPS["load"]["properties"]["keys"])
_VALUE_DEFAULTS = _defaults(_PROPS["load"]["properties"]["value"])


@dataclass(frozen=True)
class ReplicateSpec:
    queue: str
    capacity: int


@dataclass(frozen=True)
class TargetSpec:
    name: str
    store: str
    replicas: int
    value_type: str
    go: str
    replicate: ReplicateSpec | None
    shards: int
    rebuild_every: int
    ring_size: int
    ring_leak: bool
    slice_buffer: int


@dataclass(frozen=True)
class ValueSpec:
    type: str
    size: int


@dataclass(frozen=True)
class LoadSpec:
    user: str
    protocol: str
    workers: int
    users: int
    spawn_rate: float
    batch: int
    stream: bool
    read_ratio: float
    rate: float | None
    max_ops: int | None
    keys: KeySpec
    """The workloads' own KeySpec: the backends hand it to the workload plan as it is."""
    value: ValueSpec


@dataclass(frozen=True)
class FaultSpec:
    """One fault of a phase: ``kind`` is partition, netem, kill or pause; ``params`` its fields."""

    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    duration_s: float
    users: int | None
    rate: float | None
    faults: tuple[FaultSpec, ...]


@dataclass(frozen=True)
class CheckSpec:
    """One check: ``kind`` is model, promql, recovery, crash or baseline; ``params`` its fields with defaults."""

    kind: str
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    go: str
    backend: str
    targets: tuple[TargetSpec, ...]
    load: LoadSpec
    phases: tuple[PhaseSpec, ...]
    checks: tuple[CheckSpec, ...]
    scrape_interval_s: float
    source: str = field(default="<string>", compare=False)

    @property
    def total_duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def target(self, name: str) -> TargetSpec:
        return next(t for t in self.targets if t.name == name)


def _go_version(value: Any) -> str:
    return str(value)


def build(data: dict[str, Any], source: str = "<string>") -> Scenario:
    """Turn validated data into a Scenario with defaults applied."""
    load_raw = {**_LOAD_DEFAULTS, **data["load"]}
    value = ValueSpec(**{**_VALUE_DEFAULTS, **load_raw.get("value", {})})
    keys = KeySpec(**{**_KEYS_DEFAULTS, **load_raw["keys"]})
    load = LoadSpec(
        user=load_raw["user"],
        protocol=load_raw["protocol"],
        workers=load_raw["workers"],
        users=load_raw["users"],
        spawn_rate=float(load_raw.get("spawn_rate", load_raw["users"])),
        batch=load_raw["batch"],
        stream=load_raw["stream"],
        read_ratio=load_raw["read_ratio"],
        rate=load_raw.get("rate"),
        max_ops=load_raw.get("max_ops"),
        keys=keys,
        value=value,
    )
    go = _go_version(data.get("go", _PROPS["go"]["default"]))
    targets = []
    for raw in data["targets"]:
        merged = {**_TARGET_DEFAULTS, **raw}
        replicate = raw.get("replicate")
        targets.append(
            TargetSpec(
                name=merged["name"],
                store=merged["store"],
                replicas=merged["replicas"],
                value_type=merged.get("value_type", value.type),
                go=_go_version(merged.get("go", go)),
                replicate=ReplicateSpec(**{**REPLICATE_DEFAULTS, **replicate}) if replicate is not None else None,
                shards=merged["shards"],
                rebuild_every=merged["rebuild_every"],
                ring_size=merged["ring_size"],
                ring_leak=merged["ring_leak"],
                slice_buffer=merged["slice_buffer"],
            )
        )
    phases = tuple(
        PhaseSpec(
            name=p["name"],
            duration_s=parse_duration(p["duration"]),
            users=p.get("users"),
            rate=p.get("rate"),
            faults=tuple(FaultSpec(kind=k, params=dict(v)) for f in p.get("faults", []) for k, v in f.items()),
        )
        for p in data["phases"]
    )
    checks = []
    for index, raw in enumerate(data.get("checks", [])):
        kind = next(k for k in CHECK_KINDS if k in raw)
        params = {**_defaults(CHECK_KINDS[kind]), **raw}
        name = params.pop("name", None) or f"{kind}-{index}"
        checks.append(CheckSpec(kind=kind, name=name, params=params))
    prometheus = data.get("prometheus", {})
    return Scenario(
        name=data["name"],
        description=data.get("description", ""),
        go=go,
        backend=data.get("backend", _PROPS["backend"]["default"]),
        targets=tuple(targets),
        load=load,
        phases=phases,
        checks=tuple(checks),
        scrape_interval_s=parse_duration(prometheus.get("scrape_interval", "1s")),
        source=source,
    )
