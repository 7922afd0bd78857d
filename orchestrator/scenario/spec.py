"""A validated scenario as frozen dataclasses, with every documented default applied.

Built only from data that passed validate.py, so construction here does not
re-check anything; defaults come from the schema so they are written once.

Each fault and each check kind is its own dataclass (``FaultSpec`` and ``CheckSpec`` are their
unions): readers match on the class and read typed fields; durations and percentages are parsed
here, once. ``as_scenario_dict()`` gives a fault's or check's fields back as the scenario file
spells them (the report's plan lists them so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeAlias

from orchestrator.core.units import Duration, Percent, parse_duration
from orchestrator.scenario.schema import (
    CHECK_KINDS,
    DELIVERY_MAX_CPU_DEFAULT,
    DELIVERY_MIN_FRACTION_DEFAULT,
    FAULT_KINDS,
    LOCUST_MASTER_CPU_DEFAULT,
    LOCUST_WORKER_CPU_DEFAULT,
    SCENARIO_SCHEMA,
)
from orchestrator.scenario.userparts import resolve
from workloads.keyspace import KeySpec


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}


ALL_MAPS = "*"
"""A service model check's ``map: "*"``: every map the service registers."""

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
class ReadyProbe:
    """How a service says it serves: GET ``http`` answers 2xx, or ``tcp`` ("http"/"grpc") accepts."""

    http: str | None = None
    tcp: str | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class ServiceSpec:
    """The user's own service: what to build or run, and where it answers (paths are absolute)."""

    build: str | None
    """A Go main package directory, built with the target's Go version inside its own module."""
    command: tuple[str, ...] | None
    """The argv to run instead of a build (placeholders not yet expanded)."""
    image: str | None
    """The container image, for the Kubernetes backend."""
    args: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str
    ready: ReadyProbe
    metrics_path: str
    gc_path: str | None
    """mapprobe's GC handler: exact heap samples; None: approximate ones from the Go collector."""


@dataclass(frozen=True)
class Resources:
    """A replica container's Kubernetes resources, as the scenario spells them (cpu/memory quantities)."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KubernetesSpec:
    """Where and with which images a kubernetes run places its pods (the local backend ignores it)."""

    namespace: str = "mapquake-runs"
    agent_namespace: str = "mapquake-system"
    maptarget_image: str | None = None
    """None: mapquake/maptarget:<mapquake's version>."""
    mapquake_image: str | None = None
    """None: mapquake/mapquake:<mapquake's version>."""
    pull_policy: str = "IfNotPresent"
    reach: str = "auto"
    """auto | pod-network | port-forward: how the controller dials pods (backends/kubernetes/reach.py)."""
    locust_master: Resources = field(default_factory=lambda: Resources(requests={"cpu": LOCUST_MASTER_CPU_DEFAULT}))
    locust_worker: Resources = field(default_factory=lambda: Resources(requests={"cpu": LOCUST_WORKER_CPU_DEFAULT}))
    """The Locust pods' resources: CPU requests by default, so a busy node cannot starve the load."""


@dataclass(frozen=True)
class ExistingPrometheus:
    """A Prometheus the run does not own (``prometheus.existing``): it finds the run's pods itself."""

    url: str
    discovery: str = "auto"
    """auto | annotations | servicemonitor (orchestrator/backends/kubernetes/monitoring.py)."""
    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    discovery_timeout_s: float = 120.0


@dataclass(frozen=True)
class TargetSpec:
    name: str
    store: str | None
    """One of mapquake's demo stores, or None for the user's own service (``service``)."""
    replicas: int
    value_type: str
    go: str
    replicate: ReplicateSpec | None
    shards: int
    rebuild_every: int
    ring_size: int
    ring_leak: bool
    slice_buffer: int
    service: ServiceSpec | None = None
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class ValueSpec:
    type: str
    size: int


@dataclass(frozen=True)
class DeliverySpec:
    """How the run judges the load it delivered (orchestrator/checks/delivery.py)."""

    min_fraction: float = DELIVERY_MIN_FRACTION_DEFAULT
    """A phase with a rate must deliver at least this share of its designed requests."""
    max_generator_cpu: Percent = field(default_factory=lambda: Percent.parse(DELIVERY_MAX_CPU_DEFAULT))
    """A worker above this mean CPU (of one core) in a phase with a rate is saturated."""


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
    locustfile: str | None = None
    """The user's locustfile (absolute), whose ``user`` class runs instead of mapquake's users."""
    delivery: DeliverySpec = field(default_factory=DeliverySpec)


# --- faults: one dataclass per kind ------------------------------------------------------------
#
# Two faults are equal when they do the same thing: the same fields once defaults are applied and
# durations parsed (chaos.schedule keeps a fault in place across phases that list it identically).
# ``defaulted`` names the fields the scenario left to the schema's default; it is not compared and
# only keeps them out of ``as_scenario_dict()``, which lists the fault as written.

_FAULT_DEFAULTS = {kind: _defaults(schema) for kind, schema in FAULT_KINDS.items()}


def _as_written(fields: dict[str, Any], defaulted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields the scenario wrote: those left out (None) or left to a default are dropped."""
    return {k: v for k, v in fields.items() if v is not None and k not in defaulted}


@dataclass(frozen=True)
class PartitionAmong:
    """Cut the replicas of target ``among`` by ``shape`` (isolate-one, halves, …; docs/chaos.md)."""

    kind: ClassVar[str] = "partition"
    among: str
    shape: str
    mode: str
    """drop or reject"""
    defaulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_scenario_dict(self) -> dict[str, Any]:
        return _as_written({"shape": self.shape, "among": self.among, "mode": self.mode}, self.defaulted)


@dataclass(frozen=True)
class PartitionGroups:
    """Cut two groups apart (targets, load, prometheus or a target name): both ways, or ``shape`` one-way."""

    kind: ClassVar[str] = "partition"
    groups: tuple[str, str]
    shape: str | None
    """None (both ways) or one-way; resolving refuses other shapes (halves, too, means both ways)."""
    mode: str
    defaulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_scenario_dict(self) -> dict[str, Any]:
        fields = {"shape": self.shape, "groups": list(self.groups), "mode": self.mode}
        return _as_written(fields, self.defaulted)


@dataclass(frozen=True)
class NetemFault:
    """Degrade every replica of ``target``: what it sends is delayed (± jitter), what arrives is lost."""

    kind: ClassVar[str] = "netem"
    target: str
    delay: Duration | None
    jitter: Duration | None
    loss: Percent | None
    """Not bounded by the schema: a loss above 100% is refused when the fault is resolved."""

    def as_scenario_dict(self) -> dict[str, Any]:
        fields = {"target": self.target, "delay": self.delay, "jitter": self.jitter, "loss": self.loss}
        return {k: str(v) if isinstance(v, Duration | Percent) else v for k, v in _as_written(fields).items()}


@dataclass(frozen=True)
class KillFault:
    """SIGKILL one replica of ``target``; it stays down."""

    kind: ClassVar[str] = "kill"
    target: str
    replica: int
    defaulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_scenario_dict(self) -> dict[str, Any]:
        return _as_written({"target": self.target, "replica": self.replica}, self.defaulted)


@dataclass(frozen=True)
class PauseFault:
    """SIGSTOP one replica of ``target``; SIGCONT after ``resume_after``, else at the heal."""

    kind: ClassVar[str] = "pause"
    target: str
    replica: int
    resume_after: Duration | None
    """The scenario's ``for``: the fault heals on its own clock (and is never carried into a next phase)."""
    defaulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_scenario_dict(self) -> dict[str, Any]:
        fields = {
            "target": self.target,
            "replica": self.replica,
            "for": None if self.resume_after is None else self.resume_after.text,
        }
        return _as_written(fields, self.defaulted)


PartitionFault: TypeAlias = PartitionAmong | PartitionGroups
FaultSpec: TypeAlias = PartitionFault | NetemFault | KillFault | PauseFault
"""One fault of a phase; its ``kind`` is partition, netem, kill or pause."""


def _optional_duration(text: str | None) -> Duration | None:
    return None if text is None else Duration.parse(text)


def build_fault(kind: str, listing: Mapping[str, Any]) -> FaultSpec:
    """One fault from its scenario listing (``{shape: halves, among: kv}`` for kind partition).

    The listing is trusted to have passed validate.py; a duration or percentage that does not
    parse raises UsageError.
    """
    defaults = _FAULT_DEFAULTS.get(kind, {})
    raw = {**defaults, **listing}
    defaulted = frozenset(defaults) - set(listing)
    if kind == "partition" and "among" in raw:
        return PartitionAmong(among=raw["among"], shape=raw["shape"], mode=raw["mode"], defaulted=defaulted)
    if kind == "partition":
        a, b = raw["groups"]
        return PartitionGroups(groups=(a, b), shape=raw.get("shape"), mode=raw["mode"], defaulted=defaulted)
    if kind == "netem":
        return NetemFault(
            target=raw["target"],
            delay=_optional_duration(raw.get("delay")),
            jitter=_optional_duration(raw.get("jitter")),
            loss=None if "loss" not in raw else Percent.parse(raw["loss"]),
        )
    if kind == "kill":
        return KillFault(target=raw["target"], replica=raw["replica"], defaulted=defaulted)
    if kind == "pause":
        return PauseFault(
            target=raw["target"],
            replica=raw["replica"],
            resume_after=_optional_duration(raw.get("for")),
            defaulted=defaulted,
        )
    raise ValueError(f"unknown fault kind {kind!r} (the schema allows: {', '.join(FAULT_KINDS)})")


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    duration_s: float
    users: int | None
    rate: float | None
    faults: tuple[FaultSpec, ...]


# --- checks: one dataclass per kind ------------------------------------------------------------
#
# Every field the schema gives a default has it; a field with none is None when left out.
# ``as_scenario_dict()`` spells the fields as the scenario does, defaults included, without ``name``.

_CHECK_DEFAULTS = {kind: _defaults(schema) for kind, schema in CHECK_KINDS.items()}


@dataclass(frozen=True)
class DesignSpec:
    """What a model check's target is designed to be; a field left out (None) is the deployed target's."""

    store: str | None
    value_type: str | None
    replicate: ReplicateSpec | None
    """As written, with the schema's defaults for what it leaves out (not the deployed target's)."""
    slice_buffer: int | None
    defaulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The fields of ``replicate`` left to their defaults."""

    def as_scenario_dict(self) -> dict[str, Any]:
        replicate = None if self.replicate is None else _as_written(asdict(self.replicate), self.defaulted)
        fields = {
            "store": self.store,
            "value_type": self.value_type,
            "replicate": replicate,
            "slice_buffer": self.slice_buffer,
        }
        return _as_written(fields)


@dataclass(frozen=True)
class ModelCheck:
    """The live heap of ``target``'s replicas at each ``at`` point against the model's prediction."""

    kind: ClassVar[str] = "model"
    name: str
    model: str
    """What is compared with the model: live_heap."""
    target: str
    tolerance: Percent
    at: tuple[str, ...]
    """Points <phase>.start or <phase>.end."""
    since: str | None
    """The point growth is measured from; None: since deploy."""
    design: DesignSpec | None
    map: tuple[str, ...] = ()
    """On a service target: the mapprobe maps (their ``map`` labels) whose growth the model predicts;
    () the service's only map, (ALL_MAPS,) every map it registers."""
    owns: tuple[tuple[str, int], ...] = ()
    """Declared bytes each entry owns beyond its slot, by map label (ALL_MAPS: every checked map), for
    maps mapprobe cannot sample (registered without WithEntries)."""

    def as_scenario_dict(self) -> dict[str, Any]:
        declared = dict(self.owns)
        owns: int | dict[str, int] | None = declared or None
        if list(declared) == [ALL_MAPS]:
            owns = declared[ALL_MAPS]
        fields = {
            "model": self.model,
            "target": self.target,
            "map": None if not self.map else self.map[0] if len(self.map) == 1 else list(self.map),
            "owns": owns,
            "tolerance": self.tolerance.text,
            "at": list(self.at),
            "since": self.since,
            "design": None if self.design is None else self.design.as_scenario_dict(),
        }
        return _as_written(fields)


@dataclass(frozen=True)
class PromqlCheck:
    """Every sample of ``expr`` during the named phases below and/or above a bound (at least one is set)."""

    kind: ClassVar[str] = "promql"
    name: str
    expr: str
    below: float | None
    above: float | None
    during: tuple[str, ...]

    def as_scenario_dict(self) -> dict[str, Any]:
        fields = {"promql": self.expr, "below": self.below, "above": self.above, "during": list(self.during)}
        return _as_written(fields)


@dataclass(frozen=True)
class RecoveryCheck:
    """After each heal, ``expr`` is back below ``below`` within ``within``."""

    kind: ClassVar[str] = "recovery"
    name: str
    expr: str
    below: float
    within: Duration

    def as_scenario_dict(self) -> dict[str, Any]:
        return {"recovery": self.expr, "below": self.below, "within": self.within.text}


@dataclass(frozen=True)
class CrashCheck:
    """No replica of ``target`` dies (expect none), or one dies with ``message`` (expect fatal)."""

    kind: ClassVar[str] = "crash"
    name: str
    target: str
    expect: str
    message: str | None

    def as_scenario_dict(self) -> dict[str, Any]:
        return _as_written({"crash": self.target, "expect": self.expect, "message": self.message})


@dataclass(frozen=True)
class BaselineCheck:
    """``expr`` during the named phases is not worse than in earlier runs (Mann-Whitney U)."""

    kind: ClassVar[str] = "baseline"
    name: str
    expr: str
    during: tuple[str, ...]
    worse_if: str
    """higher or lower"""
    alpha: float
    min_runs: int

    def as_scenario_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.expr,
            "during": list(self.during),
            "worse_if": self.worse_if,
            "alpha": self.alpha,
            "min_runs": self.min_runs,
        }


CheckSpec: TypeAlias = ModelCheck | PromqlCheck | RecoveryCheck | CrashCheck | BaselineCheck
"""One check; its ``kind`` is model, promql, recovery, crash or baseline."""


def _map_names(raw: str | list[str] | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _owns(raw: int | Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    if raw is None:
        return ()
    if isinstance(raw, int):
        return ((ALL_MAPS, raw),)
    return tuple(sorted(raw.items()))


def _design(raw: Mapping[str, Any]) -> DesignSpec:
    replicate = raw.get("replicate")
    return DesignSpec(
        store=raw.get("store"),
        value_type=raw.get("value_type"),
        replicate=None if replicate is None else ReplicateSpec(**{**REPLICATE_DEFAULTS, **replicate}),
        slice_buffer=raw.get("slice_buffer"),
        defaulted=frozenset(REPLICATE_DEFAULTS) - set(replicate or ()),
    )


def build_check(listing: Mapping[str, Any], index: int) -> CheckSpec:
    """One check from its scenario listing (trusted to have passed validate.py), defaults applied.

    Its kind is the kind key it has; its name defaults to "<kind>-<index>".
    """
    kind = next(k for k in CHECK_KINDS if k in listing)
    raw = {**_CHECK_DEFAULTS[kind], **listing}
    name = raw.get("name") or f"{kind}-{index}"
    if kind == "model":
        return ModelCheck(
            name=name,
            model=raw["model"],
            target=raw["target"],
            tolerance=Percent.parse(raw["tolerance"]),
            at=tuple(raw["at"]),
            since=raw.get("since"),
            design=None if raw.get("design") is None else _design(raw["design"]),
            map=_map_names(raw.get("map")),
            owns=_owns(raw.get("owns")),
        )
    if kind == "promql":
        return PromqlCheck(
            name=name, expr=raw["promql"], below=raw.get("below"), above=raw.get("above"), during=tuple(raw["during"])
        )
    if kind == "recovery":
        return RecoveryCheck(name=name, expr=raw["recovery"], below=raw["below"], within=Duration.parse(raw["within"]))
    if kind == "crash":
        return CrashCheck(name=name, target=raw["crash"], expect=raw["expect"], message=raw.get("message"))
    if kind == "baseline":
        return BaselineCheck(
            name=name,
            expr=raw["baseline"],
            during=tuple(raw["during"]),
            worse_if=raw["worse_if"],
            alpha=raw["alpha"],
            min_runs=raw["min_runs"],
        )
    raise ValueError(f"unknown check kind {kind!r} (the schema allows: {', '.join(CHECK_KINDS)})")


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
    scrape_from_start: bool = False
    """Hold the load until Prometheus's first scrape even if no check reads the first seconds."""
    kubernetes: KubernetesSpec = field(default_factory=KubernetesSpec)
    existing_prometheus: ExistingPrometheus | None = None
    """None: the backend deploys the run's own Prometheus."""
    source: str = field(default="<string>", compare=False)

    @property
    def total_duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def target(self, name: str) -> TargetSpec:
        return next(t for t in self.targets if t.name == name)

    def to_json(self) -> dict[str, Any]:
        """Every field, as report.json's ``plan``: a fault is {kind, params}, a check {kind, name, params},
        with ``params`` as the scenario spells them (as_scenario_dict)."""
        plan = asdict(self)
        for out, phase in zip(plan["phases"], self.phases, strict=True):
            out["faults"] = [{"kind": f.kind, "params": f.as_scenario_dict()} for f in phase.faults]
        plan["checks"] = [{"kind": c.kind, "name": c.name, "params": c.as_scenario_dict()} for c in self.checks]
        return plan


def _service(raw: Mapping[str, Any], source: str) -> ServiceSpec:
    ready = {"http": raw.get("metrics_path", "/metrics"), **raw.get("ready", {})}
    if "tcp" in ready:
        del ready["http"]
    return ServiceSpec(
        build=str(resolve(source, raw["build"])) if "build" in raw else None,
        command=tuple(raw["command"]) if "command" in raw else None,
        image=raw.get("image"),
        args=tuple(raw.get("args", ())),
        env=dict(raw.get("env", {})),
        workdir=str(resolve(source, raw.get("workdir", "."))),
        ready=ReadyProbe(
            http=ready.get("http"), tcp=ready.get("tcp"), timeout_s=parse_duration(ready.get("timeout", "30s"))
        ),
        metrics_path=raw.get("metrics_path", "/metrics"),
        gc_path=raw.get("gc_path"),
    )


def _delivery(raw: Mapping[str, Any]) -> DeliverySpec:
    return DeliverySpec(
        min_fraction=float(raw.get("min_fraction", DELIVERY_MIN_FRACTION_DEFAULT)),
        max_generator_cpu=Percent.parse(raw.get("max_generator_cpu", DELIVERY_MAX_CPU_DEFAULT)),
    )


def _locust_resources(raw: Mapping[str, Any], role: str, cpu: str) -> Resources:
    given = raw.get(role, {"requests": {"cpu": cpu}})
    return Resources(requests=dict(given.get("requests", {})), limits=dict(given.get("limits", {})))


def _kubernetes(raw: Mapping[str, Any]) -> KubernetesSpec:
    images = raw.get("images", {})
    locust = raw.get("locust", {})
    return KubernetesSpec(
        namespace=raw.get("namespace", "mapquake-runs"),
        agent_namespace=raw.get("agent_namespace", "mapquake-system"),
        maptarget_image=images.get("maptarget"),
        mapquake_image=images.get("mapquake"),
        pull_policy=raw.get("pull_policy", "IfNotPresent"),
        reach=raw.get("reach", "auto"),
        locust_master=_locust_resources(locust, "master", LOCUST_MASTER_CPU_DEFAULT),
        locust_worker=_locust_resources(locust, "worker", LOCUST_WORKER_CPU_DEFAULT),
    )


def _existing_prometheus(raw: Mapping[str, Any] | None) -> ExistingPrometheus | None:
    if raw is None:
        return None
    return ExistingPrometheus(
        url=raw["url"].rstrip("/"),
        discovery=raw.get("discovery", "auto"),
        monitor_labels=dict(raw.get("monitor_labels", {})),
        discovery_timeout_s=parse_duration(raw.get("discovery_timeout", "2m")),
    )


def _go_version(value: Any) -> str:
    return str(value)


def build(data: dict[str, Any], source: str = "<string>") -> Scenario:
    """Turn validated data into a Scenario with defaults applied."""
    load_raw = {**_LOAD_DEFAULTS, **data["load"]}
    value = ValueSpec(**{**_VALUE_DEFAULTS, **load_raw.get("value", {})})
    # A locustfile's users draw no keys of mapquake's: the plan still carries a (one-key) space.
    keys = KeySpec(**{**_KEYS_DEFAULTS, **load_raw.get("keys", {"space": 1})})
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
        locustfile=str(resolve(source, load_raw["locustfile"])) if "locustfile" in load_raw else None,
        delivery=_delivery(load_raw.get("delivery", {})),
    )
    go = _go_version(data.get("go", _PROPS["go"]["default"]))
    targets = []
    for raw in data["targets"]:
        merged = {**_TARGET_DEFAULTS, **raw}
        replicate = raw.get("replicate")
        targets.append(
            TargetSpec(
                name=merged["name"],
                store=merged.get("store"),
                replicas=merged["replicas"],
                value_type=merged.get("value_type", value.type),
                go=_go_version(merged.get("go", go)),
                replicate=ReplicateSpec(**{**REPLICATE_DEFAULTS, **replicate}) if replicate is not None else None,
                shards=merged["shards"],
                rebuild_every=merged["rebuild_every"],
                ring_size=merged["ring_size"],
                ring_leak=merged["ring_leak"],
                slice_buffer=merged["slice_buffer"],
                service=None if "store" in raw else _service(raw, source),
                resources=Resources(**raw.get("resources", {})),
            )
        )
    phases = tuple(
        PhaseSpec(
            name=p["name"],
            duration_s=parse_duration(p["duration"]),
            users=p.get("users"),
            rate=p.get("rate"),
            faults=tuple(build_fault(k, v) for f in p.get("faults", []) for k, v in f.items()),
        )
        for p in data["phases"]
    )
    checks = tuple(build_check(raw, index) for index, raw in enumerate(data.get("checks", [])))
    prometheus = data.get("prometheus", {})
    return Scenario(
        name=data["name"],
        description=data.get("description", ""),
        go=go,
        backend=data.get("backend", _PROPS["backend"]["default"]),
        targets=tuple(targets),
        load=load,
        phases=phases,
        checks=checks,
        scrape_interval_s=parse_duration(prometheus.get("scrape_interval", "1s")),
        scrape_from_start=bool(prometheus.get("scrape_from_start", False)),
        kubernetes=_kubernetes(data.get("kubernetes", {})),
        existing_prometheus=_existing_prometheus(prometheus.get("existing")),
        source=source,
    )
