"""The Store contract (DESIGN §6, §7), one suite run against both backends.

Every test gets a fresh store of each backend: SQLite in tmp_path, and InfluxStore on a new
database of the session's real influxd (tests/influxd.py). A few tests use both at once to
check that they give the same KPI results. Times are UTC epoch seconds unless named _ms.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch.config import PlantConfig
from linewatch.kpi_query import kpi_rows, parse_time
from linewatch.replay import replay
from linewatch.rollup import (
    ADDITIVE_FIELDS,
    LineStatus,
    MinuteRecord,
    RawSample,
    StopEvent,
    Totals,
    WriteBatch,
)
from linewatch.storage import SqliteStore, Store, StoreError
from linewatch.storage.influx import InfluxStore
from tests.influxd import Influxd, fresh_database
from tests.timeline import plant, write_csv

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC = 08:00 in Hong Kong
HOUR = 3600
DAY = 86400
BACKENDS = ("sqlite", "influxdb")

Opener = Callable[[], Store]


def minute(ts: int, product: str = "P1", *, line: str = "L1", site: str = "hk",
           source: str = "edge", **values: Any) -> MinuteRecord:
    """A full running minute unless values say otherwise."""
    base: dict[str, Any] = {"span_s": 60, "running_s": 60, "scheduled_s": 60, "ideal_s": 50.0,
                            "total_count": 10, "good_count": 9, "reject_count": 1}
    base.update(values)
    return MinuteRecord(site, line, ts, product, source=source, **base)


def tombstone(record: MinuteRecord) -> MinuteRecord:
    return MinuteRecord(record.site, record.line, record.ts, record.product, shift=record.shift,
                        source=record.source)


def sample(ts_ms: int, signal: str = "state", value: float | None = 1.0, *,
           text: str | None = None, good: bool = True, line: str = "L1") -> RawSample:
    return RawSample("hk", line, signal, ts_ms, value, text, good)


def stop(start: int, end: int, **kw: Any) -> StopEvent:
    return StopEvent("hk", "L1", start, end, "unplanned_stop", **kw)


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


def assert_same_kpis(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Rows equal key by key; floats to 1e-9 relative (sums taken in another order)."""
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key, value in row_a.items():
            if isinstance(value, float):
                assert row_b[key] == pytest.approx(value, rel=1e-9), key
            else:
                assert row_b[key] == value, key


@pytest.fixture
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one backend on one location (a file or a database); closes them after."""
    backend = request.param
    with ExitStack() as stack:
        if backend == "sqlite":
            path = tmp_path / "linewatch.db"

            def open_store() -> Store:
                return stack.enter_context(SqliteStore(path))
        else:
            server: Influxd = request.getfixturevalue("influxd")
            database = stack.enter_context(fresh_database(server))

            def open_store() -> Store:
                return stack.enter_context(InfluxStore(server.url, database=database,
                                                       gzip=False))
        yield open_store


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def both(test: Callable[..., None]) -> Callable[..., None]:
    """Run the test once per backend (the `opener` and `store` fixtures follow the param)."""
    return pytest.mark.parametrize("opener", BACKENDS, indirect=True)(test)


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """A SQLite store and an InfluxStore, both empty, for comparing the two."""
    server: Influxd = request.getfixturevalue("influxd")
    with ExitStack() as stack:
        lite = stack.enter_context(SqliteStore(tmp_path / "linewatch.db"))
        database = stack.enter_context(fresh_database(server))
        influx = stack.enter_context(InfluxStore(server.url, database=database))
        yield lite, influx


# --- the contract ---------------------------------------------------------------------------


@both
def test_store_implements_the_store_protocol(store: Store) -> None:
    assert isinstance(store, Store)


@both
def test_minute_record_round_trips_every_field(store: Store) -> None:
    record = MinuteRecord("hk", "L1", T0, "P7", shift="A", source="import", span_s=60,
                          running_s=1, micro_stop_s=2, setup_s=3, unplanned_stop_s=4,
                          planned_stop_s=5, no_data_s=6, unscheduled_s=7, scheduled_s=53,
                          break_s=8, ideal_s=12.25, total_count=11, good_count=10,
                          reject_count=1, energy_kwh=0.125, failures=2)
    store.write(WriteBatch(minutes=[record]))
    [got] = store.minutes("hk", "L1", T0, T0 + 60)
    assert got == record
    assert all(type(getattr(got, name)) is int for name in ADDITIVE_FIELDS if name != "ideal_s")


@both
def test_empty_batch_writes_nothing(store: Store) -> None:
    store.write(WriteBatch())
    assert store.minutes("hk", "L1", 0, 2 * T0) == []
    assert store.statuses("hk") == []


# --- minutes: R1, R2, R4 and tombstones -----------------------------------------------------


@both
def test_R2_resent_minute_replaces_and_never_double_counts(store: Store) -> None:
    first = minute(T0, total_count=10, energy_kwh=0.5)
    store.write(WriteBatch(minutes=[first]))
    store.write(WriteBatch(minutes=[first]))
    corrected = replace(first, total_count=12, good_count=12, reject_count=0, energy_kwh=0.75)
    store.write(WriteBatch(minutes=[corrected]))

    assert store.minutes("hk", "L1", T0, T0 + 60) == [corrected]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert (totals.span_s, totals.total_count, totals.good_count) == (60, 12, 12)
    assert totals.energy_kwh == pytest.approx(0.75)


@both
def test_R2_duplicate_write_is_idempotent_on_both_backends(store: Store) -> None:
    day = [minute(T0 + 60 * i, total_count=i % 7, energy_kwh=(i % 5) * 0.01 or None)
           for i in range(1440)]
    events = [stop(T0 + 600 * i, T0 + 600 * i + 90) for i in range(20)]
    samples = [sample(T0 * 1000 + 250 * i, "total_count", i) for i in range(400)]
    batch = WriteBatch(minutes=day, stops=events, samples=samples,
                       statuses=[LineStatus("hk", "L1", "running", T0, None, T0 + 5)],
                       checkpoints={"L1": {"site": "hk", "at": T0}})
    store.write(batch)
    before = (store.minute_totals("hk", "L1", [(T0, T0 + DAY)]),
              store.minutes("hk", "L1", T0, T0 + DAY), store.stops("hk", "L1", T0, T0 + DAY),
              store.samples("hk", "L1", 0, 2 * T0 * 1000), store.statuses("hk"))
    store.write(batch)
    store.write(batch)
    after = (store.minute_totals("hk", "L1", [(T0, T0 + DAY)]),
             store.minutes("hk", "L1", T0, T0 + DAY), store.stops("hk", "L1", T0, T0 + DAY),
             store.samples("hk", "L1", 0, 2 * T0 * 1000), store.statuses("hk"))

    assert after == before
    assert before[0][0].span_s == DAY
    assert before[0][0].total_count == sum(i % 7 for i in range(1440))
    assert (len(before[1]), len(before[2]), len(before[3])) == (1440, 20, 400)


@both
def test_R2_late_write_replaces_earlier_minutes_and_the_kpi_sums_follow(store: Store) -> None:
    # Hours later the edge (or a replay continuing the stream, R3) rewrites three minutes
    # of the morning and withdraws a fourth with a tombstone.
    morning = [minute(T0 + 60 * i, total_count=10) for i in range(120)]
    store.write(WriteBatch(minutes=morning))
    store.write(WriteBatch(minutes=[minute(T0 + 5 * HOUR + 60 * i) for i in range(60)]))
    late = [replace(morning[i], total_count=1, good_count=1, reject_count=0,
                    running_s=30, unplanned_stop_s=30) for i in (3, 4, 5)]
    store.write(WriteBatch(minutes=[*late, tombstone(morning[7])]))

    first_two_hours, later = store.minute_totals("hk", "L1", [(T0, T0 + 2 * HOUR),
                                                              (T0 + 2 * HOUR, T0 + DAY)])
    assert first_two_hours.total_count == 116 * 10 + 3
    assert first_two_hours.span_s == 119 * 60
    assert first_two_hours.unplanned_stop_s == 90
    assert later.span_s == HOUR
    assert len(store.minutes("hk", "L1", T0, T0 + 2 * HOUR)) == 119


@both
def test_R2_resent_record_without_energy_clears_the_stored_energy(store: Store) -> None:
    store.write(WriteBatch(minutes=[minute(T0, energy_kwh=0.5)]))
    store.write(WriteBatch(minutes=[minute(T0, energy_kwh=None)]))
    [record] = store.minutes("hk", "L1", T0, T0 + 60)
    assert record.energy_kwh is None
    assert store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].energy_kwh is None


@both
def test_R1_two_products_in_one_minute_are_both_kept_and_counted(store: Store) -> None:
    switch = [minute(T0, "P2", span_s=20, running_s=20, total_count=3),
              minute(T0, "P1", span_s=40, running_s=40, total_count=5)]
    store.write(WriteBatch(minutes=switch))

    assert [r.product for r in store.minutes("hk", "L1", T0, T0 + 60)] == ["P1", "P2"]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + 60)])
    assert (totals.span_s, totals.total_count) == (60, 8)


@both
def test_R1_shift_is_informative_a_rewrite_under_another_shift_replaces_the_record(
        store: Store) -> None:
    # The shift comes from the calendar at write time; after a calendar change the rewrite
    # of a minute carries another shift but is still the same record (key without shift).
    store.write(WriteBatch(minutes=[minute(T0, shift="A", total_count=10),
                                    minute(T0 + 60, shift="A", total_count=10)]))
    store.write(WriteBatch(minutes=[minute(T0, shift="B", total_count=4),
                                    tombstone(minute(T0 + 60, shift="off"))]))

    assert [(r.shift, r.total_count) for r in store.minutes("hk", "L1", T0, T0 + HOUR)] == [
        ("B", 4)]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert (totals.span_s, totals.total_count) == (60, 4)


@both
def test_R1_product_may_be_empty_when_a_line_has_no_products(store: Store) -> None:
    record = minute(T0, "", total_count=3)
    store.write(WriteBatch(minutes=[record]))
    assert store.minutes("hk", "L1", T0, T0 + 60) == [record]
    store.write(WriteBatch(minutes=[tombstone(record)]))
    assert store.minutes("hk", "L1", T0, T0 + 60) == []


@both
def test_R4_import_record_is_kept_apart_from_edge_record_and_counted_whole_at_its_start(
        store: Store) -> None:
    edge = minute(T0 + 30 * 60)
    imported = minute(T0 + 30 * 60, source="import", span_s=8 * HOUR, running_s=8 * HOUR,
                      total_count=1000)
    store.write(WriteBatch(minutes=[edge, imported]))

    assert {r.source for r in store.minutes("hk", "L1", T0, T0 + DAY)} == {"edge", "import"}
    hours = store.minute_totals("hk", "L1", [(T0 + h * HOUR, T0 + (h + 1) * HOUR)
                                             for h in range(3)])
    assert [t.span_s for t in hours] == [60 + 8 * HOUR, 0, 0]
    assert hours[0].total_count == 1010


@both
def test_tombstone_deletes_the_stored_minute_with_its_key(store: Store) -> None:
    kept = minute(T0, "P2")
    provisional = minute(T0, "P1", energy_kwh=0.2)
    store.write(WriteBatch(minutes=[provisional, kept]))
    store.write(WriteBatch(minutes=[tombstone(provisional)]))

    assert tombstone(provisional).is_empty()
    assert store.minutes("hk", "L1", T0, T0 + 60) == [kept]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert totals.span_s == 60
    assert totals.energy_kwh is None


@both
def test_tombstone_of_an_unknown_key_changes_nothing(store: Store) -> None:
    store.write(WriteBatch(minutes=[minute(T0)]))
    store.write(WriteBatch(minutes=[tombstone(minute(T0 + 60))]))
    assert len(store.minutes("hk", "L1", T0, T0 + HOUR)) == 1
    assert store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].span_s == 60


@both
def test_last_occurrence_of_a_minute_key_in_one_batch_wins(store: Store) -> None:
    a, b = minute(T0), minute(T0 + 60)
    store.write(WriteBatch(minutes=[a, tombstone(a), tombstone(b), b]))
    assert store.minutes("hk", "L1", T0, T0 + HOUR) == [b]
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])
    assert totals.span_s == 60


@both
def test_minutes_are_ordered_by_ts_product_source_within_the_half_open_range(
        store: Store) -> None:
    records = [minute(T0 + 120, "P1"), minute(T0 + 60, "P2"), minute(T0 + 60, "P1", source="x"),
               minute(T0 + 60, "P1"), minute(T0, "P1"), minute(T0 + 180, "P1")]
    store.write(WriteBatch(minutes=records))

    got = store.minutes("hk", "L1", T0 + 60, T0 + 180)
    assert [(r.ts, r.product, r.source) for r in got] == [
        (T0 + 60, "P1", "edge"), (T0 + 60, "P1", "x"), (T0 + 60, "P2", "edge"),
        (T0 + 120, "P1", "edge")]


# --- minute_totals --------------------------------------------------------------------------


@both
def test_minute_totals_sums_each_bucket_and_energy_is_none_only_without_any_energy(
        store: Store) -> None:
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


@both
def test_minute_totals_buckets_are_half_open(store: Store) -> None:
    boundary = T0 + 7 * HOUR + 10 * 60
    store.write(WriteBatch(minutes=[minute(boundary - 60, total_count=1),
                                    minute(boundary, total_count=100)]))
    before, after = store.minute_totals("hk", "L1", [(T0, boundary), (boundary, T0 + DAY)])
    assert (before.total_count, after.total_count) == (1, 100)
    quarter = T0 + 7 * HOUR
    store.write(WriteBatch(minutes=[minute(quarter - 60, total_count=1000)]))
    before, after = store.minute_totals("hk", "L1", [(T0, quarter), (quarter, T0 + DAY)])
    assert (before.total_count, after.total_count) == (1000, 101)


@both
def test_minute_totals_excludes_other_lines_and_sites(store: Store) -> None:
    store.write(WriteBatch(minutes=[
        minute(T0, total_count=1), minute(T0, line="L2", total_count=20),
        minute(T0, site="sz", total_count=300), minute(T0 + 60, site="sz", line="L1"),
        minute(T0, line="L1 east", total_count=4000),  # a tag value with a space
    ]))
    [totals] = store.minute_totals("hk", "L1", [(T0, T0 + DAY)])
    assert (totals.span_s, totals.total_count) == (60, 1)
    assert store.minute_totals("hk", "L1 east", [(T0, T0 + DAY)])[0].total_count == 4000


@both
def test_minute_totals_returns_one_totals_per_bucket_in_the_given_order(store: Store) -> None:
    store.write(WriteBatch(minutes=[minute(T0 + 60 * i, total_count=i) for i in range(10)]))
    buckets = [(T0 + 60 * i, T0 + 60 * (i + 1)) for i in range(12)]
    assert [t.total_count for t in store.minute_totals("hk", "L1", buckets)] == [
        *range(10), 0, 0]
    assert store.minute_totals("hk", "L1", []) == []
    assert store.minute_totals("hk", "L1", [(T0, T0)]) == [Totals()]


@both
def test_minute_totals_of_many_buckets_off_the_quarter_hour_match_the_sum_of_their_minutes(
        store: Store) -> None:
    records = [minute(T0 + 60 * i, total_count=i % 13, energy_kwh=(i % 3) * 0.1 or None)
               for i in range(3 * 1440)]
    store.write(WriteBatch(minutes=records))
    # 13-minute buckets starting off the hour: more buckets than one InfluxQL request holds.
    edges = [T0 + 7 * 60 + k * 13 * 60 + 7 for k in range(330)]
    buckets = list(itertools.pairwise(edges))

    got = store.minute_totals("hk", "L1", buckets)
    assert len(got) == len(buckets)
    for totals, (start, end) in zip(got, buckets, strict=True):
        assert_totals_equal(totals, naive_totals(records, start, end))


@both
@pytest.mark.parametrize("edges", [
    [T0 + 1800 + k * 86400 for k in range(4)],  # days of a UTC+05:30 site (Asia/Kolkata)
    [T0 + 900 + k * 2700 for k in range(80)],  # 45-minute buckets from :15, off the hours
    [T0 - 600, T0 + 7200, T0 + 7200 + 60, T0 + 9000 + 420, T0 + 3 * 86400],  # mixed
])
def test_minute_totals_of_quarter_and_hour_grids_match_the_sum_of_their_minutes(
        store: Store, edges: list[int]) -> None:
    rng = random.Random(3)
    records = [minute(T0 + 60 * i, total_count=rng.randint(0, 9),
                      energy_kwh=rng.choice([None, 0.25, 0.5])) for i in range(3 * 1440)]
    records += [minute(T0 + 60 * i, "P2", span_s=20, running_s=20, total_count=1)
                for i in range(0, 3 * 1440, 7)]
    store.write(WriteBatch(minutes=records))
    # A rewrite and a tombstone after the fact: the quarter sums must follow.
    records[100] = replace(records[100], total_count=1000)
    store.write(WriteBatch(minutes=[records[100], tombstone(records[200])]))
    del records[200]
    buckets = list(itertools.pairwise(edges))

    got = store.minute_totals("hk", "L1", buckets)
    for totals, (start, end) in zip(got, buckets, strict=True):
        assert_totals_equal(totals, naive_totals(records, start, end))


@both
def test_minute_totals_of_local_days_across_a_dst_change_match_the_sum_of_their_minutes(
        store: Store) -> None:
    # Europe/London springs forward on 2024-03-31: a 23-hour day between 24-hour days,
    # and a window that starts at 10:00 (a clipped first day).
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    edges = [parse_time("2024-03-28T10:00", london)]
    edges += [parse_time(f"2024-{day}", london) for day in
              ("03-29", "03-30", "03-31", "04-01", "04-02", "04-03")]
    records = [minute(edges[0] + 60 * i, total_count=i % 11, energy_kwh=(i % 4) * 0.125 or None)
               for i in range((edges[-1] - edges[0]) // 60)]
    store.write(WriteBatch(minutes=records))
    buckets = list(itertools.pairwise(edges))

    got = store.minute_totals("hk", "L1", buckets)
    assert [t.span_s for t in got] == [b - a for a, b in buckets]
    assert buckets[3][1] - buckets[3][0] == 23 * HOUR
    for totals, (start, end) in zip(got, buckets, strict=True):
        assert_totals_equal(totals, naive_totals(records, start, end))


@both
def test_minute_totals_is_a_bucket_error_when_end_precedes_start(store: Store) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        store.minute_totals("hk", "L1", [(T0 + 60, T0)])


OPS = st.lists(
    st.tuples(
        st.integers(0, 5 * 60),  # minute index within five hours
        st.sampled_from(["P1", "P2"]),
        st.sampled_from(["edge", "import"]),
        st.one_of(st.none(), st.integers(1, 200)),  # None: a tombstone
        st.one_of(st.none(), st.floats(0, 2, allow_nan=False)),
        st.sampled_from(["A", "off"]),
    ),
    max_size=40,
)
BUCKET_EDGES = st.lists(st.integers(-30, 6 * 60 + 30), min_size=2, max_size=12, unique=True)
_EXAMPLES = itertools.count()


@both
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batches=st.lists(OPS, min_size=1, max_size=3), edges=BUCKET_EDGES)
def test_minute_totals_always_equal_the_sums_of_the_stored_minutes(
        store: Store, batches: list[list[tuple[Any, ...]]], edges: list[int]) -> None:
    # One store for all examples; each example writes to a line of its own.
    line_id = f"X{next(_EXAMPLES)}"
    model: dict[tuple[str, str, int, str, str], MinuteRecord] = {}
    for ops in batches:
        batch = WriteBatch()
        for index, product, source, count, energy, shift in ops:
            record = minute(T0 + 60 * index, product, line=line_id, source=source,
                            shift=shift, total_count=count or 0, energy_kwh=energy,
                            ideal_s=(count or 0) / 3)
            if count is None:
                record = tombstone(record)
            batch.minutes.append(record)
            if record.is_empty():
                model.pop(record.key, None)
            else:
                model[record.key] = record
        store.write(batch)
    buckets = list(itertools.pairwise(sorted(T0 + 60 * e for e in edges)))

    got = store.minute_totals("hk", line_id, buckets)
    stored = store.minutes("hk", line_id, T0 - DAY, T0 + DAY)

    assert sorted(r.key for r in stored) == sorted(model)
    for totals, (start, end) in zip(got, buckets, strict=True):
        assert_totals_equal(totals, naive_totals(list(model.values()), start, end))


# --- KPIs by hour, shift and day in Asia/Hong_Kong (§9) -------------------------------------

PLANT = """\
site: {id: hk, name: Kwun Tong, timezone: Asia/Hong_Kong}
calendar:
  shifts:
    - {id: D, start: "08:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat]}
    - {id: N, start: "20:00", end: "08:00", days: [mon, tue, wed, thu, fri]}
  breaks: [{start: "12:00", end: "12:30"}, {start: "00:00", end: "00:30"}]
products: [{id: P1, ideal_cycle_s: 5}, {id: P2, ideal_cycle_s: 4}]
lines:
  - {id: L1, default_product: P1, state_map: {"1": running, "2": unplanned_stop, "3": setup}}
"""


def plant_records(config: PlantConfig, days: int, seed: int) -> list[MinuteRecord]:
    """Minute records of L1 with random but consistent sums (categories add up to span_s)."""
    rng = random.Random(seed)
    start = parse_time("2024-01-01", config.site.zone())  # Monday, local midnight
    out = []
    for i in range(days * 1440):
        ts = start + 60 * i
        if rng.random() < 0.1:
            continue  # a gap: no record at all (T10 fills it from the calendar)
        running = rng.choice([60, 60, 60, 45, 0])
        stop_s = rng.choice([0, 60 - running])
        rest = 60 - running - stop_s
        total = running // 5
        reject = rng.randint(0, 1) if total else 0
        product = "P1" if (i // 480) % 2 == 0 else "P2"
        out.append(MinuteRecord("hk", "L1", ts, product, shift="D", span_s=60,
                                running_s=running, unplanned_stop_s=stop_s, no_data_s=rest,
                                scheduled_s=60, ideal_s=total * 5.0, total_count=total,
                                good_count=total - reject, reject_count=reject,
                                energy_kwh=round(rng.random(), 3) if rng.random() < 0.9 else None,
                                failures=int(stop_s > 0 and rng.random() < 0.2)))
    return out


def test_kpi_by_hour_shift_and_day_are_the_same_on_both_backends(
        pair: tuple[Store, Store]) -> None:
    config = plant(PLANT)
    records = plant_records(config, days=3, seed=5)
    for store in pair:
        for day in range(3):
            store.write(WriteBatch(minutes=[r for r in records
                                            if T0 - 8 * HOUR + day * DAY <= r.ts
                                            < T0 - 8 * HOUR + (day + 1) * DAY]))
    zone = config.site.zone()
    start, end = parse_time("2024-01-01", zone), parse_time("2024-01-04", zone)
    lite, influx = pair

    for by in ("hour", "shift", "day", None):
        rows = kpi_rows(config, lite, "L1", start, end, by)  # type: ignore[arg-type]
        assert_same_kpis(rows, kpi_rows(config, influx, "L1", start, end,
                                        by))  # type: ignore[arg-type]
        assert sum(row["total_count"] for row in rows) == sum(r.total_count for r in records)
    days = kpi_rows(config, influx, "L1", start, end, "day")
    assert [row["from"] for row in days] == ["2024-01-01T00:00:00+08:00",
                                             "2024-01-02T00:00:00+08:00",
                                             "2024-01-03T00:00:00+08:00"]


@both
def test_kpi_day_buckets_are_hong_kong_local_days(store: Store) -> None:
    # 2024-01-01 15:59 UTC is 23:59 in Hong Kong, 16:00 UTC is midnight of 2 January.
    config = plant(PLANT)
    store.write(WriteBatch(minutes=[minute(T0 + 16 * HOUR - 60, total_count=7),
                                    minute(T0 + 16 * HOUR, total_count=100)]))
    zone = config.site.zone()
    first, second = kpi_rows(config, store, "L1", parse_time("2024-01-01", zone),
                             parse_time("2024-01-03", zone), "day")
    assert (first["from"], first["total_count"]) == ("2024-01-01T00:00:00+08:00", 7)
    assert (second["from"], second["total_count"]) == ("2024-01-02T00:00:00+08:00", 100)


@both
def test_kpi_shift_buckets_follow_the_calendar_across_midnight(store: Store) -> None:
    # Night shift N of Monday 1 January runs 20:00-08:00 Hong Kong time (12:00-24:00 UTC),
    # its break 00:00-00:30 on Tuesday.
    config = plant(PLANT)
    night = [minute(T0 + 12 * HOUR + 60 * i, total_count=1) for i in range(12 * 60)]
    store.write(WriteBatch(minutes=night))
    zone = config.site.zone()
    rows = kpi_rows(config, store, "L1", parse_time("2024-01-01T20:00", zone),
                    parse_time("2024-01-02T08:00", zone), "shift")
    assert [(r["shift"], r["date"], r["total_count"]) for r in rows] == [
        ("N", "2024-01-01", 720)]
    assert rows[0]["scheduled_s"] == 12 * HOUR


def test_R3_replay_in_two_parts_gives_the_same_kpis_on_both_backends(
        pair: tuple[Store, Store], tmp_path: Path) -> None:
    # Replay resumes from the checkpoint in the store and rewrites the minutes it changes
    # (an open stop, provisional minutes), so the InfluxDB path sees real late rewrites and
    # tombstones from the tracker.
    config = plant(PLANT)
    rows: list[tuple[str, str, Any]] = [("2024-01-01 07:59:00", "total_count", 0)]
    state, count = "1", 0
    rng = random.Random(11)
    base = parse_time("2024-01-01T08:00", config.site.zone())
    for i in range(0, 36 * 60, 3):  # a sample every 3 minutes for a day and a half
        local = _local(config, base + 60 * i + rng.randint(0, 50))
        if rng.random() < 0.15:
            state = rng.choice(["1", "2", "3"])
            rows.append((local, "state", state))
        if state == "1":
            count += rng.randint(5, 30)
            rows.append((local, "total_count", count))
    half = len(rows) // 2
    lite, influx = pair
    write_csv(tmp_path / "a.csv", config, rows[:half])
    write_csv(tmp_path / "b.csv", config, rows[half:])
    write_csv(tmp_path / "all.csv", config, rows)
    for part in ("a.csv", "b.csv"):
        replay(config, influx, tmp_path / part)
    replay(config, lite, tmp_path / "all.csv")
    zone = config.site.zone()
    start, end = parse_time("2024-01-01", zone), parse_time("2024-01-03", zone)

    for by in ("hour", "shift", "day"):
        assert_same_kpis(kpi_rows(config, lite, "L1", start, end, by),  # type: ignore[arg-type]
                         kpi_rows(config, influx, "L1", start, end, by))  # type: ignore[arg-type]
    assert lite.stops("hk", "L1", start, end) == influx.stops("hk", "L1", start, end)
    assert len(lite.stops("hk", "L1", start, end)) > 3
    assert influx.load_checkpoint("hk", "L1") == lite.load_checkpoint("hk", "L1")
    assert len(influx.samples("hk", "L1", 0, end * 1000)) == len(rows)


def _local(config: PlantConfig, ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, config.site.zone()).strftime("%Y-%m-%d %H:%M:%S")


# --- stops and statuses (R5) ----------------------------------------------------------------


@both
def test_R5_stop_upserts_by_line_and_start(store: Store) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 90, open=True)]))
    closed = stop(T0, T0 + 300, reason="jam", reason_by="op7", reason_at=T0 + 400)
    store.write(WriteBatch(stops=[closed]))

    assert store.stops("hk", "L1", T0, T0 + DAY) == [closed]
    assert store.stops("hk", "L1", T0, T0 + DAY)[0].duration_s == 300


@both
def test_R5_stop_rewritten_without_a_reason_loses_the_old_reason(store: Store) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 300, reason="jam", reason_by="op7",
                                       reason_at=T0 + 400)]))
    cleared = stop(T0, T0 + 300)
    store.write(WriteBatch(stops=[cleared]))
    assert store.stops("hk", "L1", T0, T0 + DAY) == [cleared]


@both
def test_stops_returns_events_overlapping_the_range_ordered_by_start(store: Store) -> None:
    events = [stop(T0 + 500, T0 + 600), stop(T0, T0 + 100), stop(T0 + 50, T0 + 2000),
              stop(T0 + 1000, T0 + 1100), stop(T0 + 99, T0 + 101)]
    store.write(WriteBatch(stops=events))
    store.write(WriteBatch(stops=[StopEvent("hk", "L2", T0 + 500, T0 + 600, "micro_stop")]))

    got = store.stops("hk", "L1", T0 + 100, T0 + 1000)
    assert [(e.start, e.end) for e in got] == [(T0 + 50, T0 + 2000), (T0 + 99, T0 + 101),
                                              (T0 + 500, T0 + 600)]


@both
def test_deleted_stops_remove_the_event_with_that_line_and_start(store: Store) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 100), stop(T0 + 200, T0 + 300)]))
    store.write(WriteBatch(deleted_stops=[("hk", "L1", T0), ("hk", "L1", T0 + 999)]))
    assert [e.start for e in store.stops("hk", "L1", T0, T0 + DAY)] == [T0 + 200]


@both
def test_stop_written_and_deleted_in_one_batch_ends_up_deleted(store: Store) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 100)], deleted_stops=[("hk", "L1", T0)]))
    assert store.stops("hk", "L1", T0, T0 + DAY) == []


@both
def test_deleted_stop_written_again_is_back(store: Store) -> None:
    store.write(WriteBatch(stops=[stop(T0, T0 + 100)]))
    store.write(WriteBatch(deleted_stops=[("hk", "L1", T0)]))
    again = stop(T0, T0 + 150, reason="jam")
    store.write(WriteBatch(stops=[again]))
    assert store.stops("hk", "L1", T0, T0 + DAY) == [again]


@both
def test_R5_status_upserts_by_site_and_line(store: Store) -> None:
    store.write(WriteBatch(statuses=[LineStatus("hk", "L2", "running", T0, None, T0 + 5),
                                     LineStatus("hk", "L1", "running", T0, None, T0 + 5)]))
    latest = LineStatus("hk", "L1", "unplanned_stop", T0 + 60, "jam", T0 + 65, "P1", T0 + 66)
    store.write(WriteBatch(statuses=[latest,
                                     LineStatus("sz", "L1", "setup", T0, None, None)]))

    assert store.statuses("hk") == [latest, LineStatus("hk", "L2", "running", T0, None, T0 + 5)]
    assert [s.site for s in store.statuses("sz")] == ["sz"]


@both
def test_R5_status_written_again_without_reason_and_product_has_none(store: Store) -> None:
    store.write(WriteBatch(statuses=[LineStatus("hk", "L1", "unplanned_stop", T0, "jam",
                                                T0 + 5, "P1", T0 + 6)]))
    running = LineStatus("hk", "L1", "running", T0 + 60, None, None, None, T0 + 61)
    store.write(WriteBatch(statuses=[running]))
    assert store.statuses("hk") == [running]


# --- raw samples ----------------------------------------------------------------------------


@both
def test_samples_come_back_in_time_order_and_insertion_order_on_ties(store: Store) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms + 5, "total_count", 7),
                                    sample(ms + 1, "state", 2), sample(ms + 5, "state", 1)]))
    store.write(WriteBatch(samples=[sample(ms + 5, "product", None, text='P"2'),
                                    sample(ms + 3, "temp", 81.5, good=False)]))

    got = store.samples("hk", "L1", ms, ms + 10)
    assert [(s.ts_ms - ms, s.signal) for s in got] == [
        (1, "state"), (3, "temp"), (5, "total_count"), (5, "state"), (5, "product")]
    assert got[1].good is False and got[1].value == 81.5
    assert (got[4].value, got[4].text, got[4].good) == (None, 'P"2', True)


@both
def test_resent_sample_is_ignored_and_the_first_one_stays(store: Store) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms, "state", 1.0)]))
    store.write(WriteBatch(samples=[sample(ms, "state", 9.0), sample(ms, "state", 8.0),
                                    sample(ms, "state", 1.0, line="L2")]))
    store.write(WriteBatch(samples=[sample(ms + 1, "state", 5.0), sample(ms + 1, "state", 6.0)]))
    assert [s.value for s in store.samples("hk", "L1", ms, ms + 2)] == [1.0, 5.0]
    assert [s.value for s in store.samples("hk", "L2", ms, ms + 1)] == [1.0]


@both
def test_first_sample_wins_after_a_reopen_and_in_out_of_order_batches(opener: Opener) -> None:
    # The second store is the edge after a restart: it must learn what the first stored.
    ms = T0 * 1000
    first = opener()
    first.write(WriteBatch(samples=[sample(ms + 10, "state", 1.0), sample(ms + 10, "temp", 20.0)]))
    first.close()
    second = opener()
    second.write(WriteBatch(samples=[sample(ms + 10, "state", 9.0), sample(ms + 20, "state", 2.0)]))
    # A late batch: older than what is stored, one new sample and one repeat.
    second.write(WriteBatch(samples=[sample(ms + 5, "state", 3.0), sample(ms + 10, "temp", 99.0),
                                     sample(ms + 20, "temp", 21.0)]))
    second.write(WriteBatch(samples=[sample(ms + 20, "state", 7.0)]))

    got = [(s.ts_ms - ms, s.signal, s.value) for s in opener().samples("hk", "L1", ms, ms + 30)]
    assert got == [(5, "state", 3.0), (10, "state", 1.0), (10, "temp", 20.0),
                   (20, "state", 2.0), (20, "temp", 21.0)]


@both
def test_samples_are_filtered_by_half_open_range_line_and_signal(store: Store) -> None:
    ms = T0 * 1000
    store.write(WriteBatch(samples=[sample(ms + i, "state" if i % 2 else "temp", i)
                                    for i in range(10)] + [sample(ms + 4, line="L2")]))

    assert [s.ts_ms - ms for s in store.samples("hk", "L1", ms + 2, ms + 6)] == [2, 3, 4, 5]
    assert [s.ts_ms - ms for s in store.samples("hk", "L1", ms, ms + 10, "state")] == [
        1, 3, 5, 7, 9]
    assert store.samples("hk", "L1", ms, ms + 10, "missing") == []


@both
def test_prune_samples_deletes_only_older_raw_samples_and_keeps_rollups_and_events(
        store: Store) -> None:
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


@both
def test_checkpoint_round_trips_keyed_by_its_site_and_line(opener: Opener) -> None:
    checkpoint = {"site": "hk", "last_ts": T0 * 1000, "open_stop": None,
                  "counters": {"a": 1}, "note": 'quote " and \\ backslash'}
    writer = opener()
    assert writer.load_checkpoint("hk", "L1") is None
    writer.write(WriteBatch(checkpoints={"L1": {"site": "hk", "old": True}}))
    writer.write(WriteBatch(checkpoints={"L1": checkpoint, "L2": {"site": "sz", "other": 1}}))
    writer.close()
    reopened = opener()
    assert reopened.load_checkpoint("hk", "L1") == checkpoint
    assert reopened.load_checkpoint("sz", "L2") == {"site": "sz", "other": 1}
    assert reopened.load_checkpoint("hk", "L2") is None


@both
def test_checkpoint_without_site_is_refused_and_nothing_of_its_batch_is_written(
        store: Store) -> None:
    with pytest.raises(ValueError, match="site"):
        store.write(WriteBatch(minutes=[minute(T0)], checkpoints={"L1": {"last_ts": 1}}))
    assert store.minutes("hk", "L1", T0, T0 + 60) == []


# --- failures and concurrency ---------------------------------------------------------------


@both
def test_batch_that_cannot_be_stored_raises_store_error_and_writes_nothing(
        store: Store) -> None:
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
    with pytest.raises(StoreError):
        store.write(broken)

    assert store.minutes("hk", "L1", T0, T0 + HOUR) == [old]
    assert store.minute_totals("hk", "L1", [(T0, T0 + HOUR)])[0].total_count == 1
    assert store.stops("hk", "L1", T0, T0 + DAY) == []
    assert store.statuses("hk") == []
    assert store.samples("hk", "L1", 0, ms * 2) == []
    assert store.load_checkpoint("hk", "L1") is None
    store.write(WriteBatch(samples=[sample(ms)]))  # the store is still usable
    assert len(store.samples("hk", "L1", 0, ms * 2)) == 1


@both
def test_threads_sharing_one_store_lose_no_write(store: Store) -> None:
    def work(line: str) -> None:
        for i in range(25):
            store.write(WriteBatch(minutes=[minute(T0 + 60 * i, line=line, total_count=1)]))
            store.minute_totals("hk", line, [(T0, T0 + HOUR)])

    threads = [threading.Thread(target=work, args=(f"L{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for n in range(4):
        assert store.minute_totals("hk", f"L{n}", [(T0, T0 + HOUR)])[0].total_count == 25
