"""TargetProcess never runs two processes at once: stop() could only end the newest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.targets.build import TargetProcess


def test_starting_a_running_target_again_is_refused(tmp_path: Path) -> None:
    target: TargetProcess

    def fake_maptarget(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # Stands in for maptarget: writes the ready file, then idles until stopped.
        ready = args[args.index("--ready-file") + 1]
        Path(ready).write_text(json.dumps({"http_addr": "127.0.0.1:1", "grpc_addr": "127.0.0.1:2", "pid": 1}))
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)

    target = TargetProcess("mutexmap", binary=Path("/bin/true"), log_dir=tmp_path, popen=fake_maptarget)
    with target:
        first = target.pid
        with pytest.raises(RuntimeError, match=f"pid {first} is already running"):
            target.start()
        assert target.pid == first
    assert target.returncode() is not None  # stopped on exit


def test_the_admin_token_reaches_maptarget_in_its_environment_not_its_argv(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_maptarget(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        seen["args"], seen["env"] = args, kwargs["env"]
        ready = args[args.index("--ready-file") + 1]
        Path(ready).write_text(json.dumps({"http_addr": "127.0.0.1:1", "grpc_addr": "127.0.0.1:2", "pid": 1}))
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)

    shared = TargetProcess(
        "mutexmap", binary=Path("/bin/true"), log_dir=tmp_path, popen=fake_maptarget, admin_token="t0k"
    )
    with shared:
        assert seen["env"]["MAPTARGET_ADMIN_TOKEN"] == "t0k"
        assert shared.endpoints is not None and shared.endpoints.admin_token == "t0k"
        assert "t0k" not in seen["args"] and "t0k" not in repr(shared.endpoints)
    fresh = [TargetProcess("mutexmap", binary=Path("/bin/true"), log_dir=tmp_path).admin_token for _ in range(2)]
    assert len(fresh[0]) >= 32 and fresh[0] != fresh[1]  # none given: a random one each
