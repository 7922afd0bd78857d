"""Check a scenario file and report every problem at once: file:line, field path, what to do.

Two passes over the same data. The JSON Schema (schema.py) catches shape
errors; the rules below catch what a schema cannot say: names that must be
unique, references to targets and phases, fault shapes that need enough
replicas. jsonschema's own messages are rewritten into ones that say how to fix
the file.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema

from orchestrator.core.errors import UsageError
from orchestrator.core.promql import ScopeError, scope_to_run
from orchestrator.core.units import parse_duration
from orchestrator.scenario.schema import (
    CHECK_KINDS,
    DURATION_PATTERN,
    DURATION_RANGE,
    FAULT_KINDS,
    GO_VERSION_PATTERN,
    GROUPS,
    LOAD_VALUE_TYPE_DEFAULT,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    PERCENT_PATTERN,
    SCENARIO_SCHEMA,
    SERVICE_FIELDS,
    STORE_ONLY_FIELDS,
    USERS,
)
from orchestrator.scenario.userparts import is_file, is_go_package, locustfile_classes, placeholder_errors, resolve
from orchestrator.scenario.yamlsource import LocatedDocument, Path_, format_path


def _duration_range(
    validator: Any, bounds: list[str], instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """The schema's DURATION_RANGE keyword: a duration (that matches the pattern) within [low, high]."""
    if not isinstance(instance, str) or re.fullmatch(DURATION_PATTERN, instance) is None:
        return  # the pattern reports it
    low, high = bounds
    if not parse_duration(low) <= parse_duration(instance) <= parse_duration(high):
        yield jsonschema.ValidationError(f"must be from {low} to {high}")


_VALIDATOR = jsonschema.validators.extend(jsonschema.Draft202012Validator, {DURATION_RANGE: _duration_range})(
    SCENARIO_SCHEMA
)

# The fewest replicas each partition shape can cut in a meaningful way.
MIN_REPLICAS_FOR_SHAPE = {"isolate-one": 2, "halves": 2, "one-way": 2, "majorities-ring": 3, "bridge": 3}

_PATTERN_ADVICE = {
    NAME_PATTERN: "use lowercase letters, digits and '-', starting with a letter "
    f"(at most {NAME_MAX_LENGTH} characters)",
    DURATION_PATTERN: "write a duration with a unit, e.g. 500ms, 20s, 1m30s",
    PERCENT_PATTERN: "write a percentage, e.g. 5%",
    GO_VERSION_PATTERN: 'write a Go version such as "1.26" (quoted)',
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys to values",
}


@dataclass(frozen=True)
class ScenarioError:
    """One problem in a scenario: where (origin, line, field path) and what to do."""

    origin: str
    line: int | None
    path: Path_
    message: str

    def __str__(self) -> str:
        origin = _shown(self.origin) if self.origin.startswith("--set ") else self.origin
        where = f"{origin}:{self.line}" if self.line else origin
        # Messages quote the user's values: each is cut to ECHO_LIMIT characters, and
        # a newline in a value must not break the one-line format.
        message = _LONG_WORD.sub(_shorten_word, self.message)
        message = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in _shown(message, 1000))
        return f"{where}: {format_path(self.path)}: {message}"


ECHO_LIMIT = 80
"""The most characters of a user's value an error message repeats ('…' marks the cut)."""
# No word of mapquake's own is this long; a value without spaces is. (A message is at most 1000 characters.)
_LONG_WORD = re.compile(rf"\S{{{ECHO_LIMIT + 1},}}")


def _shorten_word(match: re.Match[str]) -> str:
    word = match[0]
    end = word[-1] if word[-1] in "'\"" else ""  # keep a closing quote
    return _shown(word[: len(word) - len(end)], ECHO_LIMIT - len(end)) + end


class ScenarioInvalid(UsageError):
    """The scenario has one or more errors (exit 2); all of them are listed."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f"invalid scenario ({count}):\n" + "\n".join(f"  {e}" for e in errors))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    return repr(_shown(value)) if isinstance(value, str) else _shown(repr(value))


def _shown(value: Any, limit: int = 80) -> str:
    """A user's value as a message echoes it: at most ``limit`` characters, cut with '…'."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _schema_messages(error: jsonschema.ValidationError) -> Iterator[tuple[Path_, str]]:
    """Rewrite one jsonschema error as (field path, message) pairs a user can act on."""
    path: Path_ = tuple(error.absolute_path)
    kind, schema, instance = error.validator, error.schema, error.instance
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            shown = format_path((key,))
            yield (*path, key), f"unknown key '{shown}'{_suggest(key, allowed)} (allowed: {', '.join(allowed)})"
    elif kind == "required":
        missing = error.validator_value
        for key in missing:
            if key not in instance:
                yield (*path, key), f"missing required field '{key}'"
    elif kind == "enum":
        options = [str(o) for o in error.validator_value]
        yield path, f"{_describe(instance)} is not one of: {', '.join(options)}{_suggest(str(instance), options)}"
    elif kind == "const":
        yield path, f"must be '{error.validator_value}', got {_describe(instance)}"
    elif kind == "type":
        wanted = _TYPE_NAMES.get(str(error.validator_value), str(error.validator_value))
        message = f"expected {wanted}, got {_describe(instance)}"
        if error.validator_value == "string" and isinstance(instance, float):
            message += f'; quote it: "{instance}"'
        elif error.validator_value in ("number", "integer") and isinstance(instance, str) and _is_number(instance):
            # YAML 1.1 (PyYAML) reads 1e12 as text; 1.0e+12 is a number.
            message += f"; YAML reads '{instance}' as text: write {float(instance):.1e} or the digits in full"
        elif str(schema.get("pattern")) in _PATTERN_ADVICE:
            message += f"; {_PATTERN_ADVICE[str(schema['pattern'])]}"
        yield path, message
    elif kind == "pattern":
        advice = _PATTERN_ADVICE.get(str(error.validator_value), f"must match {error.validator_value}")
        yield path, f"{_describe(instance)} is not valid: {advice}"
    elif kind in {"minimum", "exclusiveMinimum"}:
        op = "at least" if kind == "minimum" else "more than"
        yield path, f"must be {op} {error.validator_value}, got {_describe(instance)}"
    elif kind in {"maximum", "exclusiveMaximum"}:
        op = "at most" if kind == "maximum" else "less than"
        yield path, f"must be {op} {error.validator_value}, got {_describe(instance)}"
    elif kind == "minItems":
        yield path, f"needs at least {error.validator_value} item{'s' if error.validator_value != 1 else ''}"
    elif kind == "maxItems":
        yield path, f"takes at most {error.validator_value} items, got {len(instance)}"
    elif kind in {"minProperties", "maxProperties"} and "partition" in schema.get("properties", {}):
        yield path, f"a fault needs exactly one of: {', '.join(FAULT_KINDS)}, got {', '.join(instance) or 'none'}"
    elif kind == "oneOf" and all(set(s) == {"required"} for s in schema["oneOf"]):
        if not isinstance(instance, dict):
            return  # the type error says it already
        found = [k for k in CHECK_KINDS if k in instance]
        yield path, (f"a check needs exactly one of: {', '.join(CHECK_KINDS)}; found {', '.join(found) or 'none'}")
    elif kind == "minLength":
        yield path, "must not be empty"
    elif kind == DURATION_RANGE:
        yield path, f"{error.message}, got {_describe(instance)}"
    else:
        yield path, error.message


def schema_errors(doc: LocatedDocument) -> list[ScenarioError]:
    found: dict[tuple[Path_, str], ScenarioError] = {}
    discriminator_paths: set[Path_] = set()
    errors = sorted(_VALIDATOR.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        if error.validator == "oneOf":
            discriminator_paths.add(tuple(error.absolute_path))
    for error in errors:
        path = tuple(error.absolute_path)
        # A check with no kind (or two) fails every kind's strict schema too; one message is enough.
        if path in discriminator_paths and "then" in error.absolute_schema_path:
            continue
        for field_path, message in _schema_messages(error):
            found.setdefault(
                (field_path, message), ScenarioError(doc.origin, doc.line_of(field_path), field_path, message)
            )
    return list(found.values())


def _replicas(target: dict[str, Any]) -> int | None:
    """The target's replica count, or None when it is not a valid number (the schema reports that)."""
    replicas = target.get("replicas", 1)
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def rule_errors(doc: LocatedDocument) -> list[ScenarioError]:
    """Cross-field rules. Tolerant of shapes the schema already rejected: it skips what it cannot read."""
    data = doc.data
    out: list[ScenarioError] = []

    def error(path: Path_, message: str) -> None:
        out.append(ScenarioError(doc.origin, doc.line_of(path), path, message))

    targets = {t["name"]: t for _, t in _dicts(data.get("targets")) if isinstance(t.get("name"), str)}
    target_names = sorted(targets)
    phases = [p for _, p in _dicts(data.get("phases"))]
    phase_names = sorted(p["name"] for p in phases if isinstance(p.get("name"), str))

    for field, items in (("targets", data.get("targets")), ("phases", data.get("phases"))):
        seen: dict[str, int] = {}
        for i, item in _dicts(items):
            name = item.get("name")
            if isinstance(name, str) and name in seen:
                error((field, i, "name"), f"'{name}' is already the name of {field}.{seen[name]}; names must be unique")
            elif isinstance(name, str):
                seen[name] = i

    load_value = data.get("load", {}).get("value", {}) if isinstance(data.get("load"), dict) else {}
    schema_default = LOAD_VALUE_TYPE_DEFAULT
    default_value_type = load_value.get("type", schema_default) if isinstance(load_value, dict) else schema_default
    for i, target in _dicts(data.get("targets")):
        value_type = target.get("value_type", default_value_type)
        if target.get("store") == "subslice" and value_type != "[]byte":
            where = ("targets", i, "value_type") if "value_type" in target else ("targets", i, "store")
            fix = 'set value_type: "[]byte"'
            error(where, f"subslice keeps []byte values as slices of a buffer, not {value_type}; {fix}")
        if "slice_buffer" in target and target.get("store") != "subslice":
            error(("targets", i, "slice_buffer"), "slice_buffer only applies to store: subslice; remove it")
        replicas = _replicas(target)
        if "replicate" in target and replicas is not None and replicas < 2:
            error(
                ("targets", i, "replicate"), "replication needs replicas: 2 or more; remove replicate or add replicas"
            )

    for i, target in _dicts(data.get("targets")):
        _service_target_rules(doc.origin, ("targets", i), target, error)

    def check_target_ref(path: Path_, name: Any) -> dict[str, Any] | None:
        if not isinstance(name, str):
            return None
        if name not in targets:
            error(path, f"no target named '{name}'{_suggest(name, target_names)} (targets: {', '.join(target_names)})")
            return None
        return targets[name]

    load = data.get("load")
    if isinstance(load, dict):
        _load_rules(doc.origin, load, error)
        if load.get("protocol", "grpc") == "http" and isinstance(load.get("batch"), int) and load["batch"] > 1:
            error(("load", "batch"), "HTTP has no batch writes; use protocol: grpc or remove batch")
        if load.get("stream") is True and load.get("protocol", "grpc") == "http":
            error(("load", "stream"), "HTTP has no streaming writes; use protocol: grpc")

    for pi, phase in _dicts(data.get("phases")):
        for fi, fault in _dicts(phase.get("faults")):
            base: Path_ = ("phases", pi, "faults", fi)
            for kind, params in fault.items():
                if not isinstance(params, dict):
                    continue
                here = (*base, kind)
                if kind == "partition":
                    _partition_rules(here, params, targets, check_target_ref, error)
                else:
                    target_ref = check_target_ref((*here, "target"), params.get("target"))
                    replica = params.get("replica", 0)
                    count = _replicas(target_ref) if target_ref is not None else None
                    if count is not None and isinstance(replica, int) and replica >= count:
                        error((*here, "replica"), f"target '{params['target']}' has {count} replica(s), "
                              f"numbered from 0; got replica {replica}")  # fmt: skip
                if kind == "netem" and not ({"delay", "loss"} & set(params)):
                    error(here, "netem needs delay, loss or both")
                loss = params.get("loss") if kind == "netem" else None
                if isinstance(loss, str) and re.fullmatch(PERCENT_PATTERN, loss) and float(loss[:-1]) > 100:
                    error((*here, "loss"), f"loss {_shown(loss)} is more than 100%; 100% drops every packet")
                if kind == "netem" and "jitter" in params and "delay" not in params:
                    error((*here, "jitter"), "jitter varies a delay; add delay")

    for ci, check in _dicts(data.get("checks")):
        base = ("checks", ci)
        for key in ("target", "crash"):
            if key in check:
                check_target_ref((*base, key), check[key])
        checked = targets.get(check["target"]) if "model" in check and isinstance(check.get("target"), str) else None
        for key in ("map", "owns"):
            if checked is not None and "store" in checked and key in check:
                error(
                    (*base, key), f"{key} is about the mapprobe maps of your own service; a store target has one store"
                )
        names = check.get("map")
        if isinstance(names, list) and "*" in names and len(names) > 1:
            error((*base, "map"), 'map: "*" already means every map; give "*" alone or a list of map labels')
        owns = check.get("owns")
        if isinstance(owns, dict) and isinstance(names, (str, list)) and names != "*":
            listed = [names] if isinstance(names, str) else names
            for label in owns:
                if label != "*" and label not in listed:
                    error(
                        (*base, "owns", label),
                        f"owns names map '{label}', which map: does not check ({', '.join(listed)})",
                    )
        if checked is not None and "store" not in checked and "design" in check:
            error((*base, "design"), "design describes a demo store; your service's maps describe themselves")
        points = check.get("at", []) if isinstance(check.get("at"), list) else []
        located: list[tuple[Path_, Any]] = [((*base, "at", j), point) for j, point in enumerate(points)]
        if "since" in check:
            located.append(((*base, "since"), check["since"]))
        for path, point in located:
            if not isinstance(point, str):
                continue
            phase_name, _, edge = point.partition(".")
            if edge not in {"start", "end"} or phase_name not in phase_names:
                error(path, f"'{point}' is not <phase>.start or <phase>.end (phases: {', '.join(phase_names)})")
        for j, phase in enumerate(check.get("during", []) if isinstance(check.get("during"), list) else []):
            if isinstance(phase, str) and phase not in phase_names:
                error((*base, "during", j), f"no phase named '{phase}'{_suggest(phase, phase_names)}")
        if "promql" in check and "below" not in check and "above" not in check:
            error(base, "a promql check needs a bound: below, above or both")
    _existing_prometheus_rules(data, error)
    return out


def _existing_prometheus_rules(data: dict[str, Any], error: Callable[[Path_, str], None]) -> None:
    """With ``prometheus.existing`` every query is scoped to the run, and the server is not the run's to fault."""
    prometheus = data.get("prometheus")
    if not isinstance(prometheus, dict) or not isinstance(prometheus.get("existing"), dict):
        return
    for ci, check in _dicts(data.get("checks")):
        for key in ("promql", "recovery", "baseline"):
            if isinstance(check.get(key), str):
                try:
                    scope_to_run(check[key], "validate")
                except ScopeError as err:
                    error(("checks", ci, key), f"cannot be scoped to the run on a shared Prometheus: {err}")
    for pi, phase in _dicts(data.get("phases")):
        for fi, fault in _dicts(phase.get("faults")):
            partition = fault.get("partition")
            groups = partition.get("groups") if isinstance(partition, dict) else None
            for j, group in enumerate(groups if isinstance(groups, list) else []):
                if group == "prometheus":
                    error(
                        ("phases", pi, "faults", fi, "partition", "groups", j),
                        "with prometheus.existing the server is not the run's: mapquake never faults it; "
                        "cut targets from load instead, or drop prometheus.existing",
                    )


def _service_target_rules(
    origin: str, base: Path_, target: dict[str, Any], error: Callable[[Path_, str], None]
) -> None:
    """A target is a demo store or the user's own service (build, command and/or image), not both."""
    service = [f for f in ("build", "command", "image") if f in target]
    if "store" in target:
        for field in (f for f in SERVICE_FIELDS if f in target):
            error((*base, field), f"{field} is for your own service; a store target runs mapquake's maptarget "
                  "(remove store to run your service, or remove this field)")  # fmt: skip
        return
    if not service:
        error(base, "say what to run: store (a demo store), build or command (your service), image (kubernetes)")
        return
    if "build" in target and "command" in target:
        error((*base, "command"), "give build (a Go package mapquake builds) or command (what to run), not both")
    for field in (f for f in STORE_ONLY_FIELDS if f in target):
        error((*base, field), f"{field} configures a demo store; your service takes its own flags in args or command")
    # Not a list (args: 5) is the schema's error; the rules read only lists.
    texts: list[tuple[Path_, Any]] = [((*base, "command", j), v) for j, v in enumerate(_list(target.get("command")))]
    texts += [((*base, "args", j), v) for j, v in enumerate(_list(target.get("args")))]
    env = target.get("env")
    texts += [((*base, "env", k), v) for k, v in env.items()] if isinstance(env, dict) else []
    for path, text in texts:
        if isinstance(text, str):
            for problem in placeholder_errors(text):
                error(path, problem)
    if "args" in target and "build" not in target and "image" not in target:
        error(
            (*base, "args"),
            "args follow the binary mapquake builds or the image's entrypoint; with command, put them in command",
        )
    ready = target.get("ready")
    if isinstance(ready, dict) and len({k for k in ready if k != "timeout"}) != 1:
        error((*base, "ready"), "give one probe: http: /path or tcp: http|grpc")
    build = target.get("build")
    if isinstance(build, str):
        package = resolve(origin, build)
        if not is_go_package(package):
            error((*base, "build"), f"{package} is not a directory with a Go main package (path from the scenario)")
    command = target.get("command")
    program = command[0] if isinstance(command, list) and command and isinstance(command[0], str) else ""
    if "/" in program and "{" not in program and not is_file(resolve(origin, program)):
        error(
            (*base, "command", 0),
            f"{resolve(origin, program)} does not exist (paths are from the scenario's directory)",
        )


def _load_rules(origin: str, load: dict[str, Any], error: Callable[[Path_, str], None]) -> None:
    """mapquake's own users need a key space; a locustfile must exist, parse and define the user class."""
    user = load.get("user", "MapWriteUser")
    locustfile = load.get("locustfile")
    if not isinstance(locustfile, str):
        if isinstance(user, str) and user not in USERS:
            error(("load", "user"), f"'{user}' is not one of mapquake's users{_suggest(user, list(USERS))} "
                  f"({', '.join(USERS)}); for your own class, set load.locustfile")  # fmt: skip
        if "keys" not in load:
            error(("load",), "mapquake's users need a key space: add keys: {space: N}")
        return
    path = resolve(origin, locustfile)
    classes, problem = locustfile_classes(path)
    if problem is not None:
        error(("load", "locustfile"), f"{problem} (path from the scenario's directory)")
    elif isinstance(user, str) and "user" in load and user not in classes:
        error(("load", "user"), f"{path.name} defines no class '{user}'{_suggest(user, classes)} "
              f"(its classes: {', '.join(classes) or 'none'})")  # fmt: skip
    elif "user" not in load:
        error(("load", "locustfile"), "name the user class to run from it: load.user")
    for field in ("batch", "stream", "read_ratio", "keys", "value", "max_ops"):
        if field in load:
            error(("load", field), f"{field} shapes mapquake's own users; your locustfile decides its requests")


def _partition_rules(
    here: Path_,
    params: dict[str, Any],
    targets: dict[str, dict[str, Any]],
    check_target_ref: Callable[[Path_, Any], dict[str, Any] | None],
    error: Callable[[Path_, str], None],
) -> None:
    if ("among" in params) == ("groups" in params):
        error(here, "a partition needs either among (a target whose replicas are cut) or groups (two groups to cut)")
    if "among" in params:
        target = check_target_ref((*here, "among"), params["among"])
        shape = params.get("shape")
        if shape is None:
            error((*here, "shape"), "a partition among replicas needs a shape: " + ", ".join(MIN_REPLICAS_FOR_SHAPE))
        elif isinstance(shape, str) and target is not None and (count := _replicas(target)) is not None:
            need = MIN_REPLICAS_FOR_SHAPE.get(shape, 2)
            if count < need:
                error((*here, "shape"), f"shape '{shape}' needs at least {need} replicas; "
                      f"target '{params['among']}' has {count}")  # fmt: skip
    for j, group in enumerate(params.get("groups", []) if isinstance(params.get("groups"), list) else []):
        if isinstance(group, str) and group not in GROUPS and group not in targets:
            choices = [*GROUPS, *sorted(targets)]
            error(
                (*here, "groups", j),
                f"'{group}' is not a group{_suggest(group, choices)} (groups: {', '.join(choices)})",
            )


def finite_errors(doc: LocatedDocument) -> list[ScenarioError]:
    """Every number must be finite: YAML's .nan and .inf (and 1e999) pass every bound a schema can say."""
    out: list[ScenarioError] = []
    stack: list[tuple[Path_, Any]] = [((), doc.data)]
    while stack:  # iterative: the data is bounded in depth, but no recursion is needed either
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            shown = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
            out.append(ScenarioError(doc.origin, doc.line_of(path), path, f"must be a finite number, got {shown}"))
    return out


def validate(doc: LocatedDocument) -> list[ScenarioError]:
    """Every problem in the document, in file order."""
    errors = [ScenarioError(doc.origin, e.line, e.path, e.message) for e in doc.errors]
    if errors and doc.data is None:
        return errors
    if not isinstance(doc.data, dict):
        return [
            *errors,
            ScenarioError(doc.origin, 1, (), "a scenario is a mapping; start with 'apiVersion: mapquake/v1'"),
        ]
    non_finite = finite_errors(doc)
    errors += non_finite
    # -.inf is also below a minimum; one message for it is enough.
    errors += [e for e in schema_errors(doc) if e.path not in {n.path for n in non_finite}]
    errors += rule_errors(doc)
    return sorted(errors, key=lambda e: (e.origin != doc.origin, e.line or 0, format_path(e.path)))
