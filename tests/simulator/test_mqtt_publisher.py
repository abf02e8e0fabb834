"""Acceptance 3 (issue 3): a real mosquitto carries the simulator's JSON, plain and Sparkplug B
streams, and a plain paho subscriber decodes them with the generated protobuf module.

Also the shared Sparkplug codec (linewatch.sparkplug.codec): schema field numbers, topics,
integer encodings. Every wait is on a queue or a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from linewatch.config import PlantConfig, parse_config
from linewatch.sample import Quality, Sample
from linewatch.sparkplug import sparkplug_b_pb2 as pb
from linewatch.sparkplug.codec import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    MessageType,
    Payload,
    SparkplugError,
    Topic,
    add_metric,
    coerce_value,
    datatype_for,
    decode_payload,
    encode_payload,
    find_metric,
    get_value,
    parse_topic,
    set_value,
    topic,
)
from simulator.mqtt_publisher import MqttPublishError, SimMqttPublisher, parse_json_path
from tests import servers
from tests.mosquitto import Mosquitto, free_port, start_mosquitto

T0 = 1_780_000_000_000  # epoch ms of the first simulated sample
WAIT_S = 10.0

CONFIG = """\
site: {id: test}
lines:
  - id: L1
    state_map: {"1": running, "2": unplanned_stop}
    signals:
      state: {source: plc1, node: "ns=2;s=L1.State"}
      total_count: {source: broker, topic: "PFX/{line}/count", path: "$.total", ts_path: "$.ts"}
      good_count: {source: broker, topic: "PFX/{line}/count", path: "$.good", ts_path: "$.ts"}
      reject_count: {source: broker, topic: "PFX/{line}/vision", path: "$.inspection.rejects"}
      product: {source: plain, topic: "PFX/{line}/product"}
      telemetry:
        - {name: temp_c, source: other, topic: "PFX/{line}/temp", path: "$.v"}
        - {name: speed, source: plain, topic: "PFX/{line}/speed"}
        - {name: door_open, source: plain, topic: "PFX/{line}/door"}
  - id: L2
    detection: counts
    signals:
      total_count: {source: spb, group: GRP, node: Edge1, device: "{line}", metric: Count/Total}
      good_count: {source: spb, group: GRP, node: Edge1, device: "{line}", metric: Count/Good,
                   counter_max: 65535}
      energy_kwh: {source: spb, group: GRP, node: Edge1, metric: Energy}
      telemetry:
        - {name: current_a, source: spb, group: GRP, node: Edge1, device: "{line}",
           metric: Motor/Current}
  - id: L3
    state_map: {"1": running, "2": unplanned_stop}
    signals:
      state: {source: spb, group: GRP, node: Edge1, device: "{line}", metric: State}
      total_count: {source: broker, topic: "PFX/{line}/count", path: "$.total", ts_path: "$.ts"}
sources:
  opcua:
    - {id: plc1, endpoint: "opc.tcp://127.0.0.1:4840"}
  mqtt:
    - {id: broker, format: json, qos: 1, client_id: edge-json}
    - {id: other, format: json}
    - {id: plain, format: plain, qos: 0}
    - {id: spb, format: sparkplug, qos: 1, client_id: edge-spb}
"""


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    server = start_mosquitto()
    yield server
    server.stop()


class Names:
    """Per-test topic prefix and Sparkplug group, so tests on one broker never mix."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"t{tag}"
        self.group = f"G{tag}"

    def config(self) -> PlantConfig:
        return parse_config(CONFIG.replace("PFX", self.prefix).replace("GRP", self.group))

    def spb(self, kind: MessageType, device: str | None = None) -> str:
        return topic(self.group, kind, "Edge1", device)


def publisher(broker: Mosquitto, config: PlantConfig, source_id: str) -> SimMqttPublisher:
    source = next(s for s in config.sources.mqtt if s.id == source_id)
    return SimMqttPublisher(config, source, host=broker.host, port=broker.port)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    servers.wait_until(condition, timeout_s, "the condition")


class Subscriber:
    """A plain paho client on the test's topics; messages queue up in arrival order."""

    def __init__(self, broker: Mosquitto, topics: list[str]) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-sub-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(WAIT_S), "no SUBACK"

    def next(self, predicate: Callable[[str, bytes], bool] = lambda _t, _p: True,
             timeout_s: float = WAIT_S) -> tuple[str, bytes]:
        """The next message matching `predicate`; others before it are dropped."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.messages.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no matching message within {timeout_s} s") from None
            if predicate(*message):
                return message

    def take(self, n: int, timeout_s: float = WAIT_S) -> list[tuple[str, bytes]]:
        return [self.next(timeout_s=timeout_s) for _ in range(n)]

    def spb(self, topic_: str, timeout_s: float = WAIT_S) -> Payload:
        """The next Sparkplug message on `topic_`, decoded."""
        return decode_payload(self.next(lambda t, _p: t == topic_, timeout_s)[1])

    def send(self, topic_: str, payload: bytes) -> None:
        self.client.publish(topic_, payload, qos=1).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def sub(broker: Mosquitto, names: Names) -> Iterator[Subscriber]:
    subscriber = Subscriber(broker, [f"{names.prefix}/#", f"spBv1.0/{names.group}/#"])
    yield subscriber
    subscriber.close()


def sample(ts: int, line: str, signal: str, value: object,
           quality: Quality = Quality.GOOD) -> Sample:
    return Sample(ts, line, signal, value, quality)


def metrics_by_name(payload: Payload) -> dict[str, Any]:
    return {m.name: m for m in payload.metrics}


def counts_step(i: int) -> list[Sample]:
    ts = T0 + i * 1000
    return [sample(ts, "L2", "total_count", i), sample(ts, "L2", "good_count", i)]


# --- (a) JSON ----------------------------------------------------------------------------


def test_json_puts_values_at_paths_and_ts_at_ts_path(broker: Mosquitto, names: Names,
                                                      sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "broker")

    async def scenario() -> None:
        await pub.start()
        await pub.publish([
            sample(T0, "L1", "total_count", 10),
            sample(T0, "L1", "good_count", 9),       # same topic, same ts: merged
            sample(T0, "L3", "total_count", 20),     # {line} -> L3
            sample(T0, "L1", "reject_count", 1),     # nested path, no ts_path
            sample(T0 + 1000, "L1", "total_count", 11),
        ])
        await pub.stop()

    run(scenario())
    received: dict[str, list[Any]] = {}
    for topic_, payload in sub.take(4):
        received.setdefault(topic_, []).append(json.loads(payload))
    p = names.prefix
    assert received == {
        f"{p}/L1/count": [{"total": 10, "good": 9, "ts": T0}, {"total": 11, "ts": T0 + 1000}],
        f"{p}/L3/count": [{"total": 20, "ts": T0}],
        f"{p}/L1/vision": [{"inspection": {"rejects": 1}}],
    }
    assert (pub.stats.samples, pub.stats.messages) == (5, 4)


def test_json_paths_that_overlap_are_not_merged() -> None:
    config = parse_config(CONFIG.replace("PFX", "x").replace("GRP", "G").replace(
        'path: "$.good"', 'path: "$.total"'))
    pub = SimMqttPublisher(config, config.sources.mqtt[0])
    messages: list[tuple[str, bytes, int]] = []

    class Recorder:
        def publish(self, topic_: str, payload: bytes, qos: int) -> None:
            messages.append((topic_, payload, qos))

    pub._conn = Recorder()  # type: ignore[assignment]  # no broker needed: look at the messages
    pub._started = True
    run(pub.publish([sample(T0, "L1", "total_count", 10), sample(T0, "L1", "good_count", 9)]))
    assert [json.loads(m[1]) for m in messages] == [{"total": 10, "ts": T0},
                                                     {"total": 9, "ts": T0}]
    assert {m[2] for m in messages} == {1}


def test_json_path_grammar() -> None:
    assert parse_json_path("$") == ()
    assert parse_json_path("$.a") == ("a",)
    assert parse_json_path("$.a.b_c") == ("a", "b_c")
    for bad in ("a.b", "$.", "$.a..b", "$.a[0]", "$a", ""):
        with pytest.raises(ValueError, match="JSON path"):
            parse_json_path(bad)


def test_plain_publishes_the_value_as_text(broker: Mosquitto, names: Names,
                                           sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "plain")

    async def scenario() -> None:
        await pub.start()
        await pub.publish([sample(T0, "L1", "speed", 12.5), sample(T0, "L1", "product", "P30"),
                           sample(T0, "L1", "door_open", True), sample(T0, "L1", "speed", 7)])
        await pub.stop()

    run(scenario())
    p = names.prefix
    received = sorted(sub.take(4))
    assert received == sorted([(f"{p}/L1/speed", b"12.5"), (f"{p}/L1/product", b"P30"),
                               (f"{p}/L1/door", b"true"), (f"{p}/L1/speed", b"7")])


# --- (g) only this source's signals ---------------------------------------------------------


def test_samples_of_other_sources_are_ignored(broker: Mosquitto, names: Names,
                                              sub: Subscriber) -> None:
    config = names.config()
    json_pub, spb_pub = publisher(broker, config, "broker"), publisher(broker, config, "spb")
    foreign = [
        sample(T0, "L1", "state", 1),           # OPC UA source plc1
        sample(T0, "L1", "temp_c", 21.5),       # the other JSON source
        sample(T0, "L1", "speed", 3.0),         # the plain source
        sample(T0, "L9", "total_count", 5),     # no such line
        sample(T0, "L1", "no_such_signal", 5),
    ]

    async def scenario() -> None:
        await json_pub.start()
        await spb_pub.start()
        await json_pub.publish([*foreign, sample(T0, "L2", "total_count", 5),  # spb's
                                sample(T0, "L1", "total_count", 4, Quality.BAD),
                                sample(T0, "L1", "reject_count", 2)])          # the sentinel
        await spb_pub.publish([*foreign, sample(T0, "L1", "total_count", 4),   # broker's
                               sample(T0, "L2", "total_count", 6)])            # the sentinel
        await json_pub.stop()
        await spb_pub.stop()

    run(scenario())
    data_topics = {f"{names.prefix}/L1/vision", names.spb(MessageType.DDATA, "L2")}
    arrived = [sub.next(lambda t, _p: t.startswith(names.prefix) or "DATA" in t)
               for _ in range(2)]
    assert {t for t, _ in arrived} == data_topics, "something else was published first"
    assert json.loads(dict(arrived)[f"{names.prefix}/L1/vision"]) == {"inspection": {"rejects": 2}}
    ddata = decode_payload(dict(arrived)[names.spb(MessageType.DDATA, "L2")])
    assert [m.long_value for m in ddata.metrics] == [6]
    assert (json_pub.stats.ignored, json_pub.stats.skipped_bad) == (6, 1)
    assert (spb_pub.stats.ignored, spb_pub.stats.samples) == (6, 1)


# --- (b) Sparkplug B births, data, seq ---------------------------------------------------


def test_sparkplug_births_name_alias_and_type_every_metric(broker: Mosquitto, names: Names,
                                                           sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")

    async def scenario() -> None:
        await pub.start()
        await pub.stop()

    run(scenario())
    nbirth = sub.spb(names.spb(MessageType.NBIRTH))
    assert nbirth.seq == 0 and nbirth.timestamp > 0
    node = metrics_by_name(nbirth)
    assert node[BDSEQ_METRIC].datatype == DataType.Int64
    assert get_value(node[BDSEQ_METRIC]) == 0
    assert node[REBIRTH_METRIC].datatype == DataType.Boolean
    assert node[REBIRTH_METRIC].boolean_value is False
    assert node["Energy"].datatype == DataType.Double and node["Energy"].is_null
    dbirth_l2 = sub.spb(names.spb(MessageType.DBIRTH, "L2"))
    dbirth_l3 = sub.spb(names.spb(MessageType.DBIRTH, "L3"))
    assert [dbirth_l2.seq, dbirth_l3.seq] == [1, 2]
    types = {m.name: DataType(m.datatype) for m in [*dbirth_l2.metrics, *dbirth_l3.metrics]}
    assert types == {"Count/Total": DataType.UInt32, "Count/Good": DataType.UInt16,
                     "Motor/Current": DataType.Double, "State": DataType.Int32}
    aliases = [m.alias for m in [*nbirth.metrics, *dbirth_l2.metrics, *dbirth_l3.metrics]
               if m.HasField("alias")]
    assert len(aliases) == 5 and len(set(aliases)) == 5, "one alias per metric of the node"
    ndeath = sub.spb(names.spb(MessageType.NDEATH))
    assert get_value(find_metric(ndeath, BDSEQ_METRIC)) == 0  # type: ignore[arg-type]
    assert not ndeath.HasField("seq")


def test_sparkplug_data_sends_aliases_only_and_seq_wraps(broker: Mosquitto, names: Names,
                                                         sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")
    steps = 300
    samples = [s for i in range(steps) for s in
               [*counts_step(i), sample(T0 + i * 1000, "L2", "energy_kwh", i / 4)]]

    async def scenario() -> None:
        await pub.start()
        await pub.publish(samples)
        await pub.stop()

    run(scenario())
    nbirth = sub.spb(names.spb(MessageType.NBIRTH))
    births = {m.name: m for m in nbirth.metrics}
    dbirth = sub.spb(names.spb(MessageType.DBIRTH, "L2"))
    births.update({m.name: m for m in dbirth.metrics})
    sub.spb(names.spb(MessageType.DBIRTH, "L3"))
    by_alias = {m.alias: m for m in births.values() if m.HasField("alias")}
    ddata_topic, ndata_topic = names.spb(MessageType.DDATA, "L2"), names.spb(MessageType.NDATA)
    seqs: list[int] = []
    for i in range(steps):
        ts = T0 + i * 1000
        for kind_topic, expected in ((ddata_topic, {"Count/Total": i, "Count/Good": i}),
                                     (ndata_topic, {"Energy": i / 4})):
            payload = sub.spb(kind_topic)
            seqs.append(payload.seq)
            assert payload.timestamp == ts
            values = {}
            for m in payload.metrics:
                assert not m.HasField("name") and not m.HasField("datatype")
                assert m.timestamp == ts
                birth = by_alias[m.alias]
                values[birth.name] = get_value(m, birth.datatype)
            assert values == expected
    assert seqs == [(3 + k) % 256 for k in range(2 * steps)]  # births took 0, 1, 2
    assert seqs.index(0) == 253 and seqs[252] == 255, "seq wraps from 255 to 0"


def test_sparkplug_uint32_above_2_31_travels_in_long_value(broker: Mosquitto, names: Names,
                                                           sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")
    big = 3_000_000_000  # > 2^31, a UInt32 counter register near its end

    async def scenario() -> None:
        await pub.start()
        await pub.publish([sample(T0, "L2", "total_count", big)])
        await pub.stop()

    run(scenario())
    dbirth = sub.spb(names.spb(MessageType.DBIRTH, "L2"))
    total = metrics_by_name(dbirth)["Count/Total"]
    assert total.datatype == DataType.UInt32
    (metric,) = sub.spb(names.spb(MessageType.DDATA, "L2")).metrics
    assert metric.alias == total.alias
    assert metric.WhichOneof("value") == "long_value" and metric.long_value == big
    assert get_value(metric, DataType.UInt32) == big


# --- (c) rebirth, (d) death, (e) seq gap ----------------------------------------------------


def rebirth_command() -> bytes:
    command = Payload(timestamp=T0)
    add_metric(command, True, DataType.Boolean, name=REBIRTH_METRIC)
    return encode_payload(command)


def test_rebirth_command_resends_births_with_current_values(broker: Mosquitto, names: Names,
                                                            sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")

    async def scenario() -> None:
        await pub.start()
        first = sub.spb(names.spb(MessageType.NBIRTH))
        await pub.publish(counts_step(7))
        assert sub.spb(names.spb(MessageType.DDATA, "L2")).seq == 3
        sub.send(names.spb(MessageType.NCMD), rebirth_command())
        again = sub.spb(names.spb(MessageType.NBIRTH))
        assert again.seq == 0
        assert get_value(find_metric(again, BDSEQ_METRIC)) == get_value(  # type: ignore[arg-type]
            find_metric(first, BDSEQ_METRIC)), "a rebirth keeps the session's bdSeq"  # type: ignore[arg-type]
        dbirth = sub.spb(names.spb(MessageType.DBIRTH, "L2"))
        assert dbirth.seq == 1
        total = metrics_by_name(dbirth)["Count/Total"]
        assert (get_value(total), total.timestamp) == (7, T0 + 7000)
        assert pub.stats.births == 2
        await pub.publish(counts_step(8))
        assert sub.spb(names.spb(MessageType.DDATA, "L2")).seq == 3
        await pub.stop()

    run(scenario())


def test_kill_makes_the_broker_send_the_ndeath_will(broker: Mosquitto, names: Names,
                                                    sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")

    def bdseq(payload: Payload) -> object:
        metric = find_metric(payload, BDSEQ_METRIC)
        assert metric is not None
        return get_value(metric)

    async def scenario() -> None:
        await pub.start()
        born = bdseq(sub.spb(names.spb(MessageType.NBIRTH)))
        await pub.kill()
        will = sub.spb(names.spb(MessageType.NDEATH))
        assert bdseq(will) == born
        await pub.publish(counts_step(1))  # offline: not sent
        assert pub.stats.dropped_offline == 2
        await pub.start()  # a new session: the next bdSeq
        reborn = sub.spb(names.spb(MessageType.NBIRTH))
        assert bdseq(reborn) == born + 1  # type: ignore[operator]
        assert get_value(metrics_by_name(sub.spb(names.spb(MessageType.DBIRTH, "L2")))[
            "Count/Total"]) == 1, "the birth carries the value published while offline"
        await pub.stop()
        assert bdseq(sub.spb(names.spb(MessageType.NDEATH))) == born + 1  # type: ignore[operator]

    run(scenario())


def test_force_seq_gap_skips_one_number(broker: Mosquitto, names: Names,
                                        sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")
    ddata = names.spb(MessageType.DDATA, "L2")

    async def scenario() -> None:
        await pub.start()
        await pub.publish(counts_step(1))
        before = sub.spb(ddata).seq
        pub.force_seq_gap()
        await pub.publish(counts_step(2))
        gap = sub.spb(ddata).seq
        await pub.publish(counts_step(3))
        after = sub.spb(ddata).seq
        await pub.stop()
        assert (gap - before, after - gap) == (2, 1)

    run(scenario())


def test_a_value_of_another_type_rebirths_the_node(broker: Mosquitto, names: Names,
                                                   sub: Subscriber) -> None:
    pub = publisher(broker, names.config(), "spb")

    async def scenario() -> None:
        await pub.start()
        sub.spb(names.spb(MessageType.DBIRTH, "L3"))
        await pub.publish([sample(T0, "L3", "state", 1)])
        (state,) = sub.spb(names.spb(MessageType.DDATA, "L3")).metrics
        assert get_value(state, DataType.Int32) == 1
        await pub.publish([sample(T0 + 1000, "L3", "state", "E_STOP")])
        assert sub.spb(names.spb(MessageType.NBIRTH)).seq == 0
        reborn = metrics_by_name(sub.spb(names.spb(MessageType.DBIRTH, "L3")))["State"]
        assert (reborn.datatype, get_value(reborn)) == (DataType.String, "E_STOP")
        await pub.stop()

    run(scenario())


def test_broker_restart_gives_a_new_session_with_the_next_bdseq() -> None:
    server = start_mosquitto()
    names = Names()
    pub = publisher(server, names.config(), "spb")
    sub = Subscriber(server, [f"spBv1.0/{names.group}/#"])
    try:
        async def scenario() -> None:
            nonlocal sub
            await pub.start()
            sub.spb(names.spb(MessageType.NBIRTH))
            sub.close()
            server.restart()
            sub = Subscriber(server, [f"spBv1.0/{names.group}/#"])
            await asyncio.to_thread(wait_until, lambda: pub.stats.births == 2)
            sub.send(names.spb(MessageType.NCMD), rebirth_command())  # in case we missed it
            nbirth = sub.spb(names.spb(MessageType.NBIRTH))
            assert get_value(find_metric(nbirth, BDSEQ_METRIC)) == 1  # type: ignore[arg-type]
            await pub.publish(counts_step(1))
            assert sub.spb(names.spb(MessageType.DDATA, "L2")).metrics[0].long_value == 1
            await pub.stop()

        run(scenario())
    finally:
        sub.close()
        server.stop()


def test_start_fails_with_a_clear_error_when_no_broker_answers() -> None:
    config = Names().config()
    source = next(s for s in config.sources.mqtt if s.id == "spb")
    pub = SimMqttPublisher(config, source, host="127.0.0.1", port=free_port(),
                           connect_timeout_s=0.5)

    async def scenario() -> None:
        with pytest.raises(MqttPublishError, match=r"no CONNACK within 0\.5 s"):
            await pub.start()
        with pytest.raises(MqttPublishError, match=r"outside start\(\)"):
            await pub.publish(counts_step(1))

    run(scenario())


def test_client_id_is_never_the_edge_collectors() -> None:
    names = Names()
    config = names.config()
    spb_source = next(s for s in config.sources.mqtt if s.id == "spb")
    assert SimMqttPublisher(config, spb_source).client_ids == [f"edge-spb-sim-{names.group}-Edge1"]
    json_source = next(s for s in config.sources.mqtt if s.id == "broker")
    assert SimMqttPublisher(config, json_source).client_ids == ["edge-json-sim"]
    plain_source = next(s for s in config.sources.mqtt if s.id == "plain")  # no client_id
    assert SimMqttPublisher(config, plain_source).client_ids == ["linewatch-plain-sim"]


# --- the codec ----------------------------------------------------------------------------


def test_schema_field_numbers_follow_the_specification() -> None:
    assert pb.DESCRIPTOR.package == "org.eclipse.tahu.protobuf"
    payload = {f.name: f.number for f in pb.Payload.DESCRIPTOR.fields}
    assert payload == {"timestamp": 1, "metrics": 2, "seq": 3, "uuid": 4, "body": 5}
    metric = {f.name: f.number for f in pb.Payload.Metric.DESCRIPTOR.fields}
    assert metric == {
        "name": 1, "alias": 2, "timestamp": 3, "datatype": 4, "is_historical": 5,
        "is_transient": 6, "is_null": 7, "metadata": 8, "properties": 9, "int_value": 10,
        "long_value": 11, "float_value": 12, "double_value": 13, "boolean_value": 14,
        "string_value": 15, "bytes_value": 16, "dataset_value": 17, "template_value": 18,
        "extension_value": 19,
    }
    assert [f.name for f in pb.Payload.Metric.DESCRIPTOR.oneofs_by_name["value"].fields] == [
        name for name, number in metric.items() if number >= 10]
    generated = {v.name: v.number for v in pb.DataType.DESCRIPTOR.values}
    assert generated == {d.name: d.value for d in DataType}
    assert [generated[n] for n in ("Int8", "UInt64", "Float", "Double", "Boolean", "String",
                                   "DateTime", "Text")] == [1, 8, 9, 10, 11, 12, 13, 14]


def test_topics_build_and_parse() -> None:
    assert topic("G", MessageType.DDATA, "E", "D") == "spBv1.0/G/DDATA/E/D"
    assert parse_topic("spBv1.0/G/NBIRTH/E") == Topic("G", MessageType.NBIRTH, "E")
    assert str(Topic("G", MessageType.DCMD, "E", "D")) == "spBv1.0/G/DCMD/E/D"
    for bad in ("spBv1.0/G/NBIRTH/E/D", "spBv1.0/G/DDATA/E", "spBv1.0/STATE/host",
                "spAv1.0/G/NDATA/E", "spBv1.0/G/NDATA/", "spBv1.0/G/XDATA/E"):
        with pytest.raises(SparkplugError):
            parse_topic(bad)
    for group in ("a/b", "a+", "#", ""):
        with pytest.raises(SparkplugError):
            topic(group, MessageType.NDATA, "E")


VALUE_CASES: list[tuple[DataType, object, str, object]] = [
    (DataType.Int8, -1, "int_value", 0xFFFFFFFF),
    (DataType.Int16, -300, "int_value", 2**32 - 300),
    (DataType.Int32, -(2**31), "int_value", 2**31),
    (DataType.UInt8, 255, "int_value", 255),
    (DataType.UInt16, 65535, "int_value", 65535),
    (DataType.UInt32, 2**32 - 1, "long_value", 2**32 - 1),
    (DataType.Int64, -2, "long_value", 2**64 - 2),
    (DataType.UInt64, 2**64 - 1, "long_value", 2**64 - 1),
    (DataType.DateTime, T0, "long_value", T0),
    (DataType.Double, 0.1, "double_value", 0.1),
    (DataType.Boolean, True, "boolean_value", True),
    (DataType.String, "E_STOP", "string_value", "E_STOP"),
]


@pytest.mark.parametrize(("datatype", "value", "field", "raw"), VALUE_CASES,
                         ids=[case[0].name for case in VALUE_CASES])
def test_metric_values_use_the_specified_fields(datatype: DataType, value: object, field: str,
                                                raw: object) -> None:
    payload = Payload()
    add_metric(payload, value, datatype, name="m")
    metric = decode_payload(encode_payload(payload)).metrics[0]
    assert metric.WhichOneof("value") == field
    assert getattr(metric, field) == raw
    assert get_value(metric) == value


def test_reading_is_lenient_where_writers_disagree() -> None:
    metric = pb.Payload.Metric(int_value=3_000_000_000)  # UInt32 in int_value (older writers)
    assert get_value(metric, DataType.UInt32) == 3_000_000_000
    assert get_value(pb.Payload.Metric(int_value=0xFF), DataType.Int8) == -1  # zero-extended
    assert get_value(pb.Payload.Metric(float_value=1.5), DataType.Double) == 1.5
    assert get_value(pb.Payload.Metric(is_null=True), DataType.UInt32) is None
    with pytest.raises(SparkplugError):
        get_value(pb.Payload.Metric(int_value=300), DataType.UInt8)
    with pytest.raises(SparkplugError):
        get_value(pb.Payload.Metric(string_value="1"), DataType.UInt32)
    with pytest.raises(SparkplugError, match="no value"):
        get_value(pb.Payload.Metric(name="x"), DataType.UInt32)


def test_values_are_checked_against_their_datatype() -> None:
    assert coerce_value(5.0, DataType.UInt32) == 5
    assert coerce_value(5, DataType.Double) == 5.0
    for value, datatype in ((-1, DataType.UInt32), (2**32, DataType.UInt32), (1, DataType.Boolean),
                            (5, DataType.String), (True, DataType.Int32), (1.5, DataType.Int64),
                            ("1", DataType.Int32), (128, DataType.Int8)):
        with pytest.raises(SparkplugError):
            coerce_value(value, datatype)
    metric = pb.Payload.Metric(int_value=4)
    set_value(metric, None, DataType.UInt32)
    assert metric.is_null and metric.WhichOneof("value") is None
    assert [datatype_for(v) for v in (True, 1, 2**40, 2**63, 1.0, "x", b"x")] == [
        DataType.Boolean, DataType.Int32, DataType.Int64, DataType.UInt64, DataType.Double,
        DataType.String, DataType.Bytes]
    with pytest.raises(SparkplugError, match="not a Sparkplug B payload"):
        decode_payload(b"\xff\xff\xff")
