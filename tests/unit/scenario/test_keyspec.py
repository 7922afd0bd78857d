"""One KeySpec: a scenario's load.keys is workloads.keyspace.KeySpec, with the schema's names and defaults."""

from __future__ import annotations

from dataclasses import MISSING, fields

from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.schema import KEY_DISTRIBUTIONS, SCENARIO_SCHEMA
from workloads.keyspace import DISTRIBUTIONS, KeySpec

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: hot
targets:
  - {name: cache, store: syncmap}
load:
  keys: {space: 1000, distribution: hot-set, hot_fraction: 0.05, hot_ops_fraction: 0.8, seed: 3}
phases:
  - {name: load, duration: 2s}
"""

KEYS_SCHEMA = SCENARIO_SCHEMA["properties"]["load"]["properties"]["keys"]["properties"]


def test_a_scenarios_keys_are_the_workloads_keyspec() -> None:
    keys = load_scenario_text(SCENARIO).load.keys
    assert type(keys) is KeySpec
    assert keys == KeySpec(space=1000, distribution="hot-set", hot_fraction=0.05, hot_ops_fraction=0.8, seed=3)


def test_the_schema_names_every_field_but_live_with_the_same_defaults() -> None:
    defaults = {f.name: f.default for f in fields(KeySpec) if f.default is not MISSING}
    assert set(KEYS_SCHEMA) == {f.name for f in fields(KeySpec)} - {"live"}
    for name, prop in KEYS_SCHEMA.items():
        assert prop.get("default") == defaults.get(name), name
    assert KEY_DISTRIBUTIONS == DISTRIBUTIONS == tuple(KEYS_SCHEMA["distribution"]["enum"])
    assert load_scenario_text(SCENARIO.replace(", distribution: hot-set", "")).load.keys.distribution == "sequential"
