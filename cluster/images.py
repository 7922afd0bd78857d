"""Build mapquake's container images as docker-save tarballs, without a Docker engine.

    python -m cluster.images build [--out DIR] [--only NAME ...]

prints {"pause": {"ref": "mapquake.local/pause:3.10", "tar": "DIR/pause-<tag>.tar"}, ...} on
stdout (progress goes to stderr). Load one with `ctr -n k8s.io images import TAR` and run it with
`imagePullPolicy: Never`. From Python: `build(["maptarget"], Path(out))` → {name: BuiltImage}.

Images (images/*.Dockerfile install the same things for clusters that have a registry):
- pause      static C pause (cluster/pause/pause.c); ref fixed to mapquake.local/pause:3.10, the
             name containerd's sandbox_image gives it.
- maptarget  static Go maptarget (CGO_ENABLED=0), entrypoint /maptarget, plus an empty /tmp.
- prometheus upstream Prometheus (cluster/build-monitoring.sh; Debian's lacks Kubernetes discovery),
             entrypoint /bin/prometheus: the "existing" server of the prometheus.existing tests.
- config-reloader  the Prometheus Operator's config reloader, at /bin/prometheus-config-reloader
             where the operator's pods run it (ServiceMonitor tests).
- mapquake   Debian bookworm root fs (mmdebstrap) + /opt/mapquake venv holding this repo and its
             dependencies, nftables, iproute2, util-linux, prometheus (see cluster/rootfs.py).

Caching: each image's key is the sha256 of its inputs (source files, builder code, tool versions);
its tag (except pause's) is the key's first 12 hex digits and its tarball is DIR/<name>-<key12>.tar.
If that file exists it is returned at once; the two newest tarballs of each image are kept, older
ones deleted after a build. Not in the key: PyPI releases (mapquake's dependencies
are ranges, resolved at build time) and Debian archive updates; delete the tar to pick those up.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster import rootfs
from cluster.dockersave import (
    DEFAULT_PATH,
    Entry,
    ImageConfig,
    ImageWriteError,
    Layer,
    layer_from_directory,
    layer_from_entries,
    write_image,
)

REPO = Path(__file__).resolve().parent.parent
REGISTRY = "mapquake.local"
DEFAULT_OUT = Path.home() / ".cache" / "mapquake" / "images"
PAUSE_REF = f"{REGISTRY}/pause:3.10"
TAG_LENGTH = 12
KEEP_PER_IMAGE = 2
# The builder's own code is an input of every image: changing how an image is made changes its tag.
_BUILDER_FILES = ("cluster/images.py", "cluster/dockersave.py")


class ImageBuildError(Exception):
    """An image could not be built; the message says which step failed and how to fix it."""


@dataclass(frozen=True)
class BuiltImage:
    name: str
    ref: str  # "mapquake.local/<name>:<tag>"
    tar: Path  # docker-save tarball
    cached: bool  # True: the tarball was already there for these inputs

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref, "tar": str(self.tar)}


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a build command; on failure raise ImageBuildError with the command and its output's tail."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{cmd[0]} not found: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ImageBuildError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}")
    return proc.stdout


def require_tool(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ImageBuildError(f"{tool} is not installed; {hint}")
    return path


# --- inputs and keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What an image is made from: repo files (relative paths) and tool/version strings."""

    files: tuple[str, ...]
    facts: tuple[str, ...]

    def key(self, repo: Path) -> str:
        h = hashlib.sha256()
        for rel in sorted(set(self.files)):
            try:
                data = (repo / rel).read_bytes()
            except OSError as exc:
                msg = f"cannot read input {repo / rel}: {exc.strerror}; is {repo} a mapquake checkout?"
                raise ImageBuildError(msg) from exc
            h.update(rel.encode() + b"\0")
            h.update(hashlib.sha256(data).digest())
        for fact in self.facts:
            h.update(b"\1" + fact.encode())
        return h.hexdigest()


def tree_files(repo: Path, top: str, keep: Callable[[Path], bool]) -> list[str]:
    """Files under repo/top that `keep` accepts, as repo-relative paths, caches left out."""
    found = []
    for path in (repo / top).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and keep(path):
            found.append(path.relative_to(repo).as_posix())
    if not found:
        raise ImageBuildError(f"no source files under {repo / top}: is {repo} a mapquake checkout?")
    return found


def _go_source(path: Path) -> bool:
    # Test files and the Go 1.23 mod files do not go into the binary.
    return (path.suffix == ".go" and not path.name.endswith("_test.go")) or path.name in ("go.mod", "go.sum")


def _python_source(path: Path) -> bool:
    return path.suffix != ".pyc"


# --- recipes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    ref: Callable[[str], str]  # tag -> reference
    inputs: Callable[[Path], Inputs]
    build: Callable[[Path, Path], tuple[list[Layer], ImageConfig]]  # (repo, work dir) -> image


def _pause_inputs(repo: Path) -> Inputs:
    gcc = require_tool("gcc", "apt-get install gcc (Makefile APT_PACKAGES)")
    return Inputs(files=(*_BUILDER_FILES, "cluster/pause/pause.c"), facts=(run([gcc, "--version"]).splitlines()[0],))


def _build_pause(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    binary = work / "pause"
    flags = ["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror"]
    run(["gcc", *flags, "-o", str(binary), "cluster/pause/pause.c"], cwd=repo)
    layer = layer_from_entries([Entry("pause", binary.read_bytes(), 0o755)], work / "layer.tar")
    return [layer], ImageConfig(entrypoint=["/pause"])


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0"}


def _maptarget_inputs(repo: Path) -> Inputs:
    go = require_tool("go", "Go 1.26 must be on PATH (https://go.dev/doc/install)")
    go_version = run([go, "env", "GOVERSION"], cwd=repo / "go_targets", env=_go_env()).strip()
    files = tree_files(repo, "go_targets", _go_source) + tree_files(repo, "mapprobe", _go_source)
    return Inputs(files=(*_BUILDER_FILES, *files), facts=(go_version, "CGO_ENABLED=0 -trimpath -s -w"))


def _build_maptarget(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    binary = work / "maptarget"
    cmd = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "./cmd/maptarget"]
    run(cmd, cwd=repo / "go_targets", env=_go_env())
    entries = [Entry("maptarget", binary.read_bytes(), 0o755), Entry("tmp", None, 0o1777)]
    layer = layer_from_entries(entries, work / "layer.tar")
    return [layer], ImageConfig(entrypoint=["/maptarget"], env=[f"PATH={DEFAULT_PATH}"])


def _inventory_inputs(repo: Path) -> Inputs:
    """The example service (examples/inventory): a user's own service, as its image would hold it."""
    go = require_tool("go", "Go 1.26 must be on PATH (https://go.dev/doc/install)")
    go_version = run([go, "env", "GOVERSION"], cwd=repo / "examples" / "inventory", env=_go_env()).strip()
    files = tree_files(repo, "examples/inventory", _go_source) + tree_files(repo, "mapprobe", _go_source)
    return Inputs(files=(*_BUILDER_FILES, *files), facts=(go_version, "CGO_ENABLED=0 -trimpath -s -w"))


def _build_inventory(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    binary = work / "inventory"
    cmd = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."]
    run(cmd, cwd=repo / "examples" / "inventory", env=_go_env())
    entries = [Entry("inventory", binary.read_bytes(), 0o755), Entry("tmp", None, 0o1777)]
    layer = layer_from_entries(entries, work / "layer.tar")
    return [layer], ImageConfig(entrypoint=["/inventory"], env=[f"PATH={DEFAULT_PATH}"])


def _mapquake_inputs(repo: Path) -> Inputs:
    try:
        facts = (rootfs.mmdebstrap_version(), *rootfs.PACKAGES, rootfs.SUITE)
    except rootfs.RootfsError as exc:
        raise ImageBuildError(str(exc)) from exc
    files = [
        *_BUILDER_FILES,
        "cluster/rootfs.py",
        *rootfs.WHEEL_SOURCES,
        *(f for top in rootfs.PACKAGE_DIRS for f in tree_files(repo, top, _python_source)),
    ]
    return Inputs(files=tuple(files), facts=facts)


def _build_mapquake(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    root = work / "rootfs"
    rootfs.build_mapquake_rootfs(repo, root, work / "wheelhouse", log=log)
    started = time.monotonic()
    layer = layer_from_directory(root, work / "layer.tar")
    log(f"mapquake: layer tar {layer.size / 1e6:.0f} MB in {time.monotonic() - started:.0f} s")
    config = ImageConfig(
        cmd=[f"{rootfs.VENV}/bin/mapquake", "--help"],
        env=[f"PATH={rootfs.VENV}/bin:{DEFAULT_PATH}", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"],
        working_dir="/",
    )
    return [layer], config


MONITORING_SCRIPT = "cluster/build-monitoring.sh"


def monitoring_binaries(repo: Path) -> Path:
    """Upstream Prometheus, the Prometheus Operator, its reloader and CRDs (built once, then cached)."""
    return Path(run([str(repo / MONITORING_SCRIPT)], cwd=repo, env=_go_env()).strip().splitlines()[-1])


def _monitoring_inputs(repo: Path) -> Inputs:
    """A user's monitoring stack, for the tests of prometheus.existing (cluster/build-monitoring.sh)."""
    go = require_tool("go", "Go 1.26 must be on PATH (https://go.dev/doc/install)")
    go_version = run([go, "env", "GOVERSION"], cwd=repo, env=_go_env()).strip()
    return Inputs(files=(*_BUILDER_FILES, MONITORING_SCRIPT), facts=(go_version,))


def _build_prometheus(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    binary = monitoring_binaries(repo) / "prometheus"
    entries = [Entry("bin", None, 0o755), Entry("bin/prometheus", binary.read_bytes(), 0o755)]
    # The data directory is writable by anyone: the operator runs Prometheus as uid 1000.
    layer = layer_from_entries(
        [*entries, Entry("prometheus", None, 0o1777), Entry("tmp", None, 0o1777)], work / "l.tar"
    )
    return [layer], ImageConfig(entrypoint=["/bin/prometheus"], env=[f"PATH={DEFAULT_PATH}"])


def _build_config_reloader(repo: Path, work: Path) -> tuple[list[Layer], ImageConfig]:
    binary = monitoring_binaries(repo) / "prometheus-config-reloader"
    # The operator runs it as /bin/prometheus-config-reloader (its generated pods name the command).
    entries = [Entry("bin", None, 0o755), Entry("bin/prometheus-config-reloader", binary.read_bytes(), 0o755)]
    layer = layer_from_entries([*entries, Entry("tmp", None, 0o1777)], work / "layer.tar")
    return [layer], ImageConfig(entrypoint=["/bin/prometheus-config-reloader"], env=[f"PATH={DEFAULT_PATH}"])


RECIPES: dict[str, Recipe] = {
    "pause": Recipe(ref=lambda _tag: PAUSE_REF, inputs=_pause_inputs, build=_build_pause),
    "maptarget": Recipe(
        ref=lambda tag: f"{REGISTRY}/maptarget:{tag}", inputs=_maptarget_inputs, build=_build_maptarget
    ),
    "mapquake": Recipe(ref=lambda tag: f"{REGISTRY}/mapquake:{tag}", inputs=_mapquake_inputs, build=_build_mapquake),
    "inventory": Recipe(
        ref=lambda tag: f"{REGISTRY}/inventory:{tag}", inputs=_inventory_inputs, build=_build_inventory
    ),
    "prometheus": Recipe(
        ref=lambda tag: f"{REGISTRY}/prometheus:{tag}", inputs=_monitoring_inputs, build=_build_prometheus
    ),
    "config-reloader": Recipe(
        ref=lambda tag: f"{REGISTRY}/prometheus-config-reloader:{tag}",
        inputs=_monitoring_inputs,
        build=_build_config_reloader,
    ),
}
IMAGE_NAMES = tuple(RECIPES)


# --- building ---------------------------------------------------------------------------------


@contextmanager
def _lock(out: Path, name: str) -> Iterator[None]:
    """One builder per image and output dir at a time (tests and the cluster harness may race)."""
    with (out / f".{name}.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_work_dir(work: Path) -> None:
    # Never recurse into a directory something is still mounted under (a bind-mounted /dev would
    # be emptied); rootfs builds mount only inside private mount namespaces, so this is a guard.
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    inside = [m for m in mounted if m == str(work) or m.startswith(f"{work}/")]
    if inside:
        raise ImageBuildError(f"not removing {work}: still mounted there: {', '.join(inside)} (umount them)")
    shutil.rmtree(work)


def build_one(name: str, out: Path, repo: Path = REPO) -> BuiltImage:
    """Build image `name` into `out` (or return the cached tarball for the same inputs)."""
    if name not in RECIPES:
        raise ImageBuildError(f"unknown image {name!r}; known: {', '.join(IMAGE_NAMES)}")
    recipe = RECIPES[name]
    out.mkdir(parents=True, exist_ok=True)
    key = recipe.inputs(repo).key(repo)
    tag = key[:TAG_LENGTH]
    tar = out / f"{name}-{tag}.tar"
    ref = recipe.ref(tag)
    with _lock(out, name):
        if tar.exists():
            return BuiltImage(name=name, ref=ref, tar=tar, cached=True)
        started = time.monotonic()
        log(f"{name}: building {ref}")
        work = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=out))
        try:
            layers, config = recipe.build(repo, work)
            written = time.monotonic()
            write_image(tar, ref, layers, config)
            log(f"{name}: image tarball written in {time.monotonic() - written:.1f} s")
        except (ImageWriteError, rootfs.RootfsError) as exc:
            raise ImageBuildError(f"{name}: {exc}") from exc
        finally:
            _remove_work_dir(work)
        log(f"{name}: {tar} ({tar.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s")
        _prune_older(out, name)
    return BuiltImage(name=name, ref=ref, tar=tar, cached=False)


def _prune_older(out: Path, name: str) -> None:
    """Keep the KEEP_PER_IMAGE newest tarballs of an image (a mapquake tarball is ~730 MB); more
    than one, so two checkouts sharing the default --out do not rebuild each other's away."""
    tars = sorted(out.glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[KEEP_PER_IMAGE:]:
        log(f"{name}: removing older {old.name}")
        old.unlink(missing_ok=True)


def build(names: Sequence[str] | None = None, out: Path = DEFAULT_OUT, repo: Path = REPO) -> dict[str, BuiltImage]:
    """Build the named images (all when None) into `out`; {name: BuiltImage}, in IMAGE_NAMES order."""
    wanted = list(IMAGE_NAMES) if not names else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in RECIPES]
    if unknown:
        raise ImageBuildError(f"unknown image(s) {', '.join(unknown)}; known: {', '.join(IMAGE_NAMES)}")
    return {name: build_one(name, out, repo) for name in wanted}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build images (cached by content) and print {name: {ref, tar}} as JSON")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the tarballs (default {DEFAULT_OUT})")
    b.add_argument("--only", nargs="+", choices=IMAGE_NAMES, metavar="NAME", help=f"some of: {' '.join(IMAGE_NAMES)}")
    args = parser.parse_args(argv)
    try:
        images = build(args.only, args.out.resolve())
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({name: image.to_json() for name, image in images.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
