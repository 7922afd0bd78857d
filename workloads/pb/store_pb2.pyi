from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutRequest(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class BatchPutRequest(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[PutRequest]
    def __init__(self, entries: _Optional[_Iterable[_Union[PutRequest, _Mapping]]] = ...) -> None: ...

class BatchPutResponse(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: int
    def __init__(self, written: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("gc",)
    GC_FIELD_NUMBER: _ClassVar[int]
    gc: bool
    def __init__(self, gc: _Optional[bool] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("store", "entries", "high_water", "live_bytes", "heap_objects", "goroutines", "total_alloc_bytes", "go_version", "key_type", "value_type", "go_type", "num_gc", "http_connections", "grpc_connections")
    STORE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATER_FIELD_NUMBER: _ClassVar[int]
    LIVE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HEAP_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    GOROUTINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ALLOC_BYTES_FIELD_NUMBER: _ClassVar[int]
    GO_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    GO_TYPE_FIELD_NUMBER: _ClassVar[int]
    NUM_GC_FIELD_NUMBER: _ClassVar[int]
    HTTP_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    GRPC_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    store: str
    entries: int
    high_water: int
    live_bytes: int
    heap_objects: int
    goroutines: int
    total_alloc_bytes: int
    go_version: str
    key_type: str
    value_type: str
    go_type: str
    num_gc: int
    http_connections: int
    grpc_connections: int
    def __init__(self, store: _Optional[str] = ..., entries: _Optional[int] = ..., high_water: _Optional[int] = ..., live_bytes: _Optional[int] = ..., heap_objects: _Optional[int] = ..., goroutines: _Optional[int] = ..., total_alloc_bytes: _Optional[int] = ..., go_version: _Optional[str] = ..., key_type: _Optional[str] = ..., value_type: _Optional[str] = ..., go_type: _Optional[str] = ..., num_gc: _Optional[int] = ..., http_connections: _Optional[int] = ..., grpc_connections: _Optional[int] = ...) -> None: ...

class ReplicateOp(_message.Message):
    __slots__ = ("kind", "key", "value")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ReplicateOp.Kind]
        KIND_PUT: _ClassVar[ReplicateOp.Kind]
        KIND_DELETE: _ClassVar[ReplicateOp.Kind]
    KIND_UNSPECIFIED: ReplicateOp.Kind
    KIND_PUT: ReplicateOp.Kind
    KIND_DELETE: ReplicateOp.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: ReplicateOp.Kind
    key: str
    value: bytes
    def __init__(self, kind: _Optional[_Union[ReplicateOp.Kind, str]] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class ReplicateRequest(_message.Message):
    __slots__ = ("origin", "ops")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    origin: str
    ops: _containers.RepeatedCompositeFieldContainer[ReplicateOp]
    def __init__(self, origin: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[ReplicateOp, _Mapping]]] = ...) -> None: ...

class ReplicateResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: int
    def __init__(self, applied: _Optional[int] = ...) -> None: ...
