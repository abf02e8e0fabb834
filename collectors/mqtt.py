"""The MQTT collector: JSON, plain text and Sparkplug B messages → `Sample`s (DESIGN §3, §8).

One `MqttCollector` serves one MQTT source of the plant config and reads only the signals
of lines that name that source.

- ``format: json`` / ``plain`` — every mapped signal's ``topic`` is subscribed (``{line}``
  expanded; a template shared by several lines whose ``{line}`` fills a whole topic level is
  subscribed once with ``+``, and the matched topic maps back to its line). JSON takes the
  value at ``path`` and the timestamp at ``ts_path`` (epoch ms or ISO 8601; naive means UTC),
  else the receive time (S2); plain takes the payload text as the value.
- ``format: sparkplug`` — ``spBv1.0/<group>/#`` for every mapped group; aliases and datatypes
  come from NBIRTH/DBIRTH; seq is checked per edge node. Data without a known birth or after
  a seq gap is dead-lettered and asks for a rebirth (at most one NCMD per node per
  ``rebirth_interval_s``; one at start-up). NDEATH with the bdSeq of the last NBIRTH, DDEATH,
  and a lost connection give a bad-quality sample for every signal they cover (S3).

paho-mqtt runs its network loop in its own thread and only hands messages to the asyncio
loop; decoding, state and `on_samples` run in one worker task, in arrival order. QoS 1
messages use a persistent session and manual acknowledgement: a message is acknowledged
only after `on_samples` returned for its samples (bad input is acknowledged once it is
dead-lettered). A message whose `on_samples` raised is never acknowledged in this session,
so the broker delivers it again after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from linewatch.config import Line, MqttSource, PlantConfig, SignalSource, read_secret
from linewatch.json_path import MISSING, get_json_path, parse_json_path
from linewatch.sample import Quality, Sample
from linewatch.sparkplug.codec import (
    BDSEQ_METRIC,
    NAMESPACE,
    REBIRTH_METRIC,
    DataType,
    MessageType,
    Payload,
    SparkplugError,
    add_metric,
    decode_payload,
    encode_payload,
    get_value,
    next_seq,
    parse_topic,
    topic,
)

logger = logging.getLogger(__name__)

__all__ = ["CollectorStats", "DeadLetter", "MqttCollector", "MqttCollectorError"]

KEEPALIVE_S = 30
DEAD_LETTERS_MAX = 1000
LOGGED_MAX = 10_000  # distinct (kind, topic) pairs logged; then bad input is only counted

OnSamples = Callable[[list[Sample]], Awaitable[None]]


class MqttCollectorError(Exception):
    """The collector could not connect or subscribe (refused, unreachable or timed out)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One piece of bad input kept for inspection (DESIGN §8)."""

    kind: str
    topic: str
    detail: str
    payload: bytes


@dataclass
class CollectorStats:
    """Self-metrics of one collector (counters only grow)."""

    messages: int = 0  # MQTT messages received
    samples: int = 0  # samples handed to on_samples (and returned from it)
    acked: int = 0  # QoS 1 messages acknowledged
    handler_errors: int = 0  # on_samples raised: the message stays unacknowledged
    ignored: int = 0  # well-formed messages or metrics that no mapped signal reads
    bad_input: dict[str, int] = field(default_factory=dict)  # kind -> count
    births: int = 0  # NBIRTH + DBIRTH
    deaths: int = 0  # NDEATH (matching bdSeq) + DDEATH acted upon
    stale_deaths: int = 0  # NDEATH whose bdSeq is not the last NBIRTH's
    seq_gaps: int = 0
    rebirths_requested: int = 0  # NCMD Node Control/Rebirth sent
    connects: int = 0
    disconnects: int = 0  # unexpected connection losses


@dataclass(frozen=True, slots=True)
class _Target:
    """One mapped signal: which line and signal a value becomes."""

    line: str
    signal: str
    keys: tuple[str, ...] = ()
    ts_keys: tuple[str, ...] | None = None


@dataclass
class _Node:
    """What the collector knows of one Sparkplug edge node."""

    group: str
    node: str
    born: bool = False
    bdseq: int | None = None
    next_seq: int | None = None
    aliases: dict[int, tuple[str | None, str, int]] = field(default_factory=dict)
    names: dict[tuple[str | None, str], int] = field(default_factory=dict)  # -> datatype
    last_rebirth: float | None = None  # monotonic time of the last NCMD
    rebirth_pending: asyncio.TimerHandle | None = None


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ms: int


class _Lost:
    """Marker queued when the connection to the broker was lost."""


class _BadInput(Exception):
    """A message or value the collector cannot read; `kind` names the counter."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _mapped_signals(config: PlantConfig,
                    source_id: str) -> Iterator[tuple[Line, str, SignalSource]]:
    """(line, signal name, mapping) of every signal of a source."""
    for line in config.lines:
        for role, src in line.signals.roles().items():
            if src.source == source_id:
                yield line, role, src
        for telemetry in line.signals.telemetry:
            if telemetry.source == source_id:
                yield line, telemetry.name, telemetry


def _expand(template: str, line: Line) -> str:
    return template.replace("{line}", line.id)


def _parse_ts(value: object) -> int:
    """Epoch milliseconds from a JSON number (epoch ms) or an ISO 8601 string (naive: UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"expected epoch ms or an ISO 8601 time, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return round(parsed.timestamp() * 1000)
    raise ValueError(f"expected epoch ms or an ISO 8601 time, got {value!r}")


class MqttCollector:
    """Reads one MQTT source of the plant config and hands its samples to `on_samples`.

    `password` overrides the source's ``auth.password_env`` / ``auth.password_file``; `host`
    and `port` override the source's. The MQTT client id is the source's ``client_id``, else
    ``linewatch-<source id>``. Use ``async with`` or `start` / `stop`.
    """

    def __init__(self, config: PlantConfig, source: MqttSource, on_samples: OnSamples,
                 password: str | None = None, *, host: str | None = None,
                 port: int | None = None, connect_timeout_s: float = 10.0,
                 rebirth_interval_s: float = 5.0) -> None:
        self.config, self.source = config, source
        self.host = host or source.host
        self.port = port or source.port
        self.client_id = source.client_id or f"linewatch-{source.id}"
        self.connect_timeout_s = connect_timeout_s
        self.rebirth_interval_s = rebirth_interval_s
        self.stats = CollectorStats()
        self.dead_letters: deque[DeadLetter] = deque(maxlen=DEAD_LETTERS_MAX)
        self._on_samples = on_samples
        self._password = password
        self._logged: set[tuple[str, str]] = set()
        # json / plain: exact topic -> targets; subscription filters
        self._topics: dict[str, list[_Target]] = {}
        self._filters: set[str] = set()
        # sparkplug: (group, node, device, metric) -> targets; nodes by (group, node)
        self._metrics: dict[tuple[str, str, str | None, str], list[_Target]] = {}
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._all: list[_Target] = []
        self._build()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Message | _Lost] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._connack = threading.Event()
        self._suback = threading.Event()
        self._refused: str | None = None
        self._stopping = False

    # --- mapping ---------------------------------------------------------------------

    def _build(self) -> None:
        templates: dict[str, list[Line]] = {}
        for line, name, src in _mapped_signals(self.config, self.source.id):
            where = f"line {line.id} signal {name}"
            if self.source.format == "sparkplug":
                if not (src.group and src.node and src.metric):
                    raise ValueError(f"{where}: expected group, node and metric for Sparkplug "
                                     f"source {self.source.id!r}")
                group, node = _expand(src.group, line), _expand(src.node, line)
                device = _expand(src.device, line) if src.device else None
                target = _Target(line.id, name)
                self._metrics.setdefault((group, node, device, src.metric), []).append(target)
                self._nodes.setdefault((group, node), _Node(group, node))
            else:
                if not src.topic:
                    raise ValueError(f"{where}: expected a topic for MQTT source "
                                     f"{self.source.id!r}")
                if self.source.format == "json":
                    keys = parse_json_path(src.path or "$")
                    ts_keys = parse_json_path(src.ts_path) if src.ts_path else None
                else:
                    keys, ts_keys = (), None
                target = _Target(line.id, name, keys, ts_keys)
                self._topics.setdefault(_expand(src.topic, line), []).append(target)
                lines = templates.setdefault(src.topic, [])
                if line not in lines:
                    lines.append(line)
            self._all.append(target)
        if self.source.format == "sparkplug":
            self._filters = {f"{NAMESPACE}/{group}/#" for group, _node in self._nodes}
            return
        for template, lines in templates.items():
            levels = template.split("/")
            whole_level = "{line}" in levels and all(
                lv == "{line}" or "{line}" not in lv for lv in levels)
            if len(lines) > 1 and whole_level:
                self._filters.add("/".join("+" if lv == "{line}" else lv for lv in levels))
            else:
                self._filters.update(_expand(template, line) for line in lines)

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters this collector subscribes to."""
        return sorted(self._filters)

    # --- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> MqttCollector:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, subscribe and (Sparkplug) ask every mapped edge node for a rebirth."""
        if self._client is not None:
            return
        password = self._password
        if password is None and self.source.auth is not None:
            password = read_secret(self.source.auth.password_env, self.source.auth.password_file)
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._stopping = False
        self._connack.clear()
        self._suback.clear()
        self._refused = None
        for node in self._nodes.values():
            node.born, node.next_seq, node.last_rebirth = False, None, None
        persistent = self.source.qos == 1
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv311, clean_session=not persistent,
                             manual_ack=True)
        auth, tls = self.source.auth, self.source.tls
        if auth is not None:
            client.username_pw_set(auth.username, password)
        if tls is not None:
            client.tls_set(ca_certs=str(tls.ca_file) if tls.ca_file else None,
                           certfile=str(tls.cert_file) if tls.cert_file else None,
                           keyfile=str(tls.key_file) if tls.key_file else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._worker = asyncio.create_task(self._work(), name=f"mqtt-{self.source.id}")
        client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        subscribed = await asyncio.to_thread(self._suback.wait, self.connect_timeout_s)
        if not subscribed or self._refused is not None:
            await self.stop()
            why = (f"the broker refused the connection ({self._refused})" if self._refused
                   else f"not connected and subscribed within {self.connect_timeout_s:g} s")
            raise MqttCollectorError(f"cannot connect to mqtt://{self.host}:{self.port} as "
                                     f"{self.client_id}: {why}")
        if self.source.format == "sparkplug":
            await self._request_all_rebirths()  # one per node at start-up (DESIGN §8)
        logger.info("collecting %s from mqtt://%s:%d as %s (%s)", self.source.format,
                    self.host, self.port, self.client_id, ", ".join(self.subscriptions))

    async def stop(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker) and end the worker."""
        self._stopping = True
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(self._halt, client)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for node in self._nodes.values():
            if node.rebirth_pending is not None:
                node.rebirth_pending.cancel()
                node.rebirth_pending = None

    @staticmethod
    def _halt(client: mqtt.Client) -> None:
        client.disconnect()
        client.loop_stop()

    # --- paho's thread ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any,
                    reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            logger.error("mqtt://%s:%d refused %s: %s", self.host, self.port, self.client_id,
                         reason_code)
            self._suback.set()
            return
        self.stats.connects += 1
        logger.info("connected to mqtt://%s:%d as %s (session present: %s)", self.host,
                    self.port, self.client_id, getattr(flags, "session_present", None))
        client.subscribe([(f, self.source.qos) for f in self.subscriptions])

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      _reason_codes: Any, _properties: Any) -> None:
        first = not self._suback.is_set()
        self._suback.set()
        if self.source.format == "sparkplug" and not first:
            self._submit(self._request_all_rebirths())  # reconnected: births may be missed

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason_code: Any, _properties: Any) -> None:
        if self._stopping:
            return
        self.stats.disconnects += 1
        logger.warning("lost mqtt://%s:%d (%s) as %s", self.host, self.port, reason_code,
                       self.client_id)
        self._submit_item(_Lost())

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        try:
            self._submit_item(_Message(message.topic, bytes(message.payload), message.qos,
                                       message.mid, _now_ms()))
        except Exception:
            logger.exception("cannot hand over a message on %s", message.topic)

    def _submit_item(self, item: _Message | _Lost) -> None:
        queue = self._queue
        if queue is not None:
            self._submit(queue.put(item))

    def _submit(self, coro: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, loop)

    # --- the worker (asyncio loop) ---------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Lost):
                    await self._deliver(self._bad_samples(self._all, _now_ms()), None)
                    for node in self._nodes.values():
                        node.born = False
                else:
                    await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("unexpected error handling a message")

    async def _handle(self, message: _Message) -> None:
        self.stats.messages += 1
        try:
            if self.source.format == "sparkplug":
                samples = self._sparkplug(message)
            else:
                samples = self._json_or_plain(message)
        except _BadInput as err:
            self._dead_letter(err.kind, message.topic, str(err), message.payload)
            samples = []
        await self._deliver(samples, message)

    async def _deliver(self, samples: list[Sample], message: _Message | None) -> None:
        """Hand samples over; acknowledge the message only when that succeeded."""
        if samples:
            try:
                await self._on_samples(samples)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.handler_errors += 1
                logger.exception("on_samples failed for %d samples from %s; not acknowledged",
                                 len(samples), message.topic if message else "(lost)")
                return
            self.stats.samples += len(samples)
        if message is not None and message.qos > 0 and self._client is not None:
            self._client.ack(message.mid, message.qos)
            self.stats.acked += 1

    def _dead_letter(self, kind: str, topic_: str, detail: str, payload: bytes) -> None:
        self.stats.bad_input[kind] = self.stats.bad_input.get(kind, 0) + 1
        self.dead_letters.append(DeadLetter(kind, topic_, detail, payload))
        if (kind, topic_) not in self._logged and len(self._logged) < LOGGED_MAX:
            self._logged.add((kind, topic_))
            logger.warning("bad input (%s) on %s: %s (logged once per kind and topic)", kind,
                           topic_, detail)

    @staticmethod
    def _bad_samples(targets: list[_Target], ts: int) -> list[Sample]:
        return [Sample(ts, t.line, t.signal, None, Quality.BAD) for t in targets]

    # --- JSON and plain --------------------------------------------------------------

    def _json_or_plain(self, message: _Message) -> list[Sample]:
        targets = self._topics.get(message.topic)
        if targets is None:
            raise _BadInput("unknown_topic", "no mapped signal reads this topic")
        if self.source.format == "plain":
            try:
                text = message.payload.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _BadInput("not_utf8", str(err)) from None
            return [Sample(message.received_ms, t.line, t.signal, text) for t in targets]
        try:
            doc = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise _BadInput("not_json", str(err)) from None
        samples: list[Sample] = []
        for target in targets:
            try:
                samples.append(self._json_sample(doc, target, message.received_ms))
            except _BadInput as err:
                self._dead_letter(err.kind, message.topic, f"{target.signal}: {err}",
                                  message.payload)
        return samples

    @staticmethod
    def _json_sample(doc: Any, target: _Target, received_ms: int) -> Sample:
        value = get_json_path(doc, target.keys)
        if value is MISSING:
            raise _BadInput("path_missing", f"no value at path {'.'.join(('$', *target.keys))}")
        if isinstance(value, dict | list):
            raise _BadInput("not_scalar", f"expected a scalar, got {type(value).__name__}")
        ts = received_ms
        if target.ts_keys is not None:
            raw_ts = get_json_path(doc, target.ts_keys)
            if raw_ts is not MISSING:
                try:
                    ts = _parse_ts(raw_ts)
                except ValueError as err:
                    raise _BadInput("bad_timestamp", str(err)) from None
        quality = Quality.BAD if value is None else Quality.GOOD
        return Sample(ts, target.line, target.signal, value, quality)

    # --- Sparkplug B -----------------------------------------------------------------

    def _sparkplug(self, message: _Message) -> list[Sample]:
        try:
            where = parse_topic(message.topic)
        except SparkplugError as err:
            raise _BadInput("unknown_topic", str(err)) from None
        kind = where.message_type
        if kind in (MessageType.NCMD, MessageType.DCMD):
            return []  # commands (ours included) are not data
        node = self._nodes.get((where.group, where.node))
        if node is None:
            self.stats.ignored += 1
            return []
        try:
            payload = decode_payload(message.payload)
        except SparkplugError as err:
            raise _BadInput("not_protobuf", str(err)) from None
        if kind is MessageType.NDEATH:
            return self._ndeath(node, payload, message)
        if kind is MessageType.NBIRTH:
            return self._nbirth(node, payload, message)
        if not node.born:
            self._request_rebirth(node)
            raise _BadInput("no_birth", f"{kind.value} before an NBIRTH of "
                            f"{node.group}/{node.node}")
        if not self._check_seq(node, payload):
            self._request_rebirth(node)
            raise _BadInput("seq_gap", f"{kind.value} after a seq gap at "
                            f"{node.group}/{node.node}")
        if kind is MessageType.DBIRTH:
            return self._birth_metrics(node, where.device, payload, message)
        if kind is MessageType.DDEATH:
            self.stats.deaths += 1
            ts = payload.timestamp if payload.HasField("timestamp") else message.received_ms
            return self._bad_samples(self._targets_of(node, where.device), ts)
        return self._data(node, where.device, payload, message)

    def _nbirth(self, node: _Node, payload: Payload, message: _Message) -> list[Sample]:
        bdseq = next((m for m in payload.metrics if m.name == BDSEQ_METRIC), None)
        node.aliases.clear()
        node.names.clear()
        node.bdseq = None
        if bdseq is not None:
            with contextlib.suppress(SparkplugError, TypeError, ValueError):
                node.bdseq = int(get_value(bdseq, DataType.Int64))  # type: ignore[arg-type]
        node.born = True
        node.next_seq = next_seq(payload.seq) if payload.HasField("seq") else None
        if node.rebirth_pending is not None:
            node.rebirth_pending.cancel()
            node.rebirth_pending = None
        logger.info("NBIRTH of %s/%s (bdSeq %s)", node.group, node.node, node.bdseq)
        return self._birth_metrics(node, None, payload, message)

    def _ndeath(self, node: _Node, payload: Payload, message: _Message) -> list[Sample]:
        bdseq_metric = next((m for m in payload.metrics if m.name == BDSEQ_METRIC), None)
        bdseq: object = None
        if bdseq_metric is not None:
            with contextlib.suppress(SparkplugError):
                bdseq = get_value(bdseq_metric, DataType.Int64)
        if not node.born or bdseq != node.bdseq:
            self.stats.stale_deaths += 1
            logger.info("ignoring NDEATH of %s/%s with bdSeq %s (last NBIRTH: %s)",
                        node.group, node.node, bdseq, node.bdseq if node.born else None)
            return []
        node.born = False
        self.stats.deaths += 1
        logger.warning("NDEATH of %s/%s: its signals are bad", node.group, node.node)
        ts = payload.timestamp if payload.HasField("timestamp") else message.received_ms
        targets = [t for (g, n, _d, _m), ts_ in self._metrics.items()
                   if (g, n) == (node.group, node.node) for t in ts_]
        return self._bad_samples(targets, ts)

    def _check_seq(self, node: _Node, payload: Payload) -> bool:
        if not payload.HasField("seq"):
            return True
        expected = node.next_seq
        node.next_seq = next_seq(payload.seq)
        if expected is None or payload.seq == expected:
            return True
        self.stats.seq_gaps += 1
        node.born = False
        logger.warning("seq gap at %s/%s: got %d, expected %d", node.group, node.node,
                       payload.seq, expected)
        return False

    def _targets_of(self, node: _Node, device: str | None) -> list[_Target]:
        return [t for (g, n, d, _m), targets in self._metrics.items()
                if (g, n, d) == (node.group, node.node, device) for t in targets]

    def _birth_metrics(self, node: _Node, device: str | None, payload: Payload,
                       message: _Message) -> list[Sample]:
        self.stats.births += 1
        for metric in payload.metrics:
            if not metric.HasField("name"):
                continue
            datatype = metric.datatype if metric.HasField("datatype") else 0
            node.names[(device, metric.name)] = datatype
            if metric.HasField("alias"):
                node.aliases[metric.alias] = (device, metric.name, datatype)
        return self._data(node, device, payload, message)

    def _data(self, node: _Node, device: str | None, payload: Payload,
              message: _Message) -> list[Sample]:
        default_ts = payload.timestamp if payload.HasField("timestamp") else message.received_ms
        samples: list[Sample] = []
        for metric in payload.metrics:
            if metric.HasField("name"):
                name = metric.name
                datatype: int | None = node.names.get((device, name))
            elif metric.HasField("alias") and metric.alias in node.aliases:
                alias_device, name, datatype = node.aliases[metric.alias]
                if alias_device != device:
                    self._dead_letter("unknown_alias", message.topic,
                                      f"alias {metric.alias} belongs to device {alias_device}",
                                      message.payload)
                    continue
            else:
                self._dead_letter("unknown_alias", message.topic,
                                  f"alias {metric.alias if metric.HasField('alias') else None} "
                                  "is not in the birth", message.payload)
                continue
            targets = self._metrics.get((node.group, node.node, device, name))
            if targets is None:
                self.stats.ignored += 1
                continue
            try:
                value = get_value(metric, datatype or None)
            except SparkplugError as err:
                self._dead_letter("wrong_type", message.topic, str(err), message.payload)
                continue
            ts = metric.timestamp if metric.HasField("timestamp") else default_ts
            quality = Quality.BAD if value is None else Quality.GOOD
            samples.extend(Sample(ts, t.line, t.signal, value, quality) for t in targets)
        return samples

    # --- rebirth requests ------------------------------------------------------------

    async def _request_all_rebirths(self) -> None:
        for node in self._nodes.values():
            self._request_rebirth(node)

    def _request_rebirth(self, node: _Node) -> None:
        """Send a rebirth NCMD now, or once the rate limit allows (one per interval)."""
        if node.rebirth_pending is not None:
            return
        now = time.monotonic()
        wait = 0.0 if node.last_rebirth is None else (
            node.last_rebirth + self.rebirth_interval_s - now)
        if wait <= 0:
            self._send_rebirth(node)
            return
        assert self._loop is not None
        node.rebirth_pending = self._loop.call_later(wait, self._pending_rebirth, node)

    def _pending_rebirth(self, node: _Node) -> None:
        node.rebirth_pending = None
        if not node.born:
            self._send_rebirth(node)

    def _send_rebirth(self, node: _Node) -> None:
        client = self._client
        if client is None:
            return
        node.last_rebirth = time.monotonic()
        command = Payload(timestamp=_now_ms())
        add_metric(command, True, DataType.Boolean, name=REBIRTH_METRIC)
        client.publish(topic(node.group, MessageType.NCMD, node.node), encode_payload(command),
                       qos=0)
        self.stats.rebirths_requested += 1
        logger.info("requested a rebirth of %s/%s", node.group, node.node)
