"""Write container images as `docker save` tarballs, without a Docker engine.

The test cluster cannot pull images, so `cluster.images` builds them here and they are loaded with
`ctr -n k8s.io images import IMAGE.tar` (or `docker load -i`). The format written is the one
`docker save` has produced since Docker 25, minus the OCI index:

    manifest.json                 [{"Config": "blobs/sha256/<c>", "RepoTags": [ref], "Layers": [...]}]
    blobs/sha256/<c>              the image config (entrypoint, env, working dir, rootfs diff_ids)
    blobs/sha256/<l>              one uncompressed layer tar per layer, <l> = sha256 of the tar

Layers are left uncompressed on purpose: the tarball is only ever imported on this machine, so
gzip would cost build time and save nothing (containerd stores what it is given).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# Fixed timestamps keep small images byte-for-byte reproducible (same inputs, same digests).
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CHUNK = 1 << 20


class ImageWriteError(Exception):
    """A layer or image could not be written; the message says what and where."""


@dataclass(frozen=True)
class Entry:
    """One file or directory of a layer written from memory (small images: pause, maptarget)."""

    path: str  # inside the image, without a leading "/"
    data: bytes | None = None  # None: a directory
    mode: int = 0o755


@dataclass(frozen=True)
class ImageConfig:
    """The parts of the OCI/Docker image config a pod's container uses."""

    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    env: Sequence[str] = (f"PATH={DEFAULT_PATH}",)
    working_dir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """A written layer tar and its sha256 (which is both its blob digest and its diff_id)."""

    path: Path
    digest: str  # "sha256:<hex>"
    size: int


def sha256_file(path: Path) -> str:
    """The "sha256:<hex>" digest of a file, read in chunks (layers can be hundreds of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _finish_layer(path: Path) -> Layer:
    return Layer(path=path, digest=sha256_file(path), size=path.stat().st_size)


def layer_from_entries(entries: Iterable[Entry], dest: Path) -> Layer:
    """Write a layer of in-memory files and directories, owned by root, with fixed mtimes."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            name = entry.path.strip("/")
            if not name:
                raise ImageWriteError(f"layer {dest}: an entry has an empty path")
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            info.mode = entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return _finish_layer(dest)


def layer_from_directory(root: Path, dest: Path) -> Layer:
    """Write a whole root filesystem as one layer, keeping owners, modes, links, device nodes and
    mtimes (Python's .pyc files are checked against their sources' mtimes, so these must stay).

    Names are relative ("usr/bin/python3"), as in layers Docker writes; tarfile lists directories
    sorted and skips sockets itself.
    """
    if not root.is_dir():
        raise ImageWriteError(f"layer root {root} is not a directory")

    def numeric_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        # tarfile would name owners from the host's /etc/passwd, which is not the image's;
        # runtimes use the numeric ids anyway.
        info.uname = info.gname = ""
        return info

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, recursive=True, filter=numeric_owner)
    return _finish_layer(dest)


def _config_json(config: ImageConfig, layers: Sequence[Layer]) -> bytes:
    container_config: dict[str, object] = {"Env": list(config.env), "WorkingDir": config.working_dir}
    if config.entrypoint is not None:
        container_config["Entrypoint"] = list(config.entrypoint)
    if config.cmd is not None:
        container_config["Cmd"] = list(config.cmd)
    if config.labels:
        container_config["Labels"] = dict(config.labels)
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "history": [{"created": CREATED, "created_by": "mapquake cluster.images"} for _ in layers],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = path.stat().st_size, EPOCH, 0o644
    with path.open("rb") as f:
        tar.addfile(info, f)


def write_image(out: Path, ref: str, layers: Sequence[Layer], config: ImageConfig) -> Path:
    """Write the docker-save tarball `out` for image `ref` ("registry/name:tag").

    Written to a temporary file beside `out` and renamed, so a reader never sees half an image.
    """
    if ":" not in ref.rsplit("/", 1)[-1]:
        raise ImageWriteError(f"image reference {ref!r} has no tag (expected registry/name:tag)")
    config_bytes = _config_json(config, layers)
    config_digest = f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
    manifest = [
        {
            "Config": _blob_name(config_digest),
            "RepoTags": [ref],
            "Layers": [_blob_name(layer.digest) for layer in layers],
        }
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, _blob_name(config_digest), config_bytes)
            written: set[str] = set()
            for layer in layers:
                if layer.digest not in written:  # two identical layers: one blob
                    _add_file(tar, _blob_name(layer.digest), layer.path)
                    written.add(layer.digest)
            _add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        tmp.chmod(0o644)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


@dataclass(frozen=True)
class ImageSummary:
    """What an image tarball holds, after checking every blob against its digest."""

    ref: str
    config: dict[str, object]
    layer_digests: tuple[str, ...]


def _hash_member(tar: tarfile.TarFile, name: str) -> str:
    f: IO[bytes] | None = tar.extractfile(name)
    if f is None:
        raise ImageWriteError(f"{name} is not a regular file")
    h = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def inspect_image(path: Path) -> ImageSummary:
    """Read a docker-save tarball and check that config and layers match the digests they are
    named by and that the config's diff_ids are the layers' digests (what `ctr import` relies on).
    """
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise ImageWriteError(f"{path}: manifest.json is not a file")
            (entry,) = json.loads(member.read())
            config_name: str = entry["Config"]
            config_member = tar.extractfile(config_name)
            if config_member is None:
                raise ImageWriteError(f"{path}: config {config_name} is not a file")
            config_bytes = config_member.read()
            if f"sha256:{hashlib.sha256(config_bytes).hexdigest()}" != "sha256:" + config_name.rsplit("/", 1)[-1]:
                raise ImageWriteError(f"{path}: config {config_name} does not match its digest")
            digests = []
            for name in entry["Layers"]:
                digest = _hash_member(tar, name)
                if digest.removeprefix("sha256:") != name.rsplit("/", 1)[-1]:
                    raise ImageWriteError(f"{path}: layer {name} does not match its digest ({digest})")
                digests.append(digest)
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise ImageWriteError(f"{path}: not a readable docker-save tarball: {exc}") from exc
    config = json.loads(config_bytes)
    if config["rootfs"]["diff_ids"] != digests:
        raise ImageWriteError(f"{path}: config diff_ids do not match the layers")
    (ref,) = entry["RepoTags"]
    return ImageSummary(ref=ref, config=config, layer_digests=tuple(digests))
