"""Sparkplug B (spBv1.0) topics, datatypes, metric values and payload bytes (DESIGN §8).

Shared by the simulator's MQTT publisher and the edge's MQTT collector, so that both read
and write the same conventions (docs/mqtt.md). The payload schema is `sparkplug_b.proto`,
written from the Sparkplug 3.0 specification; `sparkplug_b_pb2` is generated from it and
never edited. Regenerate it after a schema change with the protoc bundled in grpcio-tools:

    .venv/bin/python -m grpc_tools.protoc -I linewatch/sparkplug \
        --python_out=linewatch/sparkplug linewatch/sparkplug/sparkplug_b.proto

Integer encoding (specification §6.4.16, and DESIGN §8 for UInt32):

| datatype                    | field        | how                                         |
|-----------------------------|--------------|---------------------------------------------|
| Int8, Int16, Int32          | int_value    | two's complement in 32 bits                 |
| UInt8, UInt16               | int_value    | as is                                       |
| UInt32, UInt64, DateTime    | long_value   | as is (DateTime: epoch milliseconds, UTC)   |
| Int64                       | long_value   | two's complement in 64 bits                 |

Reading is lenient where writers disagree: any integer datatype is read from whichever of
int_value / long_value is set (some implementations put UInt32 in int_value), and a signed
value is read modulo its own width, so both sign-extended and zero-extended Int8/Int16
arrive right.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from google.protobuf.message import DecodeError

from linewatch.sparkplug import sparkplug_b_pb2 as pb

logger = logging.getLogger(__name__)

__all__ = [
    "BDSEQ_METRIC",
    "NAMESPACE",
    "REBIRTH_METRIC",
    "SEQ_MODULUS",
    "DataType",
    "MessageType",
    "Metric",
    "Payload",
    "SparkplugError",
    "Topic",
    "add_metric",
    "coerce_value",
    "datatype_for",
    "decode_payload",
    "encode_payload",
    "find_metric",
    "get_value",
    "next_seq",
    "parse_topic",
    "set_value",
    "topic",
]

NAMESPACE = "spBv1.0"
BDSEQ_METRIC = "bdSeq"
REBIRTH_METRIC = "Node Control/Rebirth"
SEQ_MODULUS = 256  # seq and bdSeq run 0..255 and wrap

Payload = pb.Payload
Metric = pb.Payload.Metric


class SparkplugError(ValueError):
    """A topic, payload or value that does not follow Sparkplug B."""


class MessageType(StrEnum):
    NBIRTH = "NBIRTH"
    NDATA = "NDATA"
    NDEATH = "NDEATH"
    DBIRTH = "DBIRTH"
    DDATA = "DDATA"
    DDEATH = "DDEATH"
    NCMD = "NCMD"
    DCMD = "DCMD"

    @property
    def is_device(self) -> bool:
        """True for the message types whose topic names a device."""
        return self in _DEVICE_TYPES


_DEVICE_TYPES = frozenset(
    {MessageType.DBIRTH, MessageType.DDATA, MessageType.DDEATH, MessageType.DCMD}
)


class DataType(IntEnum):
    """Metric datatypes, numbered as in the specification (and `sparkplug_b.proto`)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21
    Int8Array = 22
    Int16Array = 23
    Int32Array = 24
    Int64Array = 25
    UInt8Array = 26
    UInt16Array = 27
    UInt32Array = 28
    UInt64Array = 29
    FloatArray = 30
    DoubleArray = 31
    BooleanArray = 32
    StringArray = 33
    DateTimeArray = 34


# integer datatype -> (bits, signed, field)
_INTEGERS: dict[DataType, tuple[int, bool, str]] = {
    DataType.Int8: (8, True, "int_value"),
    DataType.Int16: (16, True, "int_value"),
    DataType.Int32: (32, True, "int_value"),
    DataType.Int64: (64, True, "long_value"),
    DataType.UInt8: (8, False, "int_value"),
    DataType.UInt16: (16, False, "int_value"),
    DataType.UInt32: (32, False, "long_value"),
    DataType.UInt64: (64, False, "long_value"),
}
_STRINGS = frozenset({DataType.String, DataType.Text, DataType.UUID})
_BYTES = frozenset({DataType.Bytes, DataType.File,
                    *(DataType(n) for n in range(DataType.Int8Array, DataType.DateTimeArray + 1))})
_ID_RE = re.compile(r"^[^/+#]+$")


# --- topics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """`spBv1.0/<group>/<message type>/<edge node>[/<device>]`."""

    group: str
    message_type: MessageType
    node: str
    device: str | None = None

    def __str__(self) -> str:
        return topic(self.group, self.message_type, self.node, self.device)


def check_id(value: str, what: str) -> str:
    """A group, edge node or device id: non-empty UTF-8 without '/', '+' or '#'."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise SparkplugError(f"expected a Sparkplug {what} id without '/', '+' or '#', "
                             f"got {value!r}")
    return value


def topic(group: str, message_type: MessageType | str, node: str,
          device: str | None = None) -> str:
    """The topic of a message; device messages need a device, node messages take none."""
    kind = MessageType(message_type)
    parts = [NAMESPACE, check_id(group, "group"), kind.value, check_id(node, "edge node")]
    if kind.is_device:
        if device is None:
            raise SparkplugError(f"expected a device id for {kind.value}")
        parts.append(check_id(device, "device"))
    elif device is not None:
        raise SparkplugError(f"expected no device id for {kind.value}, got {device!r}")
    return "/".join(parts)


def parse_topic(text: str) -> Topic:
    """Split a Sparkplug B topic; raise SparkplugError for anything else (STATE included)."""
    parts = text.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        raise SparkplugError(f"not a Sparkplug B edge node or device topic: {text!r}")
    try:
        kind = MessageType(parts[2])
    except ValueError:
        raise SparkplugError(f"unknown Sparkplug message type {parts[2]!r} in {text!r}") from None
    device = parts[4] if len(parts) == 5 else None
    if kind.is_device != (device is not None):
        raise SparkplugError(f"{kind.value} {'needs' if kind.is_device else 'takes no'} "
                             f"device id: {text!r}")
    for value, what in ((parts[1], "group"), (parts[3], "edge node"), (device, "device")):
        if value is not None and not value:
            raise SparkplugError(f"empty {what} id in {text!r}")
    return Topic(parts[1], kind, parts[3], device)


def next_seq(seq: int) -> int:
    """The sequence number after `seq` (0..255, wrapping)."""
    return (seq + 1) % SEQ_MODULUS


# --- datatypes and values ----------------------------------------------------------------


def datatype_for(value: object) -> DataType:
    """The datatype a Python value is published as when nothing else decides.

    bool → Boolean; int → Int32, else Int64, else UInt64 (the narrowest that holds it);
    float → Double; str → String; bytes → Bytes; datetime → DateTime.
    """
    if isinstance(value, bool):
        return DataType.Boolean
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return DataType.Int32
        if -(2**63) <= value < 2**63:
            return DataType.Int64
        if 0 <= value < 2**64:
            return DataType.UInt64
        raise SparkplugError(f"integer {value} does not fit in 64 bits")
    if isinstance(value, float):
        return DataType.Double
    if isinstance(value, str):
        return DataType.String
    if isinstance(value, bytes | bytearray):
        return DataType.Bytes
    if isinstance(value, dt.datetime):
        return DataType.DateTime
    raise SparkplugError(f"no Sparkplug datatype for a {type(value).__name__} value")


def coerce_value(value: object, datatype: DataType | int) -> object:
    """`value` as the Python value `datatype` holds; SparkplugError when it cannot be.

    Lossless conversions only: an integral float for an integer type, an int for Float or
    Double, an aware datetime (or epoch milliseconds) for DateTime. Text is never parsed.
    """
    kind = _datatype(datatype)
    if kind in _INTEGERS:
        bits, signed, _field = _INTEGERS[kind]
        number = _as_int(value, kind)
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if not low <= number <= high:
            raise SparkplugError(f"{number} is out of range for {kind.name} ({low}..{high})")
        return number
    if kind in (DataType.Float, DataType.Double):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SparkplugError(f"expected a number for {kind.name}, got {value!r}")
        return float(value)
    if kind is DataType.Boolean:
        if not isinstance(value, bool):
            raise SparkplugError(f"expected a bool for Boolean, got {value!r}")
        return value
    if kind in _STRINGS:
        if not isinstance(value, str):
            raise SparkplugError(f"expected text for {kind.name}, got {value!r}")
        return value
    if kind is DataType.DateTime:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise SparkplugError(f"expected an aware datetime for DateTime, got {value!r}")
            return round(value.timestamp() * 1000)
        number = _as_int(value, kind)
        if not 0 <= number < 2**64:
            raise SparkplugError(f"{number} is out of range for DateTime")
        return number
    if kind in _BYTES:
        if not isinstance(value, bytes | bytearray):
            raise SparkplugError(f"expected bytes for {kind.name}, got {value!r}")
        return bytes(value)
    raise SparkplugError(f"datatype {kind.name} is not supported by linewatch")


def set_value(metric: Metric, value: object, datatype: DataType | int) -> None:
    """Store `value` (None: is_null) in the value field `datatype` uses (module docstring)."""
    kind = _datatype(datatype)
    if value is None:
        metric.ClearField("value")
        metric.is_null = True
        return
    plain = coerce_value(value, kind)
    if kind in _INTEGERS:
        field = _INTEGERS[kind][2]
        assert isinstance(plain, int)
        width = 64 if field == "long_value" else 32
        setattr(metric, field, plain & ((1 << width) - 1))
    elif kind is DataType.Float:
        metric.float_value = plain  # type: ignore[assignment]
    elif kind is DataType.Double:
        metric.double_value = plain  # type: ignore[assignment]
    elif kind is DataType.Boolean:
        metric.boolean_value = plain  # type: ignore[assignment]
    elif kind in _STRINGS:
        metric.string_value = plain  # type: ignore[assignment]
    elif kind is DataType.DateTime:
        metric.long_value = plain  # type: ignore[assignment]
    else:
        metric.bytes_value = plain  # type: ignore[assignment]


def get_value(metric: Metric, datatype: DataType | int | None = None) -> object:
    """The Python value of a metric: None when is_null.

    The datatype is the metric's own when it carries one, else `datatype` (what its birth
    said, for data messages that send the alias only); with neither, the raw field value.
    Raises SparkplugError when the value field does not fit the datatype.
    """
    if metric.is_null:
        return None
    if metric.HasField("datatype"):
        datatype = metric.datatype
    field = metric.WhichOneof("value")
    if field is None:
        raise SparkplugError(f"metric {_label(metric)} has no value and is not null")
    if datatype is None:
        if field in ("dataset_value", "template_value", "extension_value"):
            raise SparkplugError(f"metric {_label(metric)}: {field} is not supported")
        return getattr(metric, field)
    kind = _datatype(datatype)
    if kind in _INTEGERS:
        bits, signed, _field = _INTEGERS[kind]
        if field not in ("int_value", "long_value"):
            raise SparkplugError(f"metric {_label(metric)}: {kind.name} in {field}")
        raw = getattr(metric, field) & ((1 << bits) - 1)
        if signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        elif not signed and getattr(metric, field) != raw:
            raise SparkplugError(f"metric {_label(metric)}: {getattr(metric, field)} is out "
                                 f"of range for {kind.name}")
        return raw
    expected = _FIELDS.get(kind)
    if expected is None:
        raise SparkplugError(f"metric {_label(metric)}: datatype {kind.name} is not supported")
    if field not in expected:
        raise SparkplugError(f"metric {_label(metric)}: {kind.name} in {field}")
    return getattr(metric, field)


_FIELDS: dict[DataType, tuple[str, ...]] = {
    DataType.Float: ("float_value", "double_value"),
    DataType.Double: ("double_value", "float_value"),
    DataType.Boolean: ("boolean_value",),
    DataType.String: ("string_value",),
    DataType.Text: ("string_value",),
    DataType.UUID: ("string_value",),
    DataType.DateTime: ("long_value",),
    **{kind: ("bytes_value",) for kind in _BYTES},
}


def add_metric(payload: Payload, value: object, datatype: DataType | int, *,
               name: str | None = None, alias: int | None = None,
               timestamp: int | None = None, with_datatype: bool = True) -> Metric:
    """Append a metric to `payload`. Births send name, alias and datatype; data the alias."""
    metric = payload.metrics.add()
    if name is not None:
        metric.name = name
    if alias is not None:
        metric.alias = alias
    if timestamp is not None:
        metric.timestamp = timestamp
    if with_datatype:
        metric.datatype = int(datatype)
    set_value(metric, value, datatype)
    return metric


def find_metric(payload: Payload, name: str) -> Metric | None:
    """The first metric of `payload` called `name`."""
    for metric in payload.metrics:
        if metric.name == name:
            return metric
    return None


def encode_payload(payload: Payload) -> bytes:
    return payload.SerializeToString()


def decode_payload(data: bytes) -> Payload:
    """Parse payload bytes; SparkplugError when they are not a Sparkplug B payload."""
    payload = Payload()
    try:
        payload.ParseFromString(data)
    except DecodeError as err:
        raise SparkplugError(f"not a Sparkplug B payload ({err})") from err
    return payload


def _datatype(datatype: DataType | int) -> DataType:
    try:
        return DataType(datatype)
    except ValueError:
        raise SparkplugError(f"unknown Sparkplug datatype {datatype!r}") from None


def _as_int(value: object, kind: DataType) -> int:
    if isinstance(value, bool):
        raise SparkplugError(f"expected an integer for {kind.name}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise SparkplugError(f"expected an integer for {kind.name}, got {value!r}")


def _label(metric: Metric) -> str:
    if metric.HasField("name"):
        return repr(metric.name)
    if metric.HasField("alias"):
        return f"alias {metric.alias}"
    return "(unnamed)"
