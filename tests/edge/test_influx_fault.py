"""Acceptance 3 (DESIGN §8): influxd is SIGKILLed while the spool drains into it and restarted;
every point arrives exactly once and nothing is lost.

The spool holds 20,000 raw samples, two days of minute rollups for two lines, stop events,
statuses and checkpoints. A sink is held at a gate after a few batches so that the kill
lands mid-drain deterministically; before the drain, one batch is written to InfluxDB
without an ack (a write whose ack was lost), so the drain re-sends points InfluxDB already
has. Counts are taken straight from influxd with InfluxQL COUNT() and SUM().
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge.sinks import DrainResult, StoreSink, drain
from edge.spool import Spool
from linewatch.rollup import LineStatus, MinuteRecord, RawSample, StopEvent, WriteBatch
from linewatch.storage.influx import InfluxStore
from tests.influxd import Influxd, running_influxd
from tests.servers import wait_until

T0 = 1_704_067_200
LINES = ("L1", "L2")
SAMPLES = 20_000
MINUTES_PER_LINE = 2 * 1440
BATCH_SIZE = 1_000
GATE_AFTER = 5  # batches stored before the gate closes


class GatedSink(StoreSink):
    """A StoreSink that stops before its (GATE_AFTER+1)-th write until the test opens the gate."""

    def __init__(self, name: str, store: InfluxStore) -> None:
        super().__init__(name, store)
        self.reached = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def write(self, batch: WriteBatch) -> None:
        self.calls += 1
        if self.calls == GATE_AFTER + 1:
            self.reached.set()
            assert self.gate.wait(timeout=60), "the test never opened the gate"
        super().write(batch)


def fill(spool: Spool) -> dict[str, int]:
    """Append edge-like batches (100 samples each plus rollups); return the expected counts."""
    totals = {"samples": 0, "minutes": 0, "stops": 0, "total_count": 0}
    n_batches = SAMPLES // 100
    per_batch = MINUTES_PER_LINE // n_batches + 1
    minute_index = 0
    for n in range(n_batches):
        batch = WriteBatch()
        for i in range(100):
            k = n * 100 + i
            line = LINES[k % 2]
            signal = ("total_count", "state", "temperature", "pressure")[k % 4]
            batch.samples.append(RawSample("hk", line, signal, T0 * 1000 + 37 * k, float(k),
                                           None, k % 97 != 0))
        for index in range(minute_index, min(minute_index + per_batch, MINUTES_PER_LINE)):
            for line in LINES:
                count = (index * 7 + len(line)) % 13
                batch.minutes.append(MinuteRecord("hk", line, T0 + 60 * index, "P1",
                                                  span_s=60, running_s=60, total_count=count,
                                                  good_count=count, scheduled_s=60))
                totals["total_count"] += count
                totals["minutes"] += 1
        minute_index += per_batch
        if n % 10 == 0:
            batch.stops.append(StopEvent("hk", "L1", T0 + 600 * n, T0 + 600 * n + 150,
                                         "unplanned_stop"))
            totals["stops"] += 1
        batch.statuses = [LineStatus("hk", line, "running", T0, None, T0 + n) for line in LINES]
        batch.checkpoints = {line: {"site": "hk", "n": n} for line in LINES}
        totals["samples"] += len(batch.samples)
        spool.append(batch)
    return totals


@pytest.fixture
def server(tmp_path: Path) -> Influxd:
    """A private influxd: this test kills it."""
    with running_influxd(tmp_path / "influxd") as started:
        yield started


def test_influxd_killed_mid_drain_and_restarted_every_point_arrives_exactly_once(
        server: Influxd, tmp_path: Path) -> None:
    server.query('CREATE DATABASE "lw"')
    store = InfluxStore(server.url, database="lw", timeout_s=5)
    with Spool(tmp_path / "spool.db") as spool:
        expected = fill(spool)
        sink = GatedSink("influx", store)
        spool.register(sink.name)
        # A batch stored whose ack was lost (say, the edge died right after the write):
        # the drain will send these points again.
        _, first = spool.pending(sink.name, BATCH_SIZE)
        store.write(first)

        results: list[DrainResult] = []
        drainer = threading.Thread(target=lambda: results.append(
            drain(spool, sink, BATCH_SIZE, timeout=120, base_delay_s=0.05, max_delay_s=0.5)))
        drainer.start()
        try:
            assert sink.reached.wait(timeout=60), "the drain never reached the gate"
            depth_at_kill = spool.depth(sink.name)
            server.kill()  # SIGKILL: no flush, no goodbye
            sink.gate.set()
            wait_until(lambda: sink.failures >= 2, 30, "the sink to see the outage twice")
            assert spool.depth(sink.name) == depth_at_kill  # nothing acked while down
            server.start()  # same port, same data and WAL directories
        finally:
            sink.gate.set()
            drainer.join(timeout=120)
        assert not drainer.is_alive()
        [result] = results
        assert result.complete
        assert result.retries >= 2
        assert spool.depth(sink.name) == 0
        last_checkpoint = spool.checkpoint("L1")

    assert 0 < depth_at_kill < sum(expected[k] for k in ("samples", "minutes"))
    # Exactly once: COUNT() equals what was appended, no more (duplicates) and no less.
    assert server.count("lw", "lw_sample", "good") == expected["samples"] == SAMPLES
    assert server.count("lw", "lw_minute", "span_s") == expected["minutes"]
    assert server.count("lw", "lw_stop", "end") == expected["stops"]
    data = server.query('SELECT SUM("total_count"), SUM("span_s") FROM "lw_minute"', db="lw")
    total, span = data["results"][0]["series"][0]["values"][0][1:]
    assert (total, span) == (expected["total_count"], 60 * expected["minutes"])
    # What the edge reads back agrees with the raw counts.
    reader = InfluxStore(server.url, database="lw")
    assert len(reader.samples("hk", "L1", 0, 2 * T0 * 1000)) == SAMPLES // 2
    [day] = reader.minute_totals("hk", "L2", [(T0, T0 + 2 * 86400)])
    assert day.span_s == 60 * MINUTES_PER_LINE
    assert [s.last_sample for s in reader.statuses("hk")] == [T0 + SAMPLES // 100 - 1] * 2
    assert reader.load_checkpoint("hk", "L1") == last_checkpoint
