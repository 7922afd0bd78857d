"""The chaos agent's service: Prepare, Apply, Renew, Heal, List under leases, with token auth.

``FaultTable`` holds the faults and their leases (time.monotonic) and does the
work through the engines; ``AgentService`` is the gRPC face; ``serve`` runs both
with the self-heal thread. Safety rules, enforced here:

* every field of a request checked before anything acts on it (``validate``: leases, ids,
  addresses, netem ranges; INVALID_ARGUMENT otherwise), and rules sent to nft as JSON;
* only namespaces and pids a run it serves created (``ownership``), never others; a signal
  only to the run's target in the named namespace (``ownership.check_target``); on Kubernetes
  only pods of its node labelled for the fault's run (``chaos.engines.k8s``);
* only its own nft table (``mapquake_<run>``) and its own qdisc handle (6d71:);
* every fault expires unless renewed (default lease 5 s); expired faults heal
  within ``REAP_INTERVAL_S``;
* at start it sweeps its runs' leftovers: its table in every run namespace, its
  qdiscs, delay proxies recorded in the ledger, replicas left stopped (SIGCONT).

Prepare starts ahead what is slow to start (the delay proxies, when the kernel has
no sch_netem), idle: listening in the target's namespace, nothing redirected to
them. A prepared fault holds a lease like an applied one (Renew keeps it, the
reaper stops its proxies when it expires, Heal drops it); Apply consumes it and
then only rewrites the nft table, as fast as a partition.
"""

from __future__ import annotations

import builtins
import functools
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from chaos.agent import validate
from chaos.agent.ownership import ContainerSignals, LocalNamespaces, Namespaces, OwnedProcess, Refused, check_target
from chaos.agent.pb import agent_pb2 as pb
from chaos.agent.pb import agent_pb2_grpc as pb_grpc
from chaos.engines import delayproxy, netem, nft, nftlib, process
from chaos.engines.command import NetnsHandle, Runner, subprocess_runner
from chaos.probe import Capabilities
from orchestrator.core.errors import MapquakeError
from orchestrator.core.ledger import Ledger
from orchestrator.core.processes import terminate_pid

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_LEASE_S = validate.MAX_LEASE_S
REAP_INTERVAL_S = 0.05
PROXY_LABEL_PREFIX = "chaos-proxy:"
MAX_PREPARED_PROXIES = 32  # per run: an idle proxy is a process (~21 MB RSS); faults beyond this are applied cold


@dataclass
class Held:
    """One applied fault and everything it changed (so heal undoes exactly that)."""

    fault: pb.Fault
    expires_at: float
    applied_at: float
    mechanisms: list[str] = field(default_factory=list)
    rules: dict[str, tuple[NetnsHandle, nft.NamespaceRules]] = field(default_factory=dict)
    qdiscs: list[tuple[NetnsHandle, str]] = field(default_factory=list)
    proxies: list[delayproxy.ProxyProcess] = field(default_factory=list)
    paused: OwnedProcess | None = None
    resume: Callable[[], None] | None = None  # a pause done by ContainerSignals (a frozen pod): its thaw

    @property
    def key(self) -> tuple[str, str]:
        return (self.fault.run_id, self.fault.id)


@dataclass
class ReadyProxy:
    """A delay proxy started ahead for one node of a fault, with the settings it was started with."""

    netns: str
    delay_s: float
    jitter_s: float
    proxy: delayproxy.ProxyProcess

    def fits(self, node: pb.Degrade) -> bool:
        """Usable for ``node``: same namespace and settings, and still running."""
        return (
            self.netns == node.netns
            and abs(self.delay_s - node.delay_s) < 1e-9
            and abs(self.jitter_s - node.jitter_s) < 1e-9
            and self.proxy.running()
        )


@dataclass
class Prepared:
    """A fault made ready to apply fast: its idle proxies, under a lease."""

    fault: pb.Fault
    expires_at: float
    proxies: list[ReadyProxy] = field(default_factory=list)


NFT_ENGINE_ENV = "MAPQUAKE_NFT"
"""``command``: use the nft command even where libnftables is there (bench/fault_latency.py compares them)."""


class FaultTable:
    """Active faults by (run, id), their leases, and the engines that apply and heal them.

    Thread-safe; every public method holds the lock for its whole effect, so the
    reaper never heals a fault half-applied.
    """

    def __init__(
        self,
        namespaces: Namespaces,
        capabilities: Capabilities,
        *,
        runner: Runner = subprocess_runner,
        nft_engine: nft.Nft | None = None,
        clock: Callable[[], float] = time.monotonic,
        proc: Path = Path("/proc"),
    ) -> None:
        self.namespaces = namespaces
        self.proc = proc  # where check_target reads processes (a fake tree in tests)
        self.caps = capabilities
        self.runner = runner
        # In-process libnftables where the binding is there (sub-millisecond); the nft command otherwise,
        # and always when a test hands in a fake runner.
        wanted = runner is subprocess_runner and nft_engine is None and os.environ.get(NFT_ENGINE_ENV) != "command"
        in_process = nftlib.LibNft.load() if wanted else None
        self.nft: nft.Nft = nft_engine or in_process or nft.NftCommand(runner)
        log.info("nftables through %s", self.nft.name)
        self.clock = clock
        self.faults: dict[tuple[str, str], Held] = {}
        self.prepared: dict[tuple[str, str], Prepared] = {}
        self.lock = threading.RLock()
        self.healed_log: list[tuple[str, str, float, str]] = []  # (run, id, monotonic, reason)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="chaos-ns")

    # --- the calls ------------------------------------------------------------------------

    def prepare(self, faults: Iterable[pb.Fault], lease_s: float) -> tuple[list[str], list[str]]:
        """Start ahead, idle, what applying ``faults`` would have to start. Returns (prepared ids, skipped ids).

        Whole or nothing: if a namespace is refused or a proxy does not start, everything this
        call started is stopped and the error raised. A fault already prepared or applied is
        renewed; one with nothing slow to start (anything but a proxy delay) is skipped, as is
        one that would take the run past MAX_PREPARED_PROXIES (it is applied cold).
        """
        lease_s = validate.lease(lease_s)
        faults = list(faults)
        validate.faults(faults)
        prepared, skipped = [], []
        with self.lock:
            plan: list[tuple[Prepared, NetnsHandle, pb.Degrade]] = []
            counts: dict[str, int] = {}
            for run_id in {f.run_id for f in faults}:
                counts[run_id] = sum(len(p.proxies) for k, p in self.prepared.items() if k[0] == run_id)
            for fault in faults:
                key = (fault.run_id, fault.id)
                if key in self.prepared or key in self.faults:
                    (self.prepared.get(key) or self.faults[key]).expires_at = self.clock() + lease_s
                    prepared.append(fault.id)
                    continue
                delayed = [d for d in fault.netem.nodes if d.delay_s > 0] if fault.HasField("netem") else []
                if not delayed or self.caps.netem:
                    skipped.append(fault.id)
                    continue
                if counts[fault.run_id] + len(delayed) > MAX_PREPARED_PROXIES:
                    log.warning("not preparing %s/%s: over %d idle proxies", fault.run_id, fault.id,
                                MAX_PREPARED_PROXIES)  # fmt: skip
                    skipped.append(fault.id)
                    continue
                counts[fault.run_id] += len(delayed)
                entry = Prepared(fault=fault, expires_at=0.0)
                plan += [(entry, self.namespaces.handle(fault.run_id, d.netns), d) for d in delayed]
                prepared.append(fault.id)
            futures = [
                self._pool.submit(delayproxy.start, h, d.delay_s, d.jitter_s,
                                  label=f"{PROXY_LABEL_PREFIX}{e.fault.id}:{d.netns}:prepared",
                                  ledger=self._ledger(e.fault.run_id))
                for e, h, d in plan
            ]  # fmt: skip
            errors: list[BaseException] = []
            for (entry, _, d), future in zip(plan, futures, strict=True):
                try:
                    entry.proxies.append(ReadyProxy(d.netns, d.delay_s, d.jitter_s, future.result()))
                except Exception as err:  # collect: every started proxy must be stopped on failure
                    errors.append(err)
            entries = list({id(e): e for e, _, _ in plan}.values())
            if errors:
                for entry in entries:
                    self._stop_ready(entry.proxies)
                raise errors[0]
            expires = self.clock() + lease_s
            for entry in entries:
                entry.expires_at = expires
                self.prepared[(entry.fault.run_id, entry.fault.id)] = entry
                log.info("prepared %s/%s (%s): %d idle delay proxies", entry.fault.run_id, entry.fault.id,
                         entry.fault.summary, len(entry.proxies))  # fmt: skip
        return prepared, skipped

    def apply(self, fault: pb.Fault, lease_s: float) -> Held:
        """Apply ``fault`` (or renew it if already held). Raises Refused / MapquakeError; partial work is undone.

        What ``prepare`` started for it is used when it still fits the fault; the rest is stopped.
        """
        lease_s = validate.lease(lease_s)
        validate.fault(fault)
        with self.lock:
            key = (fault.run_id, fault.id)
            if key in self.faults:
                held = self.faults[key]
                held.expires_at = self.clock() + lease_s
                return held
            ready = self.prepared.pop(key).proxies if key in self.prepared else []
            held = Held(fault=fault, expires_at=self.clock() + lease_s, applied_at=self.clock())
            try:
                self._apply(held, ready)
            except BaseException:
                self._undo(held)
                raise
            finally:
                self._stop_ready(ready)  # the prepared proxies the fault did not take
            held.applied_at = self.clock()
            held.expires_at = held.applied_at + lease_s
            self.faults[key] = held
            log.info("applied %s/%s (%s): %s", fault.run_id, fault.id, fault.summary, ", ".join(held.mechanisms))
            return held

    def renew(self, run_id: str, fault_ids: Iterable[str], lease_s: float) -> tuple[list[str], list[str]]:
        lease_s = validate.lease(lease_s)
        validate.run_id(run_id)
        fault_ids = validate.fault_ids(list(fault_ids))
        renewed, unknown = [], []
        with self.lock:
            now = self.clock()
            for fid in fault_ids:
                held = self.faults.get((run_id, fid)) or self.prepared.get((run_id, fid))
                if held is None:
                    unknown.append(fid)
                else:
                    held.expires_at = now + lease_s
                    renewed.append(fid)
        return renewed, unknown

    def heal(self, run_id: str, fault_ids: Iterable[str] = (), *, reason: str = "heal") -> tuple[list[str], list[str]]:
        """Heal the given faults of ``run_id`` (all of the run when empty). Returns (healed ids, errors).

        Prepared faults among them are dropped (their idle proxies stopped); they are not in "healed".
        """
        validate.run_id(run_id)
        ids = validate.fault_ids(list(fault_ids))
        healed, errors = [], []
        with self.lock:
            for key in [k for k in self.prepared if k[0] == run_id and (not ids or k[1] in ids)]:
                errors += self._stop_ready(self.prepared.pop(key).proxies)
                log.info("dropped prepared %s/%s (%s)", key[0], key[1], reason)
            keys = [k for k in self.faults if k[0] == run_id and (not ids or k[1] in ids)]
            for key in keys:
                held = self.faults.pop(key)
                errors += self._undo(held)
                healed.append(key[1])
                self.healed_log.append((key[0], key[1], self.clock(), reason))
                log.info("healed %s/%s (%s)", key[0], key[1], reason)
        return healed, errors

    def list(self, run_id: str = "") -> list[Held]:
        with self.lock:
            return [h for k, h in self.faults.items() if not run_id or k[0] == run_id]

    def list_prepared(self, run_id: str = "") -> builtins.list[Prepared]:
        with self.lock:
            return [p for k, p in self.prepared.items() if not run_id or k[0] == run_id]

    def holds_anything(self) -> bool:
        """Any applied or prepared fault (what keeps the agent from exiting once its controller is gone)."""
        with self.lock:
            return bool(self.faults or self.prepared)

    def reap(self) -> builtins.list[tuple[str, str]]:
        """Heal every fault whose lease expired, drop every prepared one whose lease expired. Returns their keys."""
        with self.lock:
            now = self.clock()
            stale = [k for k, p in self.prepared.items() if p.expires_at <= now]
            for run_id, fid in stale:
                log.warning("lease of prepared %s/%s expired: stopping its proxies", run_id, fid)
                for err in self._stop_ready(self.prepared.pop((run_id, fid)).proxies):
                    log.error("%s", err)
            expired = [k for k, h in self.faults.items() if h.expires_at <= now]
            for run_id, fid in expired:
                log.warning("lease of %s/%s expired: healing", run_id, fid)
                self.heal(run_id, [fid], reason="lease-expired")
        self.nft.evict()  # outside the lock: it only schedules frees
        return stale + expired

    def heal_everything(self, reason: str) -> None:
        with self.lock:
            for run_id in sorted({k[0] for k in [*self.faults, *self.prepared]}):
                self.heal(run_id, reason=reason)

    # --- engines ---------------------------------------------------------------------------

    def _ledger(self, run_id: str) -> Ledger | None:
        return getattr(self.namespaces, "ledger", lambda _r: None)(run_id)

    def _stop_ready(self, ready: builtins.list[ReadyProxy]) -> builtins.list[str]:
        """Stop these idle proxies (in parallel) and forget them. Returns errors; never raises."""
        taken = list(ready)
        ready.clear()

        def stop(r: ReadyProxy) -> str | None:
            try:
                r.proxy.stop()
            except Exception as err:  # keep stopping the rest
                return f"proxy {r.proxy.label}: {err}"
            return None

        return [e for e in self._pool.map(stop, taken) if e is not None]

    def _apply(self, held: Held, ready: builtins.list[ReadyProxy] | None = None) -> None:
        """Apply ``held.fault``; delay proxies in ``ready`` that fit its nodes are taken (removed from the list)."""
        ready = ready if ready is not None else []
        fault = held.fault
        run_id = fault.run_id
        kind = fault.WhichOneof("kind")
        if kind == "partition":
            mode = fault.partition.mode or "drop"
            handles = [(self.namespaces.handle(run_id, c.netns), c) for c in fault.partition.cuts]
            for handle, cut in handles:
                sources = validate.addresses(cut.sources)  # canonical IPv4 text (checked already, in validate.fault)
                self._add_rules(held, handle, nft.NamespaceRules(cuts=[nft.Cut(fault.id, sources, mode)]))
            self._render_all([h for h, _ in handles], run_id, extra=held)
            held.mechanisms.append(f"nft {mode}")
        elif kind == "netem":
            nodes = [(self.namespaces.handle(run_id, d.netns), d) for d in fault.netem.nodes]
            delayed = [(h, d) for h, d in nodes if d.delay_s > 0]
            if delayed and self.caps.netem:
                for handle, d in delayed:
                    held.qdiscs.append((handle, d.ifname))
                list(self._pool.map(lambda hd: netem.apply(hd[0], hd[1].ifname, hd[1].delay_s, hd[1].jitter_s,
                                                             self.runner), delayed))  # fmt: skip
            elif delayed:
                cold = []
                for handle, d in delayed:
                    warm = next((r for r in ready if r.fits(d)), None)
                    if warm is None:
                        cold.append((handle, d))
                        continue
                    ready.remove(warm)
                    held.proxies.append(warm.proxy)
                    redirect = nft.Redirect(fault.id, warm.proxy.port)
                    self._add_rules(held, handle, nft.NamespaceRules(redirects=[redirect]))
                ledger = None
                if cold:
                    log.info("%s/%s: starting %d delay proxies now (not prepared)", run_id, fault.id, len(cold))
                    ledger = self._ledger(run_id)
                futures = [
                    self._pool.submit(delayproxy.start, h, d.delay_s, d.jitter_s,
                                      label=f"{PROXY_LABEL_PREFIX}{fault.id}:{d.netns}", ledger=ledger)
                    for h, d in cold
                ]  # fmt: skip
                errors = []
                for (handle, _), future in zip(cold, futures, strict=True):
                    try:
                        proxy = future.result()
                    except Exception as err:  # collect: every started proxy must be recorded for the undo
                        errors.append(err)
                        continue
                    held.proxies.append(proxy)
                    self._add_rules(held, handle, nft.NamespaceRules(redirects=[nft.Redirect(fault.id, proxy.port)]))
                if errors:
                    raise errors[0]
            for handle, d in nodes:
                if d.loss > 0:
                    self._add_rules(held, handle, nft.NamespaceRules(losses=[nft.Loss(fault.id, d.loss)]))
            self._render_all([handle for handle, _ in held.rules.values()], run_id, extra=held)
            if any(d.loss > 0 for d in fault.netem.nodes):
                held.mechanisms.append("nft numgen loss")
            if delayed:
                held.mechanisms.append("tc netem delay" if self.caps.netem else "delay proxy")
        elif kind == "signal" and isinstance(self.namespaces, ContainerSignals):
            sig = fault.signal
            if sig.action == "kill":
                held.mechanisms.append(self.namespaces.kill(run_id, sig.netns, int(sig.pid)))
            elif sig.action == "pause":
                mechanism, held.resume = self.namespaces.pause(run_id, sig.netns, int(sig.pid))
                held.mechanisms.append(mechanism)
            else:
                raise Refused(f"signal action {sig.action!r} is not kill or pause")
        elif kind == "signal":
            sig = fault.signal
            handle = self.namespaces.handle(run_id, sig.netns)
            owned = self.namespaces.process(run_id, int(sig.pid), sig.netns)
            check_target(run_id, owned, handle.path, proc=self.proc)
            if sig.action == "kill":
                process.kill(owned.pid, owned.start_time)
                held.mechanisms.append("SIGKILL")
            elif sig.action == "pause":
                held.paused = owned
                process.pause(owned.pid, owned.start_time)
                held.mechanisms.append("SIGSTOP")
            else:
                raise Refused(f"signal action {sig.action!r} is not kill or pause")
        else:
            raise Refused(f"fault {fault.id} has no kind")

    def _add_rules(self, held: Held, handle: NetnsHandle, rules: nft.NamespaceRules) -> None:
        old = held.rules.get(handle.name, (handle, nft.NamespaceRules()))[1]
        merged = nft.NamespaceRules(
            cuts=old.cuts + rules.cuts, losses=old.losses + rules.losses, redirects=old.redirects + rules.redirects
        )
        held.rules[handle.name] = (handle, merged)

    def _render_all(
        self, handles: builtins.list[NetnsHandle], run_id: str, *, extra: Held | None = None, skip: str = ""
    ) -> None:
        """Rewrite the run's table in every namespace of ``handles`` at once (one nft transaction each, in parallel)."""
        futures = [self._pool.submit(self._render, h, run_id, extra=extra, skip=skip) for h in handles]
        for f in futures:
            f.result()

    def _render(self, handle: NetnsHandle, run_id: str, *, extra: Held | None = None, skip: str = "") -> None:
        """Rewrite the run's table in ``handle`` from every held fault (plus ``extra``, minus ``skip``).

        A pod's namespace whose process is gone (``handle.gone()``) is never entered: a heal has nothing
        left to remove there (the rules went with the namespace), an apply is refused.
        """
        if handle.gone():
            if extra is not None:
                raise Refused(f"{handle.name} is gone (its pod was deleted or its sandbox restarted)")
            log.info("%s is gone, and its rules with it: nothing to rewrite", handle.name)
            return
        total = nft.NamespaceRules()
        holders = [h for h in self.faults.values() if h.fault.run_id == run_id and h.fault.id != skip]
        if extra is not None and extra not in holders:
            holders.append(extra)
        for h in holders:
            part = h.rules.get(handle.name)
            if part is not None:
                total.cuts += part[1].cuts
                total.losses += part[1].losses
                total.redirects += part[1].redirects
        nft.apply(handle, run_id, total, self.nft)

    def _undo(self, held: Held) -> builtins.list[str]:
        """Remove everything ``held`` changed (namespaces in parallel); collects errors instead of stopping."""
        errors: builtins.list[str] = []
        fid, run_id = held.fault.id, held.fault.run_id

        def attempt(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as err:  # keep healing the rest
                errors.append(f"{what}: {err}")

        jobs: builtins.list[tuple[str, Callable[[], object]]] = [
            (h.name, functools.partial(self._render, h, run_id, skip=fid)) for h, _ in held.rules.values()
        ]
        jobs += [(f"proxy {p.label}", p.stop) for p in held.proxies]
        jobs += [(f"{h.name} {i}", functools.partial(netem.remove, h, i, self.runner)) for h, i in held.qdiscs]
        for future in [self._pool.submit(attempt, what, fn) for what, fn in jobs]:
            future.result()
        if held.paused is not None:
            process.resume(held.paused.pid, held.paused.start_time)
        if held.resume is not None:
            attempt(f"resume {held.fault.signal.netns}", held.resume)
        return errors

    # --- startup ---------------------------------------------------------------------------

    def sweep(self, run_id: str) -> builtins.list[str]:
        """Remove what an earlier agent of ``run_id`` left: tables, qdiscs, proxies, stopped replicas."""
        removed = []
        for handle, ifname in self.namespaces.interfaces(run_id):
            if nft.table_name(run_id) in nft.list_tables(handle, self.nft):
                nft.delete_table(handle, run_id, self.nft)
                removed.append(f"nft table {nft.table_name(run_id)} in {handle.name}")
            try:
                if netem.remove(handle, ifname, self.runner):
                    removed.append(f"qdisc {netem.HANDLE} on {handle.name} {ifname}")
            except MapquakeError as err:
                log.warning("sweep: %s", err.message)
        for owned in self.namespaces.processes(run_id):
            if owned.label.startswith(PROXY_LABEL_PREFIX):
                if terminate_pid(owned.pid, owned.start_time, grace_s=2.0):
                    removed.append(f"delay proxy pid {owned.pid}")
            elif _stopped(owned.pid) and process.resume(owned.pid, owned.start_time):
                removed.append(f"SIGCONT to stopped pid {owned.pid} ({owned.label})")
        for line in removed:
            log.warning("sweep of run %s: removed %s", run_id, line)
        return removed


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


# --- gRPC ---------------------------------------------------------------------------------------


class TokenAuth(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type information
    """Reject every call whose ``authorization`` metadata is not ``Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

        def deny(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

        self.deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        meta = dict(handler_call_details.invocation_metadata or ())
        given = str(meta.get("authorization", "")).encode()
        if hmac.compare_digest(given, self.expected):
            return continuation(handler_call_details)
        return self.deny


def _call(context: grpc.ServicerContext, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``, its refusals turned into gRPC status: malformed → INVALID_ARGUMENT, not the run's →
    PERMISSION_DENIED, anything else mapquake raised → FAILED_PRECONDITION."""
    try:
        return fn(*args)
    except validate.Invalid as err:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)
    except Refused as err:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, err.message)
    except MapquakeError as err:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, err.message)
    raise AssertionError("context.abort returned")  # abort raises; for the type checker


class AgentService(pb_grpc.ChaosAgentServicer):
    def __init__(self, table: FaultTable) -> None:
        self.table = table

    def Prepare(self, request: pb.PrepareRequest, context: grpc.ServicerContext) -> pb.PrepareReply:
        prepared, skipped = _call(context, self.table.prepare, request.faults, request.lease_s)
        return pb.PrepareReply(prepared=prepared, skipped=skipped)

    def Apply(self, request: pb.ApplyRequest, context: grpc.ServicerContext) -> pb.ApplyReply:
        held = _call(context, self.table.apply, request.fault, request.lease_s)
        return pb.ApplyReply(
            fault_id=held.fault.id,
            mechanisms=held.mechanisms,
            expires_in_s=max(0.0, held.expires_at - self.table.clock()),
        )

    def Renew(self, request: pb.RenewRequest, context: grpc.ServicerContext) -> pb.RenewReply:
        renewed, unknown = _call(context, self.table.renew, request.run_id, request.fault_ids, request.lease_s)
        return pb.RenewReply(renewed=renewed, unknown=unknown)

    def Heal(self, request: pb.HealRequest, context: grpc.ServicerContext) -> pb.HealReply:
        healed, errors = _call(context, self.table.heal, request.run_id, request.fault_ids)
        return pb.HealReply(healed=healed, errors=errors)

    def List(self, request: pb.ListRequest, context: grpc.ServicerContext) -> pb.ListReply:
        now = self.table.clock()
        return pb.ListReply(
            faults=[
                pb.FaultStatus(
                    id=h.fault.id,
                    run_id=h.fault.run_id,
                    kind=h.fault.WhichOneof("kind") or "",
                    summary=h.fault.summary,
                    expires_in_s=max(0.0, h.expires_at - now),
                    mechanisms=h.mechanisms,
                )
                for h in self.table.list(request.run_id)
            ],
            prepared=[p.fault.id for p in self.table.list_prepared(request.run_id)],
        )


class Agent:
    """A running agent: the gRPC server, the fault table and the self-heal thread. ``stop()`` heals all."""

    def __init__(self, table: FaultTable, token: str, listen: str = "127.0.0.1:0") -> None:
        self.table = table
        self.server = grpc.server(_executor(), interceptors=[TokenAuth(token)], options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_ChaosAgentServicer_to_server(AgentService(table), self.server)
        self.port = self.server.add_insecure_port(listen)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="chaos-reaper", daemon=True)

    def start(self) -> None:
        self.server.start()
        self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(REAP_INTERVAL_S):
            try:
                self.table.reap()
            except Exception:  # the reaper must survive one bad heal
                log.exception("reaping failed")

    def stop(self, reason: str = "agent stopping") -> None:
        self._stop.set()
        self.server.stop(grace=1.0).wait(2.0)
        self.table.heal_everything(reason)


def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="chaos-rpc")


def local_table(runs: list[str], capabilities: Capabilities) -> FaultTable:
    return FaultTable(LocalNamespaces(runs), capabilities)
