"""chaos depends on nothing of the controller but orchestrator.core and orchestrator.scenario.spec.

Read from the source (every import statement, also lazy and TYPE_CHECKING ones), so a module
the tests never import is held to it too. The agent process's narrower rule (core only) is
checked by running it: test_agent_imports.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

CHAOS = Path(__file__).resolve().parents[3] / "chaos"
ALLOWED = ("orchestrator.core", "orchestrator.scenario.spec")


def orchestrator_imports(path: Path) -> list[str]:
    """Every ``orchestrator`` module ``path`` imports (``from orchestrator.x import y`` counts as x)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return [m for m in found if m == "orchestrator" or m.startswith("orchestrator.")]


def outside_the_layer(module: str) -> bool:
    return not any(module == a or module.startswith(a + ".") for a in ALLOWED)


def test_chaos_imports_only_core_and_the_scenario_spec() -> None:
    sources = sorted(p for p in CHAOS.rglob("*.py") if "pb" not in p.relative_to(CHAOS).parts)
    assert CHAOS / "resolve.py" in sources and CHAOS / "agent" / "server.py" in sources
    bad = [
        f"{p.relative_to(CHAOS.parent)}: {m}" for p in sources for m in orchestrator_imports(p) if outside_the_layer(m)
    ]
    assert not bad, f"chaos imports above its layer: {bad}"


def test_the_rule_refuses_the_rest_of_the_controller() -> None:
    assert not outside_the_layer("orchestrator.core.ledger")
    assert not outside_the_layer("orchestrator.scenario.spec")
    for module in ("orchestrator.scenario", "orchestrator.scenario.schema", "orchestrator.backends.local.network",
                   "orchestrator.run.lifecycle", "orchestrator.corex", "orchestrator"):  # fmt: skip
        assert outside_the_layer(module)
