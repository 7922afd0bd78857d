"""gRPC client for Locust users: one grpcio channel per target, every call reported as a Locust request event.

Only Locust processes import this module (it needs gevent-friendly grpcio:
call ``init_gevent()`` once, before any channel exists, as the locustfile does).
Calls never raise for RPC failures: they return False (or None for a failed
Get) after firing the request event with the exception, so the caller's
accounting stays simple. The channels are shared by all the users of a worker:
HTTP/2 multiplexes their calls over one connection per target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from orchestrator.core.safety import AddressAllowList
from workloads.pb import store_pb2, store_pb2_grpc
from workloads.wire import PutEncoder

log = logging.getLogger(__name__)

T = TypeVar("T")
RequestEvent = Any  # locust.event.EventHook; not imported so this module stays importable without locust

_gevent_ready = False


def init_gevent() -> None:
    """Make grpcio cooperate with gevent (Locust's event loop); idempotent."""
    global _gevent_ready
    if not _gevent_ready:
        import grpc.experimental.gevent as grpc_gevent

        grpc_gevent.init_gevent()
        _gevent_ready = True


class GrpcClient:
    """MapStore calls to the targets of a plan, by target index."""

    request_type = "grpc"

    def __init__(
        self,
        targets: Sequence[str],
        request_event: RequestEvent,
        *,
        allowed: AddressAllowList,
        timeout_s: float = 10.0,
    ) -> None:
        for addr in targets:
            allowed.check(addr)  # never dial anything off the run's allow-list
        self.targets = tuple(targets)
        self.timeout_s = timeout_s
        self._event = request_event
        self._channels = [grpc.insecure_channel(addr) for addr in self.targets]
        self._stubs = [store_pb2_grpc.MapStoreStub(ch) for ch in self._channels]
        # The write calls take requests already in wire form (workloads.wire): no serializer.
        method = "/" + store_pb2.DESCRIPTOR.services_by_name["MapStore"].full_name + "/"
        written = store_pb2.BatchPutResponse.FromString
        self._batch_put = [
            ch.unary_unary(method + "BatchPut", request_serializer=None, response_deserializer=written)
            for ch in self._channels
        ]
        self._put_stream = [
            ch.stream_unary(method + "PutStream", request_serializer=None, response_deserializer=written)
            for ch in self._channels
        ]
        self._encoder: PutEncoder | None = None

    def _encoder_for(self, value: bytes) -> PutEncoder:
        enc = self._encoder
        if enc is None or (enc.value is not value and enc.value != value):
            enc = self._encoder = PutEncoder(value)
        return enc

    def _call(self, op: str, fn: Callable[[], T], length: int = 0) -> tuple[bool, T | None]:
        start = time.perf_counter()
        exc: BaseException | None = None
        result: T | None = None
        try:
            result = fn()
        except grpc.RpcError as err:
            exc = err
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        self._event.fire(
            request_type=self.request_type,
            name=op,
            response_time=elapsed_ms,
            response_length=length,
            exception=exc,
            context={},
        )
        return exc is None, result

    def put(self, target: int, key: str, value: bytes) -> bool:
        stub = self._stubs[target]
        req = store_pb2.PutRequest(key=key, value=value)
        ok, _ = self._call("put", lambda: stub.Put(req, timeout=self.timeout_s), len(value))
        return ok

    def batch_put(self, target: int, keys: Sequence[bytes], value: bytes) -> bool:
        """One BatchPut of ``value`` under every key (UTF-8 bytes); True when all were written."""
        call = self._batch_put[target]
        req = self._encoder_for(value).batch_put(keys)
        ok, resp = self._call("batch_put", lambda: call(req, timeout=self.timeout_s), len(value) * len(keys))
        return ok and resp is not None and resp.written == len(keys)

    def put_stream(self, target: int, keys: Sequence[bytes], value: bytes) -> bool:
        """One PutStream of a PutRequest per key (UTF-8 bytes); True when all were written."""
        call = self._put_stream[target]
        put = self._encoder_for(value).put
        reqs = [put(k) for k in keys]
        ok, resp = self._call("put_stream", lambda: call(iter(reqs), timeout=self.timeout_s), len(value) * len(keys))
        return ok and resp is not None and resp.written == len(keys)

    def get(self, target: int, key: str) -> bool | None:
        """Whether ``key`` is present; None when the call failed."""
        stub = self._stubs[target]
        ok, resp = self._call("get", lambda: stub.Get(store_pb2.GetRequest(key=key), timeout=self.timeout_s))
        return bool(resp.found) if ok and resp is not None else None

    def delete(self, target: int, key: str) -> bool:
        stub = self._stubs[target]
        ok, _ = self._call("delete", lambda: stub.Delete(store_pb2.DeleteRequest(key=key), timeout=self.timeout_s))
        return ok

    def close(self) -> None:
        for ch in self._channels:
            ch.close()
