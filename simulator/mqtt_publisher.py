"""The simulator's MQTT publisher: a line's samples as JSON, plain text or Sparkplug B.

Config-driven (DESIGN §5): a `SimMqttPublisher` serves one MQTT source of the plant config
and publishes only the signals of lines that name that source. The conventions (topics,
payloads, what the edge reads back) are in docs/mqtt.md:

- ``format: json`` — a sample goes to its signal's ``topic`` (``{line}`` replaced by the line
  id) as a JSON object with the value at ``path`` and the sample time (epoch ms) at
  ``ts_path``. Samples of one `publish` call for the same topic and the same timestamp are
  merged into one object when their paths do not overlap.
- ``format: plain`` — the value as text, one message per sample; no timestamp.
- ``format: sparkplug`` — one Sparkplug B edge node per (group, edge node) of the mapped
  signals, each on its own MQTT connection (the NDEATH will is per connection): NBIRTH and
  DBIRTHs on connect, on reconnect and on a ``Node Control/Rebirth`` NCMD; NDATA / DDATA
  with aliases; seq 0..255 per node; bdSeq per MQTT session; NDEATH on `stop`.

paho-mqtt runs its network loop in its own thread (``loop_start``); Sparkplug state (seq,
aliases, last values) is guarded by one lock per edge node, because births are sent from
that thread (connect, rebirth command) and data from the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from linewatch.config import COUNT_ROLES, Line, MqttSource, PlantConfig, SignalSource, read_secret
from linewatch.json_path import parse_json_path
from linewatch.sample import Sample
from linewatch.sparkplug.codec import (
    BDSEQ_METRIC,
    NAMESPACE,
    REBIRTH_METRIC,
    DataType,
    MessageType,
    Payload,
    SparkplugError,
    add_metric,
    check_id,
    coerce_value,
    datatype_for,
    decode_payload,
    encode_payload,
    find_metric,
    get_value,
    next_seq,
    parse_topic,
    topic,
)
from simulator.publisher import PublisherError

logger = logging.getLogger(__name__)

__all__ = [
    "MqttPublishError",
    "PublisherStats",
    "SimMqttPublisher",
    "parse_json_path",
    "plain_text",
]

KEEPALIVE_S = 30
_INT32 = (-(2**31), 2**31 - 1)


class MqttPublishError(PublisherError):
    """The publisher could not connect to the broker (refused, unreachable or timed out)."""


@dataclass
class PublisherStats:
    """What the publisher did with the samples it was given (counters only grow)."""

    messages: int = 0  # MQTT messages handed to paho (births and deaths included)
    samples: int = 0  # samples published
    ignored: int = 0  # samples of signals this source does not map
    skipped_bad: int = 0  # bad-quality samples: these MQTT conventions carry no quality
    invalid: int = 0  # values that cannot be published (no JSON/Sparkplug form)
    dropped_offline: int = 0  # Sparkplug data not sent while the node was offline
    births: int = 0  # NBIRTH messages (rebirths included)


def _expand(template: str, line: Line) -> str:
    return template.replace("{line}", line.id)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _mapped_signals(config: PlantConfig,
                    source_id: str) -> Iterator[tuple[Line, str, str | None, SignalSource]]:
    """(line, signal name, role or None for telemetry, mapping) of every signal of a source."""
    for line in config.lines:
        for role, src in line.signals.roles().items():
            if src.source == source_id:
                yield line, role, role, src
        for telemetry in line.signals.telemetry:
            if telemetry.source == source_id:
                yield line, telemetry.name, None, telemetry


# --- one MQTT connection -------------------------------------------------------------------


class _Connection:
    """A paho client: connect and wait for CONNACK, survive connection loss, close or kill.

    After a lost connection, JSON and plain keep paho's own reconnect (its QoS 1 messages in
    flight are sent again). A Sparkplug edge node (``fresh_sessions``) instead starts a new
    paho client, so that nothing of the old session — data with old seq numbers, the old
    will — reaches the broker after the new NBIRTH; `prepare` then sets the new will.
    """

    def __init__(self, *, client_id: str, source: MqttSource, host: str, port: int,
                 password: str | None, fresh_sessions: bool = False,
                 prepare: Callable[[mqtt.Client], None] | None = None,
                 on_connected: Callable[[mqtt.Client], None] | None = None,
                 on_lost: Callable[[], None] | None = None,
                 on_message: Callable[[mqtt.MQTTMessage], None] | None = None) -> None:
        self.client_id = client_id
        self.host, self.port = host, port
        self._source, self._password = source, password
        self._fresh = fresh_sessions
        self._prepare, self._on_connected = prepare, on_connected
        self._on_lost, self._on_msg = on_lost, on_message
        self._connack = threading.Event()
        self._refused: str | None = None
        self._closing = False  # close() or kill() under way: a lost connection is expected
        self._ended = threading.Event()  # wakes a reviver that waits to reconnect
        self._swap = threading.Lock()  # guards replacing `client`
        self.last: mqtt.MQTTMessageInfo | None = None
        self.client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv311, clean_session=True,
                             reconnect_on_failure=not self._fresh)
        auth, tls = self._source.auth, self._source.tls
        if auth is not None:
            client.username_pw_set(auth.username, self._password)
        if tls is not None:
            client.tls_set(ca_certs=str(tls.ca_file) if tls.ca_file else None,
                           certfile=str(tls.cert_file) if tls.cert_file else None,
                           keyfile=str(tls.key_file) if tls.key_file else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if self._prepare is not None:
            self._prepare(client)
        return client

    async def open(self, timeout_s: float) -> None:
        """Connect, start the network thread and return once the broker accepted us."""
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()  # retries the first connection until we give up below
        accepted = await asyncio.to_thread(self._connack.wait, timeout_s)
        if accepted and self._refused is None:
            logger.info("connected to mqtt://%s:%d as %s", self.host, self.port, self.client_id)
            return
        await asyncio.to_thread(self._end)
        why = (f"the broker refused the connection ({self._refused})" if self._refused
               else f"no CONNACK within {timeout_s:g} s")
        raise MqttPublishError(f"cannot connect to mqtt://{self.host}:{self.port} as "
                               f"{self.client_id}: {why}")

    def publish(self, topic_: str, payload: bytes, qos: int) -> None:
        self.last = self.client.publish(topic_, payload, qos=qos, retain=False)

    async def close(self, timeout_s: float,
                    final: tuple[str, bytes, int] | None = None) -> bool:
        """Wait for what was sent, publish `final` (an NDEATH), then DISCONNECT.

        True when `final` was handed to a connected client.
        """
        client = self._stop_reviving()
        sent_final = final is not None and client.is_connected()
        if final is not None and sent_final:
            self.publish(*final)
        if self.last is not None:
            await asyncio.to_thread(self._wait_sent, self.last, timeout_s)
        await asyncio.to_thread(self._halt, client)
        logger.info("disconnected %s from mqtt://%s:%d", self.client_id, self.host, self.port)
        return sent_final

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, so that the broker sends the will."""
        client = self._stop_reviving()
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # The socket is gone: this DISCONNECT cannot reach the broker, it only ends the loop.
        self._halt(client)
        logger.info("killed the connection of %s", self.client_id)

    def _stop_reviving(self) -> mqtt.Client:
        """From now on a lost connection stays lost; the client in use."""
        self._closing = True
        self._ended.set()
        with self._swap:
            return self.client

    def _end(self) -> None:
        self._halt(self._stop_reviving())

    @staticmethod
    def _halt(client: mqtt.Client) -> None:
        client.disconnect()
        client.loop_stop()

    @staticmethod
    def _wait_sent(info: mqtt.MQTTMessageInfo, timeout_s: float) -> None:
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as err:
            logger.warning("last message not confirmed before disconnect: %s", err)

    def _revive(self, old: mqtt.Client) -> None:
        """A new client (new session) for a lost one; paho retries until it connects."""
        old.loop_stop()  # its loop ends after the disconnect callback: no reconnect of its own
        if self._ended.wait(1.0):  # at least a second between sessions (a refusing broker)
            return
        with self._swap:
            if self._closing:
                return
            self.client = self._new_client()
            self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
            self.client.loop_start()
        logger.info("%s reconnects to mqtt://%s:%d with a new session", self.client_id,
                    self.host, self.port)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            logger.error("mqtt://%s:%d refused %s: %s", self.host, self.port, self.client_id,
                         reason_code)
            self._connack.set()
            return
        if self._on_connected is not None:
            try:
                self._on_connected(client)
            except Exception:
                logger.exception("on-connect handler of %s failed", self.client_id)
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason_code: Any, _properties: Any) -> None:
        if self._closing:
            return
        logger.warning("lost mqtt://%s:%d (%s) as %s", self.host, self.port, reason_code,
                       self.client_id)
        if self._on_lost is not None:
            try:
                self._on_lost()
            except Exception:
                logger.exception("on-lost handler of %s failed", self.client_id)
        if self._fresh:
            threading.Thread(target=self._revive, args=(client,), daemon=True,
                             name=f"mqtt-revive-{self.client_id}").start()

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        if self._on_msg is None:
            return
        try:
            self._on_msg(message)
        except Exception:
            logger.exception("message handler of %s failed on %s", self.client_id,
                             message.topic)


# --- JSON and plain ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _JsonTarget:
    topic: str
    keys: tuple[str, ...]
    ts_keys: tuple[str, ...] | None


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


@dataclass
class _JsonMessage:
    """One JSON object under construction: samples of one topic and one timestamp."""

    topic: str
    ts: int
    doc: Any = None
    values: list[tuple[str, ...]] = field(default_factory=list)
    stamps: set[tuple[str, ...]] = field(default_factory=set)

    def accepts(self, target: _JsonTarget) -> bool:
        if not self.values:
            return True
        if () in self.values or target.keys == ():
            return False
        if any(_overlap(target.keys, p) for p in (*self.values, *self.stamps)):
            return False
        ts_keys = target.ts_keys
        if ts_keys is None:
            return True
        return (not any(_overlap(ts_keys, p) for p in self.values)
                and all(ts_keys == s or not _overlap(ts_keys, s) for s in self.stamps))

    def put(self, target: _JsonTarget, value: object) -> None:
        self.values.append(target.keys)
        if target.keys == ():
            self.doc = value
            return
        if self.doc is None:
            self.doc = {}
        _set_path(self.doc, target.keys, value)
        if target.ts_keys is not None:
            self.stamps.add(target.ts_keys)
            _set_path(self.doc, target.ts_keys, self.ts)

    def encode(self) -> bytes:
        return json.dumps(self.doc, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode()


def _set_path(doc: dict[str, Any], keys: tuple[str, ...], value: object) -> None:
    for key in keys[:-1]:
        doc = doc.setdefault(key, {})
    doc[keys[-1]] = value


def plain_text(value: object) -> str:
    """A value as plain-format text: true/false, numbers as Python writes them, '' for None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# --- Sparkplug B ---------------------------------------------------------------------------


@dataclass(eq=False)
class _SpbMetric:
    name: str
    alias: int
    device: str | None  # None: a metric of the edge node itself
    datatype: DataType
    value: object = None
    ts: int | None = None


def _is_int32_text(text: str) -> bool:
    try:
        number = int(text)
    except ValueError:
        return False
    return _INT32[0] <= number <= _INT32[1]


def _default_datatype(line: Line, role: str | None, src: SignalSource) -> DataType:
    """The datatype a metric is born with before its first value (docs/mqtt.md)."""
    if role in COUNT_ROLES:
        limit = src.counter_max or line.counter_max  # the register's width
        if limit <= 0xFFFF:
            return DataType.UInt16
        return DataType.UInt32 if limit <= 0xFFFFFFFF else DataType.UInt64
    keys: list[str]
    if role == "state":
        keys = list(line.state_map)
    elif role == "reason":
        keys = list(line.reason_map)
    elif role == "product":
        keys = list(line.product_map)
    else:  # energy_kwh and telemetry
        return DataType.Double
    return DataType.Int32 if keys and all(_is_int32_text(k) for k in keys) else DataType.String


class _EdgeNode:
    """One Sparkplug B edge node: its metrics, seq, bdSeq and MQTT connection."""

    def __init__(self, group: str, node: str, qos: int, stats: _Counter) -> None:
        self.group, self.node, self.qos = group, node, qos
        self.devices: dict[str | None, list[_SpbMetric]] = {None: []}
        self.by_key: dict[tuple[str | None, str], _SpbMetric] = {}
        self.lock = threading.Lock()
        self.seq = 0
        self.bdseq = -1  # the first session uses 0
        self.online = False  # births sent on the current connection
        self.gap_pending = False
        self.conn: _Connection | None = None
        self._count = stats

    def add_metric(self, device: str | None, name: str, datatype: DataType) -> _SpbMetric:
        key = (device, name)
        if key not in self.by_key:
            if device is None and name in (BDSEQ_METRIC, REBIRTH_METRIC):
                raise ValueError(f"metric name {name!r} is reserved by Sparkplug B")
            metric = _SpbMetric(name, len(self.by_key) + 1, device, datatype)
            self.by_key[key] = metric
            self.devices.setdefault(device, []).append(metric)
        return self.by_key[key]

    def topic(self, kind: MessageType, device: str | None = None) -> str:
        return topic(self.group, kind, self.node, device)

    def ndeath(self, timestamp: int | None) -> bytes:
        payload = Payload()
        if timestamp is not None:
            payload.timestamp = timestamp
        add_metric(payload, self.bdseq, DataType.Int64, name=BDSEQ_METRIC)
        return encode_payload(payload)

    # called from paho's thread (and, for `prepare`, from the caller's) -------------

    def prepare(self, client: mqtt.Client) -> None:
        """A new MQTT session: the next bdSeq, registered as the will of its CONNECT."""
        with self.lock:
            self.bdseq = next_seq(self.bdseq)
            client.will_set(self.topic(MessageType.NDEATH), self.ndeath(None), qos=1,
                            retain=False)

    def on_connected(self, client: mqtt.Client) -> None:
        client.subscribe(self.topic(MessageType.NCMD), qos=1)
        client.subscribe(f"{NAMESPACE}/{self.group}/{MessageType.DCMD}/{self.node}/+", qos=1)
        with self.lock:
            self.send_births()

    def on_lost(self) -> None:
        with self.lock:
            self.online = False

    def on_message(self, message: mqtt.MQTTMessage) -> None:
        where = parse_topic(message.topic)
        if where.message_type is not MessageType.NCMD:
            logger.info("ignoring %s: the simulator has no writable metrics", message.topic)
            return
        metric = find_metric(decode_payload(message.payload), REBIRTH_METRIC)
        if metric is not None and get_value(metric, DataType.Boolean) is True:
            logger.info("rebirth requested for %s/%s", self.group, self.node)
            with self.lock:
                self.send_births()

    # with self.lock held -----------------------------------------------------------------

    def _next(self) -> int:
        if self.gap_pending:
            self.gap_pending = False
            self.seq = next_seq(self.seq)
        seq, self.seq = self.seq, next_seq(self.seq)
        return seq

    def _send(self, kind: MessageType, device: str | None, payload: Payload) -> None:
        assert self.conn is not None
        self.conn.publish(self.topic(kind, device), encode_payload(payload), self.qos)
        self._count("messages")

    def send_births(self) -> None:
        """NBIRTH (seq 0, bdSeq, rebirth metric, node metrics), then a DBIRTH per device."""
        if self.conn is None:
            return
        now = _now_ms()
        nbirth = Payload(timestamp=now, seq=0)
        add_metric(nbirth, self.bdseq, DataType.Int64, name=BDSEQ_METRIC, timestamp=now)
        add_metric(nbirth, False, DataType.Boolean, name=REBIRTH_METRIC, timestamp=now)
        self._birth_metrics(nbirth, self.devices[None], now)
        self.seq = 1
        self._send(MessageType.NBIRTH, None, nbirth)
        self._count("births")
        for device, metrics in self.devices.items():
            if device is not None:
                dbirth = Payload(timestamp=now, seq=self._next())
                self._birth_metrics(dbirth, metrics, now)
                self._send(MessageType.DBIRTH, device, dbirth)
        self.online = True

    @staticmethod
    def _birth_metrics(payload: Payload, metrics: list[_SpbMetric], now: int) -> None:
        for m in metrics:
            add_metric(payload, m.value, m.datatype, name=m.name, alias=m.alias,
                       timestamp=m.ts if m.ts is not None else now)

    def send_data(self, device: str | None, ts: int,
                  values: list[tuple[_SpbMetric, object]]) -> None:
        """One NDATA/DDATA of metrics sampled at `ts`; a rebirth when a datatype changed."""
        reborn = False
        sent: list[tuple[_SpbMetric, object]] = []
        for metric, value in values:
            if value is not None:
                try:
                    value = coerce_value(value, metric.datatype)
                except SparkplugError:
                    try:
                        datatype = datatype_for(value)
                    except SparkplugError as err:
                        logger.warning("cannot publish %s=%r: %s", metric.name, value, err)
                        self._count("invalid")
                        continue
                    logger.warning("metric %s of %s/%s changes datatype %s -> %s: rebirth",
                                   metric.name, self.group, self.node, metric.datatype.name,
                                   datatype.name)
                    metric.datatype = datatype
                    reborn = True
            metric.value, metric.ts = value, ts
            sent.append((metric, value))
        if not sent:
            return
        if not self.online:
            self._count("dropped_offline", len(sent))
            return
        self._count("samples", len(sent))
        if reborn:  # the births carry the new values
            self.send_births()
            return
        payload = Payload(timestamp=ts, seq=self._next())
        for metric, value in sent:
            add_metric(payload, value, metric.datatype, alias=metric.alias, timestamp=ts,
                       with_datatype=False)
        kind = MessageType.NDATA if device is None else MessageType.DDATA
        self._send(kind, device, payload)


class _Counter:
    """Thread-safe increments of a PublisherStats (paho's thread counts births too)."""

    def __init__(self, stats: PublisherStats) -> None:
        self.stats = stats
        self._lock = threading.Lock()

    def __call__(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)


# --- the publisher -------------------------------------------------------------------------


class SimMqttPublisher:
    """Publishes simulated samples to an MQTT broker as one config source describes them.

    `host`, `port` and `password` override the source's (the password otherwise comes from
    ``auth.password_env`` / ``auth.password_file``). The MQTT client id is the source's
    ``client_id`` (or ``linewatch-<source id>``) + ``-sim`` — never the edge's own id, which
    the broker would disconnect — and for Sparkplug + ``-<group>-<edge node>``.
    """

    def __init__(self, config: PlantConfig, source: MqttSource, host: str | None = None,
                 port: int | None = None, password: str | None = None, *,
                 connect_timeout_s: float = 10.0) -> None:
        self.config, self.source = config, source
        self.host = host or source.host
        self.port = port or source.port
        self.connect_timeout_s = connect_timeout_s
        self.stats = PublisherStats()
        self._count = _Counter(self.stats)
        self._password = password
        self._client_base = f"{source.client_id or f'linewatch-{source.id}'}-sim"
        self._topics: dict[tuple[str, str], _JsonTarget] = {}
        self._metrics: dict[tuple[str, str], tuple[_EdgeNode, _SpbMetric]] = {}
        self._nodes: dict[tuple[str, str], _EdgeNode] = {}
        self._conn: _Connection | None = None
        self._started = False  # between start() and stop(); kill() keeps it
        for line, name, role, src in _mapped_signals(config, source.id):
            where = f"line {line.id} signal {name}"
            if source.format == "sparkplug":
                self._map_sparkplug(line, name, role, src, where)
            else:
                if not src.topic:
                    raise ValueError(f"{where}: expected a topic for MQTT source {source.id!r}")
                keys = parse_json_path(src.path or "$")
                ts_keys = parse_json_path(src.ts_path) if src.ts_path else None
                if ts_keys is not None and (ts_keys == () or _overlap(keys, ts_keys)):
                    raise ValueError(f"{where}: ts_path {src.ts_path!r} overlaps path "
                                     f"{src.path or '$'!r}")
                self._topics[(line.id, name)] = _JsonTarget(_expand(src.topic, line), keys,
                                                            ts_keys)

    def _map_sparkplug(self, line: Line, name: str, role: str | None, src: SignalSource,
                       where: str) -> None:
        if not (src.group and src.node and src.metric):
            raise ValueError(f"{where}: expected group, node and metric for Sparkplug "
                             f"source {self.source.id!r}")
        try:
            group = check_id(_expand(src.group, line), "group")
            node_id = check_id(_expand(src.node, line), "edge node")
            device = check_id(_expand(src.device, line), "device") if src.device else None
        except SparkplugError as err:
            raise ValueError(f"{where}: {err}") from None
        node = self._nodes.get((group, node_id))
        if node is None:
            node = _EdgeNode(group, node_id, self.source.qos, self._count)
            self._nodes[(group, node_id)] = node
        metric = node.add_metric(device, src.metric, _default_datatype(line, role, src))
        self._metrics[(line.id, name)] = (node, metric)

    @property
    def client_ids(self) -> list[str]:
        """The MQTT client ids this publisher connects with (one per Sparkplug edge node)."""
        if self.source.format != "sparkplug":
            return [self._client_base]
        return [self._node_client_id(node) for node in self._nodes.values()]

    def _node_client_id(self, node: _EdgeNode) -> str:
        return f"{self._client_base}-{node.group}-{node.node}"

    # --- Publisher -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (each Sparkplug edge node on its own connection, births sent); idempotent."""
        password = self._password
        if password is None and self.source.auth is not None:
            password = read_secret(self.source.auth.password_env, self.source.auth.password_file)
        if self.source.format != "sparkplug":
            if self._conn is None:
                conn = _Connection(client_id=self._client_base, source=self.source,
                                   host=self.host, port=self.port, password=password)
                await conn.open(self.connect_timeout_s)
                self._conn = conn
            self._started = True
            return
        opened: list[_EdgeNode] = []
        try:
            for node in self._nodes.values():
                if node.conn is None:
                    await self._open_node(node, password)
                    opened.append(node)
        except BaseException:
            for node in opened:
                await self._close_node(node)
            raise
        self._started = True

    async def _open_node(self, node: _EdgeNode, password: str | None) -> None:
        conn = _Connection(client_id=self._node_client_id(node), source=self.source,
                           host=self.host, port=self.port, password=password,
                           fresh_sessions=True, prepare=node.prepare,
                           on_connected=node.on_connected, on_lost=node.on_lost,
                           on_message=node.on_message)
        with node.lock:
            node.conn = conn
        try:
            await conn.open(self.connect_timeout_s)
        except BaseException:
            with node.lock:
                node.conn, node.online = None, False
            raise

    async def publish(self, samples: Sequence[Sample]) -> None:
        """Publish samples (any lines, time order); unmapped and bad-quality ones are skipped.

        After `kill()` (until the next `start()`) samples are counted as dropped_offline.
        """
        if not self._started:
            raise MqttPublishError("publish() outside start() … stop()")
        if self.source.format == "sparkplug":
            self._publish_sparkplug(samples)
        elif self._conn is None:
            self._count("dropped_offline", len(samples))
        elif self.source.format == "json":
            self._publish_json(samples)
        else:
            self._publish_plain(samples)

    async def stop(self) -> None:
        """Send what is pending, an NDEATH per Sparkplug edge node, and disconnect; idempotent."""
        self._started = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close(self.connect_timeout_s)
        for node in self._nodes.values():
            await self._close_node(node)

    async def _close_node(self, node: _EdgeNode) -> None:
        with node.lock:
            conn, node.conn = node.conn, None
            node.online = False
            death = (node.topic(MessageType.NDEATH), node.ndeath(_now_ms()), 1)
        if conn is not None and await conn.close(self.connect_timeout_s, final=death):
            self._count("messages")

    # --- test hooks (the edge's fault tests use them) --------------------------------

    def force_seq_gap(self) -> None:
        """Skip one seq number in the next NDATA/DBIRTH/DDATA of every edge node."""
        if self.source.format != "sparkplug":
            raise MqttPublishError("force_seq_gap() needs a source with format: sparkplug")
        for node in self._nodes.values():
            with node.lock:
                node.gap_pending = True

    async def kill(self) -> None:
        """Drop every TCP connection without DISCONNECT: the broker sends the NDEATH wills.

        `start()` afterwards reconnects (Sparkplug: with the next bdSeq and new births).
        """
        conns: list[_Connection] = []
        if self._conn is not None:
            conns.append(self._conn)
            self._conn = None
        for node in self._nodes.values():
            with node.lock:
                if node.conn is not None:
                    conns.append(node.conn)
                node.conn, node.online = None, False
        for conn in conns:
            await asyncio.to_thread(conn.kill)

    # --- formats ---------------------------------------------------------------------

    def _targets(self, samples: Sequence[Sample],
                 table: dict[tuple[str, str], Any]) -> Iterator[tuple[Sample, Any]]:
        for sample in samples:
            target = table.get((sample.asset, sample.signal))
            if target is None:
                self._count("ignored")
            elif not sample.good:
                self._count("skipped_bad")
            else:
                yield sample, target

    def _publish_json(self, samples: Sequence[Sample]) -> None:
        assert self._conn is not None
        messages: list[_JsonMessage] = []
        current: dict[tuple[str, int], _JsonMessage] = {}
        published = 0
        for sample, target in self._targets(samples, self._topics):
            message = current.get((target.topic, sample.ts))
            if message is None or not message.accepts(target):
                message = _JsonMessage(target.topic, sample.ts)
                current[(target.topic, sample.ts)] = message
                messages.append(message)
            message.put(target, sample.value)
            published += 1
        for message in messages:
            self._conn.publish(message.topic, message.encode(), self.source.qos)
        self._count("messages", len(messages))
        self._count("samples", published)

    def _publish_plain(self, samples: Sequence[Sample]) -> None:
        assert self._conn is not None
        published = 0
        for sample, target in self._targets(samples, self._topics):
            self._conn.publish(target.topic, plain_text(sample.value).encode(),
                               self.source.qos)
            published += 1
        self._count("messages", published)
        self._count("samples", published)

    def _publish_sparkplug(self, samples: Sequence[Sample]) -> None:
        # node -> (device, ts) -> values, in order of first appearance (time order)
        steps: dict[_EdgeNode, dict[tuple[str | None, int], list[tuple[_SpbMetric, object]]]]
        steps = {}
        for sample, (node, metric) in self._targets(samples, self._metrics):
            group = steps.setdefault(node, {}).setdefault((metric.device, sample.ts), [])
            group.append((metric, sample.value))
        for node, groups in steps.items():
            with node.lock:
                for (device, ts), values in groups.items():
                    node.send_data(device, ts, values)
