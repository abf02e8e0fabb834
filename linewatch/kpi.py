"""KPI math of DESIGN §4: every KPI recomputed from summed seconds and counts, never averaged.

Pure functions over `Totals`. Any ratio with a zero denominator is None, except OEE and
TEEP, which are 0 when nothing was made (and OEE None when nothing was planned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linewatch.rollup import CATEGORY_FIELDS, Totals

KPI_KEYS = (
    "calendar_s", "planned_s", "run_s", "ideal_s", "availability", "performance", "quality",
    "oee", "teep", "failures", "mtbf_s", "mttr_s", "throughput_per_h", "scrap_ratio",
    "energy_per_unit_kwh", "completeness",
)


@dataclass(frozen=True, slots=True)
class CalendarFill:
    """Seconds of a bucket by calendar kind (T10): inside shifts, inside breaks, outside."""

    shift_s: int
    break_s: int
    off_s: int

    @property
    def calendar_s(self) -> int:
        return self.shift_s + self.break_s + self.off_s

    @property
    def scheduled_s(self) -> int:
        return self.shift_s + self.break_s  # T8


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def fill_uncovered(totals: Totals, fill: CalendarFill) -> Totals:
    """Add the time with no rollup record at all by the calendar (T10).

    Records carry how much of their span lay in shifts and breaks, so the uncovered part
    of each calendar kind is the bucket's calendar seconds minus the covered seconds.
    """
    out = Totals()
    out.add(totals)
    uncovered = max(0, fill.calendar_s - totals.span_s)
    covered_shift = totals.scheduled_s - totals.break_s
    no_data = min(uncovered, max(0, fill.shift_s - covered_shift))
    planned = min(uncovered - no_data, max(0, fill.break_s - totals.break_s))
    out.no_data_s += no_data
    out.planned_stop_s += planned
    out.unscheduled_s += uncovered - no_data - planned
    out.span_s += uncovered
    out.scheduled_s = fill.scheduled_s
    out.break_s = fill.break_s
    return out


def compute_kpis(totals: Totals, calendar_s: int, setup_is_planned: bool) -> dict[str, Any]:
    """The KPIs of §4 plus category seconds and count sums, for one span."""
    t = totals
    planned_s = t.running_s + t.micro_stop_s + t.unplanned_stop_s
    if not setup_is_planned:
        planned_s += t.setup_s  # T9
    run_s = t.running_s + t.micro_stop_s
    made = t.total_count > 0
    quality = ratio(t.good_count, t.total_count)
    if planned_s == 0:
        oee = None
    else:
        oee = t.ideal_s * t.good_count / t.total_count / planned_s if made else 0.0
    teep: float | None
    if calendar_s == 0:
        teep = None
    else:
        teep = t.ideal_s * t.good_count / t.total_count / calendar_s if made else 0.0
    energy_per_unit = (None if t.energy_kwh is None or t.good_count == 0
                       else t.energy_kwh / t.good_count)
    performance = ratio(t.ideal_s, run_s)
    result: dict[str, Any] = {
        "calendar_s": calendar_s,
        "planned_s": planned_s,
        "run_s": run_s,
        "ideal_s": t.ideal_s,
        "availability": ratio(run_s, planned_s),
        "performance": performance,
        "quality": quality,
        "oee": oee,
        "teep": teep,
        "failures": t.failures,
        "mtbf_s": ratio(run_s, t.failures),
        "mttr_s": ratio(t.unplanned_stop_s, t.failures),
        "throughput_per_h": ratio(t.good_count * 3600, planned_s),
        "scrap_ratio": ratio(t.reject_count, t.total_count),
        "energy_per_unit_kwh": energy_per_unit,
        "completeness": ratio(t.scheduled_s - t.no_data_s, t.scheduled_s),
    }
    for name in CATEGORY_FIELDS:
        result[name] = getattr(t, name)
    result["scheduled_s"] = t.scheduled_s
    result["total_count"] = t.total_count
    result["good_count"] = t.good_count
    result["reject_count"] = t.reject_count
    result["energy_kwh"] = t.energy_kwh
    # §4: performance above 1 is flagged, not clipped: the configured ideal cycle is too slow.
    result["performance_above_1"] = performance is not None and performance > 1
    return result
