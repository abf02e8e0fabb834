"""The shift calendar in UTC seconds (DESIGN T7, T8), checked against hand-worked numbers and a
brute-force per-minute reference."""

from __future__ import annotations

import datetime as dt
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch.config import DAYS, Break, Calendar, Shift
from linewatch.shift_calendar import CalendarSpan, ShiftCalendar, ShiftInstance

HK = ZoneInfo("Asia/Hong_Kong")
LONDON = ZoneInfo("Europe/London")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]

# Asia/Hong_Kong is UTC+8 all year. 2026-01-05 is a Monday; 2026-01-05 00:00 UTC is
# 1767571200, so HK local midnight that day is 1767571200 - 8 * 3600 = 1767542400.
HK_MON = 1767542400
DAY = 86400
HOUR = 3600


def local(zone: ZoneInfo, text: str) -> int:
    """UTC epoch s of an unambiguous local wall time "YYYY-MM-DD HH:MM"."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp())


def test_hong_kong_local_times_are_utc_plus_8() -> None:
    assert local(HK, "2026-01-05 00:00") == HK_MON
    assert local(HK, "2026-01-05 08:00") == 1767571200


def test_T7_shift_crossing_midnight_belongs_to_its_start_date() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="N", start="22:00", end="06:00", days=WEEKDAYS)]), HK
    )
    fri, sat, next_mon = HK_MON + 4 * DAY, HK_MON + 5 * DAY, HK_MON + 7 * DAY
    # Thu 2026-01-08 22:00 HK = HK_MON + 3 d + 22 h = 1767880800, ending Fri 06:00 (+8 h);
    # the Friday instance starts Fri 22:00 = 1767967200 and runs into Saturday 06:00.
    assert (fri, sat, next_mon) == (1767888000, 1767974400, 1768147200)
    assert cal.instances(fri, next_mon) == [
        ShiftInstance("N", dt.date(2026, 1, 8), 1767880800, 1767909600),
        ShiftInstance("N", dt.date(2026, 1, 9), 1767967200, 1767996000),
    ]
    # Saturday and Sunday: only Friday night's 6 h up to Sat 06:00; nothing starts Saturday.
    assert cal.kind_seconds(sat, next_mon) == (6 * HOUR, 0, 2 * DAY - 6 * HOUR)
    assert cal.spans(sat, next_mon) == [
        CalendarSpan(sat, 1767996000, "shift", "N", dt.date(2026, 1, 9)),
        CalendarSpan(1767996000, next_mon, "off", None, None),
    ]
    assert cal.shift_at(1767996000 - 1) == "N"  # Sat 05:59:59
    assert cal.shift_at(1767996000) == "off"  # Sat 06:00
    assert cal.shift_at(sat + 22 * HOUR) == "off"  # Sat 22:00: no Saturday instance


def test_T7_break_of_night_shift_after_midnight_lies_on_next_date() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="N", start="22:00", end="06:00", days=WEEKDAYS)],
            breaks=[Break(start="02:00", end="02:30")],
        ),
        HK,
    )
    # Monday's instance: Mon 22:00 = 1767621600 to Tue 06:00 = 1767650400; its break is
    # Tue 02:00-02:30 = 1767636000-1767637800 (4 h of shift, 30 min break, 3.5 h of shift).
    monday = dt.date(2026, 1, 5)
    assert cal.spans(1767621600, 1767650400) == [
        CalendarSpan(1767621600, 1767636000, "shift", "N", monday),
        CalendarSpan(1767636000, 1767637800, "break", "N", monday),
        CalendarSpan(1767637800, 1767650400, "shift", "N", monday),
    ]
    assert cal.kind_seconds(1767621600, 1767650400) == (14400 + 12600, 1800, 0)
    # Monday 02:00 itself lies in no instance (no shift on Sunday night): off, not break.
    # The whole local Monday holds only 22:00-24:00 of Monday's instance.
    assert cal.kind_seconds(HK_MON, HK_MON + DAY) == (2 * HOUR, 0, 22 * HOUR)


def test_T7_break_days_default_to_shift_days() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="A", start="08:00", end="16:00", days=WEEKDAYS)],
            breaks=[Break(start="12:00", end="12:30")],
        ),
        HK,
    )
    # Mon-Fri 8 h each = 144000 s scheduled, of which 5 x 30 min = 9000 s break.
    week = (HK_MON, HK_MON + 7 * DAY)
    assert cal.kind_seconds(*week) == (144000 - 9000, 9000, 7 * DAY - 144000)
    # Saturday 12:15 has no shift, hence no break.
    assert cal.spans(HK_MON + 5 * DAY + 12 * HOUR + 900, HK_MON + 5 * DAY + 12 * HOUR + 960) == [
        CalendarSpan(HK_MON + 5 * DAY + 12 * HOUR + 900, HK_MON + 5 * DAY + 12 * HOUR + 960,
                     "off", None, None)
    ]


def test_T7_break_with_explicit_days_applies_to_instances_starting_on_them() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="A", start="08:00", end="16:00", days=WEEKDAYS)],
            breaks=[
                Break(start="12:00", end="12:30", days=["fri"]),
                Break(start="10:00", end="10:15", days=["sat", "mon"]),
            ],
        ),
        HK,
    )
    # Friday 30 min + Monday 15 min = 2700 s of break; Saturday has no shift to break.
    assert cal.kind_seconds(HK_MON, HK_MON + 7 * DAY) == (144000 - 2700, 2700, 7 * DAY - 144000)
    assert cal.spans(HK_MON + 10 * HOUR, HK_MON + 10 * HOUR + 900)[0].kind == "break"  # Mon
    assert cal.spans(HK_MON + DAY + 10 * HOUR, HK_MON + DAY + 10 * HOUR + 900)[0].kind == "shift"


def test_T7_break_days_of_night_shift_match_its_start_date() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="N", start="22:00", end="06:00", days=WEEKDAYS)],
            breaks=[Break(start="02:00", end="02:30", days=["fri"])],
        ),
        HK,
    )
    # Friday's instance has its break on Sat 02:00 HK = Fri 18:00 UTC = 1767981600; Fri 02:00
    # HK (1767895200) belongs to Thursday's instance, which has no break.
    assert cal.spans(1767981600, 1767981600 + 1800) == [
        CalendarSpan(1767981600, 1767983400, "break", "N", dt.date(2026, 1, 9))
    ]
    assert cal.spans(1767895200, 1767895200 + 1800) == [
        CalendarSpan(1767895200, 1767897000, "shift", "N", dt.date(2026, 1, 8))
    ]
    assert cal.kind_seconds(HK_MON, HK_MON + 7 * DAY) == (5 * 8 * HOUR - 1800, 1800,
                                                          7 * DAY - 5 * 8 * HOUR)


def test_T7_break_counts_only_where_it_overlaps_a_shift() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="A", start="08:00", end="16:00")],
            breaks=[
                Break(start="15:30", end="16:30"),  # only 15:30-16:00 counts: 1800 s
                Break(start="07:00", end="08:15"),  # only 08:00-08:15 counts: 900 s
                Break(start="20:00", end="20:30"),  # outside the shift: nothing
            ],
        ),
        HK,
    )
    # One day: 8 h scheduled = 28800 s, 2700 s of it break; 16 h off.
    assert cal.kind_seconds(HK_MON, HK_MON + DAY) == (28800 - 2700, 2700, 16 * HOUR)
    spans = cal.spans(HK_MON, HK_MON + DAY)
    assert [(s.start - HK_MON, s.end - HK_MON, s.kind) for s in spans] == [
        (0, 8 * HOUR, "off"),
        (8 * HOUR, 8 * HOUR + 900, "break"),
        (8 * HOUR + 900, 15 * HOUR + 1800, "shift"),
        (15 * HOUR + 1800, 16 * HOUR, "break"),
        (16 * HOUR, DAY, "off"),
    ]


def test_T7_break_crossing_midnight_splits_over_two_instances() -> None:
    cal = ShiftCalendar(Calendar(breaks=[Break(start="23:30", end="00:30")]), HK)
    # Default 24 h shift: the break is 23:30-24:00 of one instance and 00:00-00:30 of the next
    # (the occurrence placed on the previous date), 1 h a day in all.
    spans = cal.spans(HK_MON + 23 * HOUR, HK_MON + 25 * HOUR)
    assert [(s.start - HK_MON, s.end - HK_MON, s.kind, s.shift_date) for s in spans] == [
        (23 * HOUR, 23 * HOUR + 1800, "shift", dt.date(2026, 1, 5)),
        (23 * HOUR + 1800, 24 * HOUR, "break", dt.date(2026, 1, 5)),
        (24 * HOUR, 24 * HOUR + 1800, "break", dt.date(2026, 1, 6)),
        (24 * HOUR + 1800, 25 * HOUR, "shift", dt.date(2026, 1, 6)),
    ]
    assert cal.kind_seconds(HK_MON, HK_MON + 7 * DAY) == (7 * 23 * HOUR, 7 * HOUR, 0)


def test_T7_holiday_removes_shifts_starting_on_it() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="A", start="08:00", end="16:00"),
                    Shift(id="N", start="22:00", end="06:00")],
            holidays=[dt.date(2026, 1, 6)],
        ),
        HK,
    )
    tue, wed = HK_MON + DAY, HK_MON + 2 * DAY
    # Tuesday keeps Monday night's shift up to Tue 06:00 (6 h); Tuesday's A and N are gone,
    # so Wednesday 00:00-08:00 is off too.
    assert cal.instances(tue, wed) == [
        ShiftInstance("N", dt.date(2026, 1, 5), 1767621600, 1767650400)
    ]
    assert cal.kind_seconds(tue, wed) == (6 * HOUR, 0, 18 * HOUR)
    assert cal.kind_seconds(wed, wed + 8 * HOUR) == (0, 0, 8 * HOUR)
    assert cal.shift_at(wed + 8 * HOUR) == "A"


def test_T7_dst_spring_day_has_23_hours() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="D", start="00:00", end="24:00", days=["sun"])]), LONDON
    )
    # 2026-03-29 (Sunday) is day 87 of 2026: 00:00 GMT = 1767225600 + 87 d = 1774742400.
    # Clocks go 01:00 GMT -> 02:00 BST, so the next midnight is 23:00 UTC = 1774742400 + 82800.
    start, end = 1774742400, 1774742400 + 82800
    assert cal.instances(start, end) == [ShiftInstance("D", dt.date(2026, 3, 29), start, end)]
    assert cal.kind_seconds(start - HOUR, end + HOUR) == (82800, 0, 2 * HOUR)
    same = ShiftCalendar(Calendar(shifts=[Shift(id="D", start="00:00", end="00:00",
                                                days=["sun"])]), LONDON)
    assert same.instances(start, end) == cal.instances(start, end)


def test_T7_dst_autumn_day_has_25_hours() -> None:
    cal = ShiftCalendar(Calendar(), LONDON)
    # 2026-10-25 (Sunday) is day 297 of 2026: 00:00 UTC = 1767225600 + 297 d = 1792886400, so
    # 00:00 BST = 1792882800. Clocks go back at 02:00 BST, so the next midnight is 2026-10-26
    # 00:00 GMT = 1792886400 + 86400 = 1792972800, 90000 s later.
    start, end = 1792882800, 1792972800
    assert end - start == 90000
    assert cal.instances(start, end) == [ShiftInstance("24h", dt.date(2026, 10, 25), start, end)]
    assert cal.spans(start, end) == [
        CalendarSpan(start, end, "shift", "24h", dt.date(2026, 10, 25))
    ]


def test_T7_dst_gap_times_map_to_the_jump_so_shifts_stay_apart() -> None:
    cal = ShiftCalendar(
        Calendar(
            shifts=[Shift(id="E", start="00:00", end="01:30", days=["sun"]),
                    Shift(id="L", start="01:30", end="24:00", days=["sun"]),
                    Shift(id="G", start="01:15", end="01:45", days=["sat"])],
            breaks=[Break(start="01:10", end="01:50")],
        ),
        LONDON,
    )
    # 2026-03-29: 01:30 does not exist; it maps to the jump at 01:00 UTC (= 02:00 BST), so E
    # is 1 h and L 22 h, back to back. The break lies wholly in the gap: nothing. Saturday's
    # G is on an ordinary day (28 March, GMT) and keeps its 30 min less its break.
    midnight = 1774742400
    assert cal.kind_seconds(midnight, midnight + 82800) == (82800, 0, 0)
    assert [(i.shift_id, i.end - i.start) for i in cal.instances(midnight, midnight + 82800)] == [
        ("E", 3600), ("L", 79200)
    ]
    assert cal.kind_seconds(midnight - DAY, midnight) == (0, 1800, DAY - 1800)


def test_T7_repeated_hour_takes_its_first_occurrence() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="R", start="01:00", end="01:30", days=["sun"])]), LONDON
    )
    # 2026-10-25 01:00 occurs at 00:00 UTC = 1792886400 (BST) and at 01:00 UTC (GMT): the
    # first counts, so R is 1792886400-1792888200.
    assert cal.instances(1792882800, 1792972800) == [
        ShiftInstance("R", dt.date(2026, 10, 25), 1792886400, 1792888200)
    ]


def test_T8_scheduled_seconds_include_breaks() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="A", start="08:00", end="16:00")],
                 breaks=[Break(start="12:00", end="12:30")]),
        HK,
    )
    # scheduled_s = shift + break = the full 8 h instance, 08:00-16:00 HK = 1767571200-1767600000.
    shift_s, break_s, off_s = cal.kind_seconds(HK_MON, HK_MON + DAY)
    assert (shift_s, break_s, off_s) == (27000, 1800, 57600)
    [inst] = cal.instances(HK_MON, HK_MON + DAY)
    assert (inst.start, inst.end) == (1767571200, 1767600000)
    assert shift_s + break_s == inst.end - inst.start == 28800


def test_instances_are_not_clipped_and_shift_at_is_half_open() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="A", start="08:00", end="16:00", days=WEEKDAYS)]), HK
    )
    monday_a = ShiftInstance("A", dt.date(2026, 1, 5), 1767571200, 1767600000)
    assert cal.instances(1767585600, 1767585660) == [monday_a]  # Mon 12:00-12:01
    assert cal.instances(1767600000, 1767600000 + HOUR) == []  # from 16:00: end is exclusive
    assert cal.instances(1767585600, 1767585600) == []
    assert cal.shift_at(1767571200 - 1) == "off"
    assert cal.shift_at(1767571200) == "A"
    assert cal.shift_at(1767600000 - 1) == "A"
    assert cal.shift_at(1767600000) == "off"


def test_empty_and_reversed_intervals() -> None:
    cal = ShiftCalendar(Calendar(), HK)
    assert cal.spans(HK_MON, HK_MON) == []
    assert cal.spans(HK_MON + 1, HK_MON) == []
    assert cal.kind_seconds(HK_MON, HK_MON) == (0, 0, 0)


def test_default_calendar_makes_every_second_shift() -> None:
    cal = ShiftCalendar(Calendar(), HK)
    year = (HK_MON, HK_MON + 365 * DAY)
    assert cal.kind_seconds(*year) == (365 * DAY, 0, 0)
    # One span per local date, even where the cache's week chunks cut a day.
    spans = cal.spans(HK_MON, HK_MON + 7 * DAY)
    assert [(s.start, s.end, s.kind, s.shift_id) for s in spans] == [
        (HK_MON + n * DAY, HK_MON + (n + 1) * DAY, "shift", "24h") for n in range(7)
    ]
    assert [s.shift_date for s in spans] == [dt.date(2026, 1, 5 + n) for n in range(7)]
    assert all(cal.shift_at(HK_MON + n * 3607) == "24h" for n in range(1000))


def test_overlapping_shifts_built_in_code_are_rejected() -> None:
    cal = ShiftCalendar(
        Calendar(shifts=[Shift(id="A", start="08:00", end="16:00"),
                         Shift(id="B", start="12:00", end="20:00")]),
        HK,
    )
    with pytest.raises(ValueError, match="overlaps"):
        cal.kind_seconds(HK_MON, HK_MON + DAY)


# --- property: spans against a brute-force per-minute reference ---------------------------

# Zones with the days their clocks change in 2026 (London 01:00 -> 02:00 and back at 02:00;
# New York at 02:00; Lord Howe by 30 min at 02:00; Santiago at midnight, so 2026-09-06 00:00
# does not exist), and two zones without clock changes.
ZONE_DATES = [
    ("Europe/London", dt.date(2026, 3, 29)), ("Europe/London", dt.date(2026, 10, 25)),
    ("America/New_York", dt.date(2026, 3, 8)), ("America/New_York", dt.date(2026, 11, 1)),
    ("Australia/Lord_Howe", dt.date(2026, 4, 5)), ("Australia/Lord_Howe", dt.date(2026, 10, 4)),
    ("America/Santiago", dt.date(2026, 4, 4)), ("America/Santiago", dt.date(2026, 9, 6)),
    ("Asia/Hong_Kong", dt.date(2026, 1, 5)), ("UTC", dt.date(2026, 2, 28)),
]
# Quarter hours where those clocks jump (00:00-03:00) or repeat (23:00-24:00), and midnight.
INTERESTING_QUARTERS = [0, 2, 4, 6, 7, 8, 9, 10, 12, 92, 94]
quarters = st.one_of(st.sampled_from(INTERESTING_QUARTERS), st.integers(0, 95))


def _hhmm(minutes: int, midnight_as_24: bool = False) -> str:
    minutes %= 1440
    if minutes == 0 and midnight_as_24:
        return "24:00"
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def calendars(draw: st.DrawFn, base: dt.date) -> Calendar:
    """1-3 shifts on disjoint arcs of the 24 h clock (so never overlapping), breaks, holidays."""
    n = draw(st.integers(1, 3))
    points = sorted(draw(st.lists(quarters, min_size=2 * n, max_size=2 * n, unique=True)))
    if draw(st.booleans()):
        points = points[1:] + points[:1]  # the last arc crosses midnight
    shifts = []
    for i in range(n):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
        shifts.append(Shift(id=f"S{i}", start=_hhmm(points[2 * i] * 15),
                            end=_hhmm(points[2 * i + 1] * 15, draw(st.booleans())), days=days))
    if n == 1 and draw(st.booleans()):
        shifts[0] = Shift(id="S0", start=shifts[0].start, end=shifts[0].start,
                          days=shifts[0].days)
    breaks = []
    for _ in range(draw(st.integers(0, 3))):
        start, end = draw(quarters) * 15, draw(quarters | st.just(96)) * 15
        days = draw(st.none() | st.lists(st.sampled_from(DAYS), min_size=1, max_size=7,
                                         unique=True))
        breaks.append(Break(start=_hhmm(start), end=_hhmm(end, end == 1440), days=days))
    holidays = [base + dt.timedelta(days=draw(st.integers(-2, 2)))
                for _ in range(draw(st.integers(0, 2)))]
    return Calendar(shifts=shifts, breaks=breaks, holidays=holidays)


@cache
def _ref_wall(zone: ZoneInfo, date: dt.date, minutes: int) -> int:
    """First UTC second whose wall time is at or after the given one, found by walking."""
    naive = dt.datetime(date.year, date.month, date.day) + dt.timedelta(minutes=minutes)
    first = int(naive.replace(tzinfo=zone).timestamp())
    if dt.datetime.fromtimestamp(first, zone).replace(tzinfo=None) == naive:
        return first
    ts = first - 3 * HOUR  # in a gap: walk up to the jump minute by minute
    while dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None) < naive:
        ts += 60
    return ts


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _window(zone: ZoneInfo, date: dt.date, start: str, end: str) -> tuple[int, int]:
    lo, hi = _minutes(start), _minutes(end)
    if hi <= lo:
        hi += 1440
    return _ref_wall(zone, date, lo), _ref_wall(zone, date, hi)


def _ref_label(cal: Calendar, zone: ZoneInfo, ts: int) -> tuple[str, str | None, dt.date | None]:
    """(kind, shift_id, shift_date) of second `ts`, straight from the T7 rules."""
    today = dt.datetime.fromtimestamp(ts, zone).date()
    for back in range(-2, 2):
        date = today + dt.timedelta(days=back)
        weekday = DAYS[date.weekday()]
        if date in cal.holidays:
            continue
        for shift in cal.shifts:
            if weekday not in shift.days:
                continue
            start, end = _window(zone, date, shift.start, shift.end)
            if not start <= ts < end:
                continue
            for brk in cal.breaks:
                if brk.days is not None and weekday not in brk.days:
                    continue
                for place in (-1, 0, 1):
                    lo, hi = _window(zone, date + dt.timedelta(days=place), brk.start, brk.end)
                    if lo <= ts < hi:
                        return "break", shift.id, date
            return "shift", shift.id, date
    return "off", None, None


@st.composite
def cases(draw: st.DrawFn) -> tuple[Calendar, ZoneInfo, int, int]:
    """A calendar, a zone and a whole-minute interval of up to 30 h near a clock change."""
    zone_name, base = draw(st.sampled_from(ZONE_DATES))
    zone = ZoneInfo(zone_name)
    start = int(dt.datetime(base.year, base.month, base.day, tzinfo=dt.UTC).timestamp())
    start += draw(st.integers(-1680, 1680)) * 60
    return draw(calendars(base)), zone, start, start + draw(st.integers(1, 1800)) * 60


@settings(max_examples=100, deadline=None)
@given(case=cases())
def test_spans_tile_and_agree_with_reference_and_kind_seconds(
    case: tuple[Calendar, ZoneInfo, int, int],
) -> None:
    cal, zone, start, end = case
    sc = ShiftCalendar(cal, zone)

    spans = sc.spans(start, end)
    assert spans[0].start == start and spans[-1].end == end
    for before, after in pairwise(spans):
        assert before.end == after.start
        assert (before.kind, before.shift_id, before.shift_date) != (
            after.kind, after.shift_id, after.shift_date)
    assert all(s.start < s.end for s in spans)

    got = [(s.kind, s.shift_id, s.shift_date) for s in spans for _ in range(s.start, s.end, 60)]
    want = [_ref_label(cal, zone, ts) for ts in range(start, end, 60)]
    assert got == want

    kinds = sc.kind_seconds(start, end)
    assert sum(kinds) == end - start
    assert kinds == tuple(60 * sum(1 for w in want if w[0] == k)
                          for k in ("shift", "break", "off"))
    assert [sc.shift_at(ts) for ts in range(start, end, 60)] == [w[1] or "off" for w in want]
    touched = list(dict.fromkeys((w[1], w[2]) for w in want if w[1] is not None))
    assert [(i.shift_id, i.date) for i in sc.instances(start, end)] == touched
    # Minute-at-a-time queries, as the state tracker makes them, agree with the long one.
    assert [s for ts in range(start, min(end, start + 600 * 60), 60)
            for s in sc.spans(ts, ts + 60)] == [
        CalendarSpan(ts, ts + 60, *w) for ts, w in zip(range(start, end, 60), want, strict=False)
    ][:600]
