"""Property tests of the time model, the rollups and the KPI queries (DESIGN §3, §4, §6, §9).

Random sample streams for a state line (L1) and a counts line (L2) of a small plant go
through `linewatch.replay` into a SQLite store (or straight through a `LineTracker`), and
rules that must hold for *any* stream are checked: the categories partition the calendar
(T1, T10) and respect it (T2–T4), KPIs are recomputed from sums (R1, §4), buckets tile the
window and add up (§9), replaying in parts equals replaying at once, re-running changes
nothing (R3) and advancing time between samples changes nothing (R2), counter deltas follow
S6, and stops are classified and counted as T5/T6 say.

Streams: per (line, signal) timestamps strictly increase in milliseconds (as real PLC data
does); several samples of different signals may share a second or a millisecond (S1); gaps
range from 0 to 30 min so that a stream of at most 200 samples spans hours across shift
boundaries, and some gaps are exactly micro_stop_s or stop_after_s (± 1 s) so that stops
land on the policy boundaries. Sites are in Hong Kong, or in London around the DST
weekends. Values mix mapped and unmapped states, spellings of the same number (S4),
bad-quality samples, reasons, product switches (through `product_map`), cumulative counters
with resets and rollovers (`counter_max: 1000`) and an energy meter, plus the odd bad input
(an unknown reason or product), which replay skips.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch.config import PlantConfig
from linewatch.kpi import CalendarFill, compute_kpis, fill_uncovered
from linewatch.kpi_query import kpi_rows
from linewatch.replay import ReplaySummary, replay
from linewatch.rollup import CATEGORY_FIELDS, MinuteRecord, StopEvent, Totals
from linewatch.shift_calendar import ShiftCalendar
from linewatch.state_tracker import BadInput
from linewatch.storage.sqlite import SqliteStore
from tests.timeline import Row, Run, collect, feed, kpi, plant, samples, tracker, write_csv

SITE = "hk"
SEVEN = CATEGORY_FIELDS  # the seven category seconds of T1, as rollup fields
COUNTER_MAX = 1000
# Streams start somewhere in the three days from a local midnight, so they cross shift
# starts and ends, breaks, midnight and a weekend: Thursday 2026-03-05 in Hong Kong (UTC+8,
# no DST), and in London the weekends whose Sunday has 23 hours (clocks go forward on
# 2026-03-29) and 25 hours (back on 2026-10-25), for hour and day buckets (T7, §9).
STARTS = {
    "Asia/Hong_Kong": [dt.date(2026, 3, 5)],
    "Europe/London": [dt.date(2026, 3, 28), dt.date(2026, 10, 24)],
}
# Around a stream, for windows that hold all of it: more than a day, so that every such
# window holds shift instances, breaks and off-shift gaps with no record at all (T10).
MARGIN_S = 26 * 3600
NEAR_S = 2 * 3600  # random sub-windows lie within this of a stream

# 30 examples per property keep the file well under a minute; a deeper search:
# LINEWATCH_PROPERTY_EXAMPLES=1000 pytest tests/linewatch/test_properties.py
EXAMPLES = int(os.environ.get("LINEWATCH_PROPERTY_EXAMPLES", "30"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CALENDARS = {
    # A day shift with a lunch break, Monday to Friday.
    "day": """
      shifts: [{id: D, start: "08:00", end: "16:00", days: [mon, tue, wed, thu, fri]}]
      breaks: [{start: "12:00", end: "12:30"}]
    """,
    # A night shift crossing midnight, with a break after midnight (inside the shift
    # instance that started the evening before, T7).
    "night": """
      shifts: [{id: N, start: "22:00", end: "06:00", days: [mon, tue, wed, thu, fri]}]
      breaks: [{start: "02:00", end: "02:30"}]
    """,
}


@cache
def make_config(
    zone: str, calendar: str, micro_stop_s: int, stop_after_s: int, setup_is_planned: bool
) -> PlantConfig:
    calendar_yaml = "\n".join(
        "  " + line.strip() for line in CALENDARS[calendar].strip().splitlines()
    )
    return plant(f"""
site: {{id: {SITE}, timezone: {zone}}}
policy: {{micro_stop_s: {micro_stop_s}, stop_after_s: {stop_after_s},
          setup_is_planned: {str(setup_is_planned).lower()}}}
calendar:
{calendar_yaml}
products:
  - {{id: P1, ideal_cycle_s: 20}}
  - {{id: P2, ideal_cycle_s: 45, units_per_cycle: 2}}
reasons:
  - {{code: fault, category: unplanned_stop}}
  - {{code: changeover, category: setup}}
  - {{code: meeting, category: planned_stop}}
lines:
  - id: L1
    detection: state
    default_product: P1
    counter_max: {COUNTER_MAX}
    state_map:
      "1": running
      "2": {{category: unplanned_stop, reason: fault}}
      "3": setup
      "4": planned_stop
      "5": unplanned_stop
    reason_map: {{"0": null, "17": fault, "18": changeover, "19": meeting}}
    product_map: {{"101": P1, "102": P2}}
  - id: L2
    detection: counts
    default_product: P2
    counter_max: {COUNTER_MAX}
    reason_map: {{"0": null, "17": fault, "18": changeover, "19": meeting}}
    product_map: {{"101": P1, "102": P2}}
""")


# --- stream generation -------------------------------------------------------------------

# Gaps between a line's samples: (lowest, highest) ms of each class, drawn class first so
# that every class is equally likely.
GAP_CLASSES = (
    (0, 0),  # the same millisecond (another signal)
    (1, 999),  # within about a second
    (100, 10_000),  # 0.1 s … 10 s
    (10_000, 300_000),  # 10 s … 5 min
    (300_000, 1_800_000),  # 5 … 30 min
)
BAD = "bad"
# Raw state values: mapped ones in several spellings (S4), unmapped ones (numeric and text).
STATE_VALUES = ["1", "2", "3", "4", "5", "9", "1.0", "+2", "03", "idle"]
# "0" maps to no reason; "77" is in neither reason_map nor the catalog: bad input.
REASON_VALUES = ["17", "18", "19", "0", "fault", "77"]
# Through product_map, by product id, or unknown (bad input, S9).
PRODUCT_VALUES = ["101", "102", "P2", "P1", "999"]
# Counter steps, with the range of their magnitude: an increase (rolling over past
# counter_max), a reset to a small value, a jump anywhere (drops of every size), a jump near
# counter_max (so that later increases roll over). Energy: an increase or a reset (1/100 kWh).
STEPS = {
    "inc": (0, 40),
    "reset": (0, 20),
    "set": (0, COUNTER_MAX),
    "near": (900, COUNTER_MAX),
    "kwh": (0, 500),
    "kwh_reset": (0, 50),
}
COUNTS = [("inc",) * 4, ("reset", "set", "near", BAD)]
# One event = (signal, value or step); an option is drawn uniformly, so repetition weighs.
OPTIONS = {
    "L1": [
        *[("state", v) for v in STATE_VALUES],
        ("state", BAD),
        *[("total_count", step) for group in COUNTS for step in group],
        ("good_count", "inc"),
        ("good_count", "inc"),
        ("good_count", "set"),
        ("good_count", BAD),
        *[("reason", v) for v in REASON_VALUES],
        ("reason", BAD),
        *[("product", v) for v in PRODUCT_VALUES],
        ("energy_kwh", "kwh"),
        ("energy_kwh", "kwh"),
        ("energy_kwh", "kwh_reset"),
        ("energy_kwh", BAD),
    ],
    "L2": [
        *[("total_count", step) for group in COUNTS for step in group],
        *[("total_count", step) for step in COUNTS[0]],
        ("good_count", "inc"),
        ("good_count", "inc"),
        ("good_count", "set"),
        ("good_count", BAD),
        *[("product", v) for v in PRODUCT_VALUES],
        ("reason", "17"),
        ("reason", "18"),
        ("reason", "0"),
        ("energy_kwh", "kwh"),
        ("energy_kwh", "kwh_reset"),
        ("energy_kwh", BAD),
    ],
}


@st.composite
def gaps(draw: st.DrawFn, exact_s: tuple[int, ...]) -> int:
    """A gap of one of GAP_CLASSES, or exactly one of `exact_s` whole seconds: the lengths
    where the policy switches (micro_stop_s, stop_after_s) judge a stop, and their
    neighbours, so that boundary cases (T5, S11) occur."""
    classes = len(GAP_CLASSES) + (1 if exact_s else 0)
    which = draw(st.integers(0, classes - 1))
    if which == len(GAP_CLASSES):
        return 1000 * exact_s[draw(st.integers(0, len(exact_s) - 1))]
    lo, hi = GAP_CLASSES[which]
    return lo if lo == hi else draw(st.integers(lo, hi))


def policy_seconds(config: PlantConfig) -> tuple[int, ...]:
    micro, after = config.policy.micro_stop_s, config.policy.stop_after_s
    return (
        micro,
        micro - 1,
        micro + 1,
        after,
        after - 1,
        after + 1,
        after + micro,
        after + micro - 1,
        60,
    )


@st.composite
def events(draw: st.DrawFn, line: str, exact_s: tuple[int, ...]) -> tuple[int, str, str, int]:
    """(gap ms, signal, value or step, magnitude); few draws, as hypothesis draws are slow."""
    gap = draw(gaps(exact_s))
    signal, what = OPTIONS[line][draw(st.integers(0, len(OPTIONS[line]) - 1))]
    magnitude = draw(st.integers(*STEPS[what])) if what in STEPS else 0
    return gap, signal, what, magnitude


def build_rows(start_ms: int, drawn: list[tuple[int, str, str, int]], zone: ZoneInfo) -> list[Row]:
    """Turn drawn events into time-ordered rows: (local ISO time with ms, signal, value, q).

    A (signal, millisecond) pair never repeats: a signal's sample that would land on the
    millisecond of its previous one moves 1 ms later (and time goes on from there).
    """
    rows: list[Row] = []
    now = start_ms
    last: dict[str, int] = {}
    counters: dict[str, int] = defaultdict(int)
    energy = 0
    for gap, signal, what, magnitude in drawn:
        now += gap
        if last.get(signal, -1) >= now:
            now = last[signal] + 1
        last[signal] = now
        quality = "bad" if what == BAD else "good"
        if signal in ("total_count", "good_count"):
            value = counters[signal]
            if what == "inc":
                value = (value + magnitude) % (COUNTER_MAX + 1)
            elif what != BAD:  # a bad-quality read repeats the register, unchanged
                value = magnitude
            counters[signal] = value
            raw = str(value)
        elif signal == "energy_kwh":
            if what == "kwh":
                energy += magnitude
            elif what == "kwh_reset":
                energy = magnitude
            raw = f"{energy / 100:.2f}"
        elif what == BAD:
            raw = "0"
        else:
            raw = what
        rows.append((local_iso(now, zone), signal, raw, quality))
    return rows


def local_iso(ts_ms: int, zone: ZoneInfo) -> str:
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, zone)
    return moment.isoformat(timespec="milliseconds")


def row_ms(row: Row) -> int:
    return round(dt.datetime.fromisoformat(row[0]).timestamp() * 1000)


@dataclass
class Scenario:
    config: PlantConfig
    streams: dict[str, list[Row]]  # line -> rows in time order

    @property
    def lines(self) -> list[str]:
        return list(self.streams)

    def merged(self) -> list[tuple[str, Row]]:
        """All rows of all lines in time order (stable: a line's own order is kept)."""
        items = [(line, row) for line, rows in self.streams.items() for row in rows]
        return sorted(items, key=lambda item: row_ms(item[1]))

    def first_s(self) -> int:
        return min(row_ms(rows[0]) for rows in self.streams.values()) // 1000

    def last_s(self) -> int:
        return max(row_ms(rows[-1]) for rows in self.streams.values()) // 1000

    def whole_window(self) -> tuple[int, int]:
        """Whole minutes around every sample, with a margin on both sides."""
        start = self.first_s() - self.first_s() % 60 - MARGIN_S
        end = self.last_s() - self.last_s() % 60 + 60 + MARGIN_S
        return start, end


@st.composite
def configs(draw: st.DrawFn) -> PlantConfig:
    return make_config(
        draw(st.sampled_from(sorted(STARTS))),
        draw(st.sampled_from(sorted(CALENDARS))),
        draw(st.integers(30, 180)),  # micro_stop_s
        draw(st.integers(20, 90)),  # stop_after_s
        draw(st.booleans()),  # setup_is_planned
    )


def start_ms(config: PlantConfig) -> st.SearchStrategy[int]:
    zone = config.site.zone()
    midnights = [
        int(dt.datetime.combine(day, dt.time(0), zone).timestamp() * 1000)
        for day in STARTS[config.site.timezone]
    ]
    # Whole hours from sampled_from, which draws uniformly (integers() favours the ends of
    # its range, which would start most streams at midnight).
    return st.tuples(
        st.sampled_from(midnights), st.sampled_from(range(72)), st.integers(0, 3_600_000 - 1)
    ).map(lambda t: t[0] + t[1] * 3_600_000 + t[2])


@st.composite
def scenarios(draw: st.DrawFn, max_samples: int = 200) -> Scenario:
    config = draw(configs())
    lines = draw(st.sampled_from([("L1",), ("L2",), ("L1", "L2")]))
    streams: dict[str, list[Row]] = {}
    budget = max_samples // len(lines)
    for line in lines:
        start = draw(start_ms(config))
        # A minimum length is drawn first so that streams are long (hours), not
        # hypothesis's usual handful of elements; both still shrink.
        size = draw(st.integers(1, budget), label=f"at least, samples of {line}")
        drawn = draw(st.lists(events(line, policy_seconds(config)), min_size=size, max_size=budget))
        streams[line] = build_rows(start, drawn, config.site.zone())
    return Scenario(config, streams)


# --- running a scenario -----------------------------------------------------------------


@contextmanager
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: one function-scoped directory would be shared by every example.
    # In memory where there is a tmpfs: SQLite's fsyncs would take most of the run time.
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="lw-prop-", dir=where) as name:
        yield Path(name)


def write_streams(path: Path, config: PlantConfig, streams: dict[str, list[Row]]) -> Path:
    """One samples CSV holding every line's rows (replay sorts them by time, stably)."""
    text = ""
    for n, (line, rows) in enumerate(streams.items()):
        part = write_csv(path.with_suffix(f".{line}.csv"), config, rows, line).read_text(
            encoding="utf-8"
        )
        text += part if n == 0 else part.split("\n", 1)[1]
    path.write_text(text, encoding="utf-8")
    return path


def replay_streams(
    directory: Path,
    config: PlantConfig,
    streams: dict[str, list[Row]],
    store: SqliteStore | None = None,
    name: str = "samples",
) -> tuple[SqliteStore, ReplaySummary]:
    store = store if store is not None else SqliteStore(directory / f"{name}.db")
    summary = replay(config, store, write_streams(directory / f"{name}.csv", config, streams))
    return store, summary


def stored(store: SqliteStore, line: str) -> tuple[dict[tuple, MinuteRecord], dict[int, StopEvent]]:
    everything = (0, 2**40)
    minutes = {r.key: r for r in store.minutes(SITE, line, *everything)}
    stops = {e.start: e for e in store.stops(SITE, line, *everything)}
    return minutes, stops


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def epoch_of(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def windows(scenario: Scenario) -> st.SearchStrategy[tuple[int, int]]:
    """A random whole-minute window within two hours of the stream: it may cut the stream
    anywhere, hold all of it, or miss it."""
    first, last = scenario.first_s(), scenario.last_s()
    lo = first - first % 60 - NEAR_S
    hi = last - last % 60 + 60 + NEAR_S
    minutes = (hi - lo) // 60
    return st.tuples(st.integers(0, minutes - 1), st.integers(1, minutes)).map(
        lambda ab: (lo + 60 * min(ab[0], ab[1] - 1), lo + 60 * max(ab[1], ab[0] + 1))
    )


def calendar_of(config: PlantConfig) -> ShiftCalendar:
    return ShiftCalendar(config.calendar, config.site.zone())


# --- T1 / T10 ---------------------------------------------------------------------------


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_T1_categories_partition_calendar_seconds_for_any_stream(
    scenario: Scenario, data: st.DataObject
) -> None:
    config = scenario.config
    with workdir() as directory:
        store, _ = replay_streams(directory, config, scenario.streams)
        with store:
            whole = scenario.whole_window()
            sub = data.draw(windows(scenario), label="sub-window")
            for line in scenario.lines:
                for start, end in (whole, sub):
                    (row,) = kpi(config, store, iso(start), iso(end), line=line)
                    assert row["calendar_s"] == end - start
                    assert sum(row[name] for name in SEVEN) == row["calendar_s"], (
                        line,
                        start,
                        end,
                        {name: row[name] for name in SEVEN},
                    )
                    for name in SEVEN:
                        assert row[name] >= 0, (line, name, row[name])
                    # T8: scheduled_s is what the calendar says, with or without records.
                    shift_s, break_s, _off = calendar_of(config).kind_seconds(start, end)
                    assert row["scheduled_s"] == shift_s + break_s

                records = store.minutes(SITE, line, 0, 2**40)
                per_minute: dict[int, int] = defaultdict(int)
                for record in records:
                    assert record.ts % 60 == 0, record
                    assert sum(getattr(record, name) for name in SEVEN) == record.span_s, record
                    assert 0 <= record.scheduled_s <= record.span_s, record
                    assert 0 <= record.break_s <= record.scheduled_s, record
                    per_minute[record.ts] += record.span_s
                for minute, span in per_minute.items():
                    assert 0 < span <= 60, (line, minute, span)
                # R3: the records cover every second from the first sample's minute up to
                # and including the last sample's second, once.
                rows = scenario.streams[line]
                first, last = row_ms(rows[0]) // 1000, row_ms(rows[-1]) // 1000
                origin = first - first % 60
                assert sum(per_minute.values()) == last + 1 - origin, (line, origin, last)
                assert sorted(per_minute) == list(range(origin, last - last % 60 + 60, 60))
                assert all(
                    span == 60 for minute, span in per_minute.items() if minute != last - last % 60
                )


@SETTINGS
@given(scenario=scenarios())
def test_T2_T3_T4_categories_respect_the_calendar_for_any_stream(scenario: Scenario) -> None:
    """Per record: off-shift seconds are running or unscheduled (T2), break seconds running
    or planned_stop (T3); micro/setup/unplanned/no_data happen only in shift time (T4)."""
    config = scenario.config
    with workdir() as directory:
        store, _ = replay_streams(directory, config, scenario.streams)
        with store:
            for line in scenario.lines:
                for r in store.minutes(SITE, line, 0, 2**40):
                    off = r.span_s - r.scheduled_s
                    in_shift = r.scheduled_s - r.break_s
                    assert r.unscheduled_s <= off, r
                    assert r.running_s + r.unscheduled_s >= off, r
                    assert (
                        r.micro_stop_s + r.setup_s + r.unplanned_stop_s + r.no_data_s <= in_shift
                    ), r
                    assert r.planned_stop_s <= r.scheduled_s, r


# --- R1 / §4: never average ratios ------------------------------------------------------


def reference_kpis(t: Totals, calendar_s: int, setup_is_planned: bool) -> dict[str, Any]:
    """The §4 table, written out again from summed seconds and counts."""

    def ratio(a: float, b: float) -> float | None:
        return None if b == 0 else a / b

    planned = (
        t.running_s + t.micro_stop_s + t.unplanned_stop_s + (0 if setup_is_planned else t.setup_s)
    )
    run = t.running_s + t.micro_stop_s
    quality = ratio(t.good_count, t.total_count)
    made = t.total_count > 0
    return {
        "calendar_s": calendar_s,
        "planned_s": planned,
        "run_s": run,
        "ideal_s": t.ideal_s,
        "availability": ratio(run, planned),
        "performance": ratio(t.ideal_s, run),
        "quality": quality,
        "oee": None if planned == 0 else (t.ideal_s * quality / planned if made else 0.0),
        "teep": t.ideal_s * quality / calendar_s if made else 0.0,
        "failures": t.failures,
        "mtbf_s": ratio(run, t.failures),
        "mttr_s": ratio(t.unplanned_stop_s, t.failures),
        "throughput_per_h": ratio(t.good_count * 3600, planned),
        "scrap_ratio": ratio(t.reject_count, t.total_count),
        "energy_per_unit_kwh": (
            None if t.energy_kwh is None else ratio(t.energy_kwh, t.good_count)
        ),
        "completeness": ratio(t.scheduled_s - t.no_data_s, t.scheduled_s),
        **{name: getattr(t, name) for name in SEVEN},
        "scheduled_s": t.scheduled_s,
        "total_count": t.total_count,
        "good_count": t.good_count,
        "reject_count": t.reject_count,
        "energy_kwh": t.energy_kwh,
    }


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_R1_kpis_of_a_span_are_computed_from_summed_minute_rollups(
    scenario: Scenario, data: st.DataObject
) -> None:
    config = scenario.config
    calendar = calendar_of(config)
    setup_is_planned = config.policy.setup_is_planned
    with workdir() as directory:
        store, _ = replay_streams(directory, config, scenario.streams)
        with store:
            for line in scenario.lines:
                for start, end in (
                    scenario.whole_window(),
                    data.draw(windows(scenario), label="window"),
                ):
                    totals = Totals()
                    for record in store.minutes(SITE, line, start, end):
                        totals.add(record)
                    fill = CalendarFill(*calendar.kind_seconds(start, end))
                    filled = fill_uncovered(totals, fill)
                    expected = compute_kpis(filled, fill.calendar_s, setup_is_planned)
                    (row,) = kpi_rows(config, store, line, start, end, None)
                    for key, value in expected.items():
                        assert same(row[key], value), (line, key, row[key], value)
                    # …and compute_kpis is the §4 table applied to those sums.
                    for key, value in reference_kpis(
                        filled, fill.calendar_s, setup_is_planned
                    ).items():
                        assert same(row[key], value), (line, key, row[key], value)


# --- §9: buckets tile the window and add up --------------------------------------------

ADDITIVE_KEYS = (
    *SEVEN,
    "calendar_s",
    "scheduled_s",
    "planned_s",
    "run_s",
    "total_count",
    "good_count",
    "reject_count",
    "failures",
)


@SETTINGS
@given(scenario=scenarios(), data=st.data(), by=st.sampled_from(["hour", "day", "shift"]))
def test_S9_buckets_by_hour_day_shift_tile_the_window_and_sum_to_the_whole(
    scenario: Scenario, data: st.DataObject, by: str
) -> None:
    config = scenario.config
    with workdir() as directory:
        store, _ = replay_streams(directory, config, scenario.streams)
        with store:
            for line in scenario.lines:
                for start, end in (
                    scenario.whole_window(),
                    data.draw(windows(scenario), label="window"),
                ):
                    (whole,) = kpi(config, store, iso(start), iso(end), line=line)
                    rows = kpi(config, store, iso(start), iso(end), by=by, line=line)
                    assert rows, (by, start, end)
                    bounds = [(epoch_of(r["from"]), epoch_of(r["to"])) for r in rows]
                    assert bounds[0][0] == start
                    assert bounds[-1][1] == end
                    for (_a, b), (c, _d) in itertools.pairwise(bounds):
                        assert b == c, bounds
                    assert all(a < b for a, b in bounds), bounds
                    for key in ADDITIVE_KEYS:
                        assert sum(r[key] for r in rows) == whole[key], (by, key)
                    assert sum(r["ideal_s"] for r in rows) == pytest.approx(
                        whole["ideal_s"], rel=1e-9, abs=1e-9
                    )
                    energies = [r["energy_kwh"] for r in rows if r["energy_kwh"] is not None]
                    if whole["energy_kwh"] is None:
                        assert energies == []
                    else:
                        assert sum(energies) == pytest.approx(whole["energy_kwh"], abs=1e-6)
                    if by == "shift":
                        calendar = calendar_of(config)
                        for r, (a, b) in zip(rows, bounds, strict=True):
                            shift_s, break_s, off_s = calendar.kind_seconds(a, b)
                            if r["shift"] is None:
                                assert shift_s + break_s == 0, r  # an off-shift gap
                            else:
                                assert off_s == 0, r  # (part of) one shift instance


# --- R3: replaying in parts, re-running --------------------------------------------------


def run_at_once(config: PlantConfig, line: str, rows: list[Row]) -> Run:
    run = Run(tracker(config, line))
    for sample in samples(config, rows, line):
        with suppress(BadInput):
            run.tracker.apply(sample)
    run.tracker.finish()
    collect(run)
    return run


def run_in_parts(
    config: PlantConfig, line: str, rows: list[Row], cuts: list[tuple[int, bool]]
) -> Run:
    """Apply rows in parts that end at each cut index; between parts the tracker is rebuilt
    from its checkpoint through JSON, after finish() (the end of a replay, R3) or not (an
    edge checkpoint between batches)."""
    run = Run(tracker(config, line))
    all_samples = samples(config, rows, line)
    done = 0
    for cut, finish in [*cuts, (len(all_samples), True)]:
        for sample in all_samples[done:cut]:
            with suppress(BadInput):
                run.tracker.apply(sample)
        done = max(done, cut)
        if finish:
            run.tracker.finish()
        collect(run)
        saved = json.loads(json.dumps(run.tracker.checkpoint()))
        run.tracker = tracker(config, line, saved)
    return run


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_R3_replay_in_parts_through_checkpoints_equals_replay_at_once(
    scenario: Scenario, data: st.DataObject
) -> None:
    config = scenario.config
    for line, rows in scenario.streams.items():
        cuts = data.draw(
            st.lists(
                st.tuples(st.integers(0, len(rows)), st.booleans()), min_size=1, max_size=3
            ).map(sorted),
            label=f"cuts (index, finish) of {line}",
        )
        once = run_at_once(config, line, rows)
        parts = run_in_parts(config, line, rows, cuts)
        assert parts.minutes == once.minutes
        assert parts.stops == once.stops


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_R2_advancing_time_between_samples_changes_no_result(
    scenario: Scenario, data: st.DataObject
) -> None:
    """The edge calls advance_to(now) between samples (R2: write final minutes); declaring
    time known up to a second no later than the next sample's must not change what the
    stream finally gives."""
    config = scenario.config
    for line, rows in scenario.streams.items():
        once = run_at_once(config, line, rows)
        all_samples = samples(config, rows, line)
        ticks = data.draw(
            st.lists(
                st.tuples(st.integers(1, max(1, len(rows) - 1)), st.integers(0, 100)), max_size=30
            ),
            label=f"advance_to before sample (index, % of gap) of {line}",
        )
        before: dict[int, list[int]] = defaultdict(list)
        for index, percent in ticks:
            if index < len(all_samples):
                lo, hi = all_samples[index - 1].second, all_samples[index].second
                before[index].append(lo + (hi - lo) * percent // 100)
        run = Run(tracker(config, line))
        for index, sample in enumerate(all_samples):
            for now in sorted(before.get(index, ())):
                run.tracker.advance_to(now)
            with suppress(BadInput):
                run.tracker.apply(sample)
        run.tracker.finish()
        collect(run)
        assert run.minutes == once.minutes
        assert run.stops == once.stops


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_R3_replaying_a_file_in_two_parts_into_one_store_equals_replaying_it_at_once(
    scenario: Scenario, data: st.DataObject
) -> None:
    config = scenario.config
    merged = scenario.merged()
    split = data.draw(st.integers(0, len(merged)), label="split")
    first: dict[str, list[Row]] = {line: [] for line in scenario.lines}
    second: dict[str, list[Row]] = {line: [] for line in scenario.lines}
    for n, (line, row) in enumerate(merged):
        (first if n < split else second)[line].append(row)
    with workdir() as directory:
        once, _ = replay_streams(directory, config, scenario.streams, name="once")
        parts = SqliteStore(directory / "parts.db")
        replay_streams(directory, config, first, store=parts, name="first")
        replay_streams(directory, config, second, store=parts, name="second")
        with once, parts:
            for line in scenario.lines:
                assert stored(parts, line) == stored(once, line), line


@SETTINGS
@given(scenario=scenarios())
def test_R3_rerunning_a_replay_into_the_same_store_changes_nothing(scenario: Scenario) -> None:
    config = scenario.config
    with workdir() as directory:
        store, first = replay_streams(directory, config, scenario.streams)
        with store:
            before = {line: stored(store, line) for line in scenario.lines}
            checkpoints = {line: store.load_checkpoint(SITE, line) for line in scenario.lines}
            totals = {
                line: store.minute_totals(SITE, line, [scenario.whole_window()])
                for line in scenario.lines
            }
            _, again = replay_streams(directory, config, scenario.streams, store=store)
            assert again.rows == first.rows
            assert again.applied == 0
            assert sum(again.skipped.values()) == again.rows, again.render()
            for line in scenario.lines:
                assert stored(store, line) == before[line], line
                assert store.load_checkpoint(SITE, line) == checkpoints[line], line
                assert store.minute_totals(SITE, line, [scenario.whole_window()]) == totals[line], (
                    line
                )


# --- S6: counter deltas -------------------------------------------------------------------


def reference_deltas(rows: list[Row], counter_max: int) -> dict[int, int]:
    """S6 written out: per UTC minute, the sum of total_count deltas revealed in it."""
    out: dict[int, int] = defaultdict(int)
    prev: int | None = None
    for row in rows:
        if row[3] == "bad":
            continue  # ignored; never moves the baseline
        value = int(row[2])
        if prev is not None:
            if value >= prev:
                delta = value - prev
            elif prev >= 0.9 * counter_max:
                delta = value + counter_max + 1 - prev  # rollover
            else:
                delta = value  # reset
            second = row_ms(row) // 1000
            out[second - second % 60] += delta
        prev = value
    return {minute: n for minute, n in out.items() if n}


@st.composite
def counter_rows(draw: st.DrawFn) -> tuple[PlantConfig, list[Row]]:
    config = draw(configs())
    start = draw(start_ms(config))
    size = draw(st.integers(1, 200), label="at least, samples")
    values = draw(st.lists(counter_sample(), min_size=size, max_size=200))
    rows: list[Row] = []
    now = start
    for gap, value, quality in values:
        now += max(gap, 1)  # one signal: never the same millisecond twice
        rows.append((local_iso(now, config.site.zone()), "total_count", str(value), quality))
    return config, rows


@st.composite
def counter_sample(draw: st.DrawFn) -> tuple[int, int, str]:
    """(gap ms, any register value, quality): drops and rises of every size."""
    gap = draw(gaps(()))
    value = draw(st.integers(0, COUNTER_MAX))
    return gap, value, "bad" if draw(st.integers(0, 11)) == 0 else "good"


@SETTINGS
@given(case=counter_rows(), line=st.sampled_from(["L1", "L2"]))
def test_S6_counter_deltas_are_never_negative_and_match_the_reference(
    case: tuple[PlantConfig, list[Row]], line: str
) -> None:
    config, rows = case
    # L1 is a state line, L2 a counts line; neither maps any count signal, so the stream's
    # total_count is the line's only count (S7: good = total, reject = 0).
    run = feed(config, rows, line=line)
    per_minute: dict[int, int] = defaultdict(int)
    for record in run.minutes.values():
        assert record.total_count >= 0, record
        assert record.good_count == record.total_count, record
        assert record.reject_count == 0, record
        per_minute[record.ts] += record.total_count
    got = {minute: n for minute, n in per_minute.items() if n}
    assert got == reference_deltas(rows, COUNTER_MAX)


# --- T5 / T6: stops ---------------------------------------------------------------------


@SETTINGS
@given(scenario=scenarios())
def test_T5_T6_stops_are_classified_by_length_and_failures_count_unplanned_stops(
    scenario: Scenario,
) -> None:
    config = scenario.config
    micro = config.policy.micro_stop_s
    with workdir() as directory:
        store, _ = replay_streams(directory, config, scenario.streams)
        with store:
            for line in scenario.lines:
                minutes, stops = stored(store, line)
                events = sorted(stops.values(), key=lambda e: e.start)
                for event in events:
                    assert event.duration_s > 0, event
                    expected = "micro_stop" if event.duration_s < micro else "unplanned_stop"
                    assert event.category == expected, (micro, event)
                # T5: stops are maximal runs, so two of them neither overlap nor touch.
                for a, b in itertools.pairwise(events):
                    assert a.end < b.start, (a, b)
                totals = Totals()
                for record in minutes.values():
                    totals.add(record)
                unplanned = [e for e in events if e.category == "unplanned_stop"]
                assert totals.failures == len(unplanned), (totals.failures, events)
                # T6: each failure sits in the minute of its stop's first second.
                failure_minutes: dict[int, int] = defaultdict(int)
                for record in minutes.values():
                    if record.failures:
                        failure_minutes[record.ts] += record.failures
                expected_minutes: dict[int, int] = defaultdict(int)
                for event in unplanned:
                    expected_minutes[event.start - event.start % 60] += 1
                assert failure_minutes == expected_minutes
                # The stops' seconds are the micro_stop and unplanned_stop seconds (T5).
                assert totals.micro_stop_s == sum(
                    e.duration_s for e in events if e.category == "micro_stop"
                )
                assert totals.unplanned_stop_s == sum(e.duration_s for e in unplanned)
