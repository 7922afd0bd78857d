"""Which module file builds maptarget for a target's Go version (go.mod needs Go 1.26)."""

from __future__ import annotations

import re

import pytest

from orchestrator.targets.build import GO_TARGETS_DIR, LEGACY_MODFILE, _modfile_args


@pytest.mark.parametrize(("go", "args"), [(None, []), ("1.26", []), ("1.27", []), ("1.23", ["-modfile=go1.23.mod"])])
def test_older_toolchains_build_against_the_pinned_module_file(go: str | None, args: list[str]) -> None:
    assert _modfile_args(go) == args


def test_the_module_files_say_which_go_they_need() -> None:
    main = (GO_TARGETS_DIR / "go.mod").read_text()
    legacy = (GO_TARGETS_DIR / LEGACY_MODFILE).read_text()
    assert re.search(r"^go 1\.26(\.\d+)?$", main, re.M)
    assert re.search(r"^go 1\.23(\.\d+)?$", legacy, re.M)
    # Same module path: the sources import their own packages by it.
    assert main.splitlines()[0] == legacy.splitlines()[0]
    assert (GO_TARGETS_DIR / LEGACY_MODFILE.replace(".mod", ".sum")).is_file()
