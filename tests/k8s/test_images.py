"""The container images of the test cluster (cluster.images): valid docker-save tarballs, cached
by their inputs, a pause that behaves like Kubernetes' pause, a static maptarget."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster import images, rootfs
from cluster.dockersave import (
    Entry,
    ImageConfig,
    ImageWriteError,
    inspect_image,
    layer_from_directory,
    layer_from_entries,
    write_image,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (unshare --pid, containerd)")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def read_docker_save(path: Path) -> tuple[dict[str, object], dict[str, object], dict[str, bytes]]:
    """manifest entry, config and blobs of a docker-save tarball, read without cluster code."""
    with tarfile.open(path) as tar:
        blobs = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    (manifest,) = json.loads(blobs["manifest.json"])
    config = json.loads(blobs[manifest["Config"]])
    return manifest, config, blobs


def layer_file(tar_path: Path, name: str) -> tarfile.TarInfo | bytes:
    """A file's bytes (or a directory's TarInfo) from the only layer of an image tarball."""
    manifest, _, blobs = read_docker_save(tar_path)
    (layer_name,) = manifest["Layers"]  # type: ignore[misc]
    with tarfile.open(fileobj=io.BytesIO(blobs[layer_name])) as layer:
        member = layer.getmember(name)
        if member.isdir():
            return member
        f = layer.extractfile(member)
        assert f is not None
        return f.read()


def program_header_types(elf: bytes) -> set[int]:
    """p_type of every program header of a 64-bit little-endian ELF file."""
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1, "not a 64-bit little-endian ELF"
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    phentsize = int.from_bytes(elf[0x36:0x38], "little")
    phnum = int.from_bytes(elf[0x38:0x3A], "little")
    return {int.from_bytes(elf[phoff + i * phentsize : phoff + i * phentsize + 4], "little") for i in range(phnum)}


PT_DYNAMIC, PT_INTERP, PT_LOAD = 2, 3, 1


# --- the tarball writer (pure) ----------------------------------------------------------------


def test_written_image_is_docker_save_with_matching_digests(tmp_path: Path) -> None:
    layer = layer_from_entries(
        [Entry("bin/hello", b"#!/bin/sh\necho hi\n", 0o755), Entry("tmp", None, 0o1777)], tmp_path / "layer.tar"
    )
    config = ImageConfig(entrypoint=["/bin/hello"], env=["PATH=/bin", "A=b"], working_dir="/work")
    out = write_image(tmp_path / "img.tar", "mapquake.local/hello:abc", [layer], config)

    manifest, image_config, blobs = read_docker_save(out)
    assert manifest["RepoTags"] == ["mapquake.local/hello:abc"]
    config_name = manifest["Config"]
    assert isinstance(config_name, str)
    assert config_name == "blobs/sha256/" + hashlib.sha256(blobs[config_name]).hexdigest()
    layers = manifest["Layers"]
    assert isinstance(layers, list) and len(layers) == 1
    assert layers[0] == "blobs/sha256/" + hashlib.sha256(blobs[layers[0]]).hexdigest()
    assert image_config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + layers[0].rsplit("/", 1)[1]]}
    assert (image_config["os"], image_config["architecture"]) == ("linux", "amd64")
    assert image_config["config"] == {"Entrypoint": ["/bin/hello"], "Env": ["PATH=/bin", "A=b"], "WorkingDir": "/work"}
    assert inspect_image(out).layer_digests == (layer.digest,)
    tmp_dir = layer_file(out, "tmp")
    assert isinstance(tmp_dir, tarfile.TarInfo) and tmp_dir.mode == 0o1777


def test_same_layer_contents_give_the_same_digest(tmp_path: Path) -> None:
    entries = [Entry("a", b"1"), Entry("d", None)]
    assert (
        layer_from_entries(entries, tmp_path / "1.tar").digest
        == layer_from_entries(entries[::-1], tmp_path / "2.tar").digest
    )


def test_inspect_image_rejects_a_tampered_layer(tmp_path: Path) -> None:
    layer = layer_from_entries([Entry("f", b"x" * 100)], tmp_path / "layer.tar")
    good = write_image(tmp_path / "img.tar", "mapquake.local/x:1", [layer], ImageConfig())
    manifest, _, blobs = read_docker_save(good)
    layer_name = manifest["Layers"][0]  # type: ignore[index]
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for name, data in blobs.items():
            if name == layer_name:
                data = data.replace(b"x" * 100, b"y" * 100)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ImageWriteError, match="does not match its digest"):
        inspect_image(bad)


def test_write_image_refuses_a_reference_without_tag(tmp_path: Path) -> None:
    layer = layer_from_entries([Entry("f", b"")], tmp_path / "layer.tar")
    with pytest.raises(ImageWriteError, match="no tag"):
        write_image(tmp_path / "img.tar", "mapquake.local:5000/x", [layer], ImageConfig())
    assert not list(tmp_path.glob("*img.tar*")), "no half-written tarball left behind"


def test_directory_layer_keeps_links_modes_and_owners(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"tool")
    if os.geteuid() == 0:
        os.chown(root / "usr/bin/tool", 123, 456)
    (root / "usr/bin/tool").chmod(0o4755)  # after chown, which clears set-uid
    os.link(root / "usr/bin/tool", root / "usr/bin/tool2")
    (root / "bin").symlink_to("usr/bin")
    layer = layer_from_directory(root, tmp_path / "layer.tar")
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/tool"].mode == 0o4755
    assert members["usr/bin/tool2"].islnk() and members["usr/bin/tool2"].linkname == "usr/bin/tool"
    if os.geteuid() == 0:
        assert (members["usr/bin/tool"].uid, members["usr/bin/tool"].gid) == (123, 456)
    assert not any(name.startswith(("/", "./")) for name in members)


# --- building and caching ---------------------------------------------------------------------


def fake_repo(tmp_path: Path) -> Path:
    """A repo with just what the pause image is made from (fast to build, safe to edit)."""
    repo = tmp_path / "repo"
    for rel in ("cluster/images.py", "cluster/dockersave.py", "cluster/pause/pause.c"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(images.REPO / rel, repo / rel)
    return repo


def test_unchanged_inputs_return_the_cached_tarball_and_changed_ones_rebuild(tmp_path: Path) -> None:
    repo, out = fake_repo(tmp_path), tmp_path / "out"
    first = images.build_one("pause", out, repo)
    again = images.build_one("pause", out, repo)
    assert not first.cached and again.cached
    assert again.tar == first.tar and again.tar.stat().st_mtime_ns == first.tar.stat().st_mtime_ns

    with (repo / "cluster/pause/pause.c").open("a") as f:
        f.write("/* changed */\n")
    changed = images.build_one("pause", out, repo)
    assert not changed.cached and changed.tar != first.tar
    assert changed.ref == first.ref == "mapquake.local/pause:3.10"
    assert not list(out.glob(".build-*")), "work directories are removed"

    with (repo / "cluster/pause/pause.c").open("a") as f:
        f.write("/* changed again */\n")
    third = images.build_one("pause", out, repo)
    assert sorted(out.glob("pause-*.tar")) == sorted([changed.tar, third.tar]), "only the 2 newest are kept"


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    repo = fake_repo(tmp_path)
    (repo / "cluster/pause/pause.c").unlink()
    with pytest.raises(images.ImageBuildError, match=r"cannot read input .*cluster/pause/pause\.c"):
        images.build_one("pause", tmp_path / "out", repo)


def test_cli_prints_refs_and_tarballs_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert images.main(["build", "--out", str(tmp_path), "--only", "pause"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"pause": {"ref": "mapquake.local/pause:3.10", "tar": printed["pause"]["tar"]}}
    assert Path(printed["pause"]["tar"]).parent == tmp_path
    assert inspect_image(Path(printed["pause"]["tar"])).ref == "mapquake.local/pause:3.10"


def test_cli_says_which_tool_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert images.main(["build", "--out", str(tmp_path), "--only", "pause"]) == 1
    err = capsys.readouterr().err
    assert "error: gcc is not installed" in err and "Traceback" not in err


def test_cli_rejects_an_unknown_image(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        images.main(["build", "--only", "nginx"])
    assert exc.value.code == 2
    assert "invalid choice: 'nginx'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, images.BuiltImage]:
    return images.build(["pause", "maptarget"], tmp_path_factory.mktemp("images"))


def test_maptarget_image_holds_a_static_binary_as_entrypoint(
    small_images: dict[str, images.BuiltImage], tmp_path: Path
) -> None:
    built = small_images["maptarget"]
    assert built.ref.startswith("mapquake.local/maptarget:") and len(built.ref.rsplit(":", 1)[1]) == 12
    summary = inspect_image(built.tar)
    assert summary.ref == built.ref
    assert summary.config["config"]["Entrypoint"] == ["/maptarget"]  # type: ignore[index]
    binary = layer_file(built.tar, "maptarget")
    assert isinstance(binary, bytes)
    types = program_header_types(binary)
    assert PT_LOAD in types and PT_INTERP not in types and PT_DYNAMIC not in types, "maptarget is not static"
    tmp_dir = layer_file(built.tar, "tmp")
    assert isinstance(tmp_dir, tarfile.TarInfo) and tmp_dir.mode == 0o1777

    (tmp_path / "maptarget").write_bytes(binary)
    (tmp_path / "maptarget").chmod(0o755)
    version = subprocess.run([tmp_path / "maptarget", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("maptarget ")


@pytest.fixture
def pause_binary(small_images: dict[str, images.BuiltImage], tmp_path: Path) -> Path:
    summary = inspect_image(small_images["pause"].tar)
    assert summary.ref == "mapquake.local/pause:3.10"
    assert summary.config["config"]["Entrypoint"] == ["/pause"]  # type: ignore[index]
    binary = layer_file(small_images["pause"].tar, "pause")
    assert isinstance(binary, bytes)
    types = program_header_types(binary)
    assert PT_INTERP not in types and PT_DYNAMIC not in types, "pause is not static"
    path = tmp_path / "pause"
    path.write_bytes(binary)
    path.chmod(0o755)
    return path


def catches(pid: int, signo: int) -> bool:
    """Whether process `pid` has installed a handler for `signo` (SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signo - 1) & 1)
    return False


@pytest.mark.integration
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_pause_exits_0_on_sigterm_and_sigint(pause_binary: Path, signo: int) -> None:
    proc = subprocess.Popen([pause_binary], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: catches(proc.pid, signo), "pause to install its signal handlers")
        assert proc.poll() is None, "pause sleeps until signalled"
        proc.send_signal(signo)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append((int(stat.parent.name), fields[0]))
    return found


@pytest.fixture
def pause_as_pid1(pause_binary: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """pause as pid 1 of a new pid namespace (as in a pod): (the unshare process, pause's pid)."""
    unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", pause_binary], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: bool(children_of(unshare.pid)), "unshare to start pause")
        pause_pid = children_of(unshare.pid)[0][0]
        wait_for(lambda: catches(pause_pid, signal.SIGCHLD), "pause to install its SIGCHLD handler")
        yield unshare, pause_pid
    finally:
        if unshare.poll() is None:
            unshare.kill()  # --kill-child: pause (and its pid namespace) die with it
            unshare.wait()


@needs_root
@pytest.mark.integration
def test_pause_as_pid1_reaps_orphans_and_exits_0_on_sigterm(
    pause_as_pid1: tuple[subprocess.Popen[bytes], int],
) -> None:
    unshare, pause_pid = pause_as_pid1
    # A shell in pause's pid namespace starts `sleep 1` and exits: the sleep is orphaned and
    # reparented to pause; when it exits, only pause can reap it (else it stays a zombie).
    subprocess.run(["nsenter", f"--target={pause_pid}", "--pid", "--", "sh", "-c", "sleep 1 &"], check=True)
    wait_for(lambda: bool(children_of(pause_pid)), "the orphaned sleep to be reparented to pause")
    wait_for(lambda: not children_of(pause_pid), "pause to reap the orphan (no zombie left)")
    os.kill(pause_pid, signal.SIGTERM)
    assert unshare.wait(timeout=10) == 0


def mounts_under(path: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


@needs_root
def test_a_failing_chroot_step_leaves_no_mounts(tmp_path: Path) -> None:
    # /proc and the bind mount are made, then the command fails (this root has no /usr/bin/env):
    # the private mount namespace must take both mounts with it.
    root, wheels = tmp_path / "root", tmp_path / "wheels"
    (root / "proc").mkdir(parents=True)
    wheels.mkdir()
    with pytest.raises(rootfs.RootfsError, match="broken step failed"):
        rootfs.chroot(root, ["true"], "broken step", binds=[(wheels, "/tmp/wheelhouse")])
    assert (root / "tmp/wheelhouse").is_dir(), "the bind mount was set up before the failure"
    assert mounts_under(root) == []
    assert not any((root / "proc").iterdir()), "proc is not mounted in the host's namespace"


# --- optional: the tarballs load into a containerd of our own --------------------------------


@pytest.fixture
def own_containerd() -> Iterator[Path]:
    """A throwaway containerd (CRI plugin off) on its own socket, root and state dirs; its socket."""
    if os.geteuid() != 0 or not (shutil.which("containerd") and shutil.which("ctr")):
        pytest.skip("needs root, containerd and ctr")
    base = Path(tempfile.mkdtemp(prefix="mq-ctrd-", dir="/tmp"))  # short: unix socket paths are limited
    sock = base / "containerd.sock"
    (base / "config.toml").write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
    )
    with (base / "containerd.log").open("wb") as log:
        proc = subprocess.Popen(["containerd", "--config", str(base / "config.toml")], stdout=log, stderr=log)
    try:
        wait_for(lambda: sock.is_socket() or proc.poll() is not None, "containerd's socket")
        assert proc.poll() is None, (base / "containerd.log").read_text()[-2000:]
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for mount in sorted(mounts_under(base), reverse=True):  # snapshots `ctr run` left, if any
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(base)


@pytest.mark.integration
def test_ctr_imports_the_tarballs_and_runs_maptarget(
    own_containerd: Path, small_images: dict[str, images.BuiltImage]
) -> None:
    ctr = ["ctr", "--address", str(own_containerd), "--namespace", "mapquake-test"]
    for built in small_images.values():
        subprocess.run([*ctr, "images", "import", str(built.tar)], check=True, capture_output=True)
    listed = subprocess.run([*ctr, "images", "ls", "-q"], check=True, capture_output=True, text=True).stdout.split()
    assert sorted(listed) == sorted(b.ref for b in small_images.values())
    ran = subprocess.run(
        [*ctr, "run", "--rm", small_images["maptarget"].ref, "mq-version", "/maptarget", "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert ran.stdout.startswith("maptarget ")


# --- the full mapquake image: ~70 s when not cached; the Kubernetes run tests reuse the build ------


@pytest.mark.slow
def test_mapquake_image_has_the_venv_on_path() -> None:
    built = images.build(["mapquake"])["mapquake"]
    summary = inspect_image(built.tar)
    env = summary.config["config"]["Env"]  # type: ignore[index]
    assert "PATH=/opt/mapquake/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in env
    assert summary.config["config"]["WorkingDir"] == "/"  # type: ignore[index]
