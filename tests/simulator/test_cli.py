"""`linewatch simulate` and `linewatch backfill` through the real console script."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client

from tests.mosquitto import Mosquitto, free_port, start_mosquitto
from tests.servers import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"
LINEWATCH = str(Path(sys.executable).with_name("linewatch"))


def demo_config(tmp_path: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8").replace(
        "path: data/linewatch.db", f"path: {tmp_path / 'lw.db'}")
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    server = start_mosquitto()
    yield server
    server.stop()


async def _counter_changes(url: str, uri: str, name: str, timeout_s: float) -> tuple[int, int]:
    """Connect as soon as the server answers, then read a counter until it moves."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = Client(url, timeout=2)
        try:
            await client.connect()
            break
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        # A NodeId given with nsu= is resolved through the server's namespace array.
        index = await client.get_namespace_index(uri)
        node = client.get_node(f"ns={index};s={name}")
        first = await node.read_value()
        while time.monotonic() < deadline:
            value = await node.read_value()
            if value != first:
                return first, value
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} stayed at {first} for {timeout_s} s")
    finally:
        await client.disconnect()


def test_simulate_serves_live_opcua_and_mqtt_and_stops_cleanly_on_sigterm(
        tmp_path: Path, broker: Mosquitto) -> None:
    port = free_port()
    received: list[str] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-cli-sub")
    subscriber.on_message = lambda _c, _u, msg: received.append(msg.topic)
    subscriber.connect(broker.host, broker.port)
    subscriber.subscribe("#")
    subscriber.loop_start()
    process = subprocess.Popen(
        [LINEWATCH, "simulate", "--config", str(demo_config(tmp_path)), "--opcua-port",
         str(port), "--mqtt", f"{broker.host}:{broker.port}", "--speed", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        # The demo's L1 counts over OPC UA: the counter node must move while we watch.
        first, later = asyncio.run(_counter_changes(
            f"opc.tcp://127.0.0.1:{port}", "urn:linewatch:sim", "L1.Count.Total", 60))
        assert later != first
        wait_until(lambda: any(t.startswith("kt01/L2/") for t in received)
                   and any(t.startswith("spBv1.0/") for t in received),
                   30, "the L2 JSON topics and the Sparkplug topics")
    finally:
        subscriber.loop_stop()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_simulate_with_an_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [LINEWATCH, "simulate", "--config", str(demo_config(tmp_path)), "--opcua-port",
         str(free_port()), "--mqtt", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot serve" in result.stderr and "mqtt://127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_backfill_then_kpi_through_the_console_script(tmp_path: Path) -> None:
    config = str(demo_config(tmp_path))
    backfill = subprocess.run(
        [LINEWATCH, "backfill", "--config", config, "--from", "2026-06-08", "--to",
         "2026-06-10"], capture_output=True, text=True, timeout=120)
    assert backfill.returncode == 0, backfill.stderr
    kpi = subprocess.run(
        [LINEWATCH, "kpi", "--config", config, "--line", "L3", "--from", "2026-06-08",
         "--to", "2026-06-10", "--by", "day", "--json"],
        capture_output=True, text=True, timeout=60)
    assert kpi.returncode == 0, kpi.stderr
    rows = json.loads(kpi.stdout)
    # Two local days of 86,400 s each, with production on both (Mon and Tue, no holiday).
    assert [row["calendar_s"] for row in rows] == [86400, 86400]
    assert all(row["total_count"] > 0 and row["oee"] is not None for row in rows)
