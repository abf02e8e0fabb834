"""The per-line time model (DESIGN §3 S1–S12, §6 R1–R3; stop events of T5/T6) through
`feed()` and `LineTracker` directly, with every expected number worked out by hand.

All times are Monday 2026-03-02 in Asia/Hong_Kong (UTC+8), inside shift A (08:00–16:00,
Mon–Fri) unless a test says otherwise; the break is 12:00–12:30. A record or stop is shown
by its local time ("08:01" / "08:01:30") so that the comments read like the shift.
The decisions the implementation took where DESIGN is silent are in docs/time-model.md.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from linewatch.config import PlantConfig
from linewatch.rollup import CATEGORY_FIELDS, MinuteRecord, Totals
from linewatch.state_tracker import BadInput
from tests.timeline import Row, Run, collect, feed, plant, samples, tracker

HK = ZoneInfo("Asia/Hong_Kong")
DAY = "2026-03-02"  # a Monday

BASE = """\
site: {id: kt-01, timezone: Asia/Hong_Kong}
policy: {micro_stop_s: 120, stop_after_s: 60}
calendar:
  shifts: [{id: A, start: "08:00", end: "16:00", days: [mon, tue, wed, thu, fri]}]
  breaks: [{start: "12:00", end: "12:30"}]
products:
  - {id: P30, ideal_cycle_s: 30}                      # 30 / 1 = 30 s per unit
  - {id: P10, ideal_cycle_s: 10, units_per_cycle: 2}  # 10 / 2 = 5 s per unit
reasons:
  - {code: fault, category: unplanned_stop}
  - {code: jam, category: unplanned_stop}
  - {code: changeover, category: setup}
  - {code: lunch, category: planned_stop}
lines:
  - id: L1
    default_product: P30
    state_map:
      "1": running
      "2": {category: unplanned_stop, reason: fault}
      "3": setup
      "6": unplanned_stop
    reason_map: {"17": jam, "30": changeover, "40": lunch, "0": null}
    product_map: {"101": P30, "102": P10}
"""

COUNTS = """\
site: {id: kt-01, timezone: Asia/Hong_Kong}
policy: {micro_stop_s: 120, stop_after_s: 60}
calendar:
  shifts: [{id: A, start: "08:00", end: "16:00", days: [mon, tue, wed, thu, fri]}]
  breaks: [{start: "12:00", end: "12:30"}]
products: [{id: P30, ideal_cycle_s: 30}]
lines:
  - id: L1
    detection: counts
    default_product: P30
"""


COUNTS_WITH_REASONS = COUNTS + """\
    reason_map: {"17": jam, "30": changeover}
reasons:
  - {code: jam, category: unplanned_stop}
  - {code: changeover, category: setup}
"""


def base(line_extra: str = "", top_extra: str = "") -> PlantConfig:
    """BASE with extra keys for line L1 (written unindented) and extra top-level keys."""
    extra = textwrap.indent(textwrap.dedent(line_extra), "    ")
    return plant(BASE + extra + textwrap.dedent(top_extra))


def r(hms: str, signal: str, value: Any, quality: str | None = None) -> Row:
    """A row at DAY hms local time ("08:00:10" or "08:00:10.900")."""
    return (f"{DAY} {hms}", signal, value) if quality is None else (
        f"{DAY} {hms}", signal, value, quality)


def t(hms: str) -> int:
    """UTC epoch seconds of DAY hms in Hong Kong."""
    return int(dt.datetime.fromisoformat(f"{DAY} {hms}").replace(tzinfo=HK).timestamp())


def local(ts: int, fmt: str = "%H:%M:%S") -> str:
    return dt.datetime.fromtimestamp(ts, HK).strftime(fmt)


def nonzero(x: MinuteRecord | Totals | Run) -> dict[str, int]:
    """The category seconds that are not 0."""
    totals = x.totals() if isinstance(x, Run) else x
    return {name: getattr(totals, name) for name in CATEGORY_FIELDS if getattr(totals, name)}


def counts(x: MinuteRecord | Totals) -> tuple[int, int, int]:
    return (x.total_count, x.good_count, x.reject_count)


def records(run: Run) -> dict[tuple[str, str], MinuteRecord]:
    """Records by (local minute "HH:MM", product)."""
    return {(local(rec.ts, "%H:%M"), rec.product): rec for rec in run.minutes.values()}


def minutes(run: Run) -> dict[str, Totals]:
    """Sums per local minute "HH:MM" (all products)."""
    return {local(ts, "%H:%M"): tot for ts, tot in run.per_minute().items()}


def stops(run: Run) -> list[tuple[str, str, str, str | None]]:
    """Stop events as (start, end, category, reason), in time order."""
    return [(local(e.start), local(e.end), e.category, e.reason)
            for _, e in sorted(run.stops.items())]


def start(config: PlantConfig, checkpoint: dict | None = None) -> Run:
    return Run(tracker(config, checkpoint=checkpoint))


def apply(run: Run, config: PlantConfig, rows: list[Row]) -> list[str | None]:
    return [run.tracker.apply(sample) for sample in samples(config, rows)]


def finish(run: Run) -> Run:
    run.tracker.finish()
    collect(run)
    return run


def fed_in_two_parts(config: PlantConfig, rows: list[Row], split: int) -> tuple[Run, Run]:
    """Rows[:split] to one tracker, finish, checkpoint through JSON; rows[split:] to a new
    tracker resumed from it. Returns (first part alone, both parts merged in order)."""
    first = start(config)
    apply(first, config, rows[:split])
    finish(first)
    saved = json.loads(json.dumps(first.tracker.checkpoint()))
    both = Run(tracker(config, checkpoint=saved), dict(first.minutes), dict(first.stops))
    apply(both, config, rows[split:])
    return first, finish(both)


# --- S1: whole seconds; equal timestamps in arrival order ---------------------------------


def test_S1_sample_at_900_ms_counts_in_its_whole_second() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10.900", "state", "2"),
                        r("08:00:20", "state", "1"), r("08:00:59", "state", "1")])
    # "2" at 08:00:10.900 holds second 10 (truncated, not rounded to 11): stop 10..19 = 10 s
    # (< 120: micro). Running 0..9 + 20..59 = 10 + 40 = 50. 50 + 10 = 60.
    assert nonzero(run) == {"running_s": 50, "micro_stop_s": 10}
    assert stops(run) == [("08:00:10", "08:00:20", "micro_stop", "fault")]


def test_S1_samples_with_equal_timestamps_apply_in_arrival_order() -> None:
    config = base()
    run = feed(config, [
        r("08:00:00", "state", "1"),
        r("08:00:10", "state", "2"), r("08:00:10", "state", "1"),  # "1" arrives last: running
        r("08:00:20.100", "state", "2"), r("08:00:20.600", "state", "1"),  # same second
        r("08:00:40", "state", "3"), r("08:00:40", "state", "2"),  # "2" last: a stop, not setup
        r("08:00:59", "state", "2"),
    ])
    # Seconds 10 and 20 end running (the last sample of the second wins) -> running 0..39 = 40;
    # stop 40..59 = 20 s (micro, open at the end of input); setup 0 s.
    assert nonzero(run) == {"running_s": 40, "micro_stop_s": 20}
    assert stops(run) == [("08:00:40", "08:01:00", "micro_stop", "fault")]


# --- S2: the sample's timestamp is the time (the collector chose it) --------------------


def test_S2_time_model_uses_the_sample_timestamp_not_the_clock() -> None:
    config = base()
    # 2020-06-01 is a Monday: shift A. The tracker never reads the clock, so a sample whose
    # source timestamp is years old lands in its own minute.
    run = feed(config, [("2020-06-01 09:30:15.250", "state", "1"),
                        ("2020-06-01 09:30:44", "state", "1")])
    minute = int(dt.datetime(2020, 6, 1, 9, 30, tzinfo=HK).timestamp())
    assert minute == 1590975000  # 2020-06-01 01:30 UTC
    # Origin 09:30:00; no_data 0..14 = 15 s; running 15..44 = 30 s; span 45.
    (record,) = run.minutes.values()
    assert (record.ts, record.span_s) == (minute, 45)
    assert nonzero(record) == {"no_data_s": 15, "running_s": 30}


# --- S3: silence is not no_data; the collector's bad samples are -----------------------


def test_S3_silence_keeps_the_last_state_and_bad_samples_on_disconnect_give_no_data() -> None:
    config = base()
    run = feed(config, [
        r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
        r("08:04:00", "total_count", 30),  # no state sample for 5 minutes: still running
        r("08:05:00", "state", "1", "bad"), r("08:05:00", "total_count", 30, "bad"),  # lost
        r("08:09:00", "state", "1"), r("08:09:00", "total_count", 45),  # reconnected
        r("08:09:59", "state", "1"),
    ])
    # running 08:00:00-08:05:00 = 300 s; no_data 08:05:00-08:09:00 = 240 s;
    # running 08:09:00-08:10:00 = 60 s. 300 + 240 + 60 = 600.
    assert nonzero(run) == {"running_s": 360, "no_data_s": 240}
    # Counts: 30 - 0 = 30 in minute 08:04; 45 - 30 = 15 in 08:09 (the bad 30 moved nothing).
    per = minutes(run)
    assert (per["08:04"].total_count, per["08:09"].total_count) == (30, 15)
    assert run.totals().total_count == 45


# --- S4: canonical raw values; unmapped values; values unreadable for their role --------


def test_S4_numbers_in_any_spelling_match_state_map_key_2() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"),
            r("08:00:10", "state", 2.0), r("08:00:20", "state", "1"),
            r("08:00:30", "state", "02"), r("08:00:40", "state", "1"),
            r("08:00:50", "state", "+2"), r("08:01:00", "state", "1"),
            r("08:01:10", "state", "2e0"), r("08:01:20", "state", "1"),
            r("08:01:30", "state", " 2 "), r("08:01:40", "state", "1"),
            r("08:01:59", "state", "1")]
    run = feed(config, rows)
    # Five 10 s stops, each "2" = unplanned_stop/fault: micro 50; running 120 - 50 = 70.
    assert nonzero(run) == {"running_s": 70, "micro_stop_s": 50}
    assert stops(run) == [
        ("08:00:10", "08:00:20", "micro_stop", "fault"),
        ("08:00:30", "08:00:40", "micro_stop", "fault"),
        ("08:00:50", "08:01:00", "micro_stop", "fault"),
        ("08:01:10", "08:01:20", "micro_stop", "fault"),
        ("08:01:30", "08:01:40", "micro_stop", "fault"),
    ]
    assert run.tracker.unmapped == {}


def test_S4_state_map_keys_in_any_spelling_are_canonical_too() -> None:
    config = plant(BASE.replace(
        '      "1": running\n      "2": {category: unplanned_stop, reason: fault}\n'
        '      "3": setup\n',
        '      1.0: running\n      "02": {category: unplanned_stop, reason: fault}\n'
        '      3: setup\n'))
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:20", "state", 2),
                        r("08:00:30", "state", "3.0"), r("08:00:50", "state", "1"),
                        r("08:00:59", "state", "1")])
    # running 0..19 + 50..59 = 30; stop 20..29 = 10 s micro (setup ends it); setup 30..49 = 20.
    assert nonzero(run) == {"running_s": 30, "micro_stop_s": 10, "setup_s": 20}
    assert stops(run) == [("08:00:20", "08:00:30", "micro_stop", "fault")]
    assert run.tracker.unmapped == {}


def test_S4_booleans_match_true_and_false() -> None:
    config = plant(BASE.replace(
        '      "1": running\n',
        '      "1": running\n      "true": running\n'
        '      "false": {category: unplanned_stop, reason: jam}\n'))
    run = feed(config, [r("08:00:00", "state", True), r("08:00:20", "state", False),
                        r("08:00:30", "state", "TRUE"), r("08:00:59", "state", True)])
    # True -> "true" running 0..19; False -> "false" stop/jam 20..29 (10 s micro);
    # "TRUE" -> "true" running 30..59. running 20 + 30 = 50.
    assert nonzero(run) == {"running_s": 50, "micro_stop_s": 10}
    assert stops(run) == [("08:00:20", "08:00:30", "micro_stop", "jam")]
    assert run.tracker.unmapped == {}


def test_S4_unmapped_good_value_is_an_unplanned_stop_counted_per_canonical_value() -> None:
    config = base()
    run = feed(config, [
        r("08:00:00", "state", "1"), r("08:00:10", "state", "9"),
        r("08:00:20", "state", "1"), r("08:00:30", "state", "9.0"),
        r("08:00:40", "state", "1"), r("08:00:50", "state", " abc "),
        r("08:00:55", "state", "1"), r("08:00:59", "state", "1"),
    ])
    # Stops 10..19 (10 s), 30..39 (10 s), 50..54 (5 s), reason unmapped: micro 25;
    # running 60 - 25 = 35. "9" and "9.0" are one canonical value "9"; " abc " is "abc".
    assert nonzero(run) == {"running_s": 35, "micro_stop_s": 25}
    assert stops(run) == [
        ("08:00:10", "08:00:20", "micro_stop", "unmapped"),
        ("08:00:30", "08:00:40", "micro_stop", "unmapped"),
        ("08:00:50", "08:00:55", "micro_stop", "unmapped"),
    ]
    assert run.tracker.unmapped == {"9": 2, "abc": 1}


def test_S4_counter_numbers_in_any_spelling_are_read() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", "10"),
                        r("08:00:10", "total_count", 12.0), r("08:00:20", "total_count", "+15"),
                        r("08:00:30", "total_count", "2e1"), r("08:00:40", "total_count", " 21 "),
                        r("08:00:59", "state", "1")])
    # baseline 10; +2 (12.0); +3 ("+15"); +5 ("2e1" = 20); +1 (" 21 "). 2 + 3 + 5 + 1 = 11.
    assert counts(run.totals()) == (11, 11, 0)


def test_S4_text_for_a_counter_or_meter_is_bad_input_wrong_type() -> None:
    config = base()
    run = start(config)
    apply(run, config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 10),
                        r("08:00:00", "energy_kwh", 1.0)])
    with pytest.raises(BadInput) as err:
        apply(run, config, [r("08:00:10", "total_count", "abc")])
    assert err.value.kind == "wrong_type"
    with pytest.raises(BadInput) as err:
        apply(run, config, [r("08:00:20", "energy_kwh", "n/a")])
    assert err.value.kind == "wrong_type"
    apply(run, config, [r("08:00:30", "total_count", 15), r("08:00:30", "energy_kwh", 1.5),
                        r("08:00:59", "state", "1")])
    finish(run)
    # The bad input changed nothing: 15 - 10 = 5 units, 1.5 - 1.0 = 0.5 kWh.
    totals = run.totals()
    assert (totals.total_count, totals.energy_kwh) == (5, 0.5)


# --- S5: bad-quality state and before the first state sample: no_data --------------------


def test_S5_before_the_first_state_sample_is_no_data() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "total_count", 100), r("08:00:30", "state", "1"),
                        r("08:00:59", "state", "1")])
    # The count opens minute 08:00; no state until 08:00:30: no_data 0..29 = 30; running 30.
    assert nonzero(run) == {"no_data_s": 30, "running_s": 30}
    assert run.stops == {}


def test_S5_bad_state_sample_is_no_data_until_the_next_good_one() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"),
                        r("08:00:20", "state", "1", "bad"),  # bad whatever its value (S4)
                        r("08:00:50", "state", "1"),  # same value as before: still ends it
                        r("08:00:59", "state", "1")])
    # running 0..19 (20) + 50..59 (10) = 30; no_data 20..49 = 30.
    assert nonzero(run) == {"running_s": 30, "no_data_s": 30}


def test_S5_no_data_ends_a_stop_and_each_part_is_judged_alone() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "2"), r("08:01:00", "state", "2", "bad"),
                        r("08:01:10", "state", "2"), r("08:03:09", "state", "2")])
    # Stop 08:00:00-08:01:00 = 60 s (micro); no_data 10 s; stop 08:01:10-08:03:10 = 120 s
    # (>= 120: unplanned, a failure in minute 08:01). 60 + 10 + 120 = 190 = 08:00:00..08:03:09.
    assert nonzero(run) == {"micro_stop_s": 60, "no_data_s": 10, "unplanned_stop_s": 120}
    assert stops(run) == [("08:00:00", "08:01:00", "micro_stop", "fault"),
                          ("08:01:10", "08:03:10", "unplanned_stop", "fault")]
    per = minutes(run)
    assert [per[m].failures for m in ("08:00", "08:01", "08:02", "08:03")] == [0, 1, 0, 0]


# --- S6: cumulative counters --------------------------------------------------------------


def test_S6_first_good_sample_is_a_baseline_not_a_count() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 100),
                        r("08:00:30", "total_count", 105), r("08:01:10", "total_count", 110),
                        r("08:01:59", "state", "1")])
    # 100 is the baseline; 105 - 100 = 5 in 08:00; 110 - 105 = 5 in 08:01. Total 10, not 110.
    per = minutes(run)
    assert (per["08:00"].total_count, per["08:01"].total_count) == (5, 5)
    assert run.totals().ideal_s == 300.0  # 10 units x 30 s (P30)


def test_S6_counter_rollover_is_not_a_negative_count() -> None:
    config = base("counter_max: 65535\n")
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 65520),
                        r("08:00:20", "total_count", 65530), r("08:00:40", "total_count", 4),
                        r("08:00:59", "state", "1")])
    # +10; then 65530 >= 0.9 x 65535 = 58981.5 -> rollover: 4 + 65535 + 1 - 65530 = 10.
    assert counts(run.totals()) == (20, 20, 0)


def test_S6_drop_below_90_percent_of_counter_max_is_a_reset() -> None:
    config = base("counter_max: 65535\n")
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 49990),
                        r("08:00:20", "total_count", 50000), r("08:00:40", "total_count", 7),
                        r("08:00:59", "state", "1")])
    # +10; then 50000 < 58981.5 -> reset: delta = new value = 7. Total 17.
    assert counts(run.totals()) == (17, 17, 0)


def test_S6_rollover_threshold_is_inclusive_at_90_percent() -> None:
    config = base("counter_max: 1000\n")
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 890),
                        r("08:00:10", "total_count", 900), r("08:00:20", "total_count", 5),
                        r("08:01:00", "total_count", 899), r("08:01:10", "total_count", 5),
                        r("08:01:59", "state", "1")])
    # 0.9 x 1000 = 900. Minute 08:00: 900 - 890 = 10; 900 >= 900 -> rollover
    # 5 + 1000 + 1 - 900 = 106; sum 116. Minute 08:01: 899 - 5 = 894; 899 < 900 -> reset: 5;
    # sum 899.
    per = minutes(run)
    assert (per["08:00"].total_count, per["08:01"].total_count) == (116, 899)


def test_S6_counter_max_per_signal_overrides_the_line() -> None:
    config = base("""\
        counter_max: 65535
        signals:
          total_count: {source: broker, topic: "plant/L1/total", counter_max: 1000}
          reject_count: {source: broker, topic: "plant/L1/reject"}
        """, """\
        sources:
          mqtt: [{id: broker, format: json}]
        """)
    run = feed(config, [r("08:00:00", "state", "1"),
                        r("08:00:00", "total_count", 950), r("08:00:00", "reject_count", 950),
                        r("08:00:30", "total_count", 10), r("08:00:40", "reject_count", 10),
                        r("08:00:59", "state", "1")])
    # total (counter_max 1000): 950 >= 900 -> rollover 10 + 1000 + 1 - 950 = 61.
    # reject (line's 65535): 950 < 58981.5 -> reset: 10. good = 61 - 10 = 51 (S7).
    assert counts(run.totals()) == (61, 51, 10)


def test_S6_bad_quality_counter_sample_never_moves_the_baseline() -> None:
    config = base()
    run = feed(config, [
        r("08:00:00", "state", "1"), r("08:00:00", "total_count", 50, "bad"),  # no baseline
        r("08:00:10", "total_count", 100),  # baseline
        r("08:00:20", "total_count", 0, "bad"),
        r("08:00:30", "total_count", 103),  # 103 - 100 = 3
        r("08:00:40", "total_count", 9999, "bad"),
        r("08:00:50", "total_count", 104),  # 104 - 103 = 1
        r("08:00:59", "state", "1"),
    ])
    # 3 + 1 = 4 (a bad 50 as baseline would give 53; a bad 0 would make 103 a whole count).
    assert counts(run.totals()) == (4, 4, 0)


def test_S6_counts_revealed_after_a_gap_are_kept_in_the_revealing_minute() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 100),
                        r("08:05:30", "total_count", 160), r("08:05:59", "state", "1")])
    # 160 - 100 = 60, all in 08:05, the minute of the sample that revealed them.
    per = minutes(run)
    assert {m: per[m].total_count for m in per} == {
        "08:00": 0, "08:01": 0, "08:02": 0, "08:03": 0, "08:04": 0, "08:05": 60}
    assert per["08:05"].ideal_s == 1800.0  # 60 x 30 s
    assert nonzero(run) == {"running_s": 360}


# --- S7: two counts give the third --------------------------------------------------------


def test_S7_total_and_good_give_reject() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:00", "good_count", 0), r("08:00:30", "total_count", 10),
                        r("08:00:30", "good_count", 8), r("08:00:59", "state", "1")])
    # reject = 10 - 8 = 2; ideal 10 x 30 = 300.
    assert counts(run.totals()) == (10, 8, 2)
    assert run.totals().ideal_s == 300.0


def test_S7_total_alone_means_good_is_total_and_reject_0() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:30", "total_count", 10), r("08:00:59", "state", "1")])
    assert counts(run.totals()) == (10, 10, 0)


def test_S7_good_and_reject_give_total() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "good_count", 0),
                        r("08:00:00", "reject_count", 0), r("08:00:30", "good_count", 7),
                        r("08:00:30", "reject_count", 3), r("08:00:59", "state", "1")])
    # total = 7 + 3 = 10; ideal 10 x 30 = 300.
    assert counts(run.totals()) == (10, 7, 3)
    assert run.totals().ideal_s == 300.0


def test_S7_total_and_reject_give_good() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:00", "reject_count", 0), r("08:00:30", "total_count", 10),
                        r("08:00:30", "reject_count", 3), r("08:00:59", "state", "1")])
    # good = 10 - 3 = 7; ideal 10 x 30 = 300.
    assert counts(run.totals()) == (10, 7, 3)
    assert run.totals().ideal_s == 300.0


# --- S8: energy meter ---------------------------------------------------------------------


def test_S8_energy_drop_is_always_a_reset_never_a_rollover() -> None:
    config = base("counter_max: 100\n")  # a counter dropping from 95 would be a rollover
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "energy_kwh", 94.5),
                        r("08:00:30", "energy_kwh", 95.0), r("08:01:00", "energy_kwh", 2.0),
                        r("08:01:30", "energy_kwh", 2.5), r("08:01:59", "state", "1")])
    # 08:00: 95.0 - 94.5 = 0.5. 08:01: drop 95.0 -> 2.0 is a reset: +2.0; then +0.5 = 2.5.
    # (As a counter with max 100 it would be 2 + 100 + 1 - 95 = 8.)
    per = minutes(run)
    assert (per["08:00"].energy_kwh, per["08:01"].energy_kwh) == (0.5, 2.5)
    assert run.totals().energy_kwh == 3.0


def test_S8_span_without_a_good_energy_sample_has_energy_none() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "energy_kwh", 10.0),
                        r("08:01:10", "energy_kwh", 0.0, "bad"),
                        r("08:02:00", "energy_kwh", 10.25), r("08:02:59", "state", "1")])
    # 08:00 holds the baseline (a good sample, 0 kWh) -> 0.0; 08:01 holds only a bad sample
    # -> None; 08:02: 10.25 - 10.0 = 0.25 (the bad 0.0 did not move the baseline).
    per = minutes(run)
    assert [per[m].energy_kwh for m in ("08:00", "08:01", "08:02")] == [0.0, None, 0.25]


# --- S9: products and ideal time ----------------------------------------------------------


def test_S9_product_switch_changes_the_ideal_time_for_counts_from_then_on() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:30", "total_count", 4),
                        r("08:00:45", "product", "102"),  # product_map: P10
                        r("08:01:30", "total_count", 10), r("08:01:59", "state", "1")])
    # P30: 4 x 30/1 = 120. P10 from 08:00:45: 6 x 10/2 = 30. Sum 150.
    recs = records(run)
    assert set(recs) == {("08:00", "P30"), ("08:00", "P10"), ("08:01", "P10")}
    assert (recs[("08:00", "P30")].total_count, recs[("08:00", "P30")].ideal_s) == (4, 120.0)
    assert (recs[("08:00", "P10")].total_count, recs[("08:00", "P10")].ideal_s) == (0, 0.0)
    assert (recs[("08:01", "P10")].total_count, recs[("08:01", "P10")].ideal_s) == (6, 30.0)
    assert run.totals().ideal_s == 150.0


def test_S9_line_overrides_ideal_cycle_and_units_per_cycle() -> None:
    config = base("""\
        products:
          P30: {ideal_cycle_s: 28, units_per_cycle: 4}
          P10: {units_per_cycle: 5}
        """)
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:20", "total_count", 8), r("08:00:30", "product", "102"),
                        r("08:00:40", "total_count", 13), r("08:00:59", "state", "1")])
    # P30 on L1: 28/4 = 7 s/unit x 8 = 56. P10 on L1: 10 (catalog) / 5 = 2 s/unit x 5 = 10.
    recs = records(run)
    assert recs[("08:00", "P30")].ideal_s == 56.0
    assert recs[("08:00", "P10")].ideal_s == 10.0


def test_S9_unknown_product_is_bad_input_and_the_previous_product_stays() -> None:
    config = base()
    run = start(config)
    apply(run, config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:10", "product", "102")])
    with pytest.raises(BadInput) as err:
        apply(run, config, [r("08:00:20", "product", "999")])
    assert err.value.kind == "unknown_product"
    apply(run, config, [r("08:00:30", "total_count", 3), r("08:00:59", "state", "1")])
    finish(run)
    # P30 0..9 (10 s), P10 10..59 (50 s) with 3 units x 5 s = 15.
    recs = records(run)
    assert set(recs) == {("08:00", "P30"), ("08:00", "P10")}
    assert (recs[("08:00", "P30")].span_s, recs[("08:00", "P10")].span_s) == (10, 50)
    assert (recs[("08:00", "P10")].total_count, recs[("08:00", "P10")].ideal_s) == (3, 15.0)


# --- S10: reasons; bad-quality samples ignored ---------------------------------------------


def test_S10_reason_sample_sets_the_reason_of_the_current_stop() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "state", "6"),
                        r("08:00:20", "reason", "17"),  # reason_map: jam
                        r("08:00:30", "state", "1"), r("08:00:59", "state", "1")])
    # One stop 10..29 = 20 s (a reason change does not split it, T5), reason jam.
    assert nonzero(run) == {"running_s": 40, "micro_stop_s": 20}
    assert stops(run) == [("08:00:10", "08:00:30", "micro_stop", "jam")]


def test_S10_setup_reason_turns_the_stop_into_setup_from_its_second_on() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "state", "6"),
                        r("08:00:20", "reason", "30"),  # changeover: category setup
                        r("08:00:40", "state", "1"), r("08:00:59", "state", "1")])
    # unplanned 10..19 = 10 s (micro, ended by setup); setup 20..39 = 20; running 10 + 20 = 30.
    assert nonzero(run) == {"running_s": 30, "micro_stop_s": 10, "setup_s": 20}
    assert stops(run) == [("08:00:10", "08:00:20", "micro_stop", None)]


def test_S10_planned_reason_then_unplanned_reason_gives_back_the_state_category() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "state", "6"),
                        r("08:00:20", "reason", "40"),  # lunch: planned_stop
                        r("08:00:30", "reason", "17"),  # jam: unplanned_stop again
                        r("08:00:40", "state", "1"), r("08:00:59", "state", "1")])
    # stop 10..19 (10 s, no reason); planned 20..29 (10 s); stop 30..39 (10 s, jam);
    # running 10 + 20 = 30; micro 10 + 10 = 20.
    assert nonzero(run) == {"running_s": 30, "micro_stop_s": 20, "planned_stop_s": 10}
    assert stops(run) == [("08:00:10", "08:00:20", "micro_stop", None),
                          ("08:00:30", "08:00:40", "micro_stop", "jam")]


def test_S10_reason_while_running_is_ignored() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "reason", "17"),
                        r("08:00:20", "state", "6"), r("08:00:30", "state", "1"),
                        r("08:00:59", "state", "1")])
    # The jam reason came while running: the stop 20..29 has no reason.
    assert nonzero(run) == {"running_s": 50, "micro_stop_s": 10}
    assert stops(run) == [("08:00:20", "08:00:30", "micro_stop", None)]
    # Nor does the running line take it (the live status, R5, shows no reason).
    only = start(config)
    apply(only, config, [r("08:00:00", "state", "1"), r("08:00:10", "reason", "17"),
                         r("08:00:59", "state", "1")])
    only.tracker.finish()
    (status,) = only.tracker.drain().statuses
    assert (status.category, status.reason, local(status.since)) == ("running", None,
                                                                     "08:00:00")


def test_S10_reason_value_mapped_to_null_is_ignored() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "state", "6"),
                        r("08:00:15", "reason", "30"),  # changeover: setup from 15
                        r("08:00:20", "reason", "0"),  # null: ignored, setup goes on
                        r("08:00:30", "state", "1"), r("08:00:59", "state", "1")])
    # unplanned 10..14 = 5 (micro); setup 15..29 = 15; running 10 + 30 = 40.
    assert nonzero(run) == {"running_s": 40, "micro_stop_s": 5, "setup_s": 15}
    assert stops(run) == [("08:00:10", "08:00:15", "micro_stop", None)]


def test_S10_unknown_reason_value_is_bad_input() -> None:
    config = base()
    run = start(config)
    apply(run, config, [r("08:00:00", "state", "6")])
    with pytest.raises(BadInput) as err:
        apply(run, config, [r("08:00:10", "reason", "99")])
    assert err.value.kind == "unknown_reason"


def test_S10_bad_quality_reason_and_product_samples_are_ignored() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:10", "state", "6"),
                        r("08:00:15", "reason", "30", "bad"),  # would make it setup
                        r("08:00:20", "product", "102", "bad"),  # would switch to P10
                        r("08:00:30", "state", "1"), r("08:00:40", "total_count", 2),
                        r("08:00:59", "state", "1")])
    # stop 10..29 = 20 s, no reason, no setup; still P30: 2 x 30 = 60.
    assert nonzero(run) == {"running_s": 40, "micro_stop_s": 20}
    assert stops(run) == [("08:00:10", "08:00:30", "micro_stop", None)]
    assert set(records(run)) == {("08:00", "P30")}
    assert run.totals().ideal_s == 60.0


def test_S10_repeated_state_sample_keeps_the_category_a_reason_sample_set() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:10", "state", "6"),
                        r("08:00:20", "reason", "30"),  # setup from 20
                        r("08:00:30", "state", "6"),  # repeated: changes nothing
                        r("08:00:40", "state", "1"), r("08:00:59", "state", "1")])
    # unplanned 10..19 (micro 10); setup 20..39 = 20 (not 10); running 30; one stop only.
    assert nonzero(run) == {"running_s": 30, "micro_stop_s": 10, "setup_s": 20}
    assert stops(run) == [("08:00:10", "08:00:20", "micro_stop", None)]


def test_S10_reason_on_a_setup_state_keeps_setup() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "3"),
                        r("08:00:20", "reason", "40"),  # lunch (planned): only an
                        r("08:00:40", "state", "1"),  # unplanned stop changes category
                        r("08:00:59", "state", "1")])
    # setup 0..39 = 40; running 40..59 = 20; no stop.
    assert nonzero(run) == {"setup_s": 40, "running_s": 20}
    assert run.stops == {}


def test_S10_reason_during_no_data_is_ignored() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "6"), r("08:00:10", "state", "6", "bad"),
                        r("08:00:20", "reason", "30"),  # no_data: no stop to set it on
                        r("08:00:30", "state", "6"),  # a new stop, unplanned, no reason
                        r("08:00:40", "state", "1"), r("08:00:59", "state", "1")])
    # stop 0..9 (10 micro); no_data 10..29 (20); stop 30..39 (10 micro, not setup);
    # running 40..59 (20).
    assert nonzero(run) == {"micro_stop_s": 20, "no_data_s": 20, "running_s": 20}
    assert stops(run) == [("08:00:00", "08:00:10", "micro_stop", None),
                          ("08:00:30", "08:00:40", "micro_stop", None)]


def test_S10_reason_sets_the_reason_of_an_unexplained_stop_on_a_counts_line() -> None:
    config = plant(COUNTS_WITH_REASONS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:05", "total_count", 1),
                        r("08:01:20", "reason", "17"),  # jam, during the S11 stop
                        r("08:01:50", "total_count", 2), r("08:02:00", "total_count", 3)])
    # stop 0..4 (5); running 08:00:05-08:01:05 (60); stop 08:01:05-08:01:50 (45 s micro,
    # reason jam from 08:01:20); running 08:01:50..08:02:00 (11). 5 + 60 + 45 + 11 = 121.
    assert nonzero(run) == {"micro_stop_s": 50, "running_s": 71}
    assert stops(run) == [("08:00:00", "08:00:05", "micro_stop", "unexplained"),
                          ("08:01:05", "08:01:50", "micro_stop", "jam")]


# --- T5/T6 stop events (start, end, category, reason) ---------------------------------


def test_T5_neither_a_reason_change_nor_a_repeated_sample_ends_a_stop() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "2"),  # fault
                        r("08:01:00", "reason", "17"),  # jam
                        r("08:01:30", "state", "2"),  # repeated: keeps jam, one stop
                        r("08:02:10", "state", "1"), r("08:02:59", "state", "1")])
    # One stop 08:00:00-08:02:10 = 130 s >= 120: unplanned, failure in 08:00; running 50.
    assert nonzero(run) == {"unplanned_stop_s": 130, "running_s": 50}
    assert stops(run) == [("08:00:00", "08:02:10", "unplanned_stop", "jam")]
    assert minutes(run)["08:00"].failures == 1
    assert run.totals().failures == 1


def test_T5_stop_of_119_s_is_a_micro_stop_and_of_120_s_a_failure() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:30", "state", "2"),
                        r("08:02:29", "state", "1"), r("08:03:00", "state", "2"),
                        r("08:05:00", "state", "1"), r("08:05:59", "state", "1")])
    # 08:00:30-08:02:29 = 119 s micro; 08:03:00-08:05:00 = 120 s unplanned (failure in 08:03);
    # running 360 - 119 - 120 = 121.
    assert nonzero(run) == {"running_s": 121, "micro_stop_s": 119, "unplanned_stop_s": 120}
    assert stops(run) == [("08:00:30", "08:02:29", "micro_stop", "fault"),
                          ("08:03:00", "08:05:00", "unplanned_stop", "fault")]
    assert not any(event.open for event in run.stops.values())
    per = minutes(run)
    assert nonzero(per["08:02"]) == {"micro_stop_s": 29, "running_s": 31}
    assert [per[m].failures for m in sorted(per)] == [0, 0, 0, 1, 0, 0]


def test_T5_a_break_ends_a_stop_and_each_part_is_judged_alone() -> None:
    config = base()
    run = feed(config, [r("11:59:00", "state", "2"), r("12:31:00", "state", "1"),
                        r("12:31:59", "state", "1")])
    # 11:59-12:00 stop 60 s (micro); break 12:00-12:30 planned 1800 (T3); 12:30-12:31 stop
    # 60 s (micro); running 60. 60 + 1800 + 60 + 60 = 1980 = 33 min. No failure.
    assert nonzero(run) == {"micro_stop_s": 120, "planned_stop_s": 1800, "running_s": 60}
    assert stops(run) == [("11:59:00", "12:00:00", "micro_stop", "fault"),
                          ("12:30:00", "12:31:00", "micro_stop", "fault")]
    assert run.totals().failures == 0


# --- S11: counts lines ------------------------------------------------------------------


def test_S11_no_data_before_first_count_then_unexplained_stop_until_first_increase() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:20", "total_count", 100), r("08:00:50", "total_count", 101),
                        r("08:01:20", "total_count", 102)])
    # no_data 0..19 (20); baseline 100 at :20 -> stop/unexplained 20..49 (30 s micro);
    # running from 08:00:50 to the last sample 08:01:20 inclusive (31). Counts 2.
    assert nonzero(run) == {"no_data_s": 20, "micro_stop_s": 30, "running_s": 31}
    assert stops(run) == [("08:00:20", "08:00:50", "micro_stop", "unexplained")]
    per = minutes(run)
    assert nonzero(per["08:00"]) == {"no_data_s": 20, "micro_stop_s": 30, "running_s": 10}
    assert nonzero(per["08:01"]) == {"running_s": 21}
    assert run.totals().total_count == 2


def test_S11_no_increase_within_stop_after_s_is_an_unexplained_stop() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:10", "total_count", 1),
                        r("08:00:40", "total_count", 2), r("08:03:40", "total_count", 3),
                        r("08:03:50", "total_count", 4)])
    # stop 0..9 (10 s micro); running 08:00:10 to 08:00:40 + 60 = 08:01:40 (90 s);
    # stop 08:01:40-08:03:40 = 120 s (unplanned, failure in 08:01); running 08:03:40..50 (11).
    # 10 + 90 + 120 + 11 = 231 = 08:00:00..08:03:50.
    assert nonzero(run) == {"micro_stop_s": 10, "running_s": 101, "unplanned_stop_s": 120}
    assert stops(run) == [("08:00:00", "08:00:10", "micro_stop", "unexplained"),
                          ("08:01:40", "08:03:40", "unplanned_stop", "unexplained")]
    assert minutes(run)["08:01"].failures == 1
    assert run.totals().total_count == 4


def test_S11_increase_exactly_stop_after_s_later_leaves_no_stop() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:10", "total_count", 1),
                        r("08:01:10", "total_count", 2),  # exactly 60 s later: no stop
                        r("08:02:11", "total_count", 3),  # 61 s later: a 1 s stop at 08:02:10
                        r("08:02:20", "total_count", 4)])
    # stop 0..9 (10); running 08:00:10-08:02:10 (120); stop 08:02:10 (1); running
    # 08:02:11..20 (10). 10 + 120 + 1 + 10 = 141 = 08:00:00..08:02:20.
    assert nonzero(run) == {"micro_stop_s": 11, "running_s": 130}
    assert stops(run) == [("08:00:00", "08:00:10", "micro_stop", "unexplained"),
                          ("08:02:10", "08:02:11", "micro_stop", "unexplained")]


def test_S11_reset_to_zero_is_not_an_increase() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:10", "total_count", 5),
                        r("08:00:30", "total_count", 0),  # reset: delta 0, no increase
                        r("08:01:40", "total_count", 1)])
    # running from 08:00:10 until 08:01:10 (not 08:01:30); stop 08:01:10-08:01:40 = 30 s;
    # stop 0..9 (10). micro 40; running 60 + 1 = 61. Counts 5 + 1 = 6.
    assert nonzero(run) == {"micro_stop_s": 40, "running_s": 61}
    assert stops(run) == [("08:00:00", "08:00:10", "micro_stop", "unexplained"),
                          ("08:01:10", "08:01:40", "micro_stop", "unexplained")]
    assert run.totals().total_count == 6


def test_S11_without_total_count_a_reject_increase_is_an_increase() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "good_count", 0), r("08:00:00", "reject_count", 0),
                        r("08:00:10", "good_count", 1),
                        r("08:01:00", "reject_count", 1),  # total 1 -> 2: runs until 08:02:00
                        r("08:01:50", "good_count", 2)])
    # stop 0..9 (10); running 08:00:10..08:01:50 (101) with no stop (without the reject
    # increase it would stop 08:01:10-08:01:50). total = good 2 + reject 1 = 3.
    assert nonzero(run) == {"micro_stop_s": 10, "running_s": 101}
    assert stops(run) == [("08:00:00", "08:00:10", "micro_stop", "unexplained")]
    assert counts(run.totals()) == (3, 2, 1)


# --- S12: bad count samples on a counts line ---------------------------------------------


def test_S12_bad_count_sample_is_no_data_until_the_next_good_one_whose_delta_counts() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:10", "total_count", 1),
                        r("08:00:30", "total_count", 1, "bad"),
                        r("08:00:50", "total_count", 4),  # +3 counts
                        r("08:01:20", "total_count", 5)])
    # S11 alone: stop 0..9, running 10..80. no_data 30..49 (20) overrides.
    # micro 10; running 20 + 31 = 51; 10 + 51 + 20 = 81 = 08:00:00..08:01:20. Counts 1+3+1.
    assert nonzero(run) == {"micro_stop_s": 10, "running_s": 51, "no_data_s": 20}
    assert run.totals().total_count == 5


def test_S12_bad_sample_of_one_count_role_ends_at_a_good_sample_of_another() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:00", "reject_count", 0),
                        r("08:00:10", "total_count", 1),
                        r("08:00:30", "reject_count", 0, "bad"),  # no_data from 30
                        r("08:00:50", "total_count", 4),  # a good count sample ends it
                        r("08:01:00", "reject_count", 1),
                        r("08:01:20", "total_count", 5)])
    # As above: micro 10, running 51, no_data 20. Counts total 5, reject 1, good 4.
    assert nonzero(run) == {"micro_stop_s": 10, "running_s": 51, "no_data_s": 20}
    assert counts(run.totals()) == (5, 4, 1)


def test_S12_timeline_under_no_data_is_as_if_the_bad_samples_were_absent() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:05", "total_count", 1),
                        r("08:00:30", "total_count", 1, "bad"),
                        r("08:01:30", "total_count", 1),  # ends no_data; no increase
                        r("08:02:00", "total_count", 2)])
    # S11 alone: stop 0..4; running 5..64 (until 08:00:05 + 60); stop 65..119; running 120.
    # no_data 30..89 overrides: micro 5; running 25; no_data 60; the stop left is
    # 08:01:30-08:02:00 = 30 s (micro); running 1. 5 + 25 + 60 + 30 + 1 = 121.
    assert nonzero(run) == {"micro_stop_s": 35, "running_s": 26, "no_data_s": 60}
    assert stops(run) == [("08:00:00", "08:00:05", "micro_stop", "unexplained"),
                          ("08:01:30", "08:02:00", "micro_stop", "unexplained")]


def test_S12_no_data_splits_an_unexplained_stop_into_two_judged_alone() -> None:
    config = plant(COUNTS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:05", "total_count", 1),
                        r("08:02:00", "total_count", 1, "bad"),
                        r("08:02:30", "total_count", 1), r("08:04:30", "total_count", 2)])
    # stop 0..4 (5); running 08:00:05-08:01:05 (60); stop 08:01:05-08:02:00 (55, micro);
    # no_data 30; stop 08:02:30-08:04:30 (120, unplanned, failure in 08:02); running 1.
    # 5 + 60 + 55 + 30 + 120 + 1 = 271 = 08:00:00..08:04:30.
    assert nonzero(run) == {"micro_stop_s": 60, "running_s": 61, "no_data_s": 30,
                            "unplanned_stop_s": 120}
    assert stops(run) == [("08:00:00", "08:00:05", "micro_stop", "unexplained"),
                          ("08:01:05", "08:02:00", "micro_stop", "unexplained"),
                          ("08:02:30", "08:04:30", "unplanned_stop", "unexplained")]
    assert minutes(run)["08:02"].failures == 1
    assert run.totals().failures == 1


def test_S12_reason_during_no_data_applies_to_the_S11_stop_underneath() -> None:
    # S12: the S11 timeline is computed as if the bad samples were absent, so at 08:01:20
    # the line is in its S11 stop and the reason sample sets it (S10); no_data only hides
    # 08:01:10-08:01:30. (docs/time-model.md says a reason is ignored "while the line ...
    # has no data"; that holds for state lines: test_S10_reason_during_no_data_is_ignored.)
    config = plant(COUNTS_WITH_REASONS)
    run = feed(config, [r("08:00:00", "total_count", 0), r("08:00:05", "total_count", 1),
                        r("08:01:10", "total_count", 1, "bad"),  # no_data (S12)
                        r("08:01:20", "reason", "30"),  # changeover: setup from 08:01:20
                        r("08:01:30", "total_count", 1),  # ends no_data; no increase
                        r("08:02:00", "total_count", 2)])
    # S11 alone: stop 0..4; running 5..64; stop 65..79; setup 80..119; running 120.
    # no_data 70..89 overrides: micro 5 + 5 (65..69) = 10; setup 90..119 = 30;
    # running 60 + 1 = 61; no_data 20. 10 + 30 + 61 + 20 = 121.
    assert nonzero(run) == {"micro_stop_s": 10, "setup_s": 30, "running_s": 61,
                            "no_data_s": 20}
    assert stops(run) == [("08:00:00", "08:00:05", "micro_stop", "unexplained"),
                          ("08:01:05", "08:01:10", "micro_stop", "unexplained")]


# --- R1: one record per line, UTC minute and product --------------------------------------


def test_R1_product_switch_inside_a_minute_gives_two_records() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                        r("08:00:10", "total_count", 2), r("08:00:20", "product", "102"),
                        r("08:00:40", "total_count", 5), r("08:00:59", "state", "1")])
    # P30 0..19 (20 s, 2 units x 30 = 60); P10 20..59 (40 s, 3 units x 5 = 15). 20 + 40 = 60.
    minute = t("08:00:00")
    assert set(run.minutes) == {("kt-01", "L1", minute, "P30", "edge"),
                                ("kt-01", "L1", minute, "P10", "edge")}
    recs = records(run)
    p30, p10 = recs[("08:00", "P30")], recs[("08:00", "P10")]
    assert (p30.span_s, p30.running_s, p30.total_count, p30.ideal_s) == (20, 20, 2, 60.0)
    assert (p10.span_s, p10.running_s, p10.total_count, p10.ideal_s) == (40, 40, 3, 15.0)
    assert (p30.shift, p10.shift) == ("A", "A")


def test_R1_records_are_utc_minutes_tagged_with_site_line_and_shift() -> None:
    config = base()
    run = feed(config, [r("15:59:30", "state", "1"), r("16:00:10", "state", "2"),
                        r("16:00:29", "state", "2")])
    # 15:59: no_data 0..29 (coverage starts at the first sample's minute), running 30; shift A.
    # 16:00 (after the shift): running 10 (overtime, T2), a stop is unscheduled (19 + 1 = 20),
    # span 30 up to the last sample; shift tag "off"; no stop event outside the shift.
    recs = records(run)
    assert set(recs) == {("15:59", "P30"), ("16:00", "P30")}
    a, off = recs[("15:59", "P30")], recs[("16:00", "P30")]
    assert (a.ts % 60, a.ts, a.span_s, a.shift) == (0, t("15:59:00"), 60, "A")
    assert nonzero(a) == {"no_data_s": 30, "running_s": 30}
    assert (off.ts, off.span_s, off.shift) == (t("16:00:00"), 30, "off")
    assert nonzero(off) == {"running_s": 10, "unscheduled_s": 20}
    assert {(rec.site, rec.line) for rec in recs.values()} == {("kt-01", "L1")}
    assert run.stops == {}


# --- R2: a minute is written once final -------------------------------------------------


def test_R2_minute_under_an_open_short_stop_waits_until_it_is_a_failure() -> None:
    config = base()
    tr = tracker(config)
    for sample in samples(config, [r("08:00:00", "state", "1"), r("08:01:30", "state", "2")]):
        tr.apply(sample)
    tr.advance_to(t("08:02:10"))
    out = tr.drain()
    # The stop 08:01:30-08:02:10 is 40 s so far: micro or failure is unknown, so 08:01 waits.
    assert sorted(local(rec.ts, "%H:%M") for rec in out.minutes) == ["08:00"]
    assert out.stops == []
    tr.advance_to(t("08:03:40"))
    out = tr.drain()
    # 130 s so far >= 120: a failure whatever comes. 08:01: running 30, unplanned 30,
    # failure 1; 08:02: unplanned 60. 08:03 is not complete yet.
    got = {local(rec.ts, "%H:%M"): rec for rec in out.minutes}
    assert sorted(got) == ["08:01", "08:02"]
    assert nonzero(got["08:01"]) == {"running_s": 30, "unplanned_stop_s": 30}
    assert (got["08:01"].failures, got["08:02"].failures) == (1, 0)
    assert nonzero(got["08:02"]) == {"unplanned_stop_s": 60}
    assert [(local(e.start), e.category, e.reason, e.open) for e in out.stops] == [
        ("08:01:30", "unplanned_stop", "fault", True)]


def test_R2_short_stop_that_ends_is_written_as_a_micro_stop() -> None:
    config = base()
    tr = tracker(config)
    for sample in samples(config, [r("08:00:00", "state", "1"), r("08:01:30", "state", "2")]):
        tr.apply(sample)
    tr.advance_to(t("08:02:10"))
    assert sorted(local(rec.ts, "%H:%M") for rec in tr.drain().minutes) == ["08:00"]
    for sample in samples(config, [r("08:02:20", "state", "1")]):
        tr.apply(sample)
    tr.advance_to(t("08:03:00"))
    out = tr.drain()
    # Stop 08:01:30-08:02:20 = 50 s: micro. 08:01: running 30, micro 30; 08:02: micro 20,
    # running 40.
    got = {local(rec.ts, "%H:%M"): rec for rec in out.minutes}
    assert sorted(got) == ["08:01", "08:02"]
    assert nonzero(got["08:01"]) == {"running_s": 30, "micro_stop_s": 30}
    assert nonzero(got["08:02"]) == {"micro_stop_s": 20, "running_s": 40}
    assert [(local(e.start), local(e.end), e.category, e.open) for e in out.stops] == [
        ("08:01:30", "08:02:20", "micro_stop", False)]


def test_R2_each_minute_is_written_once_and_step_by_step_equals_end_of_input() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"), r("08:00:30", "state", "2"),
            r("08:03:00", "state", "1"),  # 150 s stop ending on a minute boundary
            r("08:03:50", "state", "2"), r("08:04:00", "state", "1"),  # 10 s
            r("08:05:00", "state", "2"), r("08:07:00", "state", "1"),  # 120 s, whole minutes
            r("08:07:59", "state", "1")]
    run = start(config)
    written: dict[tuple, int] = {}
    second = t("08:00:00")
    for sample in samples(config, rows):
        while second < sample.ts // 1000:  # time known up to each second, as the edge does
            second += 1
            run.tracker.advance_to(second)
            for record in run.tracker.out.minutes:
                written[record.key] = written.get(record.key, 0) + 1
            collect(run)
        run.tracker.apply(sample)
    # Before the end of input, minutes 08:00..08:06 are final, each written exactly once.
    assert sorted(local(key[2], "%H:%M") for key in written) == [
        "08:00", "08:01", "08:02", "08:03", "08:04", "08:05", "08:06"]
    assert set(written.values()) == {1}
    finish(run)
    whole = feed(config, rows)
    assert (run.minutes, run.stops) == (whole.minutes, whole.stops)
    # running 30 + 50 + 60 + 60 = 200; stops 150 + 120 = 270 unplanned, 10 micro; 480 s.
    assert nonzero(run) == {"running_s": 200, "micro_stop_s": 10, "unplanned_stop_s": 270}
    assert stops(run) == [("08:00:30", "08:03:00", "unplanned_stop", "fault"),
                          ("08:03:50", "08:04:00", "micro_stop", "fault"),
                          ("08:05:00", "08:07:00", "unplanned_stop", "fault")]
    per = minutes(run)
    assert [per[m].failures for m in sorted(per)] == [1, 0, 0, 0, 0, 1, 0, 0]


# --- R3: end of input, checkpoint, continuing the stream -----------------------------------


def test_R3_finish_writes_up_to_and_including_the_last_sample_second() -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:02:09.500", "state", "2")])
    # 08:00 and 08:01 whole (60 running each); 08:02 spans 0..9 = 10 s: running 9, and the
    # stop started at second 9 is 1 s so far (micro, open).
    per = minutes(run)
    assert [per[m].span_s for m in ("08:00", "08:01", "08:02")] == [60, 60, 10]
    assert nonzero(per["08:02"]) == {"running_s": 9, "micro_stop_s": 1}
    assert stops(run) == [("08:02:09", "08:02:10", "micro_stop", "fault")]
    assert run.stops[t("08:02:09")].open is True


@pytest.mark.parametrize(("last", "length", "category", "failures"), [
    ("08:02:28", 119, "micro_stop", 0),
    ("08:02:29", 120, "unplanned_stop", 1),
])
def test_R3_open_stop_at_end_of_input_is_judged_on_its_length_so_far(
        last: str, length: int, category: str, failures: int) -> None:
    config = base()
    run = feed(config, [r("08:00:00", "state", "1"), r("08:00:30", "state", "2"),
                        r(last, "state", "2")])
    # Stop from 08:00:30 to the last second inclusive: 08:02:28 -> 119 s, 08:02:29 -> 120 s.
    field = "micro_stop_s" if category == "micro_stop" else "unplanned_stop_s"
    assert nonzero(run) == {"running_s": 30, field: length}
    (event,) = run.stops.values()
    assert (local(event.start), event.duration_s, event.category, event.open) == (
        "08:00:30", length, category, True)
    assert minutes(run)["08:00"].failures == failures


SCENARIO: list[Row] = [
    r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
    r("08:00:00", "energy_kwh", 5.0),
    r("08:00:20", "total_count", 3),
    r("08:00:40", "state", "2"),
    r("08:01:10", "reason", "17"), r("08:01:10", "state", "2"),
    r("08:01:30.500", "state", "1"), r("08:01:30.500", "total_count", 4),
    r("08:01:59", "product", "102"),
    r("08:02:00", "total_count", 9), r("08:02:00", "energy_kwh", 5.5),
    r("08:02:30", "state", "6"), r("08:02:45", "reason", "30"),
    r("08:03:00", "state", "1"), r("08:03:10", "state", "2"),
    r("08:05:20", "state", "1"), r("08:05:30", "total_count", 12),
    r("08:05:40", "state", "1", "bad"), r("08:05:50", "state", "1"),
    r("08:05:59", "state", "1"),
]


@pytest.mark.parametrize("split", range(1, len(SCENARIO)))
def test_R3_replaying_in_two_parts_equals_replaying_at_once(split: int) -> None:
    config = base()
    whole = feed(config, SCENARIO)
    _, both = fed_in_two_parts(config, SCENARIO, split)
    assert both.minutes == whole.minutes
    assert both.stops == whole.stops
    # By hand: running 0..39 (40); stop 08:00:40-08:01:30 = 50 s micro/jam; running
    # 08:01:30-08:02:30 (60); stop 08:02:30-08:02:45 = 15 s micro; setup 08:02:45-08:03:00
    # (15); running 10; stop 08:03:10-08:05:20 = 130 s unplanned/fault; running 20;
    # no_data 08:05:40-08:05:50 (10); running 10.
    # running 40 + 60 + 10 + 20 + 10 = 140; micro 50 + 15 = 65; 140 + 65 + 15 + 130 + 10 = 360.
    assert nonzero(both) == {"running_s": 140, "micro_stop_s": 65, "setup_s": 15,
                             "unplanned_stop_s": 130, "no_data_s": 10}
    assert stops(both) == [("08:00:40", "08:01:30", "micro_stop", "jam"),
                           ("08:02:30", "08:02:45", "micro_stop", None),
                           ("08:03:10", "08:05:20", "unplanned_stop", "fault")]
    # Counts: P30 3 + 1 = 4 (x 30 = 120); P10 5 + 3 = 8 (x 5 = 40). Energy 0.5.
    totals = both.totals()
    assert (totals.total_count, totals.ideal_s, totals.energy_kwh, totals.failures) == (
        12, 160.0, 0.5, 1)


COUNTS_SCENARIO: list[Row] = [
    r("08:00:00", "total_count", 0), r("08:00:10", "total_count", 1),
    r("08:00:40", "total_count", 2), r("08:01:00", "total_count", 2, "bad"),
    r("08:01:20", "total_count", 3), r("08:03:40", "total_count", 4),
    r("08:03:50", "total_count", 5),
]


@pytest.mark.parametrize("split", range(1, len(COUNTS_SCENARIO)))
def test_R3_counts_line_in_two_parts_equals_at_once(split: int) -> None:
    config = plant(COUNTS)
    whole = feed(config, COUNTS_SCENARIO)
    _, both = fed_in_two_parts(config, COUNTS_SCENARIO, split)
    assert both.minutes == whole.minutes
    assert both.stops == whole.stops
    # S11: stop 0..9; running from 10 until 08:01:20 + 60 = 08:02:20; stop 08:02:20-08:03:40
    # (80 s micro); running 08:03:40..50 (11). no_data 08:01:00-08:01:20 (20) overrides.
    # micro 10 + 80 = 90; running 50 + 60 + 11 = 121; 90 + 121 + 20 = 231.
    assert nonzero(both) == {"micro_stop_s": 90, "running_s": 121, "no_data_s": 20}
    assert stops(both) == [("08:00:00", "08:00:10", "micro_stop", "unexplained"),
                           ("08:02:20", "08:03:40", "micro_stop", "unexplained")]


@pytest.mark.parametrize("split", range(1, len(SCENARIO)))
def test_R3_checkpoint_taken_without_finish_resumes_exactly(split: int) -> None:
    # The edge checkpoints with every batch (DESIGN §8), not only at the end of input.
    config = base()
    first = start(config)
    apply(first, config, SCENARIO[:split])
    collect(first)
    saved = json.loads(json.dumps(first.tracker.checkpoint()))
    both = Run(tracker(config, checkpoint=saved), dict(first.minutes), dict(first.stops))
    apply(both, config, SCENARIO[split:])
    finish(both)
    whole = feed(config, SCENARIO)
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)


def test_R3_split_between_samples_of_one_second_deletes_a_stop_that_never_was() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"),
            r("08:00:10", "state", "2"),  # split here: a 1 s stop at the end of input
            r("08:00:10", "state", "1"),  # same timestamp, arrives last: no stop (S1)
            r("08:00:59", "state", "1")]
    first, both = fed_in_two_parts(config, rows, 2)
    assert stops(first) == [("08:00:10", "08:00:11", "micro_stop", "fault")]
    # Continued: second 10 is running; the provisional stop event is deleted. running 60.
    assert both.stops == {}
    assert nonzero(both) == {"running_s": 60}
    whole = feed(config, rows)
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)


def test_R3_split_inside_an_open_short_stop_that_later_becomes_a_failure() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"), r("08:00:30", "state", "2"),
            r("08:01:00", "state", "2"),  # split here: the stop is 31 s so far
            r("08:03:00", "state", "1"), r("08:03:59", "state", "1")]
    first, both = fed_in_two_parts(config, rows, 3)
    # After the first part: provisional micro stop 08:00:30-08:01:01 (31 s), no failure.
    assert stops(first) == [("08:00:30", "08:01:01", "micro_stop", "fault")]
    assert minutes(first)["08:00"].failures == 0
    assert nonzero(minutes(first)["08:00"]) == {"running_s": 30, "micro_stop_s": 30}
    # Continued: the stop is 08:00:30-08:03:00 = 150 s: unplanned, failure in 08:00.
    # running 30 + 60 = 90; unplanned 150; 240 = 08:00:00..08:03:59.
    assert stops(both) == [("08:00:30", "08:03:00", "unplanned_stop", "fault")]
    assert minutes(both)["08:00"].failures == 1
    assert nonzero(minutes(both)["08:00"]) == {"running_s": 30, "unplanned_stop_s": 30}
    assert nonzero(both) == {"running_s": 90, "unplanned_stop_s": 150}
    whole = feed(config, rows)
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)


def test_R3_split_after_a_product_switch_tombstones_the_new_product_record() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"),
            r("08:00:40", "product", "102"),  # split here: P10 holds second 40 so far
            r("08:00:40.500", "product", "101"),  # same second, back to P30
            r("08:00:59", "state", "1")]
    first, both = fed_in_two_parts(config, rows, 2)
    # First part: P30 0..39 (40 s), P10 second 40 (1 s).
    recs = records(first)
    assert (recs[("08:00", "P30")].span_s, recs[("08:00", "P10")].span_s) == (40, 1)
    # Continued: P30 held every second; the P10 record no longer exists (tombstoned).
    assert set(records(both)) == {("08:00", "P30")}
    assert records(both)[("08:00", "P30")].span_s == 60
    whole = feed(config, rows)
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)


def test_R3_split_at_a_minute_start_tombstones_the_old_product_record() -> None:
    config = base()
    rows = [r("08:00:00", "state", "1"),
            r("08:01:00", "state", "1"),  # split here: (08:01, P30) spans 1 s so far
            r("08:01:00.500", "product", "102"),  # P10 from second 08:01:00 on
            r("08:01:59", "state", "1")]
    first, both = fed_in_two_parts(config, rows, 2)
    assert records(first)[("08:01", "P30")].span_s == 1
    # Continued: minute 08:01 is all P10 (60 s); (08:01, P30) no longer exists.
    recs = records(both)
    assert set(recs) == {("08:00", "P30"), ("08:01", "P10")}
    assert (recs[("08:00", "P30")].span_s, recs[("08:01", "P10")].span_s) == (60, 60)
    whole = feed(config, rows)
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)


def test_R3_samples_older_than_the_checkpoint_are_skipped_and_identical_ones_too() -> None:
    config = base()
    first = start(config)
    apply(first, config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                          r("08:00:30", "total_count", 5)])
    finish(first)
    saved = json.loads(json.dumps(first.tracker.checkpoint()))
    both = Run(tracker(config, checkpoint=saved), dict(first.minutes), dict(first.stops))
    skipped = apply(both, config, [
        r("08:00:20", "total_count", 3),  # older than the checkpoint
        r("08:00:30", "total_count", 5),  # identical to the last one applied
        r("08:00:30", "state", "2"),  # same timestamp but a new sample: applied
        r("08:00:50", "state", "1"),
    ])
    assert skipped == ["older", "duplicate", None, None]
    finish(both)
    # Counts 5 (not 5 + anything from the skipped ones); stop 30..49 = 20 s micro; running
    # 0..29 + 50 = 31; span 51 = 08:00:00..08:00:50.
    assert counts(both.totals()) == (5, 5, 0)
    assert nonzero(both) == {"running_s": 31, "micro_stop_s": 20}
    whole = feed(config, [r("08:00:00", "state", "1"), r("08:00:00", "total_count", 0),
                          r("08:00:30", "total_count", 5), r("08:00:30", "state", "2"),
                          r("08:00:50", "state", "1")])
    assert (both.minutes, both.stops) == (whole.minutes, whole.stops)
