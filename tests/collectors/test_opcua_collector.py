"""collectors/opcua.py against the real simulated PLC (simulator/opcua_server.py) on free ports.

Every test publishes its own values on a real asyncua server and waits (with a timeout) for
the collector to deliver exactly those; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from collectors.opcua import OpcuaCollector
from linewatch.config import OpcuaSource, PlantConfig, parse_config
from linewatch.sample import Quality, Sample
from simulator.opcua_server import SimOpcuaServer

pytestmark = pytest.mark.anyio
logger = logging.getLogger(__name__)

WAIT_S = 15.0
ACME = "urn:acme:plc"
PASSWORD = "s3cret-Kwun-Tong"
TS0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

# (line, signal) -> (value published, value the collector must deliver)
SIGNALS = """
  - id: L1
    state_map: {"1": running, "2": unplanned_stop}
    signals:
      state: {source: plc1, node: "ns=2;s=L1.State"}
      total_count: {source: plc1, node: "ns=2;s=L1.Count.Total"}
      telemetry:
        - {name: temperature, source: plc1, node: "ns=2;s=L1.Temperature"}
        - {name: humidity, source: broker, topic: "plant/L1/env", path: "$.rh"}
  - id: L2
    state_map: {RUN: running, JAM: unplanned_stop}
    signals:
      state: {source: plc1, node: "nsu=urn:acme:plc;s=L2.State"}
      product: {source: plc1, node: "nsu=urn:acme:plc;s=L2.Product"}
      energy_kwh: {source: plc1, browse_path: "0:Objects/2:L2/2:PowerMeter/2:EnergyTotal"}
"""
EXTRA_LINE = """
  - id: L0
    state_map: {"1": running}
    signals:
      state: {source: plc1, node: "nsu=urn:other:plc;s=L0.State"}
"""
KEYS = {("L1", "state"), ("L1", "total_count"), ("L1", "temperature"), ("L2", "state"),
        ("L2", "product"), ("L2", "energy_kwh")}


GHOSTS = """
  - id: L9
    state_map: {"1": running}
    signals:
      state: {source: plc1, node: "nsu=urn:missing:plc;s=L9.State"}
      telemetry:
        - {name: ghost, source: plc1, browse_path: "0:Objects/2:L1/2:Nope"}
        - {name: unknown, source: plc1, node: "ns=2;s=L1.Nope"}
"""


def plant(mode: str = "subscribe", timestamp: str = "source", extra_first: bool = False,
          security: str = "{policy: None}", auth: str = "", interval_ms: int = 50,
          ghosts: bool = False) -> PlantConfig:
    """The test plant; extra_first puts a line with another nsu namespace first."""
    lines = (EXTRA_LINE if extra_first else "") + SIGNALS + (GHOSTS if ghosts else "")
    return parse_config(f"""
site: {{id: test-site}}
lines:{lines}
sources:
  opcua:
    - id: plc1
      endpoint: "opc.tcp://127.0.0.1:4840"
      mode: {mode}
      interval_ms: {interval_ms}
      timestamp: {timestamp}
      security: {security}
      {auth}
  mqtt:
    - id: broker
""", "test.yaml")


def values(shift: int) -> dict[tuple[str, str], tuple[object, object]]:
    """Published and expected values; `shift` makes every publish new."""
    return {
        ("L1", "state"): (1 + shift % 2, 1 + shift % 2),
        ("L1", "total_count"): (4_000_000_000 + shift, 4_000_000_000 + shift),
        ("L1", "temperature"): (210.25 + shift, 210.25 + shift),
        ("L2", "state"): ("JAM" if shift % 2 else "RUN", "JAM" if shift % 2 else "RUN"),
        ("L2", "product"): (f"P{shift}", f"P{shift}"),
        ("L2", "energy_kwh"): (0.5 + shift, 0.5 + shift),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """on_samples target: every delivered sample; can raise on its first call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.samples: list[Sample] = []
        self.calls = 0
        self._fail_first = fail_first
        self._event = asyncio.Event()

    async def __call__(self, batch: list[Sample]) -> None:
        self.calls += 1
        if self._fail_first and self.calls == 1:
            raise RuntimeError("a broken consumer")
        self.samples += batch
        self._event.set()

    def latest(self) -> dict[tuple[str, str], Sample]:
        return {(s.asset, s.signal): s for s in self.samples}

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        async def loop() -> None:
            while not condition():
                self._event.clear()
                await self._event.wait()

        try:
            await asyncio.wait_for(loop(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"no {what} within {WAIT_S} s; got {self.latest()}") from None

    async def wait_values(self, shift: int, since: int = 0) -> dict[tuple[str, str], Sample]:
        """Wait until every signal's published value of `shift` arrived (good) after `since`."""
        expected = {k: seen for k, (_, seen) in values(shift).items()}

        def seen() -> dict[tuple[str, str], Sample]:
            found = {}
            for s in self.samples[since:]:
                if s.good and expected.get((s.asset, s.signal)) == s.value:
                    found[(s.asset, s.signal)] = s
            return found

        await self.wait_until(lambda: set(seen()) == KEYS, f"values of shift {shift}")
        return seen()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Check a condition that no sample announces (e.g. a counter) until it holds."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S} s")
        await asyncio.sleep(0.02)


async def publish(server: SimOpcuaServer, shift: int) -> None:
    await server.publish([Sample(TS0 + shift * 1000 + i, line, signal, published)
                          for i, ((line, signal), (published, _)) in
                          enumerate(values(shift).items())])


def collector(config: PlantConfig, sink: Sink, port: int, tmp: Path, **kw: object
              ) -> OpcuaCollector:
    source = _source(config, port)
    return OpcuaCollector(config, source, sink, pki_dir=tmp / "pki-collector",
                          keepalive_s=0.5, **kw)  # type: ignore[arg-type]


def _source(config: PlantConfig, port: int) -> OpcuaSource:
    source = config.sources.opcua[0]
    return source.model_copy(update={"endpoint": f"opc.tcp://127.0.0.1:{port}"})


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimOpcuaServer]:
    config = plant()
    sim = SimOpcuaServer(config, config.sources.opcua[0], port=free_port(),
                         pki_dir=tmp_path_factory.mktemp("pki-plain"))
    await sim.start()
    yield sim
    await sim.stop()


# --- tests ---------------------------------------------------------------------------------


async def test_subscribe_delivers_source_timestamps(server: SimOpcuaServer,
                                                    tmp_path: Path) -> None:
    sink = Sink(fail_first=True)  # a raising consumer must not stop the collector
    config = plant()
    async with collector(config, sink, server.port, tmp_path) as col:
        await col.wait_connected(WAIT_S)
        await publish(server, 1)
        got = await sink.wait_values(1)
        await publish(server, 2)
        got2 = await sink.wait_values(2)
    for shift, samples in ((1, got), (2, got2)):
        for i, key in enumerate(values(shift)):
            assert samples[key].ts == TS0 + shift * 1000 + i  # S2: the SourceTimestamp
            assert samples[key].quality is Quality.GOOD
    assert isinstance(got[("L1", "total_count")].value, int)
    assert isinstance(got[("L1", "temperature")].value, float)
    assert not any(s.asset == "L1" and s.signal == "humidity" for s in sink.samples)
    assert col.stats.callback_errors == 1 and col.stats.batches >= 2
    assert col.stats.monitored_item_calls == 1 and col.stats.unresolved == 0


async def test_subscribe_splits_monitored_items(server: SimOpcuaServer, tmp_path: Path) -> None:
    sink = Sink()
    async with collector(plant(), sink, server.port, tmp_path, max_items_per_call=4) as col:
        await col.wait_connected(WAIT_S)
        await publish(server, 3)
        await sink.wait_values(3)
    assert col.stats.monitored_item_calls == 2  # 6 nodes, at most 4 per call


async def test_unresolvable_nodes_are_bad_and_the_rest_flows(server: SimOpcuaServer,
                                                              tmp_path: Path) -> None:
    sink = Sink()
    async with collector(plant(ghosts=True), sink, server.port, tmp_path) as col:
        await col.wait_connected(WAIT_S)
        await publish(server, 10)
        await sink.wait_values(10)
    ghosts = {("L9", "state"), ("L9", "ghost"), ("L9", "unknown")}
    assert ghosts <= {(s.asset, s.signal) for s in sink.samples if not s.good}
    assert not any(s.good for s in sink.samples if (s.asset, s.signal) in ghosts)
    assert col.stats.unresolved == 3


async def test_bad_status_maps_to_bad_quality(server: SimOpcuaServer, tmp_path: Path) -> None:
    sink = Sink()
    async with collector(plant(), sink, server.port, tmp_path) as col:
        await col.wait_connected(WAIT_S)
        mark = len(sink.samples)
        await server.publish([Sample(TS0 + 11_000, "L1", "state", None, Quality.BAD)])

        def bad_state() -> bool:
            return any(s.ts == TS0 + 11_000 and not s.good and s.signal == "state"
                       for s in sink.samples[mark:])

        await sink.wait_until(bad_state, "a bad-quality state sample")


async def test_deadband_on_telemetry_only(server: SimOpcuaServer, tmp_path: Path) -> None:
    sink = Sink()
    async with collector(plant(), sink, server.port, tmp_path, deadband=1.0) as col:
        await col.wait_connected(WAIT_S)
        mark = len(sink.samples)
        ts = TS0 + 12_000
        await server.publish(
            [Sample(ts + i, "L1", "temperature", v) for i, v in enumerate((-50.0, -49.5, -49.1))]
            + [Sample(ts + 3 + i, "L1", "state", v) for i, v in enumerate((1, 2, 1))]
            + [Sample(ts + 6, "L1", "temperature", -47.5)])

        def last_seen() -> bool:
            return any(s.value == -47.5 for s in sink.samples[mark:])

        await sink.wait_until(last_seen, "the temperature beyond the deadband")
        await sink.wait_until(lambda: sum(1 for s in sink.samples[mark:]
                                          if s.signal == "state") == 3, "three states")
    temps = [s.value for s in sink.samples[mark:] if s.signal == "temperature"]
    assert temps == [-50.0, -47.5]  # changes within 1.0 of the last value are filtered
    assert col.stats.unresolved == 0


async def test_poll_mode_reads_in_chunks(server: SimOpcuaServer, tmp_path: Path) -> None:
    sink = Sink()
    config = plant(mode="poll")
    async with collector(config, sink, server.port, tmp_path, max_items_per_call=4) as col:
        await col.wait_connected(WAIT_S)
        await publish(server, 4)
        got = await sink.wait_values(4)
        reads = col.stats.reads
        await eventually(lambda: col.stats.reads >= reads + 4, "more polls")
    for i, key in enumerate(values(4)):
        assert got[key].ts == TS0 + 4000 + i
    assert col.stats.reads % 2 == 0  # every poll: 6 nodes in two Reads of at most 4
    # unchanged values are not delivered again
    assert sum(1 for s in sink.samples if s.good and s.value == 210.25 + 4) == 1


async def test_timestamp_received(server: SimOpcuaServer, tmp_path: Path) -> None:
    sink = Sink()
    config = plant(timestamp="received")
    async with collector(config, sink, server.port, tmp_path) as col:
        await col.wait_connected(WAIT_S)
        before = time.time_ns() // 1_000_000
        await publish(server, 5)
        got = await sink.wait_values(5)
        after = time.time_ns() // 1_000_000
    for sample in got.values():
        assert before <= sample.ts <= after  # S2: receive time, not the 2026-01-01 source ts


async def test_nsu_resolved_through_namespace_array(tmp_path: Path) -> None:
    server_config = plant(extra_first=True)  # urn:other:plc takes the index urn:acme:plc had
    sim = SimOpcuaServer(server_config, server_config.sources.opcua[0], port=free_port(),
                         pki_dir=tmp_path / "pki-server")
    async with sim:
        assert sim.namespaces.index(ACME) != plant_namespaces().index(ACME)
        sink = Sink()
        async with collector(plant(), sink, sim.port, tmp_path) as col:
            await col.wait_connected(WAIT_S)
            await publish(sim, 6)
            await sink.wait_values(6)
        assert col.stats.unresolved == 0


def plant_namespaces() -> list[str]:
    config = plant()
    return SimOpcuaServer(config, config.sources.opcua[0], port=1).namespaces


async def test_s3_bad_samples_on_loss_then_reconnect(tmp_path: Path) -> None:
    config = plant()
    port = free_port()
    sink = Sink()
    first = SimOpcuaServer(config, config.sources.opcua[0], port=port,
                           pki_dir=tmp_path / "pki-server")
    await first.start()
    async with collector(config, sink, port, tmp_path, max_backoff_s=0.5) as col:
        try:
            await col.wait_connected(WAIT_S)
            await publish(first, 7)
            await sink.wait_values(7)
        finally:
            mark = len(sink.samples)
            await first.stop()

        def bad_for_all() -> bool:
            bad = {(s.asset, s.signal) for s in sink.samples[mark:] if not s.good}
            return bad == KEYS

        await sink.wait_until(bad_for_all, "a bad sample for every signal (S3)")
        assert not col.connected
        lost = [s for s in sink.samples[mark:] if not s.good]
        assert all(s.value is None and abs(s.ts - time.time() * 1000) < WAIT_S * 1000
                   for s in lost)

        second = SimOpcuaServer(config, config.sources.opcua[0], port=port,
                                pki_dir=tmp_path / "pki-server")
        await second.start()
        try:
            await col.wait_connected(WAIT_S)
            mark = len(sink.samples)
            await publish(second, 8)
            await sink.wait_values(8, since=mark)
        finally:
            await second.stop()
    assert col.stats.connects == 2 and col.stats.disconnects >= 1
    assert col.stats.last_error


# --- security ------------------------------------------------------------------------------

PASSWORD_ENV = "LW_TEST_COLLECTOR_PLC1_PASSWORD"


def secure_plant(trust_dir: Path, mode: str = "SignAndEncrypt") -> PlantConfig:
    return plant(security=f"{{policy: Basic256Sha256, mode: {mode}, "
                          f"trust_dir: \"{trust_dir}\"}}",
                 auth=f"auth: {{username: edge, password_env: {PASSWORD_ENV}}}")


@pytest.fixture(scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[SimOpcuaServer, Path]]:
    trust = tmp_path_factory.mktemp("trust")
    config = secure_plant(trust)
    sim = SimOpcuaServer(config, config.sources.opcua[0], port=free_port(), password=PASSWORD,
                         pki_dir=tmp_path_factory.mktemp("pki-secure"))
    await sim.start()
    shutil.copy(sim.certificate_path, trust / "plc1.der")
    yield sim, trust
    await sim.stop()


@pytest.mark.parametrize("mode", ["SignAndEncrypt", "Sign"])
async def test_secure_channel_with_password(
        secure: tuple[SimOpcuaServer, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    sim, trust = secure
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)  # the collector reads password_env itself
    sink = Sink()
    async with collector(secure_plant(trust, mode), sink, sim.port, tmp_path) as col:
        await col.wait_connected(WAIT_S)
        await publish(sim, 9)
        await sink.wait_values(9)
    assert (tmp_path / "pki-collector" / "own" / "cert.der").is_file()  # made on first start


async def test_secure_wrong_password_is_reported(secure: tuple[SimOpcuaServer, Path],
                                                 tmp_path: Path) -> None:
    sim, trust = secure
    sink = Sink()
    async with collector(secure_plant(trust), sink, sim.port, tmp_path,
                         password="wrong") as col:
        await sink.wait_until(lambda: col.stats.connect_errors >= 1, "a failed connect")
    assert not col.connected and col.stats.connects == 0
    assert "BadUserAccessDenied" in (col.stats.last_error or "")
    assert {(s.asset, s.signal) for s in sink.samples if not s.good} == KEYS  # S3 at start


async def test_secure_untrusted_server_certificate(secure: tuple[SimOpcuaServer, Path],
                                                   tmp_path: Path) -> None:
    sim, _ = secure
    empty = tmp_path / "empty-trust"
    empty.mkdir()
    sink = Sink()
    async with collector(secure_plant(empty), sink, sim.port, tmp_path,
                         password=PASSWORD) as col:
        await sink.wait_until(lambda: bool(sink.samples), "the S3 samples of a failed start")
    assert col.stats.connects == 0
    assert "not in trust_dir" in (col.stats.last_error or "")
    assert list((tmp_path / "pki-collector" / "rejected").glob("*.der"))


def test_source_config_keys_queue_size_deadband_and_pki_dir_reach_the_collector(
        tmp_path: Path) -> None:
    config = parse_config(f"""
site: {{id: t}}
products: [{{id: P, ideal_cycle_s: 10}}]
lines:
  - id: L1
    default_product: P
    state_map: {{"1": running}}
    signals:
      state: {{source: plc, node: "ns=2;s=L1.State"}}
sources:
  opcua:
    - id: plc
      endpoint: "opc.tcp://127.0.0.1:4840"
      queue_size: 25
      deadband: 0.5
      pki_dir: {tmp_path / "pki"}
""", "keys.yaml")
    source = config.sources.opcua[0]

    async def ignore(_samples: list[Sample]) -> None:
        return None

    collector = OpcuaCollector(config, source, ignore)
    assert (collector.queue_size, collector.deadband) == (25, 0.5)
    assert collector.pki_dir == tmp_path / "pki"
    # A constructor argument still overrides the config (tools and tests).
    assert OpcuaCollector(config, source, ignore, queue_size=3).queue_size == 3
