"""The MQTT collector against a real mosquitto and the simulator's real MQTT publisher.

JSON (S2 timestamps, {line} templates), Sparkplug B (aliases, UInt32, seq gap → rebirth,
NDEATH → bad samples, S3), bad input (§8) and QoS 1 manual acknowledgement (§8). Every wait
is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from collectors.mqtt import MqttCollector, MqttCollectorError
from linewatch.config import MqttSource, PlantConfig, parse_config
from linewatch.sample import Quality, Sample
from linewatch.sparkplug.codec import (
    REBIRTH_METRIC,
    MessageType,
    Payload,
    decode_payload,
    encode_payload,
    find_metric,
    get_value,
    topic,
)
from simulator.mqtt_publisher import SimMqttPublisher
from tests.mosquitto import Mosquitto, free_port, start_mosquitto

T0 = 1_780_000_000_000
WAIT_S = 10.0

CONFIG = """\
site: {id: test}
lines:
  - id: L1
    detection: counts
    signals:
      total_count: {source: broker, topic: "PFX/{line}/count", path: "$.total", ts_path: "$.ts"}
      good_count: {source: broker, topic: "PFX/{line}/count", path: "$.good", ts_path: "$.ts"}
      telemetry:
        - {name: temp_c, source: broker, topic: "PFX/{line}/temp", path: "$.v"}
  - id: L2
    detection: counts
    signals:
      total_count: {source: broker, topic: "PFX/{line}/count", path: "$.total", ts_path: "$.ts"}
  - id: L3
    detection: counts
    signals:
      total_count: {source: spb, group: GRP, node: Edge1, device: "{line}", metric: Count/Total}
      good_count: {source: spb, group: GRP, node: Edge1, device: "{line}", metric: Count/Good,
                   counter_max: 65535}
      energy_kwh: {source: spb, group: GRP, node: Edge1, metric: Energy}
sources:
  mqtt:
    - {id: broker, format: json, qos: 1, client_id: CID-json}
    - {id: spb, format: sparkplug, qos: 1, client_id: CID-spb}
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    server = start_mosquitto()
    yield server
    server.stop()


class Names:
    """Per-test topic prefix, Sparkplug group and client ids, so tests never mix."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.prefix, self.group, self.cid = f"t{tag}", f"G{tag}", f"c{tag}"
        self.config: PlantConfig = parse_config(
            CONFIG.replace("PFX", self.prefix).replace("GRP", self.group)
            .replace("CID", self.cid))

    def source(self, source_id: str) -> MqttSource:
        return next(s for s in self.config.sources.mqtt if s.id == source_id)

    def spb(self, kind: MessageType, device: str | None = None) -> str:
        return topic(self.group, kind, "Edge1", device)


@pytest.fixture
def names() -> Names:
    return Names()


class Sink:
    """Collects what the collector hands over; waits on conditions with a deadline."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._event = asyncio.Event()

    async def __call__(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)
        self._event.set()

    async def wait(self, condition: Callable[[list[Sample]], bool],
                   timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self.samples):
            self._event.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"condition not met in time; got {self.samples}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)

    def find(self, asset: str, signal: str, value: object = None) -> list[Sample]:
        return [s for s in self.samples if s.asset == asset and s.signal == signal
                and (value is None or s.value == value)]


async def until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait for a condition the collector's own task makes true (stats, dead letters)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)  # polling interval, bounded by the deadline


def collector(broker: Mosquitto, names: Names, source_id: str, sink: Any,
              **kwargs: Any) -> MqttCollector:
    return MqttCollector(names.config, names.source(source_id), sink, host=broker.host,
                         port=broker.port, **kwargs)


def publisher(broker: Mosquitto, names: Names, source_id: str) -> SimMqttPublisher:
    return SimMqttPublisher(names.config, names.source(source_id), host=broker.host,
                            port=broker.port)


class Raw:
    """A plain paho client: publishes raw payloads and queues what it subscribed to."""

    def __init__(self, broker: Mosquitto, topics: list[str] | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-raw-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(WAIT_S), "no SUBACK"

    def send(self, topic_: str, payload: bytes) -> None:
        self.client.publish(topic_, payload, qos=1).wait_for_publish(WAIT_S)

    def next(self, topic_: str, timeout_s: float = WAIT_S) -> bytes:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                got, payload = self.messages.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"no message on {topic_} within {timeout_s} s") from None
            if got == topic_:
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


# --- (1) JSON ------------------------------------------------------------------------------


def test_json_samples_arrive_with_ts_path_and_a_shared_line_template(broker: Mosquitto,
                                                                     names: Names) -> None:
    sink = Sink()
    col = collector(broker, names, "broker", sink)
    pub = publisher(broker, names, "broker")
    raw = Raw(broker)
    assert col.subscriptions == [f"{names.prefix}/+/count", f"{names.prefix}/L1/temp"]

    async def scenario() -> None:
        async with col:
            await pub.start()
            before = int(time.time() * 1000)
            await pub.publish([Sample(T0, "L1", "total_count", 5),
                               Sample(T0, "L1", "good_count", 4),
                               Sample(T0 + 1000, "L2", "total_count", 7),
                               Sample(T0 + 2000, "L1", "temp_c", 21.5)])
            await sink.wait(lambda s: len(s) == 4)
            await asyncio.to_thread(raw.send, f"{names.prefix}/L2/count",
                                    b'{"total": 9, "ts": "2026-06-01T00:00:00.250Z"}')
            await sink.wait(lambda s: len(s) == 5)
            after = int(time.time() * 1000)
            await pub.stop()
        assert set(sink.samples[:3]) == {Sample(T0, "L1", "total_count", 5),
                                         Sample(T0, "L1", "good_count", 4),
                                         Sample(T0 + 1000, "L2", "total_count", 7)}
        (temp,) = sink.find("L1", "temp_c")
        assert temp.value == 21.5 and before <= temp.ts <= after, "no ts_path: receive time"
        assert sink.samples[4] == Sample(1_780_272_000_250, "L2", "total_count", 9)
        assert col.stats.acked == 4 and col.stats.bad_input == {}

    try:
        run(scenario())
    finally:
        raw.close()


# --- (2)-(4) Sparkplug B -------------------------------------------------------------------


def test_sparkplug_births_aliases_and_uint32(broker: Mosquitto, names: Names) -> None:
    sink = Sink()
    col = collector(broker, names, "spb", sink)
    pub = publisher(broker, names, "spb")
    big = 3_000_000_000  # > 2^31: a UInt32 register in long_value

    async def scenario() -> None:
        await pub.start()  # before the collector: its start-up rebirth brings the births
        await pub.publish([Sample(T0, "L3", "total_count", 10)])
        async with col:
            await sink.wait(lambda _s: bool(sink.find("L3", "total_count", 10)))
            await pub.publish([Sample(T0 + 1000, "L3", "total_count", big),
                               Sample(T0 + 1000, "L3", "good_count", 65535),
                               Sample(T0 + 1000, "L3", "energy_kwh", 1.25)])
            await sink.wait(lambda s: len([x for x in s if x.ts == T0 + 1000]) == 3)
            await pub.stop()
        data = {s.signal: s for s in sink.samples if s.ts == T0 + 1000}
        assert {k: (s.value, s.quality) for k, s in data.items()} == {
            "total_count": (big, Quality.GOOD), "good_count": (65535, Quality.GOOD),
            "energy_kwh": (1.25, Quality.GOOD)}
        assert col.stats.rebirths_requested >= 1 and col.stats.births >= 2
        assert col.stats.bad_input == {}

    run(scenario())


def test_seq_gap_dead_letters_and_requests_a_rebirth(broker: Mosquitto, names: Names) -> None:
    sink = Sink()
    col = collector(broker, names, "spb", sink, rebirth_interval_s=1.0)
    pub = publisher(broker, names, "spb")
    raw = Raw(broker, [names.spb(MessageType.NCMD)])

    async def scenario() -> None:
        async with col:
            await asyncio.to_thread(raw.next, names.spb(MessageType.NCMD))  # start-up request
            await pub.start()
            await pub.publish([Sample(T0, "L3", "total_count", 1)])
            await sink.wait(lambda _s: bool(sink.find("L3", "total_count", 1)))
            pub.force_seq_gap()
            await pub.publish([Sample(T0 + 1000, "L3", "total_count", 2)])
            command = decode_payload(await asyncio.to_thread(raw.next,
                                                             names.spb(MessageType.NCMD)))
            rebirth = find_metric(command, REBIRTH_METRIC)
            assert rebirth is not None and get_value(rebirth) is True
            assert col.stats.bad_input.get("seq_gap") == 1 and col.stats.seq_gaps == 1
            assert col.dead_letters[-1].kind == "seq_gap"
            # the publisher answers with births that carry the dead-lettered value
            await sink.wait(lambda _s: bool(sink.find("L3", "total_count", 2)))
            await pub.publish([Sample(T0 + 2000, "L3", "total_count", 3)])
            await sink.wait(lambda _s: bool(sink.find("L3", "total_count", 3)))
            await pub.stop()
        (three,) = sink.find("L3", "total_count", 3)
        assert three == Sample(T0 + 2000, "L3", "total_count", 3)

    try:
        run(scenario())
    finally:
        raw.close()


def test_killed_node_ndeath_makes_every_mapped_signal_bad(broker: Mosquitto,
                                                          names: Names) -> None:
    sink = Sink()
    col = collector(broker, names, "spb", sink)
    pub = publisher(broker, names, "spb")

    async def scenario() -> None:
        async with col:
            await pub.start()
            await pub.publish([Sample(T0, "L3", "total_count", 1)])
            await sink.wait(lambda _s: bool(sink.find("L3", "total_count", 1)))
            seen = len(sink.samples)
            await pub.kill()
            await sink.wait(lambda s: len(s) >= seen + 3)
            await pub.stop()
        dead = sink.samples[seen:seen + 3]
        assert {(s.asset, s.signal, s.quality) for s in dead} == {
            ("L3", "total_count", Quality.BAD), ("L3", "good_count", Quality.BAD),
            ("L3", "energy_kwh", Quality.BAD)}
        assert col.stats.deaths == 1

    run(scenario())


# --- (5) bad input ---------------------------------------------------------------------------


def test_bad_input_is_counted_dead_lettered_and_survived(broker: Mosquitto,
                                                         names: Names) -> None:
    json_sink, spb_sink = Sink(), Sink()
    json_col = collector(broker, names, "broker", json_sink)
    spb_col = collector(broker, names, "spb", spb_sink)
    json_pub, spb_pub = publisher(broker, names, "broker"), publisher(broker, names, "spb")
    raw = Raw(broker)
    p = names.prefix

    async def scenario() -> None:
        async with json_col, spb_col:
            await json_pub.start()
            await spb_pub.start()
            for topic_, payload in (
                    (f"{p}/L1/count", b"{not json"),
                    (f"{p}/L9/count", json.dumps({"total": 1}).encode()),  # under +/count
                    (f"{p}/L2/count", json.dumps({"total": {"a": 1}}).encode()),
                    (f"{p}/L1/temp", json.dumps({"x": 1}).encode()),
                    (names.spb(MessageType.NDATA), b"\xff\xff\xff")):
                await asyncio.to_thread(raw.send, topic_, payload)
            await until(lambda: sum(json_col.stats.bad_input.values()) == 4
                        and spb_col.stats.bad_input.get("not_protobuf") == 1)
            await json_pub.publish([Sample(T0, "L2", "total_count", 8)])
            await spb_pub.publish([Sample(T0, "L3", "total_count", 8)])
            await json_sink.wait(lambda _s: bool(json_sink.find("L2", "total_count", 8)))
            await spb_sink.wait(lambda _s: bool(spb_sink.find("L3", "total_count", 8)))
            await json_pub.stop()
            await spb_pub.stop()
        assert json_col.stats.bad_input == {"not_json": 1, "unknown_topic": 1,
                                            "not_scalar": 1, "path_missing": 1}
        assert [(d.kind, d.topic) for d in json_col.dead_letters] == [
            ("not_json", f"{p}/L1/count"), ("unknown_topic", f"{p}/L9/count"),
            ("not_scalar", f"{p}/L2/count"), ("path_missing", f"{p}/L1/temp")]
        assert json_col.dead_letters[0].payload == b"{not json"
        assert spb_col.dead_letters[0].kind == "not_protobuf"
        assert json_col.stats.acked == 5, "bad input is acknowledged once dead-lettered"

    try:
        run(scenario())
    finally:
        raw.close()


# --- (6) QoS 1 manual acknowledgement --------------------------------------------------------


@pytest.mark.parametrize("failure", ["raises", "blocks"])
def test_unacknowledged_message_is_redelivered_to_the_next_session(
        broker: Mosquitto, names: Names, failure: str) -> None:
    async def scenario() -> None:
        handed = asyncio.Event()

        async def failing(samples: list[Sample]) -> None:
            handed.set()
            if failure == "raises":
                raise RuntimeError("spool unavailable")
            await asyncio.Event().wait()  # never commits

        first = collector(broker, names, "broker", failing)
        pub = publisher(broker, names, "broker")
        await first.start()
        await pub.start()
        await pub.publish([Sample(T0, "L1", "total_count", 42)])
        await asyncio.wait_for(handed.wait(), WAIT_S)
        await first.stop()
        assert first.stats.acked == 0
        sink = Sink()
        second = collector(broker, names, "broker", sink)
        assert second.client_id == first.client_id
        async with second:
            await sink.wait(lambda _s: bool(sink.find("L1", "total_count", 42)))
        assert sink.samples == [Sample(T0, "L1", "total_count", 42)]
        assert second.stats.acked == 1
        await pub.stop()

    run(scenario())


# --- rate limit, connection loss, no broker --------------------------------------------------


def test_data_without_birth_asks_for_at_most_one_rebirth_per_interval(
        broker: Mosquitto, names: Names) -> None:
    sink = Sink()
    col = collector(broker, names, "spb", sink)  # the default 5 s interval
    raw = Raw(broker, [names.spb(MessageType.NCMD)])
    orphan = encode_payload(Payload(timestamp=T0, seq=5))

    async def scenario() -> None:
        async with col:
            await asyncio.to_thread(raw.next, names.spb(MessageType.NCMD))  # start-up request
            for _ in range(3):
                await asyncio.to_thread(raw.send, names.spb(MessageType.NDATA), orphan)
            await until(lambda: col.stats.bad_input.get("no_birth") == 3)
            assert col.stats.rebirths_requested == 1, "the next waits for the 5 s window"
        assert sink.samples == []

    try:
        run(scenario())
    finally:
        raw.close()


def test_connection_loss_makes_every_mapped_signal_bad_then_data_flows_again() -> None:
    server = start_mosquitto()
    names = Names()
    sink = Sink()
    col = collector(server, names, "broker", sink)
    pub = publisher(server, names, "broker")

    async def scenario() -> None:
        async with col:
            await asyncio.to_thread(server.restart)
            await sink.wait(lambda s: len(s) == 4)
            assert {(s.asset, s.signal, s.quality) for s in sink.samples} == {
                ("L1", "total_count", Quality.BAD), ("L1", "good_count", Quality.BAD),
                ("L1", "temp_c", Quality.BAD), ("L2", "total_count", Quality.BAD)}
            await until(lambda: col.stats.connects == 2)
            await pub.start()
            await pub.publish([Sample(T0, "L2", "total_count", 3)])
            await sink.wait(lambda _s: bool(sink.find("L2", "total_count", 3)))
            await pub.stop()

    try:
        run(scenario())
    finally:
        server.stop()


def test_start_fails_with_a_clear_error_when_no_broker_answers() -> None:
    names = Names()
    col = MqttCollector(names.config, names.source("broker"), Sink(), host="127.0.0.1",
                        port=free_port(), connect_timeout_s=0.5)

    async def scenario() -> None:
        with pytest.raises(MqttCollectorError, match=r"within 0\.5 s"):
            await col.start()

    run(scenario())
