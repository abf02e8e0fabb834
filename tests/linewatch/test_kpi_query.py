"""`linewatch kpi` windows and buckets (DESIGN §9): half-open whole-minute windows, the three
spellings of a time, hour/day buckets in local time (DST included), shift buckets with
off-shift gaps, exact tiling, the --json key set and the readable table's policy line, and
exit code 2 for usage errors — both in process (`kpi_rows` through `tests.timeline.kpi`) and
through the `linewatch` console script.

2026-03-02 is a Monday. Asia/Hong_Kong is UTC+8: 2026-03-02 00:00 UTC is epoch day
20514 (2026-01-01 is day 20454 = 1767225600 / 86400, plus 31 + 28 + 1 days), i.e.
20514 * 86400 = 1772409600, which is 08:00 in Hong Kong.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from linewatch.config import PlantConfig
from linewatch.kpi_query import WindowError, parse_time
from tests.timeline import kpi, plant, replay_rows

HK = ZoneInfo("Asia/Hong_Kong")
LINEWATCH = str(Path(sys.executable).with_name("linewatch"))
MON, TUE, WED, THU = "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"
MON_08_UTC = 1772409600  # 2026-03-02 08:00 HK = 00:00 UTC
WEEKDAYS = "[mon, tue, wed, thu, fri]"
SHIFT_A = f'[{{id: A, start: "08:00", end: "16:00", days: {WEEKDAYS}}}]'
CATEGORIES = ("running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
              "no_data_s", "unscheduled_s")
ADDITIVE = (*CATEGORIES, "calendar_s", "planned_s", "run_s", "scheduled_s", "total_count",
            "good_count", "reject_count", "failures")

# DESIGN §9: the keys of §4, the seven category seconds, scheduled_s, the count and energy
# sums, and line, from, to.
SECTION_4_KEYS = {
    "calendar_s", "planned_s", "run_s", "ideal_s", "availability", "performance", "quality",
    "oee", "teep", "failures", "mtbf_s", "mttr_s", "throughput_per_h", "scrap_ratio",
    "energy_per_unit_kwh", "completeness",
}
JSON_KEYS = SECTION_4_KEYS | set(CATEGORIES) | {
    "scheduled_s", "total_count", "good_count", "reject_count", "energy_kwh",
    "line", "from", "to",
}

TEMPLATE = """\
site: {{id: kt-01, name: Test plant, timezone: {tz}}}
policy: {{micro_stop_s: {micro}, setup_is_planned: {setup}, stop_after_s: {after}}}
calendar:
  shifts: {shifts}
  breaks: {breaks}
  holidays: {holidays}
products: [{{id: P30, ideal_cycle_s: 30, units_per_cycle: 1}}]
lines:
  - id: L1
    default_product: P30
    state_map: {{"1": running, "2": unplanned_stop, "3": setup}}
  - id: L2
    default_product: P30
    state_map: {{"1": running}}
storage: {{backend: sqlite, sqlite: {{path: "{db}"}}}}
"""


def config_text(tmp_path: Path, shifts: str = SHIFT_A,
                breaks: str = '[{start: "12:00", end: "12:30"}]', holidays: str = "[]",
                tz: str = "Asia/Hong_Kong", micro: int = 120, setup: str = "false",
                after: int = 60) -> str:
    return TEMPLATE.format(tz=tz, micro=micro, setup=setup, after=after, shifts=shifts,
                           breaks=breaks, holidays=holidays,
                           db=(tmp_path / "linewatch.db").as_posix())


def config(tmp_path: Path, **kwargs: Any) -> PlantConfig:
    return plant(config_text(tmp_path, **kwargs))


def config_file(tmp_path: Path, **kwargs: Any) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(config_text(tmp_path, **kwargs), encoding="utf-8")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINEWATCH, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def spans(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["from"], r["to"]) for r in rows]


def seconds(row: dict[str, Any]) -> int:
    return parse_time(row["to"], HK) - parse_time(row["from"], HK)


# A shift day on L1 (window [08:00, 16:00) of Monday, the break 12:00-12:30 run through):
#   stop 10:15-10:20 (300 s, a failure); micro stop 12:45:00-12:46:30 (90 s);
#   no_data 15:59-16:00 (60 s); running 28800 - 300 - 90 - 60 = 28350.
#   total_count 0 -> 200 (09:30) -> 330 (11:00) -> 500 (14:00): 500 units, ideal 500 * 30
#   = 15000; reject_count 0 -> 4 -> 6 -> 10: 10 rejects, good 490 (S7).
#   energy 100.0 (baseline, 08:00) -> 110.5 (09:30) -> 120.0 (11:00) -> 131.0 (14:00):
#   10.5 + 9.5 + 11.0 = 31.0 kWh.
SHIFT_DAY = [
    (f"{MON} 08:00:00", "state", 1),
    (f"{MON} 08:00:00", "total_count", 0),
    (f"{MON} 08:00:00", "reject_count", 0),
    (f"{MON} 08:00:00", "energy_kwh", "100.0"),
    (f"{MON} 09:30:00", "total_count", 200),
    (f"{MON} 09:30:00", "reject_count", 4),
    (f"{MON} 09:30:00", "energy_kwh", "110.5"),
    (f"{MON} 10:15:00", "state", 2),
    (f"{MON} 10:20:00", "state", 1),
    (f"{MON} 11:00:00", "total_count", 330),
    (f"{MON} 11:00:00", "reject_count", 6),
    (f"{MON} 11:00:00", "energy_kwh", "120.0"),
    (f"{MON} 12:45:00", "state", 2),
    (f"{MON} 12:46:30", "state", 1),
    (f"{MON} 14:00:00", "total_count", 500),
    (f"{MON} 14:00:00", "reject_count", 10),
    (f"{MON} 14:00:00", "energy_kwh", "131.0"),
    (f"{MON} 15:59:00", "state", 1, "bad"),
    (f"{MON} 16:00:00", "state", 1),  # sentinel, outside the window
]


def shift_day(tmp_path: Path) -> tuple[PlantConfig, Any]:
    cfg = config(tmp_path)
    store = replay_rows(tmp_path, cfg, SHIFT_DAY)
    return cfg, store


# --- half-open whole-minute windows -----------------------------------------------------------


def test_window_is_half_open_from_inclusive_to_exclusive(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 09:00:00", "state", 1),
        (f"{MON} 10:00:00", "state", 2),  # a 300 s stop from 10:00:00
        (f"{MON} 10:05:00", "state", 1),
        (f"{MON} 11:00:00", "state", 1),
    ])
    # [09:59, 10:00) ends before the stop's first second: 60 s running, no failure.
    (row,) = kpi(cfg, store, f"{MON} 09:59", f"{MON} 10:00")
    assert (row["calendar_s"], row["running_s"], row["unplanned_stop_s"]) == (60, 60, 0)
    assert row["failures"] == 0
    # [10:00, 10:01) starts with it: 60 s of the stop and its failure.
    (row,) = kpi(cfg, store, f"{MON} 10:00", f"{MON} 10:01")
    assert (row["calendar_s"], row["running_s"], row["unplanned_stop_s"]) == (60, 0, 60)
    assert row["failures"] == 1
    # [10:05, 10:06): the stop's end is exclusive, the line runs again.
    (row,) = kpi(cfg, store, f"{MON} 10:05", f"{MON} 10:06")
    assert (row["running_s"], row["unplanned_stop_s"]) == (60, 0)


def test_window_bound_off_a_whole_minute_raises_window_error() -> None:
    with pytest.raises(WindowError, match="whole minute"):
        parse_time(f"{MON} 08:00:30", HK)
    with pytest.raises(WindowError, match="whole minute"):
        parse_time(f"{MON}T08:00:00.500+08:00", HK)
    with pytest.raises(WindowError):
        parse_time("next tuesday", HK)
    # 08:01 exactly is fine: 1772409600 + 60.
    assert parse_time(f"{MON} 08:01:00", HK) == MON_08_UTC + 60


def test_window_bound_off_a_whole_minute_in_kpi_raises_window_error(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = replay_rows(tmp_path, cfg, [(f"{MON} 08:00:00", "state", 1)])
    with pytest.raises(WindowError):
        kpi(cfg, store, f"{MON} 08:00", f"{MON} 09:00:15")
    with pytest.raises(WindowError):  # an empty window: to must come after from
        kpi(cfg, store, f"{MON} 09:00", f"{MON} 09:00")


def test_window_off_a_whole_minute_via_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L1",
                 "--from", f"{MON}T08:00:30", "--to", f"{MON}T09:00")
    assert result.returncode == 2
    assert "whole minute" in result.stderr
    assert "--from" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_window_time_forms_iso_offset_site_time_and_date() -> None:
    # 08:00 in Hong Kong = 00:00 UTC = 05:00 at +05:00 = 1772409600.
    assert parse_time(f"{MON}T08:00:00+08:00", HK) == MON_08_UTC
    assert parse_time(f"{MON}T00:00:00Z", HK) == MON_08_UTC
    assert parse_time(f"{MON}T05:00+05:00", HK) == MON_08_UTC
    # Without offset: site time.
    assert parse_time(f"{MON}T08:00", HK) == MON_08_UTC
    assert parse_time(f"{MON} 08:00", HK) == MON_08_UTC
    # A date: local midnight = 1772409600 - 8 * 3600 = 1772380800 (2026-03-01 16:00 UTC).
    assert parse_time(MON, HK) == 1772380800


# --- hour and day buckets ---------------------------------------------------------------------


def test_window_by_hour_and_day_follow_hong_kong_local_time(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = replay_rows(tmp_path, cfg, [(f"{MON} 08:00:00", "state", 1)])
    hours = kpi(cfg, store, MON, TUE, by="hour", line="L2")
    # 24 local hours starting at local midnight (16:00 UTC the day before).
    assert len(hours) == 24
    assert hours[0]["from"] == "2026-03-02T00:00:00+08:00"
    assert parse_time(hours[0]["from"], HK) == 1772380800
    assert hours[23]["to"] == "2026-03-03T00:00:00+08:00"
    assert [seconds(h) for h in hours] == [3600] * 24
    # L2 was never recorded: 00:00-08:00 unscheduled, 08:00-16:00 no_data except the break
    # hour 12:00-13:00 (1800 planned_stop + 1800 no_data), 16:00-24:00 unscheduled.
    assert [h["no_data_s"] for h in hours] == [0] * 8 + [3600] * 4 + [1800] + [3600] * 3 \
        + [0] * 8
    # Day buckets over 2026-03-02 12:00 - 2026-03-04 12:00 split at local midnights
    # (16:00 UTC): 12 h, 24 h, 12 h.
    days = kpi(cfg, store, f"{MON} 12:00", f"{WED} 12:00", by="day", line="L2")
    assert spans(days) == [
        ("2026-03-02T12:00:00+08:00", "2026-03-03T00:00:00+08:00"),
        ("2026-03-03T00:00:00+08:00", "2026-03-04T00:00:00+08:00"),
        ("2026-03-04T00:00:00+08:00", "2026-03-04T12:00:00+08:00"),
    ]
    assert [d["calendar_s"] for d in days] == [43200, 86400, 43200]
    # A window starting on a half hour: [08:30, 10:00) -> 08:30-09:00 and 09:00-10:00.
    hours = kpi(cfg, store, f"{MON} 08:30", f"{MON} 10:00", by="hour")
    assert [h["calendar_s"] for h in hours] == [1800, 3600]
    assert hours[1]["from"] == "2026-03-02T09:00:00+08:00"


def test_window_by_day_and_hour_on_the_london_dst_days(tmp_path: Path) -> None:
    cfg = config(tmp_path, tz="Europe/London")
    store = replay_rows(tmp_path, cfg, [("2026-03-27 08:00:00", "state", 1)])
    london = cfg.site.zone()
    # Clocks go forward on 2026-03-29 at 01:00 GMT: that day is 23 h = 82800 s.
    days = kpi(cfg, store, "2026-03-28", "2026-03-31", by="day", line="L2")
    assert [d["calendar_s"] for d in days] == [86400, 82800, 86400]
    assert [d["from"] for d in days] == ["2026-03-28T00:00:00+00:00",
                                         "2026-03-29T00:00:00+00:00",
                                         "2026-03-30T00:00:00+01:00"]
    # Its hours: 00:00 GMT, then 02:00 BST ... 23:00 BST: 23 buckets of 3600 s.
    hours = kpi(cfg, store, "2026-03-29", "2026-03-30", by="hour", line="L2")
    assert len(hours) == 23
    assert [h["calendar_s"] for h in hours] == [3600] * 23
    assert hours[0]["from"] == "2026-03-29T00:00:00+00:00"
    assert hours[1]["from"] == "2026-03-29T02:00:00+01:00"
    assert hours[22]["from"] == "2026-03-29T23:00:00+01:00"
    # 2026-03-29 00:00 GMT = 1772409600 + 27 * 86400 = 1774742400; the day ends 23 h later.
    assert parse_time(hours[0]["from"], london) == 1774742400
    assert parse_time(hours[22]["to"], london) == 1774742400 + 82800
    # Clocks go back on 2026-10-25 at 02:00 BST: 25 h, 25 hour buckets, 01:00 twice.
    days = kpi(cfg, store, "2026-10-25", "2026-10-26", by="day", line="L2")
    assert [d["calendar_s"] for d in days] == [90000]
    hours = kpi(cfg, store, "2026-10-25", "2026-10-26", by="hour", line="L2")
    assert len(hours) == 25
    assert [h["from"][11:] for h in hours[:4]] == ["00:00:00+01:00", "01:00:00+01:00",
                                                   "01:00:00+00:00", "02:00:00+00:00"]


def test_window_by_hour_in_a_zone_with_a_45_minute_offset(tmp_path: Path) -> None:
    # Asia/Kathmandu is UTC+05:45: its local hours start at 15 past the UTC hour.
    cfg = config(tmp_path, tz="Asia/Kathmandu")
    store = replay_rows(tmp_path, cfg, [
        (f"{MON} 08:00:00", "state", 1),
        (f"{MON} 09:10:00", "state", 2),
        (f"{MON} 09:50:00", "state", 1),
        (f"{MON} 12:00:00", "state", 1),
    ])
    rows = kpi(cfg, store, f"{MON} 08:07", f"{MON} 11:53", by="hour")
    # 08:07-09:00 = 3180 s, 09:00-10:00 (stop 09:10-09:50 = 2400, running 1200),
    # 10:00-11:00 = 3600, 11:00-11:53 = 3180.
    assert spans(rows) == [
        ("2026-03-02T08:07:00+05:45", "2026-03-02T09:00:00+05:45"),
        ("2026-03-02T09:00:00+05:45", "2026-03-02T10:00:00+05:45"),
        ("2026-03-02T10:00:00+05:45", "2026-03-02T11:00:00+05:45"),
        ("2026-03-02T11:00:00+05:45", "2026-03-02T11:53:00+05:45"),
    ]
    assert [(r["running_s"], r["unplanned_stop_s"]) for r in rows] == [
        (3180, 0), (1200, 2400), (3600, 0), (3180, 0)]
    assert [r["failures"] for r in rows] == [0, 1, 0, 0]


# --- shift buckets ----------------------------------------------------------------------------

TWO_SHIFTS = (f'[{{id: A, start: "08:00", end: "16:00", days: {WEEKDAYS}}}, '
              f'{{id: N, start: "22:00", end: "06:00", days: {WEEKDAYS}}}]')


def test_window_by_shift_gives_instances_and_off_shift_gaps(tmp_path: Path) -> None:
    cfg = config(tmp_path, shifts=TWO_SHIFTS)
    store = replay_rows(tmp_path, cfg, [(f"{MON} 08:00:00", "state", 1)])
    rows = kpi(cfg, store, f"{MON} 07:00", f"{TUE} 09:00", by="shift", line="L2")
    # off 07-08, A(Mon) 08-16 (one bucket, its break inside), off 16-22, N(Mon) 22-06,
    # off 06-08, A(Tue) 08-09 clipped to the window.
    assert [(r["shift"], r["date"]) for r in rows] == [
        (None, None), ("A", MON), (None, None), ("N", MON), (None, None), ("A", TUE)]
    assert spans(rows) == [
        ("2026-03-02T07:00:00+08:00", "2026-03-02T08:00:00+08:00"),
        ("2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00"),
        ("2026-03-02T16:00:00+08:00", "2026-03-02T22:00:00+08:00"),
        ("2026-03-02T22:00:00+08:00", "2026-03-03T06:00:00+08:00"),
        ("2026-03-03T06:00:00+08:00", "2026-03-03T08:00:00+08:00"),
        ("2026-03-03T08:00:00+08:00", "2026-03-03T09:00:00+08:00"),
    ]
    # 3600 + 28800 + 21600 + 28800 + 7200 + 3600 = 93600 = 26 h.
    assert [r["calendar_s"] for r in rows] == [3600, 28800, 21600, 28800, 7200, 3600]
    assert [r["scheduled_s"] for r in rows] == [0, 28800, 0, 28800, 0, 3600]
    # The break 12:00-12:30 applies to A only (N does not overlap it): 1800 planned_stop.
    assert [r["planned_stop_s"] for r in rows] == [0, 1800, 0, 0, 0, 0]


def test_window_by_shift_date_is_the_local_start_date_of_the_instance(tmp_path: Path) -> None:
    cfg = config(tmp_path, shifts=TWO_SHIFTS)
    store = replay_rows(tmp_path, cfg, [(f"{MON} 08:00:00", "state", 1)])
    # A window starting inside Monday's night shift on Tuesday 02:00: the bucket is N of
    # 2026-03-02 clipped to 02:00-06:00 (14400 s), then off 06:00-07:00.
    rows = kpi(cfg, store, f"{TUE} 02:00", f"{TUE} 07:00", by="shift", line="L2")
    assert [(r["shift"], r["date"], r["calendar_s"]) for r in rows] == [
        ("N", MON, 14400), (None, None, 3600)]
    # Inside one shift: a single clipped bucket.
    rows = kpi(cfg, store, f"{MON} 10:00", f"{MON} 12:00", by="shift", line="L2")
    assert [(r["shift"], r["date"], r["calendar_s"]) for r in rows] == [("A", MON, 7200)]


def test_window_by_shift_adjacent_shifts_and_a_holiday(tmp_path: Path) -> None:
    shifts = (f'[{{id: E, start: "06:00", end: "14:00", days: {WEEKDAYS}}}, '
              f'{{id: L, start: "14:00", end: "22:00", days: {WEEKDAYS}}}]')
    cfg = config(tmp_path, shifts=shifts, breaks="[]", holidays=f'["{TUE}"]')
    store = replay_rows(tmp_path, cfg, [(f"{MON} 08:00:00", "state", 1)])
    rows = kpi(cfg, store, MON, WED, by="shift", line="L2")
    # Monday: off 00-06, E 06-14, L 14-22 (no empty gap between them), off 22:00 Mon
    # through the holiday Tuesday to Wed 00:00 = 2 h + 24 h = 26 h = 93600 s.
    assert [(r["shift"], r["date"], r["calendar_s"]) for r in rows] == [
        (None, None, 21600), ("E", MON, 28800), ("L", MON, 28800), (None, None, 93600)]


# --- tiling -----------------------------------------------------------------------------------


def test_window_buckets_tile_the_window_and_sum_to_the_whole(tmp_path: Path) -> None:
    cfg, store = shift_day(tmp_path)
    (whole,) = kpi(cfg, store, f"{MON} 08:00", f"{MON} 16:00")
    # See SHIFT_DAY: 28350 running, 90 micro, 300 unplanned, 60 no_data; planned
    # 28350 + 90 + 300 = 28740, run 28440; 500 units, 490 good, 10 rejects, 31.0 kWh.
    assert {name: whole[name] for name in CATEGORIES} == {
        "running_s": 28350, "micro_stop_s": 90, "setup_s": 0, "unplanned_stop_s": 300,
        "planned_stop_s": 0, "no_data_s": 60, "unscheduled_s": 0}
    assert (whole["planned_s"], whole["run_s"], whole["failures"]) == (28740, 28440, 1)
    assert (whole["total_count"], whole["good_count"], whole["reject_count"]) == (500, 490, 10)
    assert whole["ideal_s"] == 15000.0
    assert whole["energy_kwh"] == 31.0
    # oee = 15000 * (490 / 500) / 28740 = 14700 / 28740
    assert whole["oee"] == pytest.approx(14700 / 28740, rel=1e-12)
    for by in ("hour", "shift", "day"):
        rows = kpi(cfg, store, f"{MON} 08:00", f"{MON} 16:00", by=by)
        assert rows[0]["from"] == whole["from"]
        assert rows[-1]["to"] == whole["to"]
        assert all(a["to"] == b["from"] for a, b in pairwise(rows))
        for name in ADDITIVE:
            assert sum(r[name] for r in rows) == whole[name], (by, name)
        assert sum(r["ideal_s"] for r in rows) == pytest.approx(15000.0)
        assert sum(r["energy_kwh"] or 0.0 for r in rows) == 31.0
    hours = kpi(cfg, store, f"{MON} 08:00", f"{MON} 16:00", by="hour")
    # Per hour 08..15: totals 0, 200, 0, 130, 0, 0, 170, 0; energy 0.0 (the baseline sample
    # marks the hour), 10.5, null, 9.5, null, null, 11.0, null (S8).
    assert [h["total_count"] for h in hours] == [0, 200, 0, 130, 0, 0, 170, 0]
    assert [h["energy_kwh"] for h in hours] == [0.0, 10.5, None, 9.5, None, None, 11.0, None]
    assert [h["failures"] for h in hours] == [0, 0, 1, 0, 0, 0, 0, 0]
    # Three days around it, by day, with the time before and after filled (T10):
    days = kpi(cfg, store, MON, THU, by="day")
    assert [d["calendar_s"] for d in days] == [86400] * 3
    assert sum(sum(d[c] for c in CATEGORIES) for d in days) == 259200


# --- the command ------------------------------------------------------------------------------


def test_window_json_has_exactly_the_section_9_keys(tmp_path: Path) -> None:
    _cfg, store = shift_day(tmp_path)
    store.close()
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L1", "--from", f"{MON}T08:00",
                 "--to", f"{MON}T16:00", "--by", "hour", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 8
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["line"] == "L1"
    assert [r["from"] for r in rows][:2] == ["2026-03-02T08:00:00+08:00",
                                             "2026-03-02T09:00:00+08:00"]
    assert rows[-1]["to"] == "2026-03-02T16:00:00+08:00"
    for row in rows:
        assert dt.datetime.fromisoformat(row["from"]).utcoffset() == dt.timedelta(hours=8)
    # The numbers are those of kpi_rows (hour 09:00-10:00: 200 units, 4 rejects, 10.5 kWh).
    assert (rows[1]["total_count"], rows[1]["reject_count"], rows[1]["energy_kwh"]) == (
        200, 4, 10.5)
    assert rows[1]["quality"] == pytest.approx(196 / 200, rel=1e-12)
    assert rows[2]["failures"] == 1
    assert rows[0]["mtbf_s"] is None  # ratios are floats or null


def test_window_json_by_shift_adds_shift_and_date(tmp_path: Path) -> None:
    _cfg, store = shift_day(tmp_path)
    store.close()
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L1", "--from", MON, "--to", TUE,
                 "--by", "shift", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    for row in rows:
        assert set(row) == JSON_KEYS | {"shift", "date"}
    # off 00-08, A 08-16, off 16-24.
    assert [(r["shift"], r["date"]) for r in rows] == [(None, None), ("A", MON), (None, None)]
    assert [(r["from"], r["to"]) for r in rows] == [
        ("2026-03-02T00:00:00+08:00", "2026-03-02T08:00:00+08:00"),
        ("2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00"),
        ("2026-03-02T16:00:00+08:00", "2026-03-03T00:00:00+08:00"),
    ]
    assert rows[1]["total_count"] == 500
    assert rows[1]["running_s"] == 28350


def test_window_table_prints_the_policy_switches(tmp_path: Path) -> None:
    path = config_file(tmp_path, micro=90, setup="true", after=45)
    result = cli("kpi", "--config", str(path), "--line", "L1", "--from", f"{MON}T08:00",
                 "--to", f"{MON}T16:00")
    assert result.returncode == 0, result.stderr
    assert "micro_stop_s=90" in result.stdout
    assert "setup_is_planned=true" in result.stdout
    assert "stop_after_s=45" in result.stdout
    assert "2026-03-02 08:00" in result.stdout


def test_window_unknown_line_exits_2(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L9", "--from", MON, "--to", TUE)
    assert result.returncode == 2
    assert "L9" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_window_bad_by_exits_2(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L1", "--from", MON, "--to", TUE,
                 "--by", "week")
    assert result.returncode == 2
    assert "--by" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_window_to_not_after_from_exits_2(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("kpi", "--config", str(path), "--line", "L1", "--from", TUE, "--to", MON)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
