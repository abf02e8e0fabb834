"""The spool (DESIGN §8): one-transaction appends, a cursor per sink, prune after every ack,
telemetry dropped first when full, durable across SIGKILL; and drain() into a store.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.sinks import StoreSink, batch_records, drain
from edge.spool import Spool
from linewatch.rollup import LineStatus, MinuteRecord, RawSample, StopEvent, WriteBatch
from linewatch.storage import SqliteStore
from linewatch.storage.influx import InfluxStore
from tests.influxd import free_port
from tests.servers import wait_until

T0 = 1_704_067_200
MS = T0 * 1000


def minute(ts: int, count: int = 10, **kw: object) -> MinuteRecord:
    return MinuteRecord("hk", "L1", ts, "P1", span_s=60, running_s=60, total_count=count,
                        good_count=count, **kw)  # type: ignore[arg-type]


def sample(ts_ms: int, signal: str = "state", value: float = 1.0) -> RawSample:
    return RawSample("hk", "L1", signal, ts_ms, value, None, True)


def full_batch() -> WriteBatch:
    return WriteBatch(
        minutes=[minute(T0, energy_kwh=0.5), minute(T0 + 60)],
        stops=[StopEvent("hk", "L1", T0, T0 + 90, "unplanned_stop", reason="jam",
                         reason_by="op", reason_at=T0 + 100, open=True)],
        deleted_stops=[("hk", "L1", T0 - 500)],
        statuses=[LineStatus("hk", "L1", "running", T0, None, T0 + 5, "P1", T0 + 6)],
        samples=[sample(MS + 1), RawSample("hk", "L1", "product", MS + 2, None, "P1", False),
                 sample(MS + 3, "temperature", 81.5)],
        checkpoints={"L1": {"site": "hk", "last_ms": MS + 3, "nested": {"a": [1, 2]}}},
    )


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    with Spool(tmp_path / "spool.db", max_mb=64) as opened:
        yield opened


def test_spool_file_is_in_wal_mode(spool: Spool, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "spool.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_append_keeps_every_record_kind_and_pending_gives_the_batch_back(spool: Spool) -> None:
    spool.register("influx")
    batch = full_batch()
    last_id = spool.append(batch)

    got_id, got = spool.pending("influx", 1000)
    assert got_id == last_id == batch_records(batch)
    assert got == batch
    assert spool.depth("influx") == batch_records(batch)


def test_append_returns_increasing_ids_and_an_empty_batch_adds_no_row(spool: Spool) -> None:
    first = spool.append(WriteBatch(samples=[sample(MS + i) for i in range(5)]))
    second = spool.append(WriteBatch(minutes=[minute(T0)]))
    assert (first, second) == (5, 6)
    assert spool.append(WriteBatch()) == 6


def test_append_is_one_transaction_a_bad_checkpoint_writes_nothing(spool: Spool) -> None:
    spool.register("influx")
    with pytest.raises(ValueError, match="site"):
        spool.append(WriteBatch(minutes=[minute(T0)], checkpoints={"L1": {"no_site": 1}}))
    assert spool.depth("influx") == 0
    assert spool.checkpoint("L1") is None


def test_each_sink_has_its_own_cursor(spool: Spool) -> None:
    spool.register("influx")
    spool.register("sqlite")
    spool.append(WriteBatch(samples=[sample(MS + i) for i in range(10)]))

    last_id, batch = spool.pending("influx", 4)
    assert [s.ts_ms - MS for s in batch.samples] == [0, 1, 2, 3]
    spool.ack("influx", last_id)
    assert (spool.depth("influx"), spool.depth("sqlite")) == (6, 10)
    assert [s.ts_ms - MS for s in spool.pending("influx", 100)[1].samples] == [4, 5, 6, 7, 8, 9]
    assert len(spool.pending("sqlite", 100)[1].samples) == 10


def test_rows_leave_the_spool_only_after_every_registered_sink_acked_them(spool: Spool) -> None:
    spool.register("influx")
    spool.register("sqlite")
    last_id = spool.append(WriteBatch(samples=[sample(MS + i) for i in range(10)]))

    spool.ack("influx", last_id)
    assert spool.prune() == 0
    spool.ack("sqlite", 4)
    assert spool.prune() == 4
    assert spool.depth("influx") == 0
    assert spool.depth("sqlite") == 6
    spool.ack("sqlite", last_id)
    assert spool.prune() == 6
    spool.ack("sqlite", 2)  # a cursor never moves back
    assert spool.cursor("sqlite") == last_id


def test_ids_are_never_reused_after_everything_was_pruned(spool: Spool) -> None:
    spool.register("influx")
    last_id = spool.append(WriteBatch(samples=[sample(MS + i) for i in range(3)]))
    spool.ack("influx", last_id)
    spool.prune()
    assert spool.append(WriteBatch(samples=[sample(MS + 9)])) == last_id + 1
    assert spool.depth("influx") == 1


def test_unknown_sink_is_refused(spool: Spool) -> None:
    with pytest.raises(KeyError, match="nope"):
        spool.pending("nope", 10)
    with pytest.raises(KeyError, match="nope"):
        spool.ack("nope", 1)


def test_checkpoints_are_kept_per_line_across_a_reopen_and_after_pruning(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.register("influx")
        spool.append(WriteBatch(checkpoints={"L1": {"site": "hk", "n": 1},
                                             "L2": {"site": "hk", "n": 7}}))
        last_id = spool.append(WriteBatch(checkpoints={"L1": {"site": "hk", "n": 2}}))
        spool.ack("influx", last_id)
        spool.prune()
    with Spool(path) as reopened:
        assert reopened.checkpoint("L1") == {"site": "hk", "n": 2}
        assert reopened.checkpoints() == {"L1": {"site": "hk", "n": 2},
                                          "L2": {"site": "hk", "n": 7}}
        assert reopened.checkpoint("L3") is None
        assert reopened.depth("influx") == 0


def test_merged_batch_applies_stop_upserts_and_deletes_in_their_order(spool: Spool) -> None:
    spool.register("s")
    first = StopEvent("hk", "L1", T0, T0 + 60, "unplanned_stop")
    back = replace(first, end=T0 + 300)
    spool.append(WriteBatch(stops=[first]))
    spool.append(WriteBatch(deleted_stops=[("hk", "L1", T0)]))
    spool.append(WriteBatch(stops=[back]))
    spool.append(WriteBatch(stops=[StopEvent("hk", "L1", T0 + 900, T0 + 950, "micro_stop")],
                            deleted_stops=[("hk", "L1", T0 + 900)]))

    _, batch = spool.pending("s", 100)
    assert batch.stops == [back]
    assert batch.deleted_stops == [("hk", "L1", T0 + 900)]


BATCHES = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(1, 50))),
                 max_size=4),  # minutes: (index, count or None for a tombstone)
        st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=3),  # stops: delete?
        st.lists(st.integers(0, 6), max_size=4),  # samples: ms offsets (repeats: first wins)
        st.booleans(),  # a status
    ),
    min_size=1, max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=BATCHES, limit=st.integers(1, 12))
def test_draining_in_any_chunks_gives_the_store_the_state_of_the_original_batches(
        batches: list[tuple[list, list, list, bool]], limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Spool(root / "spool.db") as spool, SqliteStore(root / "direct.db") as direct, \
                SqliteStore(root / "drained.db") as drained:
            spool.register("drained")
            for n, (minutes, stops, samples, status) in enumerate(batches):
                batch = WriteBatch()
                for index, count in minutes:
                    record = minute(T0 + 60 * index, count or 0)
                    batch.minutes.append(record if count else MinuteRecord(
                        "hk", "L1", record.ts, "P1"))
                for index, delete in stops:
                    if delete:
                        batch.deleted_stops.append(("hk", "L1", T0 + 100 * index))
                    else:
                        batch.stops.append(StopEvent("hk", "L1", T0 + 100 * index,
                                                     T0 + 100 * index + n + 1, "micro_stop"))
                batch.samples += [sample(MS + off, value=float(n)) for off in samples]
                if status:
                    batch.statuses.append(LineStatus("hk", "L1", "running", T0 + n, None, None))
                batch.checkpoints["L1"] = {"site": "hk", "n": n}
                direct.write(batch)
                spool.append(batch)
            result = drain(spool, StoreSink("drained", drained), batch_size=limit)

            assert result.complete and spool.depth("drained") == 0
            assert state(drained) == state(direct)


def state(store: SqliteStore) -> tuple[object, ...]:
    """Everything a store holds for line L1 of site hk."""
    return (store.minutes("hk", "L1", 0, 2 * T0), store.stops("hk", "L1", 0, 2 * T0),
            store.samples("hk", "L1", 0, 2 * MS), store.statuses("hk"),
            store.load_checkpoint("hk", "L1"))


def test_full_spool_drops_the_oldest_telemetry_but_never_rollups_events_or_role_samples(
        tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_mb=0.5) as spool:
        spool.register("influx")
        for n in range(60):
            spool.append(WriteBatch(
                minutes=[minute(T0 + 60 * n)],
                stops=[StopEvent("hk", "L1", T0 + 60 * n, T0 + 60 * n + 5, "micro_stop")],
                samples=[sample(MS + 1000 * n, "total_count", n)]
                + [sample(MS + 1000 * n + i, "temperature", 20.0) for i in range(1, 200)]))
        _, everything = spool.pending("influx", 10**6)
        size = spool.size_bytes()
        dropped = spool.dropped_telemetry

    assert dropped > 0
    assert size <= 0.5 * 2**20 * 1.05
    assert len(everything.minutes) == 60 and len(everything.stops) == 60
    assert [s.value for s in everything.samples if s.signal == "total_count"] == list(range(60))
    telemetry = [s.ts_ms for s in everything.samples if s.signal == "temperature"]
    assert len(telemetry) == 60 * 199 - dropped
    assert telemetry == sorted(telemetry)
    assert telemetry[-1] == MS + 1000 * 59 + 199  # the newest ones are kept


def test_appended_batches_survive_a_sigkill_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    code = (
        "import sys\n"
        "from edge.spool import Spool\n"
        "from linewatch.rollup import RawSample, WriteBatch\n"
        "spool = Spool(sys.argv[1])\n"
        "for n in range(100000):\n"
        "    batch = WriteBatch(samples=[RawSample('hk', 'L1', 'temperature', n * 1000 + i,\n"
        "                                          1.0, None, True) for i in range(100)],\n"
        "                       checkpoints={'L1': {'site': 'hk', 'n': n}})\n"
        "    print(spool.append(batch), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None
    committed = [int(child.stdout.readline()) for _ in range(30)]
    child.kill()  # SIGKILL, in the middle of some later append
    child.wait(timeout=30)

    with Spool(path) as spool:
        spool.register("check")
        _, batch = spool.pending("check", 10**6)
        checkpoint = spool.checkpoint("L1")
    assert committed[-1] == 30 * 101  # 100 samples + 1 checkpoint row per batch
    assert len(batch.samples) >= 30 * 100
    assert len(batch.samples) % 100 == 0  # only whole batches
    assert checkpoint is not None and checkpoint["n"] == len(batch.samples) // 100 - 1


# --- drain() --------------------------------------------------------------------------------


def test_drain_writes_everything_acks_and_prunes(spool: Spool, tmp_path: Path) -> None:
    for n in range(5):
        spool.append(WriteBatch(minutes=[minute(T0 + 60 * n)],
                                samples=[sample(MS + 10 * n + i) for i in range(10)]))
    with SqliteStore(tmp_path / "lw.db") as store:
        sink = StoreSink("sqlite", store)
        result = drain(spool, sink, batch_size=7)
        assert len(store.samples("hk", "L1", 0, 2 * MS)) == 50
        assert len(store.minutes("hk", "L1", 0, 2 * T0)) == 5

    assert result.complete and result.records == 55 and result.batches == 8
    assert (sink.records, sink.failures) == (55, 0)
    assert spool.depth("sqlite") == 0
    assert spool.size_bytes() > 0 and spool.prune() == 0


def test_drain_retries_with_backoff_and_acks_nothing_while_the_store_fails(
        spool: Spool) -> None:
    spool.append(WriteBatch(samples=[sample(MS + i) for i in range(10)]))
    dead = InfluxStore(f"http://127.0.0.1:{free_port()}", database="lw", timeout_s=2)
    sink = StoreSink("influx", dead)

    result = drain(spool, sink, batch_size=100, timeout=1.0, base_delay_s=0.05,
                   max_delay_s=0.2)

    assert not result.complete
    assert result.batches == 0 and result.retries >= 3
    assert sink.failures == result.retries and "not reachable" in (sink.last_error or "")
    assert spool.depth("influx") == 10


def test_drain_follow_waits_for_new_rows_until_stopped(spool: Spool, tmp_path: Path) -> None:
    stop = threading.Event()
    with SqliteStore(tmp_path / "lw.db") as store:
        sink = StoreSink("sqlite", store)
        out: list[object] = []
        thread = threading.Thread(target=lambda: out.append(
            drain(spool, sink, follow=True, stop_event=stop, poll_s=0.02)))
        thread.start()
        try:
            spool.append(WriteBatch(samples=[sample(MS)]))
            wait_until(lambda: sink.records == 1, 10, "the first sample to be drained")
            spool.append(WriteBatch(samples=[sample(MS + 1)]))
            wait_until(lambda: sink.records == 2, 10, "the second sample to be drained")
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive()
    assert out and not out[0].complete  # type: ignore[attr-defined]
    assert spool.depth("sqlite") == 0
