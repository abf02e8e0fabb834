"""The embedded SQLite store (DESIGN §6, §7): upserts, tombstones, bucket sums, WAL, atomicity."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch.config import PlantConfig
from linewatch.rollup import (
    ADDITIVE_FIELDS,
    LineStatus,
    MinuteRecord,
    RawSample,
    StopEvent,
    Totals,
    WriteBatch,
)
from linewatch.storage import SqliteStore, Store, StoreError, open_store
from linewatch.storage import sqlite as sqlite_module

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC, on a quarter hour
HOUR = 3600
DAY = 86400


def minute(ts: int, product: str = "P1", *, line: str = "L1", site: str = "hk",
           source: str = "edge", **values: float | int | None) -> MinuteRecord:
    """A full running minute unless values say otherwise."""
    base: dict[str, float | int | None] = {"span_s": 60, "running_s": 60, "scheduled_s": 60,
                                           "ideal_s": 50.0, "total_count": 10, "good_count": 9,
                                           "reject_count": 1}
    base.update(values)
    return MinuteRecord(site, line, ts, product, source=source, **base)  # type: ignore[arg-type]


def tombstone(record: MinuteRecord) -> MinuteRecord:
    return MinuteRecord(record.site, record.line, record.ts, record.product, source=record.source)


def sample(ts_ms: int, signal: str = "state", value: float | None = 1.0, *,
           text: str | None = None, good: bool = True, line: str = "L1") -> RawSample:
    return RawSample("hk", line, signal, ts_ms, value, text, good)


def stop(start: int, end: int, **kw: object) -> StopEvent:
    return StopEvent("hk", "L1", start, end, "unplanned_stop", **kw)  # type: ignore[arg-type]


def naive_totals(records: list[MinuteRecord], start: int, end: int) -> Totals:
    totals = Totals()
    for record in records:
        if start <= record.ts < end:
            totals.add(record)
    return totals


def assert_totals_equal(got: Totals, want: Totals) -> None:
    for name in ADDITIVE_FIELDS:
        assert getattr(got, name) == pytest.approx(getattr(want, name)), name
    if want.energy_kwh is None:
        assert got.energy_kwh is None
    else:
        assert got.energy_kwh == pytest.approx(want.energy_kwh)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "linewatch.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db_path) as opened:
        yield opened


# --- the contract ---------------------------------------------------------------------------


def test_sqlite_store_implements_the_store_protocol(store: SqliteStore) -> None:
    assert isinstance(store, Store)


def test_schema_has_a_column_for_every_minute_record_field(store: SqliteStore,
                                                           db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(lw_minute)")]
        version = raw.execute("PRAGMA user_version").fetchone()[0]
    assert sorted(columns) == sorted(f.name for f in fields(MinuteRecord))
    assert version == sqlite_module.SCHEMA_VERSION
    assert {f.name for f in fields(Totals)} == {*ADDITIVE_FIELDS, "energy_kwh"}


def test_minute_record_round_trips_every_field(store: SqliteStore) -> None:
    record = MinuteRecord("hk", "L1", T0, "P7", shift="A", source="import", span_s=60,
                          running_s=1, micro_stop_s=2, setup_s=3, unplanned_stop_s=4,
                          planned_stop_s=5, no_data_s=6, unscheduled_s=7, scheduled_s=53,
                          break_s=8, ideal_s=12.25, total_count=11, good_count=10,
                          reject_count=1, energy_kwh=0.125, failures=2)
    store.write(WriteBatch(minutes=[record]))
    assert store.minutes("hk", "L1", T0, T0 + 60) == [record]


# --- minutes: R1, R2, R4 and tombstones -----------------------------------------------------


def test_R2_resent_minute_replaces_and_never_double_counts(store: SqliteStore) -> None:
    first = minute(T0, total_count=10, energy_kwh=0.5)
    store.write(WriteBatch(minutes=[first]))
    store.write(WriteBatch(minutes=[first]))
    corrected = replace(first, total_count=12, good_count=12, reject_count=0, energy_kwh=0.75)
    store.write(WriteBatch(minutes=[corrected]))

    assert store.minutes("hk", "L1", T0, T0 + 60) == [corrected]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert (totals.span_s, totals.total_count, totals.good_count) == (60, 12, 12)
    assert totals.energy_kwh == pytest.approx(0.75)


def test_R2_resent_batch_of_a_whole_day_leaves_the_day_totals_unchanged(
        store: SqliteStore) -> None:
    day = [minute(T0 + 60 * i, total_count=i % 7) for i in range(1440)]
    store.write(WriteBatch(minutes=day))
    before = store.minute_totals("hk", "L1", [(T0, T0 + DAY)])
    store.write(WriteBatch(minutes=day))
    assert store.minute_totals("hk", "L1", [(T0, T0 + DAY)]) == before
    assert before[0].span_s == DAY


def test_R1_two_products_in_one_minute_are_both_kept_and_counted(store: SqliteStore) -> None:
    switch = [minute(T0, "P2", span_s=20, running_s=20, total_count=3),
              minute(T0, "P1", span_s=40, running_s=40, total_count=5)]
    store.write(WriteBatch(minutes=switch))

    assert [r.product for r in store.minutes("hk", "L1", T0, T0 + 60)] == ["P1", "P2"]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + 60)])
    assert (totals.span_s, totals.total_count) == (60, 8)


def test_R4_import_record_is_kept_apart_from_edge_record_and_counted_whole_at_its_start(
        store: SqliteStore) -> None:
    edge = minute(T0 + 30 * 60)
    imported = minute(T0 + 30 * 60, source="import", span_s=8 * HOUR, running_s=8 * HOUR,
                      total_count=1000)
    store.write(WriteBatch(minutes=[edge, imported]))

    assert {r.source for r in store.minutes("hk", "L1", T0, T0 + DAY)} == {"edge", "import"}
    hours = store.minute_totals("hk", "L1", [(T0 + h * HOUR, T0 + (h + 1) * HOUR)
                                             for h in range(3)])
    assert [t.span_s for t in hours] == [60 + 8 * HOUR, 0, 0]
    assert hours[0].total_count == 1010


def test_tombstone_deletes_the_stored_minute_with_its_key(store: SqliteStore) -> None:
    kept = minute(T0, "P2")
    provisional = minute(T0, "P1", energy_kwh=0.2)
    store.write(WriteBatch(minutes=[provisional, kept]))
    store.write(WriteBatch(minutes=[tombstone(provisional)]))

    assert tombstone(provisional).is_empty()
    assert store.minutes("hk", "L1", T0, T0 + 60) == [kept]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert totals.span_s == 60
    assert totals.energy_kwh is None


def test_tombstone_of_an_unknown_key_changes_nothing(store: SqliteStore) -> None:
    store.write(WriteBatch(minutes=[minute(T0)]))
    store.write(WriteBatch(minutes=[tombstone(minute(T0 + 60))]))
    assert len(store.minutes("hk", "L1", T0, T0 + HOUR)) == 1


def test_last_occurrence_of_a_minute_key_in_one_batch_wins(store: SqliteStore) -> None:
    a, b = minute(T0), minute(T0 + 60)
    store.write(WriteBatch(minutes=[a, tombstone(a), tombstone(b), b]))
    assert store.minutes("hk", "L1", T0, T0 + HOUR) == [b]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert totals.span_s == 60


def test_minutes_are_ordered_by_ts_product_source_within_the_half_open_range(
        store: SqliteStore) -> None:
    records = [minute(T0 + 120, "P1"), minute(T0 + 60, "P2"), minute(T0 + 60, "P1", source="x"),
               minute(T0 + 60, "P1"), minute(T0, "P1"), minute(T0 + 180, "P1")]
    store.write(WriteBatch(minutes=records))

    got = store.minutes("hk", "L1", T0 + 60, T0 + 180)
    assert [(r.ts, r.product, r.source) for r in got] == [
        (T0 + 60, "P1", "edge"), (T0 + 60, "P1", "x"), (T0 + 60, "P2", "edge"),
        (T0 + 120, "P1", "edge")]


# --- minute_totals --------------------------------------------------------------------------


def test_minute_totals_sums_each_bucket_and_energy_is_none_only_without_any_energy(
        store: SqliteStore) -> None:
    store.write(WriteBatch(minutes=[
        minute(T0, energy_kwh=0.5), minute(T0 + 60, energy_kwh=None, failures=1),
        minute(T0 + HOUR), minute(T0 + HOUR + 60),
    ]))
    with_energy, without_energy, empty = store.minute_totals(
        "hk", "L1", [(T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR), (T0 + 2 * HOUR, T0 + 3 * HOUR)])

    assert (with_energy.span_s, with_energy.total_count, with_energy.failures) == (120, 20, 1)
    assert with_energy.ideal_s == pytest.approx(100.0)
    assert with_energy.energy_kwh == pytest.approx(0.5)
    assert without_energy.span_s == 120
    assert without_energy.energy_kwh is None
    assert empty == Totals()


def test_minute_totals_buckets_are_half_open(store: SqliteStore) -> None:
    boundary = T0 + 7 * HOUR + 10 * 60  # not on a quarter hour: summed from minutes
    store.write(WriteBatch(minutes=[minute(boundary - 60, total_count=1),
                                    minute(boundary, total_count=100)]))

    before, after = store.minute_totals("hk", "L1", [(T0, boundary), (boundary, T0 + DAY)])
    assert (before.total_count, after.total_count) == (1, 100)
    quarter = T0 + 7 * HOUR  # on a quarter hour: summed from the quarter table
    store.write(WriteBatch(minutes=[minute(quarter - 60, total_count=1000)]))
    before, after = store.minute_totals("hk", "L1", [(T0, quarter), (quarter, T0 + DAY)])
    assert (before.total_count, after.total_count) == (1000, 101)


def test_minute_totals_excludes_other_lines_and_sites(store: SqliteStore) -> None:
    store.write(WriteBatch(minutes=[
        minute(T0, total_count=1), minute(T0, line="L2", total_count=20),
        minute(T0, site="sz", total_count=300), minute(T0 + 60, site="sz", line="L1"),
    ]))
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + DAY)])
    assert (totals.span_s, totals.total_count) == (60, 1)


def test_minute_totals_returns_one_totals_per_bucket_in_the_given_order(
        store: SqliteStore) -> None:
    store.write(WriteBatch(minutes=[minute(T0 + 60 * i, total_count=i) for i in range(10)]))
    buckets = [(T0 + 60 * i, T0 + 60 * (i + 1)) for i in range(12)]
    assert [t.total_count for t in store.minute_totals("hk", "L1", buckets)] == [
        *range(10), 0, 0]
    assert store.minute_totals("hk", "L1", []) == []
    assert store.minute_totals("hk", "L1", [(T0, T0)]) == [Totals()]


def test_minute_totals_of_buckets_off_the_quarter_hour_match_the_sum_of_their_minutes(
        store: SqliteStore) -> None:
    records = [minute(T0 + 60 * i, total_count=i % 13, energy_kwh=(i % 3) * 0.1 or None)
               for i in range(3 * 1440)]
    store.write(WriteBatch(minutes=records))
    # Shifts of a site at UTC+05:45 with a 07:10 start: edges on no quarter hour at all.
    edges = [T0 + 85 * 60 + k * 8 * HOUR + 7 for k in range(9)]
    buckets = list(itertools.pairwise(edges))

    for got, (start, end) in zip(store.minute_totals("hk", "L1", buckets), buckets, strict=True):
        assert_totals_equal(got, naive_totals(records, start, end))


def test_minute_totals_is_a_bucket_error_when_end_precedes_start(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        store.minute_totals("hk", "L1", [(T0 + 60, T0)])


OPS = st.lists(
    st.tuples(
        st.integers(0, 5 * 60),  # minute index within five hours
        st.sampled_from(["P1", "P2"]),
        st.sampled_from(["edge", "import"]),
        st.one_of(st.none(), st.integers(1, 200)),  # None: a tombstone
        st.one_of(st.none(), st.floats(0, 2, allow_nan=False)),
    ),
    max_size=60,
)
BUCKET_EDGES = st.lists(st.integers(-30, 6 * 60 + 30), min_size=2, max_size=12, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(OPS, min_size=1, max_size=4), edges=BUCKET_EDGES)
def test_minute_totals_always_equal_the_sums_of_the_stored_minutes(
        batches: list[list[tuple[int, str, str, int | None, float | None]]],
        edges: list[int]) -> None:
    model: dict[tuple[str, str, int, str, str], MinuteRecord] = {}
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "p.db") as prop_store:
        for ops in batches:
            batch = WriteBatch()
            for index, product, source, count, energy in ops:
                record = minute(T0 + 60 * index, product, source=source, total_count=count or 0,
                                energy_kwh=energy, ideal_s=(count or 0) / 3)
                if count is None:
                    record = tombstone(record)
                batch.minutes.append(record)
                if record.is_empty():
                    model.pop(record.key, None)
                else:
                    model[record.key] = record
            prop_store.write(batch)
        bounds = sorted(T0 + 60 * e for e in edges)
        buckets = list(itertools.pairwise(bounds))

        got = prop_store.minute_totals("hk", "L1", buckets)
        stored = prop_store.minutes("hk", "L1", T0 - DAY, T0 + DAY)

    assert sorted(r.key for r in stored) == sorted(model)
    for totals, (start, end) in zip(got, buckets, strict=True):
        assert_totals_equal(totals, naive_totals(list(model.values()), start, end))


# --- stops and statuses (R5) ----------------------------------------------------------------


def test_R5_stop_upserts_by_line_and_start(store: SqliteStore) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 90, open=True)]))
    closed = stop(T0, T0 + 300, reason="jam", reason_by="op7", reason_at=T0 + 400)
    store.write(WriteBatch(stops=[closed]))

    assert store.stops("hk", "L1", T0, T0 + DAY) == [closed]
    assert store.stops("hk", "L1", T0, T0 + DAY)[0].duration_s == 300


def test_stops_returns_events_overlapping_the_range_ordered_by_start(
        store: SqliteStore) -> None:
    events = [stop(T0 + 500, T0 + 600), stop(T0, T0 + 100), stop(T0 + 50, T0 + 2000),
              stop(T0 + 1000, T0 + 1100), stop(T0 + 99, T0 + 101)]
    store.write(WriteBatch(stops=events))
    other = StopEvent("hk", "L2", T0 + 500, T0 + 600, "micro_stop")
    store.write(WriteBatch(stops=[other]))

    got = store.stops("hk", "L1", T0 + 100, T0 + 1000)
    # [T0, T0+100) ends where the range starts and [T0+1000, …) starts where it ends.
    assert [(e.start, e.end) for e in got] == [(T0 + 50, T0 + 2000), (T0 + 99, T0 + 101),
                                              (T0 + 500, T0 + 600)]


def test_deleted_stops_remove_the_event_with_that_line_and_start(store: SqliteStore) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 100), stop(T0 + 200, T0 + 300)]))
    store.write(WriteBatch(deleted_stops=[("hk", "L1", T0), ("hk", "L1", T0 + 999)]))
    assert [e.start for e in store.stops("hk", "L1", T0, T0 + DAY)] == [T0 + 200]


def test_stop_written_and_deleted_in_one_batch_ends_up_deleted(store: SqliteStore) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 100)], deleted_stops=[("hk", "L1", T0)]))
    assert store.stops("hk", "L1", T0, T0 + DAY) == []


def test_R5_status_upserts_by_site_and_line(store: SqliteStore) -> None:
    store.write(WriteBatch(statuses=[LineStatus("hk", "L2", "running", T0, None, T0 + 5),
                                     LineStatus("hk", "L1", "running", T0, None, T0 + 5)]))
    latest = LineStatus("hk", "L1", "unplanned_stop", T0 + 60, "jam", T0 + 65, "P1", T0 + 66)
    store.write(WriteBatch(statuses=[latest,
                                     LineStatus("sz", "L1", "setup", T0, None, None)]))

    assert store.statuses("hk") == [latest, LineStatus("hk", "L2", "running", T0, None, T0 + 5)]
    assert [s.site for s in store.statuses("sz")] == ["sz"]


# --- raw samples ----------------------------------------------------------------------------


def test_samples_come_back_in_time_order_and_insertion_order_on_ties(
        store: SqliteStore) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms + 5, "total_count", 7),
                                    sample(ms + 1, "state", 2), sample(ms + 5, "state", 1)]))
    store.write(WriteBatch(samples=[sample(ms + 5, "product", None, text="P2"),
                                    sample(ms + 3, "temp", 81.5, good=False)]))

    got = store.samples("hk", "L1", ms, ms + 10)
    assert [(s.ts_ms - ms, s.signal) for s in got] == [
        (1, "state"), (3, "temp"), (5, "total_count"), (5, "state"), (5, "product")]
    assert got[1].good is False and got[1].value == 81.5
    assert (got[4].value, got[4].text, got[4].good) == (None, "P2", True)


def test_resent_sample_is_ignored_and_the_first_one_stays(store: SqliteStore) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms, "state", 1.0)]))
    store.write(WriteBatch(samples=[sample(ms, "state", 9.0), sample(ms, "state", 8.0),
                                    sample(ms, "state", 1.0, line="L2")]))
    assert [s.value for s in store.samples("hk", "L1", ms, ms + 1)] == [1.0]
    assert [s.value for s in store.samples("hk", "L2", ms, ms + 1)] == [1.0]


def test_samples_are_filtered_by_half_open_range_line_and_signal(store: SqliteStore) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms + i, "state" if i % 2 else "temp", i)
                                    for i in range(10)] + [sample(ms + 4, line="L2")]))

    assert [s.ts_ms - ms for s in store.samples("hk", "L1", ms + 2, ms + 6)] == [2, 3, 4, 5]
    assert [s.ts_ms - ms for s in store.samples("hk", "L1", ms, ms + 10, "state")] == [
        1, 3, 5, 7, 9]
    assert store.samples("hk", "L1", ms, ms + 10, "missing") == []


def test_prune_samples_deletes_only_older_raw_samples_and_keeps_rollups_and_events(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "PRUNE_CHUNK", 3)  # several chunks, one partial
    ms = T0 * 1000
    store.write(WriteBatch(
        minutes=[minute(T0)], stops=[stop(T0, T0 + 100)],
        statuses=[LineStatus("hk", "L1", "running", T0, None, T0)],
        samples=[sample(ms + i) for i in range(10)],
        checkpoints={"L1": {"site": "hk", "at": T0}},
    ))

    assert store.prune_samples(ms + 7) == 7
    assert [s.ts_ms - ms for s in store.samples("hk", "L1", 0, ms * 2)] == [7, 8, 9]
    assert store.prune_samples(ms + 7) == 0
    assert len(store.minutes("hk", "L1", T0, T0 + 60)) == 1
    assert store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].span_s == 60
    assert len(store.stops("hk", "L1", T0, T0 + DAY)) == 1
    assert len(store.statuses("hk")) == 1
    assert store.load_checkpoint("hk", "L1") == {"site": "hk", "at": T0}


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_round_trips_keyed_by_its_site_and_line(db_path: Path) -> None:
    checkpoint = {"site": "hk", "last_ts": T0 * 1000, "open_stop": None, "counters": {"a": 1}}
    with SqliteStore(db_path) as writer:
        assert writer.load_checkpoint("hk", "L1") is None
        writer.write(WriteBatch(checkpoints={"L1": {"site": "hk", "old": True}}))
        writer.write(WriteBatch(checkpoints={"L1": checkpoint,
                                             "L2": {"site": "sz", "other": 1}}))
    with SqliteStore(db_path) as reopened:
        assert reopened.load_checkpoint("hk", "L1") == checkpoint
        assert reopened.load_checkpoint("sz", "L2") == {"site": "sz", "other": 1}
        assert reopened.load_checkpoint("hk", "L2") is None


def test_checkpoint_without_site_is_refused_and_nothing_of_its_batch_is_written(
        store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="site"):
        store.write(WriteBatch(minutes=[minute(T0)], checkpoints={"L1": {"last_ts": 1}}))
    assert store.minutes("hk", "L1", T0, T0 + 60) == []


# --- durability: atomic batches, WAL readers, concurrency -----------------------------------


def test_batch_is_atomic_a_failure_midway_writes_nothing_of_it(store: SqliteStore) -> None:
    ms = T0 * 1000
    old = minute(T0, total_count=1)
    store.write(WriteBatch(minutes=[old]))
    broken = WriteBatch(
        minutes=[replace(old, total_count=99), minute(T0 + 60)],
        stops=[stop(T0, T0 + 100)],
        statuses=[LineStatus("hk", "L1", "running", T0, None, T0)],
        samples=[sample(ms), RawSample("hk", "L1", "state", ms + 1, 1.0, None, None)],  # type: ignore[arg-type]
        checkpoints={"L1": {"site": "hk", "at": T0}},
    )
    with pytest.raises(StoreError, match="NOT NULL"):
        store.write(broken)

    assert store.minutes("hk", "L1", T0, T0 + HOUR) == [old]
    assert store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].total_count == 1
    assert store.stops("hk", "L1", T0, T0 + DAY) == []
    assert store.statuses("hk") == []
    assert store.samples("hk", "L1", 0, ms * 2) == []
    assert store.load_checkpoint("hk", "L1") is None
    store.write(WriteBatch(samples=[sample(ms)]))  # the store is still usable
    assert len(store.samples("hk", "L1", 0, ms * 2)) == 1


def test_store_file_is_in_wal_mode(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_wal_reader_sees_committed_data_while_a_writer_is_open(store: SqliteStore,
                                                               db_path: Path) -> None:
    with SqliteStore(db_path, readonly=True) as reader:
        assert reader.minutes("hk", "L1", T0, T0 + HOUR) == []
        store.write(WriteBatch(minutes=[minute(T0)]))
        assert len(reader.minutes("hk", "L1", T0, T0 + HOUR)) == 1
        assert reader.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].span_s == 60

        # A writer in the middle of a transaction neither blocks the reader nor shows it
        # uncommitted rows.
        raw = sqlite3.connect(db_path, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("DELETE FROM lw_minute")
            assert len(reader.minutes("hk", "L1", T0, T0 + HOUR)) == 1
            raw.execute("COMMIT")
        finally:
            raw.close()
        assert reader.minutes("hk", "L1", T0, T0 + HOUR) == []


def test_another_process_reads_the_store_while_this_one_has_it_open_for_writing(
        store: SqliteStore, db_path: Path) -> None:
    store.write(WriteBatch(minutes=[minute(T0, total_count=42)]))
    code = (
        "import sys; from linewatch.storage import SqliteStore\n"
        "with SqliteStore(sys.argv[1], readonly=True) as s:\n"
        f"    print(s.minute_totals('hk', 'L1', [({T0}, {T0 + HOUR})])[0].total_count)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "42"


def test_readonly_store_refuses_to_write(store: SqliteStore, db_path: Path) -> None:
    with SqliteStore(db_path, readonly=True) as reader, pytest.raises(StoreError,
                                                                      match="read-only"):
        reader.write(WriteBatch(minutes=[minute(T0)]))


def test_readonly_open_of_a_missing_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such store"):
        SqliteStore(tmp_path / "absent.db", readonly=True)
    assert not (tmp_path / "absent.db").exists()


def test_store_written_by_a_newer_schema_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version={sqlite_module.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(db_path)


def test_threads_sharing_one_store_lose_no_write(store: SqliteStore) -> None:
    def work(line: str) -> None:
        for i in range(50):
            store.write(WriteBatch(minutes=[minute(T0 + 60 * i, line=line, total_count=1)]))
            store.minute_totals("hk", line, [(T0, T0 + HOUR)])

    threads = [threading.Thread(target=work, args=(f"L{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(4):
        assert store.minute_totals("hk", f"L{n}", [(T0, T0 + HOUR)])[0].total_count == 50


# --- open_store -----------------------------------------------------------------------------


def _config(storage: dict[str, object]) -> PlantConfig:
    return PlantConfig.model_validate({"site": {"id": "hk"},
                                       "lines": [{"id": "L1", "detection": "counts"}],
                                       "storage": storage})


def test_open_store_opens_sqlite_creating_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "linewatch.db"
    store = open_store(_config({"backend": "sqlite", "sqlite": {"path": str(path)}}))
    try:
        assert isinstance(store, SqliteStore)
        store.write(WriteBatch(minutes=[minute(T0)]))
    finally:
        store.close()
    assert path.exists()


def test_open_store_influxdb_opens_the_influx_backend_not_sqlite() -> None:
    from linewatch.storage.influx import InfluxStore

    config = _config({"backend": "influxdb", "influxdb": {"api": "v1", "database": "lw"}})
    store = open_store(config)
    try:
        assert isinstance(store, InfluxStore)
        assert isinstance(store, Store)
    finally:
        store.close()
