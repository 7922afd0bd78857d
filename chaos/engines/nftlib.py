"""nftables in-process: libnftables contexts opened inside each fault's network namespace.

Why: ``nsenter … nft -j -f -`` costs a fork, two execs and nft's start-up per namespace per change
(15-25 ms each on the bench machine), and that dominated how late a fault landed. A libnftables
context talks to the kernel over a netlink socket, and a socket acts in the network namespace it
was created in, whichever thread later uses it. So each context is created once, on a short-lived
thread that first enters the namespace (setns), and is then used from any thread: a transaction
costs well under a millisecond.

Contexts are kept, not opened per change: closing a context that has committed a transaction waits
for the kernel (7-15 ms measured), and while it does, the next transaction in that namespace waits
too (an apply right after a heal took 11-51 ms when each heal freed its context; 0.3-0.5 ms with the
context kept). So a context is freed only by ``evict``: once its namespace has held no table of ours
for ``IDLE_S`` (the agent's reaper calls it), or at once when the namespace is gone (a deleted pod).
While a context lives it keeps its namespace alive in the kernel: the backends delete a run's veths
and bridges by name, a local agent exits with its run, and the DaemonSet's agent evicts.

The binding is Debian's python3-nftables (the netfilter project's own): imported as ``nftables``
where it is on the path (Debian's Python, the mapquake image), else loaded from Debian's
dist-packages by file (a project venv on another Python). Without it the agent falls back to the
nft command (nft.NftCommand).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from chaos.engines.command import NetnsHandle
from orchestrator.core.errors import InfrastructureError

log = logging.getLogger(__name__)

DEBIAN_BINDING = Path("/usr/lib/python3/dist-packages/nftables/nftables.py")
IDLE_S = 60.0
"""A context whose namespace has held none of our tables this long is freed."""
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def load_binding() -> ModuleType | None:
    """The python3-nftables module, or None when neither the import nor Debian's file is there."""
    try:
        import nftables  # type: ignore[import-not-found]

        module: ModuleType = nftables
        return module
    except ImportError:
        pass
    if not DEBIAN_BINDING.exists():
        return None
    spec = importlib.util.spec_from_file_location("_mapquake_nftables", DEBIAN_BINDING)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.Nftables()  # loads libnftables.so.1: fails here, not at the first fault, if it is missing
    except (OSError, AttributeError) as err:
        log.info("libnftables not usable (%s): faults go through the nft command", err)
        return None
    return module


_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(path: str, fn: Callable[[], T]) -> T:
    """``fn()`` on a new thread that has entered the network namespace at ``path`` (and then ends)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as err:  # handed to the caller's thread
            failure.append(err)

    thread = threading.Thread(target=body, name="nft-setns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class _Context:
    """One libnftables context bound to one namespace; used by one thread at a time."""

    def __init__(self, nft: Any, handle: NetnsHandle) -> None:
        self.nft = nft
        self.handle = handle
        self.lock = threading.Lock()
        self.idle_since: float | None = time.monotonic()
        """time.monotonic() since when its namespace holds no table of ours; None while it holds one."""


class LibNft:
    """nft.Nft through libnftables: one context per namespace, kept while it holds a table of ours."""

    name = "libnftables"

    def __init__(self, binding: ModuleType) -> None:
        self._binding = binding
        self._contexts: dict[str, _Context] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> LibNft | None:
        binding = load_binding()
        return cls(binding) if binding is not None else None

    def _context(self, handle: NetnsHandle) -> _Context:
        path = handle.path
        with self._lock:
            context = self._contexts.get(path)
        if context is not None:
            return context
        try:
            created = _Context(in_namespace(path, self._binding.Nftables), handle)
        except OSError as err:
            raise InfrastructureError(f"nft in {handle.name}: cannot enter its network namespace: {err}") from err
        with self._lock:  # another thread may have made one meanwhile: keep the first, drop ours
            context = self._contexts.setdefault(path, created)
        if context is not created:
            _free_later(created)
        return context

    def run(self, handle: NetnsHandle, document: dict[str, Any], what: str) -> None:
        context = self._context(handle)
        with context.lock:  # json_cmd: JSON in (the same document `nft -j -f -` reads), text flags restored
            context.idle_since = None
            rc, _out, err = context.nft.json_cmd(document)
        if rc != 0:
            raise InfrastructureError(f"{what} failed: {str(err).strip()}")

    def tables(self, handle: NetnsHandle) -> list[str]:
        context = self._context(handle)
        with context.lock:
            rc, out, _err = context.nft.cmd("list tables inet")
        if rc != 0:
            return []
        return [line.split()[-1] for line in str(out).splitlines() if line.startswith("table inet ")]

    def forget(self, handle: NetnsHandle) -> None:
        """The namespace holds no table of ours now: its context becomes idle (``evict`` frees it later)."""
        with self._lock:
            context = self._contexts.get(handle.path)
        if context is not None:
            context.idle_since = time.monotonic()

    def evict(self, idle_s: float = IDLE_S) -> int:
        """Free, in the background, the contexts idle for ``idle_s`` and those whose namespace is gone."""
        now = time.monotonic()
        with self._lock:
            stale = [
                path for path, c in self._contexts.items()
                if c.handle.gone() or (c.idle_since is not None and now - c.idle_since >= idle_s)
            ]  # fmt: skip
            evicted = [self._contexts.pop(path) for path in stale]
        for context in evicted:
            _free_later(context)
        return len(evicted)

    def close(self) -> None:
        """Free every context now (agent shutdown)."""
        with self._lock:
            contexts, self._contexts = list(self._contexts.values()), {}
        for context in contexts:
            with context.lock:
                context.nft = None


def _free_later(context: _Context) -> None:
    """Drop the context's last reference on a background thread (its socket's close waits for RCU)."""

    def free() -> None:
        with context.lock:
            context.nft = None

    threading.Thread(target=free, name="nft-free", daemon=True).start()
