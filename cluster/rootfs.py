"""The mapquake image's root filesystem: Debian bookworm (mmdebstrap) plus a venv with this repo.

Steps (build_mapquake_rootfs), each timed on stderr:
1. mmdebstrap --variant=apt --include=PACKAGES bookworm ROOT  (recommends off, docs/man/locales
   left out through dpkg path-excludes; copyright files kept).
2. On the host: a wheel of this repo (`pip wheel --no-deps` of a copy of its Python sources, so
   the checkout gets no build/ or *.egg-info), then wheels of all its dependencies (`pip wheel`,
   served from pip's cache after the first build).
3. In a chroot: `python3 -m venv /opt/mapquake` and `pip install --no-index` from that wheelhouse.
4. Test suites bundled in wheels removed, then in a chroot the checks the image must pass
   (locust, mapquake's packages and its heavy dependencies import; Prometheus, nft, ip, nsenter run).
5. Caches, apt lists and the host's resolv.conf removed.

images/mapquake.Dockerfile installs the same things for clusters with a registry (keep the two in
step). Every chroot command runs in a private mount namespace (`unshare --mount`): /proc and the
wheelhouse are mounted only there, so the kernel drops those mounts when the command ends, whether
it succeeded, failed or was killed; nothing is ever mounted in the host's namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SUITE = "bookworm"
# python3-venv: the venv; nftables, iproute2, util-linux (nsenter): the chaos agent;
# prometheus: per-run Prometheus on the test cluster (a registry cluster uses prom/prometheus).
PACKAGES = (
    "python3", "python3-venv", "ca-certificates", "nftables", "python3-nftables", "iproute2", "util-linux",
    "prometheus",
)  # fmt: skip
VENV = "/opt/mapquake"
# What the wheel is built from (pyproject's readme is README.md; packages.find includes these).
WHEEL_SOURCES = ("pyproject.toml", "README.md")
PACKAGE_DIRS = ("orchestrator", "chaos", "workloads")
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    # 210 MB of old time-zone databases that Prometheus' classic web UI pulls in (libjs-moment-
    # timezone); mapquake only uses Prometheus' HTTP API.
    "/usr/share/javascript/moment-timezone/data/*",
    # 48 MB; mapquake never checks rule files inside the image.
    "/usr/bin/promtool",
)
_CHROOT_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8")
# Removed from the finished tree (relative to ROOT): apt's downloaded lists and caches, logs of the
# build, pip's cache.
_REMOVE_AFTER = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/config.dat-old",
    "var/log/apt",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "root/.cache",
)
_CHECKS = f"""
set -eu
{VENV}/bin/python -m locust --version
{VENV}/bin/python -c "import orchestrator, chaos, workloads; print('mapquake', orchestrator.__version__)"
{VENV}/bin/mapquake --help >/dev/null
{VENV}/bin/python -c "import kubernetes.client, scipy.stats, matplotlib.pyplot, grpc, gevent"
# (no pipes: dash has no pipefail, so `prometheus --version | head` would hide a failure)
version=$(/usr/bin/prometheus --version 2>&1)
echo "$version" | head -n 1
nft --version
nsenter --version
ip -V
"""


class RootfsError(Exception):
    """A step of the root filesystem build failed; the message names the step and its output."""


Log = Callable[[str], None]


def _run(cmd: Sequence[str], step: str, *, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise RootfsError(f"{step}: {cmd[0]} not found ({exc})") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise RootfsError(f"{step} failed (exit {proc.returncode}): `{' '.join(cmd)}`\n{tail}")
    return proc.stdout


def mmdebstrap_version() -> str:
    if shutil.which("mmdebstrap") is None:
        raise RootfsError("mmdebstrap is not installed: apt-get install mmdebstrap (Makefile APT_PACKAGES)")
    return _run(["mmdebstrap", "--version"], "mmdebstrap --version").strip()


def bootstrap(root: Path) -> None:
    """Debian SUITE with PACKAGES into the (absent or empty) directory `root`."""
    if os.geteuid() != 0:
        raise RootfsError("building the mapquake image needs root (mmdebstrap --mode=root, chroot)")
    cmd = [
        # mmdebstrap mounts /proc, /sys, /dev in ROOT while it runs; in a private mount namespace
        # those mounts die with it even if it is killed.
        "unshare", "--mount", "--propagation", "private",
        "mmdebstrap", "--mode=root", "--variant=apt", f"--include={','.join(PACKAGES)}",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--aptopt=Acquire::Languages \"none\"",
        # Merged /usr made by symlinks (as debootstrap does) instead of the usrmerge package,
        # which would pull in the whole of perl (~50 MB).
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        SUITE, str(root),
    ]  # fmt: skip
    _run(cmd, "mmdebstrap")


def build_wheelhouse(repo: Path, wheelhouse: Path, python: str = sys.executable) -> Path:
    """Wheels of this repo and all its dependencies in `wheelhouse`; returns mapquake's wheel."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mapquake-src-") as tmp:
        src = Path(tmp)
        for rel in WHEEL_SOURCES:
            shutil.copy2(repo / rel, src / rel)
        for top in PACKAGE_DIRS:
            shutil.copytree(repo / top, src / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _run([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), str(src)], "pip wheel (mapquake)")
    (wheel,) = wheelhouse.glob("mapquake-*.whl")
    _run([python, "-m", "pip", "wheel", "-q", "-w", str(wheelhouse), str(wheel)], "pip wheel (dependencies)")
    return wheel


def chroot(root: Path, argv: Sequence[str], step: str, binds: Sequence[tuple[Path, str]] = ()) -> str:
    """Run argv in `root` with /proc mounted and `binds` (host dir, path in root) bound read-only,
    all in a private mount namespace that ends with the command. The environment is a clean one
    (the host's PIP_* settings must not leak into the image's pip)."""
    mounts = ['mount -t proc proc "$R/proc"']
    for host_dir, inner in binds:
        mounts.append(f'mkdir -p "$R{inner}" && mount --bind -o ro "{host_dir}" "$R{inner}"')
    script = " && ".join([*mounts, 'exec chroot "$R" /usr/bin/env -i "$@"'])
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-euc", f'R="$1"; shift; {script}', "sh"]
    return _run([*cmd, str(root), *_CHROOT_ENV, *argv], step)


def install_venv(root: Path, wheelhouse: Path, wheel: Path) -> None:
    inner = "/tmp/wheelhouse"
    chroot(root, ["python3", "-m", "venv", VENV], "python3 -m venv")
    pip = [f"{VENV}/bin/pip", "install", "-q", "--no-cache-dir", "--no-index", "--find-links", inner]
    try:
        chroot(root, [*pip, f"{inner}/{wheel.name}"], "pip install mapquake", binds=[(wheelhouse, inner)])
    finally:
        (root / inner.lstrip("/")).rmdir()  # the empty mount point


def check(root: Path) -> str:
    return chroot(root, ["sh", "-c", _CHECKS], "image checks")


def prune_site_packages(root: Path) -> None:
    """Delete the test suites that wheels ship inside their packages (numpy/…/tests, scipy/…/tests,
    gevent/tests: ~60 MB); the checks that follow import what mapquake uses."""
    site = root / VENV.lstrip("/") / "lib"
    for tests in sorted(site.glob("python3*/site-packages/*/**/tests"), reverse=True):
        if tests.is_dir() and not tests.is_symlink():
            shutil.rmtree(tests)


def clean(root: Path) -> None:
    for rel in _REMOVE_AFTER:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            path.mkdir()  # apt expects these directories to exist
        else:
            path.unlink(missing_ok=True)
    # The host's resolver was copied in for mmdebstrap; the container runtime mounts the pod's own.
    (root / "etc/resolv.conf").write_text("")


@contextmanager
def _timed(log: Log, step: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    log(f"mapquake: {step} {time.monotonic() - started:.1f} s")


def build_mapquake_rootfs(repo: Path, root: Path, wheelhouse: Path, log: Log) -> None:
    """Steps 1–5 of the module docstring; `root` must not exist yet or be empty."""
    with _timed(log, "mmdebstrap"):
        bootstrap(root)
    with _timed(log, "wheels"):
        wheel = build_wheelhouse(repo, wheelhouse)
    with _timed(log, "venv + pip install"):
        install_venv(root, wheelhouse, wheel)
    with _timed(log, "prune tests"):
        prune_site_packages(root)
    with _timed(log, "checks"):
        log("mapquake: " + check(root).strip().replace("\n", "; "))
    clean(root)  # after the checks: they may write caches (matplotlib's font cache in /root/.cache)
