"""The chaos agent process imports nothing of the controller beyond orchestrator.core.

The agent (``python -m chaos.agent``) runs as root beside the run; it must not drag in the
scenario package (jsonschema, yaml), a backend, the load side (locust) or the controller's
half of chaos (resolve, schedule, nemesis, the agent client). Each check starts a fresh
interpreter, so modules the test session already imported do not hide anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

FORBIDDEN_TOP = ("yaml", "jsonschema", "locust")
CONTROLLER_CHAOS = ("chaos.resolve", "chaos.schedule", "chaos.nemesis", "chaos.agent.client")

# Runs the agent's entry as `python -m chaos.agent --help` does: __main__ is imported and main()
# parses its arguments (and exits on --help) before it probes or serves anything.
AGENT_ENTRY = """
import contextlib, io, json, runpy, sys
sys.argv = ["python -m chaos.agent", "--help"]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("chaos.agent", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        assert exit.code == 0, exit.code
import chaos
print(json.dumps({"chaos": chaos.__file__, "modules": sorted(sys.modules)}))
"""

# The delay proxy runs as a file with -S -I (chaos/engines/delayproxy.py): standard library only.
PROXY_ENTRY = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="proxyserver")
print(json.dumps({"modules": sorted(sys.modules)}))
"""


def controller_imports(modules: Iterable[str]) -> list[str]:
    """The modules in ``modules`` the agent process must not import."""
    bad = []
    for name in modules:
        top = name.split(".")[0]
        if top == "orchestrator" and name not in ("orchestrator", "orchestrator.core"):
            if not name.startswith("orchestrator.core."):
                bad.append(name)
        elif top in FORBIDDEN_TOP or any(name == c or name.startswith(c + ".") for c in CONTROLLER_CHAOS):
            bad.append(name)
    return sorted(bad)


def _modules_after(code: str, *args: str, flags: tuple[str, ...] = ()) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, *flags, "-c", code, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_agent_imports_only_orchestrator_core() -> None:
    found = _modules_after(AGENT_ENTRY)
    modules = found["modules"]
    assert isinstance(modules, list)
    assert Path(str(found["chaos"])).resolve().is_relative_to(REPO)  # this tree's code, not an installed copy
    # It did load the agent: its server, engines and the core it depends on.
    for expected in ("chaos.agent.server", "chaos.agent.ownership", "chaos.engines.nft", "orchestrator.core.ledger"):
        assert expected in modules
    bad = controller_imports(modules)
    assert not bad, f"the chaos agent imports controller modules: {', '.join(bad)}"


def test_the_delay_proxy_imports_only_the_standard_library() -> None:
    server = REPO / "chaos" / "engines" / "proxyserver.py"
    modules = _modules_after(PROXY_ENTRY, str(server), flags=("-S", "-I"))["modules"]
    assert isinstance(modules, list)
    assert not [m for m in modules if m.split(".")[0] in ("orchestrator", "chaos", "grpc", "google")]


def test_the_check_catches_controller_modules() -> None:
    """What the agent test would report if the agent pulled in the controller."""
    assert controller_imports(["orchestrator", "orchestrator.core", "orchestrator.core.names", "chaos.probe"]) == []
    assert controller_imports(
        [
            "orchestrator.scenario",
            "orchestrator.scenario.spec",
            "orchestrator.backends.local.network",
            "orchestrator.corex",
            "yaml",
            "jsonschema.validators",
            "locust",
            "chaos.resolve",
            "chaos.schedule",
            "chaos.nemesis",
            "chaos.agent.client",
        ]
    ) == [
        "chaos.agent.client",
        "chaos.nemesis",
        "chaos.resolve",
        "chaos.schedule",
        "jsonschema.validators",
        "locust",
        "orchestrator.backends.local.network",
        "orchestrator.corex",
        "orchestrator.scenario",
        "orchestrator.scenario.spec",
        "yaml",
    ]
