"""The time model T1–T10 (DESIGN §4) through the store path: samples are replayed into a
SQLite store (`replay_rows`) and read back with `kpi()`, so that the calendar overlay of the
tracker, the stop rules and the T10 fill of unrecorded time are all exercised together.

Unless a test says otherwise the plant is in Asia/Hong_Kong (UTC+8, no DST), shift A runs
08:00–16:00 Monday to Friday with a break 12:00–12:30, micro_stop_s = 120, and the state map
is 1 running, 2 unplanned_stop, 3 setup, 4 planned_stop. 2026-03-02 is a Monday.

A replay writes up to and including the second of its last sample (R3). So that no test
depends on that second, replays end with a "sentinel" sample at or after the end of the
queried window, or with a last sample whose second has the same category either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linewatch.config import PlantConfig
from linewatch.kpi_query import iso
from tests.timeline import kpi, plant, replay_rows

MON, TUE, WED, THU = "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"
SAT, SUN = "2026-03-07", "2026-03-08"
NEXT_MON = "2026-03-09"
WEEKDAYS = "[mon, tue, wed, thu, fri]"
SHIFT_A = f'[{{id: A, start: "08:00", end: "16:00", days: {WEEKDAYS}}}]'
BREAK_NOON = '[{start: "12:00", end: "12:30"}]'
CATEGORIES = ("running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
              "no_data_s", "unscheduled_s")

TEMPLATE = """\
site: {{id: kt-01, name: Test plant, timezone: {tz}}}
policy: {{micro_stop_s: 120, setup_is_planned: {setup}, stop_after_s: 60}}
calendar:
  shifts: {shifts}
  breaks: {breaks}
  holidays: {holidays}
products: [{{id: P30, ideal_cycle_s: 30, units_per_cycle: 1}}]
reasons:
  - {{code: fault, category: unplanned_stop}}
  - {{code: jam, category: unplanned_stop}}
  - {{code: tea, category: planned_stop}}
lines:
  - id: L1
    default_product: P30
    state_map: {{"1": running, "2": unplanned_stop, "3": setup, "4": planned_stop}}
    reason_map: {{"17": fault, "18": jam, "19": tea}}
  - id: L2
    default_product: P30
    state_map: {{"1": running}}
"""


def config(shifts: str = SHIFT_A, breaks: str = BREAK_NOON, holidays: str = "[]",
           tz: str = "Asia/Hong_Kong", setup_is_planned: bool = False) -> PlantConfig:
    return plant(TEMPLATE.format(tz=tz, setup="true" if setup_is_planned else "false",
                                 shifts=shifts, breaks=breaks, holidays=holidays))


def one(cfg: PlantConfig, store: Any, start: str, end: str, line: str = "L1"
        ) -> dict[str, Any]:
    rows = kpi(cfg, store, start, end, line=line)
    assert len(rows) == 1
    return rows[0]


def cats(row: dict[str, Any]) -> dict[str, int]:
    return {name: row[name] for name in CATEGORIES}


def expect(**nonzero: int) -> dict[str, int]:
    """The seven category seconds: the given ones, every other one 0."""
    out = dict.fromkeys(CATEGORIES, 0)
    for name, value in nonzero.items():
        out[f"{name}_s"] = value
    return out


def stops(cfg: PlantConfig, store: Any, line: str = "L1") -> list[tuple[str, str, str]]:
    """(local start, local end, category) of every stop event, by start."""
    zone = cfg.site.zone()
    return [(iso(e.start, zone)[11:19], iso(e.end, zone)[11:19], e.category)
            for e in store.stops(cfg.site.id, line, 0, 2**40)]


# --- T1 ---------------------------------------------------------------------------------------


def test_T1_every_second_falls_in_exactly_one_category(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 07:30:00", "state", 3),          # setup before the shift
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 2),          # 600 s stop
        (f"{MON} 09:10:00", "state", 1),
        (f"{MON} 10:00:00", "state", 2),          # 60 s stop
        (f"{MON} 10:01:00", "state", 1),
        (f"{MON} 10:30:00", "state", 3),          # setup
        (f"{MON} 11:00:00", "state", 1, "bad"),   # no_data
        (f"{MON} 11:15:00", "state", 4),          # planned stop, through the break
        (f"{MON} 12:30:00", "state", 1),          # running, into overtime
        (f"{MON} 16:30:00", "state", 2),          # a stop outside the shift
        (f"{MON} 17:00:00", "state", 1),          # sentinel
    ])
    row = one(cfg, store, f"{MON} 07:00", f"{MON} 17:00")
    # Window 07:00-17:00 = 10 h = 36000 s.
    # running:   08:00-09:00 3600 + 09:10-10:00 3000 + 10:01-10:30 1740
    #            + 12:30-16:00 12600 (shift) + 16:00-16:30 1800 (overtime, T2) = 22740
    # micro:     10:00-10:01 = 60 (< 120)
    # setup:     10:30-11:00 = 1800
    # unplanned: 09:00-09:10 = 600
    # planned:   11:15-12:00 2700 + break 12:00-12:30 1800 = 4500
    # no_data:   11:00-11:15 = 900
    # unscheduled: 07:00-07:30 no record 1800 (T10) + setup 07:30-08:00 1800 (T2)
    #            + stop 16:30-17:00 1800 (T2) = 5400
    # 22740 + 60 + 1800 + 600 + 4500 + 900 + 5400 = 36000
    assert cats(row) == expect(running=22740, micro_stop=60, setup=1800, unplanned_stop=600,
                               planned_stop=4500, no_data=900, unscheduled=5400)
    assert row["calendar_s"] == 36000 == sum(cats(row).values())
    assert row["failures"] == 1  # only the 600 s stop (T6)
    assert row["scheduled_s"] == 28800  # 08:00-16:00 (T8)


# --- T2 ---------------------------------------------------------------------------------------


def test_T2_running_after_the_shift_is_running_overtime(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 15:00:00", "state", 1),
        (f"{MON} 18:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 15:00", f"{MON} 18:00")
    # 15:00-18:00 running = 10800 s, of which 15:00-16:00 in shift (3600 scheduled) and
    # 16:00-18:00 overtime: still running, planned (planned_s = 10800), not unscheduled.
    assert cats(row) == expect(running=10800)
    assert row["scheduled_s"] == 3600
    assert row["planned_s"] == 10800
    assert row["availability"] == 1.0  # 10800 / 10800


def test_T2_running_on_a_saturday_is_planned_overtime(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{SAT} 00:00:00", "state", 1),
        (f"{SUN} 00:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, SAT, SUN)
    # No shift on Saturday: the whole day 86400 s is overtime running, scheduled_s 0,
    # planned_s 86400, completeness has no denominator (None).
    assert cats(row) == expect(running=86400)
    assert row["scheduled_s"] == 0
    assert row["planned_s"] == 86400
    assert row["completeness"] is None


def test_T2_stop_setup_and_no_data_outside_shifts_are_unscheduled(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 05:00:00", "state", 2),          # unplanned stop
        (f"{MON} 06:00:00", "state", 3),          # setup
        (f"{MON} 06:30:00", "state", 1, "bad"),   # no_data
        (f"{MON} 07:00:00", "state", 4),          # planned stop
        (f"{MON} 07:30:00", "state", "99"),       # unmapped -> unplanned_stop (S4)
        (f"{MON} 08:00:00", "state", 1),          # sentinel
    ])
    row = one(cfg, store, f"{MON} 05:00", f"{MON} 08:00")
    # 05:00-08:00 = 10800 s, all outside the shift and none running: all unscheduled.
    assert cats(row) == expect(unscheduled=10800)
    assert row["failures"] == 0  # unscheduled seconds are no stop (T5)
    assert row["planned_s"] == 0
    assert row["oee"] is None
    assert stops(cfg, store) == []


# --- T3 ---------------------------------------------------------------------------------------


def test_T3_running_through_a_break_is_running(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 11:00:00", "state", 1),
        (f"{MON} 13:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 11:00", f"{MON} 13:00")
    # 11:00-13:00 = 7200 s running, the break 12:00-12:30 included; scheduled_s counts the
    # break too (T8): 7200.
    assert cats(row) == expect(running=7200)
    assert row["planned_s"] == 7200
    assert row["scheduled_s"] == 7200


def test_T3_stop_setup_and_no_data_in_a_break_are_planned_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 12:00:00", "state", 2),          # unplanned stop
        (f"{MON} 12:10:00", "state", 3),          # setup
        (f"{MON} 12:20:00", "state", 1, "bad"),   # no_data
        (f"{MON} 12:30:00", "state", 1),          # sentinel
    ])
    row = one(cfg, store, f"{MON} 12:00", f"{MON} 12:30")
    # The break 12:00-12:30 = 1800 s: 600 stop + 600 setup + 600 no_data, all planned_stop.
    assert cats(row) == expect(planned_stop=1800)
    assert row["failures"] == 0
    assert row["completeness"] == 1.0  # (1800 - 0 no_data) / 1800
    assert stops(cfg, store) == []


def test_T3_stop_that_runs_into_a_break_ends_at_the_break(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 11:00:00", "state", 1),
        (f"{MON} 11:50:00", "state", 2),
        (f"{MON} 13:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 11:00", f"{MON} 13:00")
    # running 11:00-11:50 = 3000; stop 11:50-12:00 = 600 unplanned (>= 120, one failure);
    # break 12:00-12:30 stopped = 1800 planned_stop; 12:30-13:00 still stopped, a new stop of
    # 1800 s (unplanned, a second failure). 3000 + 600 + 1800 + 1800 = 7200.
    assert cats(row) == expect(running=3000, unplanned_stop=2400, planned_stop=1800)
    assert row["failures"] == 2


# --- T4 ---------------------------------------------------------------------------------------


def test_T4_in_shift_a_second_takes_its_state_category_or_no_data(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 7),          # unmapped: unplanned_stop (S4)
        (f"{MON} 09:05:00", "reason", 19),        # tea: a planned_stop reason (S10)
        (f"{MON} 09:20:00", "state", 1),
        (f"{MON} 10:00:00", "state", 1, "bad"),   # no_data (S5)
        (f"{MON} 10:10:00", "state", 4),          # planned_stop
        (f"{MON} 10:20:00", "state", 1),
        (f"{MON} 11:00:00", "state", 1),          # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 11:00")
    # running   08:00-09:00 3600 + 09:20-10:00 2400 + 10:20-11:00 2400 = 8400
    # unplanned 09:00-09:05 = 300 (>= 120: one failure)
    # planned   09:05-09:20 900 (tea reason) + 10:10-10:20 600 = 1500
    # no_data   10:00-10:10 = 600;      8400 + 300 + 1500 + 600 = 10800
    assert cats(row) == expect(running=8400, unplanned_stop=300, planned_stop=1500,
                               no_data=600)
    assert row["failures"] == 1
    assert row["completeness"] == (10800 - 600) / 10800


# --- T5 ---------------------------------------------------------------------------------------


def test_T5_stop_across_a_break_is_two_stops(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 11:58:30", "state", 2),
        (f"{MON} 12:31:30", "state", 1),
        (f"{MON} 16:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 16:00")
    # The break cuts the stop 11:58:30-12:31:30 into 11:58:30-12:00 (90 s) and
    # 12:30-12:31:30 (90 s): two micro stops (< 120), not one 33-minute failure.
    # micro 180; planned 1800 (break); running 28800 - 1800 - 180 = 26820.
    assert cats(row) == expect(running=26820, micro_stop=180, planned_stop=1800)
    assert row["failures"] == 0
    assert stops(cfg, store) == [("11:58:30", "12:00:00", "micro_stop"),
                                 ("12:30:00", "12:31:30", "micro_stop")]


def test_T5_stop_shorter_than_micro_stop_s_is_a_micro_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 2),
        (f"{MON} 09:01:59", "state", 1),  # 119 s: micro
        (f"{MON} 10:00:00", "state", 2),
        (f"{MON} 10:02:00", "state", 1),  # 120 s: not shorter than 120, a failure
        (f"{MON} 11:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 11:00")
    # 10800 - 119 - 120 = 10561 running.
    assert cats(row) == expect(running=10561, micro_stop=119, unplanned_stop=120)
    assert row["failures"] == 1
    assert stops(cfg, store) == [("09:00:00", "09:01:59", "micro_stop"),
                                 ("10:00:00", "10:02:00", "unplanned_stop")]


def test_T5_reason_change_and_repeated_sample_do_not_end_a_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 2),
        (f"{MON} 09:01:00", "reason", 17),   # fault
        (f"{MON} 09:01:40", "state", 2),     # repeated
        (f"{MON} 09:02:20", "reason", 18),   # jam
        (f"{MON} 09:03:00", "state", 1),
        (f"{MON} 10:00:00", "state", 1),     # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 10:00")
    # One stop 09:00-09:03 = 180 s >= 120: unplanned, one failure. Were it cut at 09:01,
    # 09:01:40 and 09:02:20 it would be four micro stops (60, 40, 40, 40 s).
    # running 7200 - 180 = 7020.
    assert cats(row) == expect(running=7020, unplanned_stop=180)
    assert row["failures"] == 1
    assert stops(cfg, store) == [("09:00:00", "09:03:00", "unplanned_stop")]
    events = store.stops(cfg.site.id, "L1", 0, 2**40)
    assert events[0].reason == "jam"  # the last reason given to the stop (S10)


def test_T5_no_data_ends_a_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 2),
        (f"{MON} 09:01:40", "state", 2, "bad"),
        (f"{MON} 09:01:50", "state", 2),
        (f"{MON} 09:03:30", "state", 1),
        (f"{MON} 10:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 10:00")
    # 09:00-09:01:40 = 100 s, no_data 10 s, 09:01:50-09:03:30 = 100 s: two micro stops
    # (not one 210 s failure). running 7200 - 210 = 6990.
    assert cats(row) == expect(running=6990, micro_stop=200, no_data=10)
    assert row["failures"] == 0


def test_T5_setup_ends_a_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 2),
        (f"{MON} 09:01:40", "state", 3),
        (f"{MON} 09:01:50", "state", 2),
        (f"{MON} 09:03:30", "state", 1),
        (f"{MON} 10:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 10:00")
    # Same as with no_data: 100 s + 100 s micro stops around 10 s of setup.
    assert cats(row) == expect(running=6990, micro_stop=200, setup=10)
    assert row["failures"] == 0


def test_T5_end_of_shift_ends_a_stop(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 15:00:00", "state", 1),
        (f"{MON} 15:59:00", "state", 2),
        (f"{MON} 16:30:00", "state", 1),
        (f"{MON} 17:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 15:00", f"{MON} 17:00")
    # In the shift the stop is 15:59-16:00 = 60 s: micro. 16:00-16:30 is unscheduled (T2).
    # running 15:00-15:59 3540 + 16:30-17:00 1800 (overtime) = 5340; 5340 + 60 + 1800 = 7200.
    assert cats(row) == expect(running=5340, micro_stop=60, unscheduled=1800)
    assert row["failures"] == 0


def test_T5_stop_going_into_a_shift_is_judged_on_its_seconds_in_the_shift(
        tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 07:00:00", "state", 2),
        (f"{MON} 08:01:00", "state", 1),
        (f"{MON} 09:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 07:00", f"{MON} 09:00")
    # 07:00-08:00 unscheduled 3600; the stop begins at 08:00 and lasts 60 s: micro;
    # running 08:01-09:00 = 3540.
    assert cats(row) == expect(running=3540, micro_stop=60, unscheduled=3600)
    assert row["failures"] == 0


def test_T5_stop_cut_by_the_query_window_keeps_its_classification(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:58:30", "state", 2),
        (f"{MON} 10:01:00", "state", 1),  # a 150 s stop: unplanned
        (f"{MON} 10:29:00", "state", 2),
        (f"{MON} 10:30:50", "state", 1),  # a 110 s stop: micro
        (f"{MON} 11:00:00", "state", 1),  # sentinel
    ])
    # [10:00, 10:30) holds 60 s of the 150 s stop (still unplanned, though 60 < 120) and
    # 60 s of the 110 s stop (micro); the failure's first second lies before the window.
    # running 1800 - 120 = 1680.
    row = one(cfg, store, f"{MON} 10:00", f"{MON} 10:30")
    assert cats(row) == expect(running=1680, micro_stop=60, unplanned_stop=60)
    assert row["failures"] == 0
    # [09:00, 10:00) holds the first 90 s of the 150 s stop: unplanned, and its failure.
    row = one(cfg, store, f"{MON} 09:00", f"{MON} 10:00")
    assert cats(row) == expect(running=3510, unplanned_stop=90)
    assert row["failures"] == 1
    # [10:30, 11:00) holds the last 50 s of the micro stop: 1800 - 50 = 1750 running.
    row = one(cfg, store, f"{MON} 10:30", f"{MON} 11:00")
    assert cats(row) == expect(running=1750, micro_stop=50)


def test_T5_stop_across_midnight_in_a_night_shift_is_one_stop(tmp_path: Path) -> None:
    cfg = config(shifts=f'[{{id: N, start: "22:00", end: "06:00", days: {WEEKDAYS}}}]',
                 breaks="[]")
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 23:00:00", "state", 1),
        (f"{MON} 23:59:00", "state", 2),
        (f"{TUE} 00:01:00", "state", 1),
        (f"{TUE} 01:00:00", "state", 1),  # sentinel
    ])
    rows = kpi(cfg, store, f"{MON} 23:00", f"{TUE} 01:00", by="day")
    # Local midnight splits the window into two day buckets but not the stop:
    # 23:59-00:01 = 120 s, unplanned, one failure, counted on Monday where it starts (T6).
    # Monday: running 23:00-23:59 3540, unplanned 60; Tuesday: unplanned 60, running 3540.
    assert [cats(r) for r in rows] == [expect(running=3540, unplanned_stop=60),
                                      expect(running=3540, unplanned_stop=60)]
    assert [r["failures"] for r in rows] == [1, 0]
    assert stops(cfg, store) == [("23:59:00", "00:01:00", "unplanned_stop")]


def test_T5_stop_across_a_utc_week_boundary_is_one_stop(tmp_path: Path) -> None:
    # Thursday 2026-03-05 00:00 UTC (= 08:00 HK) is epoch day 20517 = 7 * 2931: a week
    # boundary in UTC, where calendars that cache per UTC week cut their tilings.
    cfg = config(shifts=f'[{{id: D, start: "07:00", end: "15:00", days: {WEEKDAYS}}}]',
                 breaks="[]")
    store = replay_rows(tmp_path, cfg, [
        (f"{THU} 07:00:00", "state", 1),
        (f"{THU} 07:59:00", "state", 2),
        (f"{THU} 08:01:00", "state", 1),
        (f"{THU} 09:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{THU} 07:00", f"{THU} 09:00")
    # One stop 07:59-08:01 = 120 s: unplanned and a failure; running 7200 - 120 = 7080.
    assert cats(row) == expect(running=7080, unplanned_stop=120)
    assert row["failures"] == 1


def test_T5_stop_across_two_adjacent_shifts_is_one_stop(tmp_path: Path) -> None:
    cfg = config(shifts=(f'[{{id: E, start: "06:00", end: "14:00", days: {WEEKDAYS}}}, '
                         f'{{id: L, start: "14:00", end: "22:00", days: {WEEKDAYS}}}]'),
                 breaks="[]")
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 13:00:00", "state", 1),
        (f"{MON} 13:59:00", "state", 2),
        (f"{MON} 14:01:00", "state", 1),
        (f"{MON} 15:00:00", "state", 1),  # sentinel
    ])
    rows = kpi(cfg, store, f"{MON} 13:00", f"{MON} 15:00", by="shift")
    # E ends at 14:00 where L begins: no second of another category lies between, so the
    # stop 13:59-14:01 is one run of 120 s: unplanned in both shifts, one failure, in E.
    assert [(r["shift"], r["date"]) for r in rows] == [("E", MON), ("L", MON)]
    assert [cats(r) for r in rows] == [expect(running=3540, unplanned_stop=60),
                                      expect(running=3540, unplanned_stop=60)]
    assert [r["failures"] for r in rows] == [1, 0]


# --- T6 ---------------------------------------------------------------------------------------


def test_T6_failure_counts_in_the_bucket_of_its_first_second(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 10:58:00", "state", 2),
        (f"{MON} 11:03:00", "state", 1),  # 300 s stop: a failure
        (f"{MON} 11:30:00", "state", 2),
        (f"{MON} 11:31:00", "state", 1),  # 60 s micro stop: no failure
        (f"{MON} 12:00:00", "state", 1),  # sentinel
    ])
    rows = kpi(cfg, store, f"{MON} 10:00", f"{MON} 12:00", by="hour")
    # 10:00-11:00: running 3600 - 120 = 3480, unplanned 120, failures 1,
    #   mtbf = 3480 / 1 = 3480, mttr = 120 / 1 = 120.
    # 11:00-12:00: unplanned 180 (the rest of the stop), micro 60, running 3600 - 240 = 3360,
    #   failures 0: mtbf and mttr have no denominator.
    assert [cats(r) for r in rows] == [
        expect(running=3480, unplanned_stop=120),
        expect(running=3360, micro_stop=60, unplanned_stop=180),
    ]
    assert [r["failures"] for r in rows] == [1, 0]
    assert (rows[0]["mtbf_s"], rows[0]["mttr_s"]) == (3480.0, 120.0)
    assert (rows[1]["mtbf_s"], rows[1]["mttr_s"]) == (None, None)
    # The two hours together: one failure, mttr = (120 + 180) / 1 = 300 (never averaged).
    whole = one(cfg, store, f"{MON} 10:00", f"{MON} 12:00")
    assert whole["failures"] == 1
    assert whole["mttr_s"] == 300.0
    assert whole["mtbf_s"] == 3480.0 + 3360.0 + 60.0  # run_s = running + micro = 6900


# --- T7 ---------------------------------------------------------------------------------------

NIGHT = f'[{{id: N, start: "22:00", end: "06:00", days: {WEEKDAYS}}}]'
NIGHT_BREAK = '[{start: "02:00", end: "02:30"}]'


def test_T7_night_shift_crossing_midnight_belongs_to_its_start_date(tmp_path: Path) -> None:
    cfg = config(shifts=NIGHT, breaks=NIGHT_BREAK)
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 21:00:00", "state", 3),  # setup the whole time
        (f"{TUE} 07:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 21:00", f"{TUE} 07:00")
    # Monday's instance: Mon 22:00 - Tue 06:00 = 28800 s, with its break Tue 02:00-02:30.
    # setup 28800 - 1800 = 27000; break 1800 planned_stop (T3);
    # unscheduled 21:00-22:00 + 06:00-07:00 = 7200. 27000 + 1800 + 7200 = 36000 = 10 h.
    assert cats(row) == expect(setup=27000, planned_stop=1800, unscheduled=7200)
    assert row["scheduled_s"] == 28800


def test_T7_friday_night_runs_into_saturday_and_no_shift_starts_on_sunday(
        tmp_path: Path) -> None:
    cfg = config(shifts=NIGHT, breaks=NIGHT_BREAK)
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 1),
    ])
    # L2 never recorded: every second counts by the calendar (T10).
    # Sat 00:00 - Mon 00:00 = 172800 s. Friday's instance runs Fri 22:00 - Sat 06:00; in the
    # window Sat 00:00-06:00 = 21600 s, its break Sat 02:00-02:30 (the break days follow the
    # shift's start date, Friday): no_data 21600 - 1800 = 19800, planned_stop 1800,
    # unscheduled 172800 - 21600 = 151200.
    row = one(cfg, store, SAT, NEXT_MON, line="L2")
    assert cats(row) == expect(no_data=19800, planned_stop=1800, unscheduled=151200)
    assert row["scheduled_s"] == 21600
    # Mon 00:00-06:00 would belong to a Sunday instance: there is none, all unscheduled.
    row = one(cfg, store, f"{NEXT_MON} 00:00", f"{NEXT_MON} 06:00", line="L2")
    assert cats(row) == expect(unscheduled=21600)
    assert row["scheduled_s"] == 0


def test_T7_holiday_removes_the_shifts_that_start_on_it(tmp_path: Path) -> None:
    shifts = (f'[{{id: A, start: "08:00", end: "16:00", days: {WEEKDAYS}}}, '
              f'{{id: N, start: "22:00", end: "06:00", days: {WEEKDAYS}}}]')
    cfg = config(shifts=shifts, breaks=NIGHT_BREAK, holidays=f'["{TUE}"]')
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 20:00:00", "state", 3),  # setup all Tuesday
        (f"{WED} 00:00:00", "state", 3),  # sentinel (still setup)
    ])
    row = one(cfg, store, TUE, WED)
    # Tuesday is a holiday: A on Tuesday and N starting Tue 22:00 are gone; Monday's N still
    # runs Tue 00:00-06:00 (it starts on Monday) with its break 02:00-02:30.
    # setup 21600 - 1800 = 19800, planned_stop 1800, unscheduled 86400 - 21600 = 64800.
    assert cats(row) == expect(setup=19800, planned_stop=1800, unscheduled=64800)
    assert row["scheduled_s"] == 21600
    # The day before is an ordinary Monday: A 08:00-16:00 and N from 22:00.
    # Setup from 20:00 only: no record 00:00-20:00 (T10): A 08:00-16:00 no_data 28800,
    # the rest 20 h - 8 h = 43200 unscheduled; 20:00-22:00 setup off shift: 7200
    # unscheduled; 22:00-24:00 setup 7200 in N. 28800 + 43200 + 7200 + 7200 = 86400.
    row = one(cfg, store, MON, TUE)
    assert cats(row) == expect(no_data=28800, unscheduled=50400, setup=7200)
    # Wednesday 00:00-06:00 would be Tuesday's N: removed with the holiday. The sentinel's
    # second Wed 00:00:00 is setup off shift, the rest has no record: unscheduled 21600.
    row = one(cfg, store, f"{WED} 00:00", f"{WED} 06:00")
    assert cats(row) == expect(unscheduled=21600)
    assert row["scheduled_s"] == 0


def test_T7_break_across_midnight_in_a_night_shift(tmp_path: Path) -> None:
    cfg = config(shifts=NIGHT, breaks='[{start: "23:30", end: "00:30"}]')
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 22:00:00", "state", 3),  # setup the whole night
        (f"{TUE} 07:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 22:00", f"{TUE} 06:00")
    # The break Mon 23:30 - Tue 00:30 = 3600 s planned_stop; setup 28800 - 3600 = 25200.
    assert cats(row) == expect(setup=25200, planned_stop=3600)
    assert row["scheduled_s"] == 28800


def test_T7_a_break_counts_only_where_it_overlaps_a_shift(tmp_path: Path) -> None:
    cfg = config(breaks='[{start: "15:30", end: "16:30"}]')
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 15:00:00", "state", 3),  # setup
        (f"{MON} 17:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 15:00", f"{MON} 17:00")
    # setup 15:00-15:30 = 1800 (shift); break 15:30-16:00 = 1800 planned_stop; 16:00-16:30
    # is outside the shift, so not a break: with 16:30-17:00, 3600 unscheduled.
    assert cats(row) == expect(setup=1800, planned_stop=1800, unscheduled=3600)
    assert row["scheduled_s"] == 3600


def test_T7_break_days_limit_a_break_to_those_days(tmp_path: Path) -> None:
    cfg = config(breaks='[{start: "12:00", end: "12:30", days: [mon]}]')
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 11:00:00", "state", 3),  # setup through Tuesday 13:00
        (f"{TUE} 13:00:00", "state", 1),  # sentinel
    ])
    # Monday 11:00-13:00: setup 7200 - 1800 = 5400, the break 1800 planned_stop.
    row = one(cfg, store, f"{MON} 11:00", f"{MON} 13:00")
    assert cats(row) == expect(setup=5400, planned_stop=1800)
    # Tuesday has no break: 11:00-13:00 is 7200 s of setup.
    row = one(cfg, store, f"{TUE} 11:00", f"{TUE} 13:00")
    assert cats(row) == expect(setup=7200)


def test_T7_dst_day_of_23_hours_in_europe_london(tmp_path: Path) -> None:
    # 2026-03-29 (a Sunday) clocks in London go from 01:00 GMT to 02:00 BST: the local day
    # has 23 h = 82800 s. Shift S 00:00-06:00 on Sundays is 6 wall hours but 5 real hours.
    cfg = config(tz="Europe/London", breaks="[]",
                 shifts='[{id: S, start: "00:00", end: "06:00", days: [sun]}]')
    store = replay_rows(tmp_path, cfg, [
        ("2026-03-28 23:00:00", "state", 3),  # setup throughout
        ("2026-03-30 01:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, "2026-03-29", "2026-03-30")
    # setup in the shift 00:00 GMT - 06:00 BST = 5 h = 18000; unscheduled 82800 - 18000.
    assert row["calendar_s"] == 82800
    assert cats(row) == expect(setup=18000, unscheduled=64800)
    assert row["scheduled_s"] == 18000


def test_T7_night_shift_on_the_25_hour_day_in_europe_london(tmp_path: Path) -> None:
    # Clocks go back on 2026-10-25 at 02:00 BST to 01:00 GMT. Saturday's night shift
    # 22:00 BST - 06:00 GMT lasts 8 wall hours + 1 = 9 h = 32400 s.
    cfg = config(tz="Europe/London", breaks="[]",
                 shifts='[{id: N, start: "22:00", end: "06:00", days: [sat]}]')
    store = replay_rows(tmp_path, cfg, [
        ("2026-10-24 20:00:00", "state", 3),  # setup throughout
        ("2026-10-25 08:00:00", "state", 1),  # sentinel
    ])
    rows = kpi(cfg, store, "2026-10-24 20:00", "2026-10-25 08:00", by="shift")
    # off 20:00-22:00 BST 7200; N 32400; off 06:00-08:00 GMT 7200.
    assert [(r["shift"], r["date"], r["calendar_s"]) for r in rows] == [
        (None, None, 7200), ("N", "2026-10-24", 32400), (None, None, 7200)]
    assert [cats(r) for r in rows] == [expect(unscheduled=7200), expect(setup=32400),
                                      expect(unscheduled=7200)]
    assert rows[1]["scheduled_s"] == 32400
    # The local day 2026-10-25 has 25 h = 90000 s; N's part 00:00-06:00 has 7 h = 25200.
    row = one(cfg, store, "2026-10-25", "2026-10-26")
    assert row["calendar_s"] == 90000
    assert row["scheduled_s"] == 25200


# --- T8 ---------------------------------------------------------------------------------------


def test_T8_scheduled_s_is_shifts_with_breaks_without_overtime(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 06:00:00", "state", 1),
        (f"{MON} 18:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 06:00", f"{MON} 18:00")
    # 06:00-18:00 running = 43200 s; scheduled = shift 08:00-16:00 incl. the break = 28800;
    # the 4 h of overtime are running and planned but not scheduled.
    assert cats(row) == expect(running=43200)
    assert row["scheduled_s"] == 28800
    assert row["planned_s"] == 43200
    assert row["completeness"] == 1.0


def test_T8_completeness_is_scheduled_minus_no_data_over_scheduled(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:00:00", "state", 1, "bad"),
        (f"{MON} 10:00:00", "state", 1),
        (f"{MON} 16:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 07:00", f"{MON} 17:00")
    # no_data 09:00-10:00 = 3600 in the shift; scheduled 28800;
    # completeness (28800 - 3600) / 28800 = 0.875. 07:00-08:00 and 16:00:01-17:00 have no
    # record and lie off shift: they change neither number.
    assert row["no_data_s"] == 3600
    assert row["scheduled_s"] == 28800
    assert row["completeness"] == 0.875


# --- T9 ---------------------------------------------------------------------------------------


def _setup_then_running(tmp_path: Path, setup_is_planned: bool) -> dict[str, Any]:
    cfg = config(setup_is_planned=setup_is_planned)
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 3),
        (f"{MON} 08:00:00", "total_count", 0),    # baseline (S6)
        (f"{MON} 09:00:00", "state", 1),
        (f"{MON} 15:00:00", "total_count", 720),  # 720 units, good = total (S7)
        (f"{MON} 16:00:00", "state", 1),          # sentinel
    ])
    return one(cfg, store, f"{MON} 08:00", f"{MON} 16:00")


def test_T9_setup_is_planned_false_counts_setup_in_planned_s(tmp_path: Path) -> None:
    row = _setup_then_running(tmp_path, setup_is_planned=False)
    # setup 3600, running 09:00-16:00 = 25200 (break included, T3);
    # planned = 25200 + 3600 = 28800; availability 25200 / 28800 = 0.875;
    # ideal 720 * 30 = 21600; oee = 21600 * 1.0 / 28800 = 0.75.
    assert cats(row) == expect(running=25200, setup=3600)
    assert row["planned_s"] == 28800
    assert row["availability"] == 0.875
    assert row["ideal_s"] == 21600
    assert row["oee"] == 0.75


def test_T9_setup_is_planned_true_leaves_setup_out_of_planned_s(tmp_path: Path) -> None:
    row = _setup_then_running(tmp_path, setup_is_planned=True)
    # setup_s still reported 3600; planned = 25200; availability 25200 / 25200 = 1.0;
    # oee = 21600 / 25200 = 6/7.
    assert cats(row) == expect(running=25200, setup=3600)
    assert row["planned_s"] == 25200
    assert row["availability"] == 1.0
    assert row["oee"] == 21600 / 25200


# --- T10 --------------------------------------------------------------------------------------


def test_T10_line_never_recorded_counts_by_the_calendar(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 07:00:00", "state", 1),  # only L1 is recorded
        (f"{MON} 17:00:00", "state", 1),
    ])
    row = one(cfg, store, f"{MON} 07:00", f"{MON} 17:00", line="L2")
    # 07:00-08:00 and 16:00-17:00 unscheduled 7200; shift 08:00-16:00 without the break
    # no_data 28800 - 1800 = 27000; break planned_stop 1800. 7200 + 27000 + 1800 = 36000.
    assert cats(row) == expect(no_data=27000, planned_stop=1800, unscheduled=7200)
    assert row["calendar_s"] == 36000
    assert row["planned_s"] == 0
    assert row["oee"] is None
    assert row["completeness"] == 0.0625  # (28800 - 27000) / 28800


def test_T10_time_before_the_first_sample_counts_by_the_calendar(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 10:00:30", "state", 1),
        (f"{MON} 17:00:00", "state", 1),  # sentinel
    ])
    row = one(cfg, store, f"{MON} 07:00", f"{MON} 17:00")
    # 07:00-08:00 no record, off shift: unscheduled 3600.
    # 08:00-10:00:30: no_data 7230 (no record until 10:00, then S5 until the first sample).
    # 10:00:30-17:00 running = 25170 (through the break and into overtime).
    # 3600 + 7230 + 25170 = 36000.
    assert cats(row) == expect(running=25170, no_data=7230, unscheduled=3600)
    hours = kpi(cfg, store, f"{MON} 07:00", f"{MON} 17:00", by="hour")
    assert len(hours) == 10
    assert [sum(cats(h).values()) for h in hours] == [3600] * 10
    assert cats(hours[0]) == expect(unscheduled=3600)
    assert cats(hours[1]) == expect(no_data=3600)
    assert cats(hours[3]) == expect(running=3570, no_data=30)


def test_T10_time_after_the_last_sample_counts_by_the_calendar(tmp_path: Path) -> None:
    cfg = config()
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 11:00:00", "state", 1, "bad"),  # last sample: no_data from here either way
    ])
    row = one(cfg, store, f"{MON} 08:00", f"{MON} 17:00")
    # running 08:00-11:00 = 10800; no_data 11:00-12:00 3600 + 12:30-16:00 12600 = 16200;
    # break 1800 planned_stop; 16:00-17:00 unscheduled 3600.
    # 10800 + 16200 + 1800 + 3600 = 32400 = 9 h.
    assert cats(row) == expect(running=10800, no_data=16200, planned_stop=1800,
                               unscheduled=3600)
    assert row["completeness"] == (28800 - 16200) / 28800


def test_T10_night_shift_gap_is_filled_and_categories_sum_to_calendar_s(
        tmp_path: Path) -> None:
    cfg = config(shifts=NIGHT, breaks=NIGHT_BREAK)
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 22:00:00", "state", 1),
        (f"{TUE} 00:00:00", "state", 1, "bad"),  # the recording stops at midnight
        (f"{TUE} 05:00:00", "state", 1),         # and resumes at 05:00
        (f"{TUE} 07:00:00", "state", 1, "bad"),  # last sample, off shift
    ])
    rows = kpi(cfg, store, f"{MON} 20:00", f"{TUE} 08:00", by="shift")
    # Buckets: off 20:00-22:00, N(2026-03-02) 22:00-06:00, off 06:00-08:00.
    # off 1: no record, unscheduled 7200.
    # N: running 22:00-24:00 7200 + 05:00-06:00 3600 = 10800; no_data 00:00-05:00 without
    #    the break = 18000 - 1800 = 16200; the break 1800 planned_stop. 28800 in all.
    # off 2: running 06:00-07:00 3600 (overtime); from 07:00 no_data or no record, both
    #    unscheduled off shift: 3600.
    assert [(r["shift"], r["date"]) for r in rows] == [(None, None), ("N", MON),
                                                       (None, None)]
    assert cats(rows[0]) == expect(unscheduled=7200)
    assert cats(rows[1]) == expect(running=10800, no_data=16200, planned_stop=1800)
    assert cats(rows[2]) == expect(running=3600, unscheduled=3600)
    assert [sum(cats(r).values()) for r in rows] == [r["calendar_s"] for r in rows]
