"""The KPI math of DESIGN §4 on hand-built `Totals`: one golden test per formula, the null
and zero rules, the performance > 1 flag, "never average ratios", and the T10 fill.

The golden span (GOLDEN) is 30000 s of calendar:
  running 17000, micro_stop 1000, setup 2000, unplanned_stop 4000,
  planned_stop 1800, no_data 4200, unscheduled 0        (sum 30000 = calendar_s)
  scheduled_s 30000 (break_s 1800), 480 units counted with ideal 30 s each -> ideal_s 14400,
  good 456, reject 24, failures 4, energy 114 kWh.
So planned_s = 17000 + 1000 + 2000 + 4000 = 24000 and run_s = 17000 + 1000 = 18000.
"""

from __future__ import annotations

import pytest

from linewatch.kpi import KPI_KEYS, CalendarFill, compute_kpis, fill_uncovered
from linewatch.rollup import Totals

CALENDAR_S = 30000


def golden() -> Totals:
    return Totals(span_s=30000, running_s=17000, micro_stop_s=1000, setup_s=2000,
                  unplanned_stop_s=4000, planned_stop_s=1800, no_data_s=4200,
                  unscheduled_s=0, scheduled_s=30000, break_s=1800, ideal_s=14400.0,
                  total_count=480, good_count=456, reject_count=24, energy_kwh=114.0,
                  failures=4)


def k(totals: Totals | None = None, calendar_s: int = CALENDAR_S,
      setup_is_planned: bool = False) -> dict:
    return compute_kpis(golden() if totals is None else totals, calendar_s, setup_is_planned)


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=0)


# --- one golden test per formula --------------------------------------------------------------


def test_planned_s_run_s_and_calendar_s() -> None:
    kpis = k()
    # planned = running + micro + setup + unplanned = 17000 + 1000 + 2000 + 4000 = 24000
    # run = running + micro = 17000 + 1000 = 18000
    assert (kpis["calendar_s"], kpis["planned_s"], kpis["run_s"]) == (30000, 24000, 18000)
    assert kpis["ideal_s"] == 14400.0


def test_T9_setup_is_planned_removes_setup_from_planned_s_only() -> None:
    kpis = k(setup_is_planned=True)
    # planned = 24000 - setup 2000 = 22000; setup_s is still reported; run unchanged 18000.
    assert kpis["planned_s"] == 22000
    assert kpis["setup_s"] == 2000
    assert kpis["run_s"] == 18000
    # availability 18000 / 22000 = 9/11; oee = 14400 * 0.95 / 22000 = 13680 / 22000
    assert kpis["availability"] == approx(18000 / 22000)
    assert kpis["oee"] == approx(13680 / 22000)


def test_availability_is_run_s_over_planned_s() -> None:
    # 18000 / 24000 = 0.75
    assert k()["availability"] == 0.75


def test_performance_is_ideal_s_over_run_s() -> None:
    # 14400 / 18000 = 0.8
    assert k()["performance"] == approx(0.8)
    assert k()["performance_above_1"] is False


def test_quality_is_good_over_total() -> None:
    # 456 / 480 = 0.95
    assert k()["quality"] == approx(0.95)


def test_oee_is_ideal_times_quality_over_planned_and_equals_a_p_q() -> None:
    kpis = k()
    # oee = 14400 * (456 / 480) / 24000 = 13680 / 24000 = 0.57
    # A * P * Q = 0.75 * 0.8 * 0.95 = 0.57
    assert kpis["oee"] == approx(0.57)
    assert kpis["oee"] == approx(kpis["availability"] * kpis["performance"] * kpis["quality"])


def test_teep_is_ideal_times_quality_over_calendar_s() -> None:
    # 13680 / 30000 = 0.456
    assert k()["teep"] == approx(0.456)


def test_mtbf_and_mttr_per_failure() -> None:
    kpis = k()
    # mtbf = run 18000 / 4 = 4500; mttr = unplanned 4000 / 4 = 1000
    assert kpis["failures"] == 4
    assert kpis["mtbf_s"] == 4500.0
    assert kpis["mttr_s"] == 1000.0


def test_throughput_per_h_is_good_per_planned_hour() -> None:
    # 456 * 3600 / 24000 = 1641600 / 24000 = 68.4
    assert k()["throughput_per_h"] == approx(68.4)


def test_scrap_ratio_is_reject_over_total() -> None:
    # 24 / 480 = 0.05
    assert k()["scrap_ratio"] == approx(0.05)


def test_energy_per_unit_is_energy_over_good() -> None:
    # 114 / 456 = 0.25
    assert k()["energy_per_unit_kwh"] == 0.25
    assert k()["energy_kwh"] == 114.0


def test_completeness_is_scheduled_minus_no_data_over_scheduled() -> None:
    # (30000 - 4200) / 30000 = 25800 / 30000 = 0.86
    assert k()["completeness"] == approx(0.86)


def test_result_carries_categories_scheduled_s_and_count_sums() -> None:
    kpis = k()
    assert {key: kpis[key] for key in (
        "running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
        "no_data_s", "unscheduled_s", "scheduled_s", "total_count", "good_count",
        "reject_count")} == {
        "running_s": 17000, "micro_stop_s": 1000, "setup_s": 2000,
        "unplanned_stop_s": 4000, "planned_stop_s": 1800, "no_data_s": 4200,
        "unscheduled_s": 0, "scheduled_s": 30000, "total_count": 480, "good_count": 456,
        "reject_count": 24}
    assert set(KPI_KEYS) <= set(kpis)


# --- zero denominators, nothing made, flag ----------------------------------------------------


def test_zero_denominators_give_none() -> None:
    # An hour off shift with nothing recorded: 3600 s unscheduled and nothing else.
    kpis = k(Totals(span_s=3600, unscheduled_s=3600), calendar_s=3600)
    # planned 0, run 0, total 0, failures 0, scheduled 0, good 0, no energy.
    for key in ("availability", "performance", "quality", "oee", "mtbf_s", "mttr_s",
                "throughput_per_h", "scrap_ratio", "energy_per_unit_kwh", "completeness"):
        assert kpis[key] is None, key
    # teep: calendar_s 3600 > 0 and nothing was made: 0, not None.
    assert kpis["teep"] == 0.0
    assert kpis["energy_kwh"] is None
    assert kpis["performance_above_1"] is False


def test_oee_and_teep_are_0_when_nothing_was_made() -> None:
    # 3600 s planned, all an unplanned stop, no unit counted.
    kpis = k(Totals(span_s=3600, unplanned_stop_s=3600, scheduled_s=3600, failures=1),
             calendar_s=3600)
    # planned 3600, run 0: availability 0 / 3600 = 0.0; performance 0 / 0 = None;
    # quality 0 / 0 = None; oee and teep 0 (nothing made); throughput 0 * 3600 / 3600 = 0.
    assert kpis["oee"] == 0.0
    assert kpis["teep"] == 0.0
    assert kpis["availability"] == 0.0
    assert kpis["performance"] is None
    assert kpis["quality"] is None
    assert kpis["throughput_per_h"] == 0.0
    assert (kpis["mtbf_s"], kpis["mttr_s"]) == (0.0, 3600.0)


def test_oee_is_none_when_planned_s_is_0_even_with_units() -> None:
    # A break (planned_stop 1800) in which 10 units were still counted (ideal 300 s).
    kpis = k(Totals(span_s=1800, planned_stop_s=1800, scheduled_s=1800, break_s=1800,
                    ideal_s=300.0, total_count=10, good_count=10), calendar_s=1800)
    # planned 0: oee None, availability None, throughput None;
    # teep = 300 * (10 / 10) / 1800 = 1/6.
    assert kpis["oee"] is None
    assert kpis["availability"] is None
    assert kpis["throughput_per_h"] is None
    assert kpis["teep"] == approx(300 / 1800)


def test_energy_per_unit_is_none_without_good_units_or_without_energy() -> None:
    made_nothing_good = golden()
    made_nothing_good.good_count, made_nothing_good.reject_count = 0, 480
    # 114 kWh / 0 good: None (not infinity, not 0).
    assert k(made_nothing_good)["energy_per_unit_kwh"] is None
    no_meter = golden()
    no_meter.energy_kwh = None
    # No good energy sample (S8): energy null, so energy per unit null.
    assert k(no_meter)["energy_per_unit_kwh"] is None
    assert k(no_meter)["energy_kwh"] is None


def test_performance_above_1_is_not_clipped_and_is_flagged() -> None:
    fast = golden()
    fast.ideal_s = 21600.0  # 720 units x 30 s in run_s 18000
    fast.total_count, fast.good_count, fast.reject_count = 720, 720, 0
    kpis = k(fast)
    # performance 21600 / 18000 = 1.2 (kept); oee = 21600 * 1.0 / 24000 = 0.9
    assert kpis["performance"] == approx(1.2)
    assert kpis["performance_above_1"] is True
    assert kpis["oee"] == approx(0.9)


def test_never_average_ratios_quality_and_performance_from_summed_totals() -> None:
    # Bucket 1: 3600 s running, 100 units x 30 s = ideal 3000, all good.
    first = Totals(span_s=3600, running_s=3600, scheduled_s=3600, ideal_s=3000.0,
                   total_count=100, good_count=100)
    # Bucket 2: 600 s running + 3000 s stopped, 10 units x 30 s = ideal 300, 8 good.
    second = Totals(span_s=3600, running_s=600, unplanned_stop_s=3000, scheduled_s=3600,
                    ideal_s=300.0, total_count=10, good_count=8, reject_count=2, failures=1)
    a, b = k(first, 3600), k(second, 3600)
    both = Totals()
    both.add(first)
    both.add(second)
    whole = k(both, 7200)
    assert whole == compute_kpis(both, 7200, False)
    # quality: summed 108 / 110 = 0.98181...; averaged (100/100 + 8/10) / 2 = 0.9.
    assert whole["quality"] == approx(108 / 110)
    assert (a["quality"] + b["quality"]) / 2 == approx(0.9)
    # performance: summed 3300 / 4200 = 0.785714...;
    # averaged (3000/3600 + 300/600) / 2 = (0.8333... + 0.5) / 2 = 0.6666...
    assert whole["performance"] == approx(3300 / 4200)
    assert (a["performance"] + b["performance"]) / 2 == approx(2 / 3)
    # availability: summed 4200 / 7200 = 0.58333...; averaged (1.0 + 600/3600) / 2 = 0.58333
    # (equal planned_s makes this one agree); mtbf: 4200 run / 1 failure = 4200.
    assert whole["availability"] == approx(4200 / 7200)
    assert whole["mtbf_s"] == 4200.0


def test_never_average_ratios_oee_of_two_unequal_buckets() -> None:
    # Bucket 1 (1 h): planned 3600 all running, 120 units x 30 s = 3600 ideal, all good:
    #   oee = 3600 / 3600 = 1.0.
    # Bucket 2 (3 h): planned 10800, running 5400, 90 units x 30 s = 2700 ideal, all good:
    #   oee = 2700 / 10800 = 0.25.
    # Averaged: (1.0 + 0.25) / 2 = 0.625. Summed: (3600 + 2700) / (3600 + 10800)
    #   = 6300 / 14400 = 0.4375.
    first = Totals(span_s=3600, running_s=3600, scheduled_s=3600, ideal_s=3600.0,
                   total_count=120, good_count=120)
    second = Totals(span_s=10800, running_s=5400, unplanned_stop_s=5400, scheduled_s=10800,
                    ideal_s=2700.0, total_count=90, good_count=90, failures=2)
    both = Totals()
    both.add(first)
    both.add(second)
    whole = k(both, 14400)
    average = (k(first, 3600)["oee"] + k(second, 10800)["oee"]) / 2
    assert average == approx(0.625)
    assert whole["oee"] == approx(0.4375)
    assert whole["oee"] != approx(average)
    assert whole == compute_kpis(both, 14400, False)


# --- T10: fill_uncovered ----------------------------------------------------------------------


def test_T10_fill_with_no_record_counts_everything_by_the_calendar() -> None:
    # Bucket: 3000 s of shift (outside breaks), 1800 s of break, 1200 s off = 6000 s.
    filled = fill_uncovered(Totals(), CalendarFill(shift_s=3000, break_s=1800, off_s=1200))
    # no_data 3000, planned_stop 1800, unscheduled 1200; scheduled = 3000 + 1800 = 4800.
    assert (filled.no_data_s, filled.planned_stop_s, filled.unscheduled_s) == (3000, 1800, 1200)
    assert (filled.span_s, filled.scheduled_s, filled.break_s) == (6000, 4800, 1800)
    assert filled.running_s == filled.setup_s == filled.unplanned_stop_s == 0
    assert filled.energy_kwh is None


def test_T10_fill_adds_only_the_uncovered_part_of_each_calendar_kind() -> None:
    # Records cover 2400 s: 1500 s of shift (running 1000 + unplanned 500), 600 s of break
    # (running through it) and 300 s off (overtime running). scheduled 2100, break 600.
    covered = Totals(span_s=2400, running_s=1900, unplanned_stop_s=500, scheduled_s=2100,
                     break_s=600, ideal_s=900.0, total_count=30, good_count=29,
                     reject_count=1, energy_kwh=2.5, failures=1)
    filled = fill_uncovered(covered, CalendarFill(shift_s=3000, break_s=1800, off_s=1200))
    # uncovered = 6000 - 2400 = 3600:
    #   no_data = 3000 - 1500 = 1500; planned_stop = 1800 - 600 = 1200;
    #   unscheduled = 3600 - 1500 - 1200 = 900 (= 1200 off - 300 covered).
    assert filled.as_dict() == {
        "span_s": 6000, "running_s": 1900, "micro_stop_s": 0, "setup_s": 0,
        "unplanned_stop_s": 500, "planned_stop_s": 1200, "no_data_s": 1500,
        "unscheduled_s": 900, "scheduled_s": 4800, "break_s": 1800, "ideal_s": 900.0,
        "total_count": 30, "good_count": 29, "reject_count": 1, "energy_kwh": 2.5,
        "failures": 1}
    # The input is not changed.
    assert (covered.span_s, covered.no_data_s, covered.scheduled_s) == (2400, 0, 2100)
    # The seven categories partition the 6000 calendar seconds:
    # 1900 + 500 + 1200 + 1500 + 900 = 6000.
    assert sum(filled.as_dict()[f] for f in (
        "running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
        "no_data_s", "unscheduled_s")) == 6000


def test_T10_fill_of_a_fully_covered_bucket_adds_nothing() -> None:
    # 60 s in a shift, all covered by records: 50 running + 10 no_data (S5).
    covered = Totals(span_s=60, running_s=50, no_data_s=10, scheduled_s=60)
    filled = fill_uncovered(covered, CalendarFill(shift_s=60, break_s=0, off_s=0))
    assert filled.as_dict() == covered.as_dict()
    kpis = compute_kpis(filled, 60, False)
    # completeness (60 - 10) / 60 = 5/6
    assert kpis["completeness"] == approx(50 / 60)


def test_T10_filled_no_data_lowers_completeness_and_is_not_planned() -> None:
    # One hour of shift, recorded only for its first 900 s (running).
    covered = Totals(span_s=900, running_s=900, scheduled_s=900, ideal_s=600.0,
                     total_count=20, good_count=20)
    filled = fill_uncovered(covered, CalendarFill(shift_s=3600, break_s=0, off_s=0))
    kpis = compute_kpis(filled, 3600, False)
    # no_data 3600 - 900 = 2700; completeness (3600 - 2700) / 3600 = 0.25;
    # planned = running 900 only; availability 900 / 900 = 1.0; oee = 600 / 900 = 2/3.
    assert filled.no_data_s == 2700
    assert kpis["completeness"] == 0.25
    assert kpis["planned_s"] == 900
    assert kpis["availability"] == 1.0
    assert kpis["oee"] == approx(600 / 900)
