"""The scenario file's shape, as a JSON Schema: the one source of truth.

Validation (orchestrator/scenario/validate.py) checks files against it, the
exported copy in docs/scenario.schema.json gives editors completion, and the
defaults written here are the documented defaults (spec.py applies them).
Rules a JSON Schema cannot say (cross references, durations that must fit,
unique names) live in validate.py.
"""

from __future__ import annotations

from typing import Any

# Re-exported ("as"): validate.py reads the patterns here, with the schema that uses them.
from orchestrator.core.units import DURATION_PATTERN as DURATION_PATTERN
from orchestrator.core.units import PERCENT_PATTERN as PERCENT_PATTERN
from workloads.keyspace import DISTRIBUTIONS

API_VERSION = "mapquake/v1"
KIND = "Scenario"

STORES = (
    "mutexmap", "syncmap", "shardedmap", "ifacemap", "structmap",
    "deleteretain", "ptrcycle", "ringbuffer", "racymap", "subslice",
)  # fmt: skip
VALUE_TYPES = ("[]byte", "string", "int64", "[8]byte", "[16]byte", "[32]byte", "[64]byte", "[128]byte", "[256]byte")
USERS = ("MapWriteUser", "SyncMapChurnUser", "DeleteChurnUser", "ReadWriteMix")
PROTOCOLS = ("grpc", "http")
KEY_DISTRIBUTIONS = DISTRIBUTIONS  # load.keys is built as workloads.keyspace.KeySpec
QUEUE_KINDS = ("bounded", "unbounded")
PARTITION_SHAPES = ("isolate-one", "halves", "majorities-ring", "bridge", "one-way")
GROUPS = ("targets", "load", "prometheus")
BACKENDS = ("local", "kubernetes")
DISCOVERY_MODES = ("auto", "annotations", "servicemonitor")

NAME_MAX_LENGTH = 24
NAME_PATTERN = rf"^[a-z]([-a-z0-9]{{0,{NAME_MAX_LENGTH - 2}}}[a-z0-9])?$"
GO_VERSION_PATTERN = r"^1\.[0-9]+(\.[0-9]+)?$"

_name = {
    "type": "string",
    "pattern": NAME_PATTERN,
    "description": f"lowercase letters, digits and '-', starting with a letter, at most {NAME_MAX_LENGTH} characters",
}
DURATION_RANGE = "x-duration-range"
"""Schema keyword (validate.py checks it): the shortest and longest a duration may be, as durations."""
_duration = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    DURATION_RANGE: ["0s", "24h"],
    "description": "a duration such as 500ms, 20s, 1m30s",
}
_go_version = {"type": "string", "pattern": GO_VERSION_PATTERN, "description": 'a Go version such as "1.26"'}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def _int(minimum: int, maximum: int, default: int | None = None, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    if description:
        schema["description"] = description
    return schema


def _enum(values: tuple[str, ...], default: str | None = None, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if default is not None:
        schema["default"] = default
    if description:
        schema["description"] = description
    return schema


_replicate = _object(
    {
        "queue": _enum(QUEUE_KINDS, "bounded", "per-peer replication queue: bounded drops when full"),
        "capacity": _int(1, 100_000_000, 10_000, "ops a bounded queue holds per peer"),
    },
    description="replicate every write to the other replicas over gRPC",
)

PLACEHOLDERS = ("http_addr", "grpc_addr", "peers", "grpc_peers", "replica", "name")
"""What a service target's command, args and env may say in braces: the addresses mapquake assigns
(host:port inside the target's own namespace), the other replicas' HTTP and gRPC addresses
(comma-separated), the replica index and the target name."""
STORE_ONLY_FIELDS = ("value_type", "replicate", "shards", "rebuild_every", "ring_size", "ring_leak", "slice_buffer")
SERVICE_FIELDS = ("build", "command", "image", "args", "env", "workdir", "ready", "metrics_path", "gc_path")

_string_list = {"type": "array", "items": {"type": "string"}}
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
_quantities = _object(
    {
        "cpu": {"type": "string", "pattern": QUANTITY_PATTERN, "description": "CPU, e.g. 500m or 2"},
        "memory": {"type": "string", "pattern": QUANTITY_PATTERN, "description": "memory, e.g. 256Mi"},
    }
)
_resources = _object(
    {
        "requests": {**_quantities, "description": "what the scheduler reserves"},
        "limits": {**_quantities, "description": "the cgroup's ceiling (over its memory limit a replica is killed)"},
    },
    description="kubernetes: the replica container's resources (the local backend does not limit them)",
)
_target = _object(
    {
        "name": _name,
        "store": _enum(STORES, description="one of mapquake's demo stores (the container pattern of the seed)"),
        "replicas": _int(1, 16, 1, "processes serving this target"),
        "value_type": _enum(VALUE_TYPES, description="Go type of stored values (default: load.value.type)"),
        "replicate": _replicate,
        "go": {**_go_version, "description": "Go version the target is built with (default: the scenario's)"},
        "shards": _int(1, 4096, 32, "shardedmap: number of shards"),
        "rebuild_every": _int(0, 1_000_000_000, 0, "deleteretain: rebuild the map after this many deletes (0: never)"),
        "ring_size": _int(1, 4096, 8, "ringbuffer: values kept per key"),
        "ring_leak": {
            "type": "boolean",
            "default": False,
            "description": "ringbuffer: leak a goroutine per deleted key",
        },
        "slice_buffer": _int(
            0, 1 << 20, 0, "subslice: keep each value as a slice of a new buffer of this many bytes (0: copy to size)"
        ),
        "build": {
            "type": "string",
            "minLength": 1,
            "description": "your service: a Go main package directory (relative to this file), built with the "
            "target's Go version inside its own module",
        },
        "command": {
            **_string_list,
            "minItems": 1,
            "description": "your service: the argv to run (relative paths from this file; placeholders allowed)",
        },
        "image": {"type": "string", "minLength": 1, "description": "your service's container image (kubernetes)"},
        "args": {
            **_string_list,
            "description": "arguments after the built binary, or the image's entrypoint on kubernetes "
            "(placeholders allowed)",
        },
        "env": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "environment for your service (placeholders allowed)",
        },
        "workdir": {"type": "string", "description": "working directory of your service (default: this file's)"},
        "resources": _resources,
        "ready": _object(
            {
                "http": {"type": "string", "pattern": "^/", "description": "ready when GET <path> answers 2xx"},
                "tcp": _enum(("http", "grpc"), description="ready when this address accepts connections"),
                "timeout": {**_duration, "default": "30s", "description": "how long it may take to be ready"},
            },
            description="your service's readiness probe (default: GET metrics_path)",
        ),
        "metrics_path": {
            "type": "string",
            "pattern": "^/",
            "default": "/metrics",
            "description": "where Prometheus scrapes your service (on {http_addr})",
        },
        "gc_path": {
            "type": "string",
            "pattern": "^/",
            "description": "mapprobe's GC handler on {http_addr} (POST): exact heap samples; without it model "
            "checks read go_gc_heap_live_bytes and are approximate",
        },
    },
    required=("name",),
)

_keys = _object(
    {
        "space": _int(1, 1_000_000_000, description="number of distinct keys k0 .. k<space-1>"),
        "distribution": _enum(KEY_DISTRIBUTIONS, "sequential", "how each worker draws keys (docs/workloads.md)"),
        "s": {"type": "number", "exclusiveMinimum": 1, "default": 1.1, "description": "zipf: the exponent"},
        "hot_fraction": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.01,
            "description": "hot-set: the fraction of keys that are hot",
        },
        "hot_ops_fraction": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.9,
            "description": "hot-set: the fraction of draws that go to a hot key",
        },
        "seed": _int(0, 2**63 - 1, 1, "seeds every generator: same seed, same keys"),
    },
    required=("space",),
)

LOAD_VALUE_TYPE_DEFAULT = "[32]byte"
DELIVERY_MIN_FRACTION_DEFAULT = 0.8
DELIVERY_MAX_CPU_DEFAULT = "90%"
LOCUST_MASTER_CPU_DEFAULT = "100m"
LOCUST_WORKER_CPU_DEFAULT = "250m"
_value = _object(
    {
        "type": _enum(VALUE_TYPES, LOAD_VALUE_TYPE_DEFAULT, "Go type of the stored values (the targets' --value-type)"),
        "size": _int(0, 1 << 20, 32, "bytes sent per value ([]byte and string values)"),
    }
)

_load = _object(
    {
        "user": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "default": "MapWriteUser",
            "description": "Locust user class: " + ", ".join(USERS) + ", or a class in load.locustfile",
        },
        "locustfile": {
            "type": "string",
            "minLength": 1,
            "description": "your own locustfile (relative to this file); mapquake still runs the master and "
            "workers, shapes the phases and measures every request",
        },
        "protocol": _enum(PROTOCOLS, "grpc", "how users talk to the targets"),
        "workers": _int(1, 64, 1, "Locust worker processes"),
        "users": _int(1, 100_000, 8, "concurrent users (a phase may override)"),
        "spawn_rate": {"type": "number", "exclusiveMinimum": 0, "description": "users started per second"},
        "batch": _int(1, 100_000, 1, "writes per request (gRPC BatchPut or PutStream)"),
        "stream": {"type": "boolean", "default": False, "description": "send batches as a client stream"},
        "read_ratio": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "description": "ReadWriteMix: the fraction of operations that are reads",
        },
        "rate": {"type": "number", "exclusiveMinimum": 0, "description": "requests per second per user"},
        "max_ops": _int(1, 10**12, description="stop each worker after this many writes"),
        "keys": {
            **_keys,
            "description": "the key space: k000000000000000 … (16-byte names); needed "
            "by mapquake's own users, not with a locustfile",
        },
        "value": {**_value, "description": "what every write stores"},
        "delivery": _object(
            {
                "min_fraction": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "default": DELIVERY_MIN_FRACTION_DEFAULT,
                    "description": "a phase with a rate must deliver at least this share of the requests it "
                    "designs (0: never judged short)",
                },
                "max_generator_cpu": {
                    "type": "string",
                    "pattern": PERCENT_PATTERN,
                    "default": DELIVERY_MAX_CPU_DEFAULT,
                    "description": "a Locust worker above this mean CPU (of one core) in a phase with a rate "
                    "is saturated (Locust itself warns above 90%)",
                },
            },
            description="how the run judges the load it delivered: a phase with a rate that fell short, or "
            "whose generator was saturated, makes the run inconclusive (docs/workloads.md, Delivery)",
        ),
    },
)

_partition = _object(
    {
        "shape": _enum(PARTITION_SHAPES, description="how the replicas of `among` are cut (docs/chaos.md)"),
        "among": {"type": "string", "description": "target name whose replicas are cut"},
        "groups": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {"type": "string"},
            "description": "cut between two groups: targets, load, prometheus, or a target name",
        },
        "mode": _enum(("drop", "reject"), "drop", "drop packets silently, or reject them (TCP reset, ICMP)"),
    }
)
_netem = _object(
    {
        "delay": {**_duration, "description": "added to every packet the target sends"},
        "jitter": {**_duration, "description": "random variation of the delay"},
        "loss": {"type": "string", "pattern": PERCENT_PATTERN, "description": "packets dropped, e.g. 5%"},
        "target": {"type": "string", "description": "target name (every replica)"},
    },
    required=("target",),
)
_kill = _object(
    {"target": {"type": "string", "description": "target name"}, "replica": _int(0, 15, 0, "replica index")},
    required=("target",),
    description="SIGKILL one replica",
)
_pause = _object(
    {
        "target": {"type": "string", "description": "target name"},
        "replica": _int(0, 15, 0, "replica index"),
        "for": {**_duration, "description": "resume after this long (default: the end of the phase)"},
    },
    required=("target",),
    description="SIGSTOP one replica, SIGCONT at the end",
)
FAULT_KINDS: dict[str, dict[str, Any]] = {"partition": _partition, "netem": _netem, "kill": _kill, "pause": _pause}
_fault = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": FAULT_KINDS,
    "description": "exactly one of: " + ", ".join(FAULT_KINDS),
}

_phase = _object(
    {
        "name": _name,
        "duration": _duration,
        "users": _int(0, 100_000, description="users during this phase (default: load.users)"),
        "rate": {"type": "number", "exclusiveMinimum": 0, "description": "requests per second per user"},
        "faults": {"type": "array", "items": _fault, "default": [], "description": "see Faults below"},
    },
    required=("name", "duration"),
)

_check_name = {"name": {"type": "string", "description": "shown in reports (default: derived from the check)"}}
CHECK_KINDS: dict[str, dict[str, Any]] = {
    "model": _object(
        {
            **_check_name,
            "model": _enum(("live_heap",), description="what is compared with the reference model"),
            "target": {"type": "string", "description": "target name"},
            "map": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
                ],
                "description": "your service: the mapprobe map(s) to check, by their `map` label: one, a list "
                '(the model attributes their sum), or "*" for every map the service registers; may be left '
                "out when the service registers one map",
            },
            "owns": {
                "oneOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                ],
                "description": "your service: bytes each entry owns beyond its slot (string bytes, pointees) "
                "for maps registered without mapprobe.WithEntries, which measures it: a number for every "
                "checked map, or one per map label",
            },
            "tolerance": {
                "type": "string",
                "pattern": PERCENT_PATTERN,
                "default": "5%",
                "description": "allowed relative distance outside the model's range",
            },
            "at": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "description": "where to compare: <phase>.start or <phase>.end",
            },
            "since": {
                "type": "string",
                "description": "compare the growth since this point (<phase>.start|end) instead of since deploy",
            },
            "design": _object(
                {
                    "store": _enum(STORES, description="the container pattern the target should be"),
                    "value_type": _enum(VALUE_TYPES, description="the value type it should store"),
                    "replicate": _replicate,
                    "slice_buffer": _int(0, 1 << 20, 0, "subslice: the buffer each value may pin (0: none)"),
                },
                description="what the target is designed to be, if it differs from how it is deployed "
                "(default: the target's own fields); the model predicts the design, so a target "
                "deployed against it (e.g. --set …queue=unbounded) fails",
            ),
        },
        required=("model", "target", "at"),
    ),
    "promql": _object(
        {
            **_check_name,
            "promql": {"type": "string", "minLength": 1, "description": "PromQL expression"},
            "below": {"type": "number", "description": "every sample must be below"},
            "above": {"type": "number", "description": "every sample must be above"},
            "during": {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "phase names"},
        },
        required=("promql", "during"),
    ),
    "recovery": _object(
        {
            **_check_name,
            "recovery": {"type": "string", "minLength": 1, "description": "metric or PromQL expression"},
            "below": {"type": "number", "description": "the bound it must return under"},
            "within": {**_duration, "description": "how soon after each heal"},
        },
        required=("recovery", "below", "within"),
    ),
    "crash": _object(
        {
            **_check_name,
            "crash": {"type": "string", "description": "target name"},
            "expect": _enum(("none", "fatal"), "none", "no replica may die, or one must die"),
            "message": {"type": "string", "description": "text the fatal error must contain"},
        },
        required=("crash",),
    ),
    "baseline": _object(
        {
            **_check_name,
            "baseline": {"type": "string", "minLength": 1, "description": "PromQL expression sampled per run"},
            "during": {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "phase names"},
            "worse_if": _enum(("higher", "lower"), "higher", "which direction is a regression"),
            "alpha": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 0.5,
                "default": 0.05,
                "description": "significance level of the Mann-Whitney U test",
            },
            "min_runs": _int(2, 1000, 3, "earlier runs needed, else inconclusive"),
        },
        required=("baseline", "during"),
    ),
}
# A check is discriminated by which kind key it has; each kind is then checked
# strictly on its own, so an error names the exact field, not "matches no schema".
_check = {
    "type": "object",
    "description": "exactly one of: " + ", ".join(CHECK_KINDS),
    "oneOf": [{"required": [kind]} for kind in CHECK_KINDS],
    "allOf": [{"if": {"required": [kind]}, "then": schema} for kind, schema in CHECK_KINDS.items()],
}

SCENARIO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mapquake.dev/schemas/scenario-v1.json",
    "title": "mapquake scenario",
    **_object(
        {
            "apiVersion": {"const": API_VERSION, "description": "the scenario format version"},
            "kind": {"const": KIND, "description": "always Scenario"},
            "name": _name,
            "description": {"type": "string", "description": "one line for reports"},
            "go": {**_go_version, "default": "1.26"},
            "backend": _enum(BACKENDS, "local", "where components run: processes in network namespaces, or pods"),
            "targets": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": _target,
                "description": "the Go services under test",
            },
            "load": {**_load, "description": "the Locust workload: users, key space, values"},
            "phases": {
                "type": "array",
                "minItems": 1,
                "items": _phase,
                "description": "one timeline: each phase follows the previous",
            },
            "checks": {
                "type": "array",
                "items": _check,
                "default": [],
                "description": "what must hold; the worst verdict is the run's",
            },
            "kubernetes": _object(
                {
                    "namespace": {
                        "type": "string",
                        "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                        "default": "mapquake-runs",
                        "description": "where the run's objects go; it must carry the label "
                        "mapquake.io/allow-runs=true (--namespace overrides)",
                    },
                    "agent_namespace": {
                        "type": "string",
                        "default": "mapquake-system",
                        "description": "where the chart's chaos agent DaemonSet runs",
                    },
                    "images": _object(
                        {
                            "maptarget": {"type": "string", "minLength": 1, "description": "the demo stores' image"},
                            "mapquake": {
                                "type": "string",
                                "minLength": 1,
                                "description": "Python image: Locust master and workers, and the per-run Prometheus",
                            },
                        },
                        description="image references (default: mapquake/maptarget:<version>, "
                        "mapquake/mapquake:<version>)",
                    ),
                    "reach": _enum(
                        ("auto", "pod-network", "port-forward"),
                        "auto",
                        "how the controller reaches the pods' admin, Prometheus and agent ports: their IPs, or "
                        "port-forwards through the API server (auto: the IPs if they answer)",
                    ),
                    "pull_policy": _enum(
                        ("IfNotPresent", "Always", "Never"), "IfNotPresent", "the pods' imagePullPolicy"
                    ),
                    "locust": _object(
                        {
                            "master": {
                                **_resources,
                                "default": {"requests": {"cpu": LOCUST_MASTER_CPU_DEFAULT}},
                                "description": "the Locust master container's resources",
                            },
                            "worker": {
                                **_resources,
                                "default": {"requests": {"cpu": LOCUST_WORKER_CPU_DEFAULT}},
                                "description": "each Locust worker container's resources; its CPU request keeps a "
                                "busy node from starving the load ({} for none)",
                            },
                        },
                        description="the Locust pods' resources (default: CPU requests only, no limits, so a "
                        "worker may use a spare core but always gets its request)",
                    ),
                },
                description="settings for backend: kubernetes (the local backend ignores them)",
            ),
            "prometheus": _object(
                {
                    "scrape_interval": {
                        **_duration,
                        DURATION_RANGE: ["100ms", "1m"],
                        "default": "1s",
                        "description": "how often every component is scraped (with existing: the most the "
                        "server may take between scrapes of the run's pods)",
                    },
                    "scrape_from_start": {
                        "type": "boolean",
                        "default": False,
                        "description": "hold the load until the run's own Prometheus has scraped every replica "
                        "(about 5 s), so its series cover the first phase from its first second; without it the "
                        "run holds the load only when a check reads Prometheus that early (docs/scenarios.md)",
                    },
                    "existing": _object(
                        {
                            "url": {
                                "type": "string",
                                "pattern": r"^https?://[^\s/]+(/\S*)?$",
                                "description": "the server's HTTP API as the controller reaches it "
                                "(e.g. http://prometheus.monitoring.svc:9090); --set prometheus.existing.url=... "
                                "changes it per run",
                            },
                            "discovery": _enum(
                                DISCOVERY_MODES,
                                "auto",
                                "how the server finds the run's pods: prometheus.io/* pod annotations, or "
                                "ServiceMonitors (Prometheus Operator); auto: ServiceMonitors if the cluster "
                                "serves their CRD",
                            ),
                            "monitor_labels": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "default": {},
                                "description": "labels on the run's ServiceMonitors, for the Prometheus "
                                "resource's serviceMonitorSelector (e.g. release: kube-prometheus-stack)",
                            },
                            "discovery_timeout": {
                                **_duration,
                                DURATION_RANGE: ["5s", "10m"],
                                "default": "2m",
                                "description": "how long the server may take to scrape every replica first",
                            },
                        },
                        required=("url",),
                        description="use a Prometheus the run does not own (kubernetes only): the run's pods "
                        "are found by annotations or ServiceMonitors, and every query is scoped to the run "
                        "by the series label mapquake_run",
                    ),
                },
                description="the run's Prometheus: its own server (default), or an existing one",
            ),
        },
        required=("apiVersion", "kind", "name", "targets", "load", "phases"),
    ),
}
