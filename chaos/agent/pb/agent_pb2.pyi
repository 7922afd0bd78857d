from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Cut(_message.Message):
    __slots__ = ("netns", "sources")
    NETNS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    netns: str
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, netns: _Optional[str] = ..., sources: _Optional[_Iterable[str]] = ...) -> None: ...

class Degrade(_message.Message):
    __slots__ = ("netns", "ifname", "delay_s", "jitter_s", "loss")
    NETNS_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    DELAY_S_FIELD_NUMBER: _ClassVar[int]
    JITTER_S_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    netns: str
    ifname: str
    delay_s: float
    jitter_s: float
    loss: float
    def __init__(self, netns: _Optional[str] = ..., ifname: _Optional[str] = ..., delay_s: _Optional[float] = ..., jitter_s: _Optional[float] = ..., loss: _Optional[float] = ...) -> None: ...

class Partition(_message.Message):
    __slots__ = ("cuts", "mode")
    CUTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    cuts: _containers.RepeatedCompositeFieldContainer[Cut]
    mode: str
    def __init__(self, cuts: _Optional[_Iterable[_Union[Cut, _Mapping]]] = ..., mode: _Optional[str] = ...) -> None: ...

class Netem(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Degrade]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Degrade, _Mapping]]] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("action", "netns", "pid")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    action: str
    netns: str
    pid: int
    def __init__(self, action: _Optional[str] = ..., netns: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class Fault(_message.Message):
    __slots__ = ("id", "run_id", "summary", "partition", "netem", "signal")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    NETEM_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    run_id: str
    summary: str
    partition: Partition
    netem: Netem
    signal: Signal
    def __init__(self, id: _Optional[str] = ..., run_id: _Optional[str] = ..., summary: _Optional[str] = ..., partition: _Optional[_Union[Partition, _Mapping]] = ..., netem: _Optional[_Union[Netem, _Mapping]] = ..., signal: _Optional[_Union[Signal, _Mapping]] = ...) -> None: ...

class PrepareRequest(_message.Message):
    __slots__ = ("faults", "lease_s")
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    faults: _containers.RepeatedCompositeFieldContainer[Fault]
    lease_s: float
    def __init__(self, faults: _Optional[_Iterable[_Union[Fault, _Mapping]]] = ..., lease_s: _Optional[float] = ...) -> None: ...

class PrepareReply(_message.Message):
    __slots__ = ("prepared", "skipped")
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    prepared: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prepared: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("fault", "lease_s")
    FAULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    fault: Fault
    lease_s: float
    def __init__(self, fault: _Optional[_Union[Fault, _Mapping]] = ..., lease_s: _Optional[float] = ...) -> None: ...

class ApplyReply(_message.Message):
    __slots__ = ("fault_id", "mechanisms", "expires_in_s")
    FAULT_ID_FIELD_NUMBER: _ClassVar[int]
    MECHANISMS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    fault_id: str
    mechanisms: _containers.RepeatedScalarFieldContainer[str]
    expires_in_s: float
    def __init__(self, fault_id: _Optional[str] = ..., mechanisms: _Optional[_Iterable[str]] = ..., expires_in_s: _Optional[float] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("run_id", "fault_ids", "lease_s")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FAULT_IDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    fault_ids: _containers.RepeatedScalarFieldContainer[str]
    lease_s: float
    def __init__(self, run_id: _Optional[str] = ..., fault_ids: _Optional[_Iterable[str]] = ..., lease_s: _Optional[float] = ...) -> None: ...

class RenewReply(_message.Message):
    __slots__ = ("renewed", "unknown")
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    renewed: _containers.RepeatedScalarFieldContainer[str]
    unknown: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, renewed: _Optional[_Iterable[str]] = ..., unknown: _Optional[_Iterable[str]] = ...) -> None: ...

class HealRequest(_message.Message):
    __slots__ = ("run_id", "fault_ids")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FAULT_IDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    fault_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., fault_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HealReply(_message.Message):
    __slots__ = ("healed", "errors")
    HEALED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    healed: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, healed: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class FaultStatus(_message.Message):
    __slots__ = ("id", "run_id", "kind", "summary", "expires_in_s", "mechanisms")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    MECHANISMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    run_id: str
    kind: str
    summary: str
    expires_in_s: float
    mechanisms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., run_id: _Optional[str] = ..., kind: _Optional[str] = ..., summary: _Optional[str] = ..., expires_in_s: _Optional[float] = ..., mechanisms: _Optional[_Iterable[str]] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("faults", "prepared")
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    faults: _containers.RepeatedCompositeFieldContainer[FaultStatus]
    prepared: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, faults: _Optional[_Iterable[_Union[FaultStatus, _Mapping]]] = ..., prepared: _Optional[_Iterable[str]] = ...) -> None: ...
