"""`linewatch kpi`: windows, buckets and KPIs read from a store (DESIGN §4, §9, T10).

Windows are half-open ``[from, to)`` on whole minutes. Hour and day buckets follow local
time in ``site.timezone``; shift buckets are the calendar's shift instances and the
off-shift gaps between them. Buckets are clipped to the window and tile it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from linewatch.config import PlantConfig
from linewatch.kpi import CalendarFill, compute_kpis, fill_uncovered
from linewatch.shift_calendar import ShiftCalendar
from linewatch.storage.base import Store

By = Literal["hour", "shift", "day"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class WindowError(ValueError):
    """A --from/--to that is not a usable window (usage error, exit code 2)."""


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int
    end: int
    shift: str | None = None
    date: dt.date | None = None


def parse_time(text: str, zone: ZoneInfo, name: str = "time") -> int:
    """ISO 8601 with offset, without offset (site time), or a date (local midnight)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            moment = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        else:
            moment = dt.datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError as err:
        raise WindowError(f"{name} {text!r}: expected ISO 8601 such as 2026-03-02, "
                          "2026-03-02T08:00 or 2026-03-02T08:00+08:00") from err
    seconds = (moment - _EPOCH).total_seconds()
    if seconds % 60 != 0:
        raise WindowError(f"{name} {text!r}: expected a whole minute (KPI windows are whole "
                          "minutes)")
    return int(seconds)


def iso(ts: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, zone).isoformat()


def buckets(start: int, end: int, by: By | None, zone: ZoneInfo,
            calendar: ShiftCalendar) -> list[Bucket]:
    """Buckets that tile ``[start, end)``."""
    if end <= start:
        raise WindowError("expected --to after --from")
    if by is None:
        return [Bucket(start, end)]
    if by == "shift":
        return _shift_buckets(start, end, calendar)
    edges = _local_edges(start, end, by, zone)
    points = [start, *[e for e in edges if start < e < end], end]
    return [Bucket(a, b) for a, b in itertools.pairwise(points)]


def _local_edges(start: int, end: int, by: By, zone: ZoneInfo) -> list[int]:
    """UTC instants where a local hour or local day begins, between start and end."""
    edges: list[int] = []
    if by == "day":
        day = dt.datetime.fromtimestamp(start, zone).date()
        while True:
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
            ts = int((midnight - _EPOCH).total_seconds())
            if ts >= end:
                break
            edges.append(ts)
            day += dt.timedelta(days=1)
        return edges
    # Every zone offset is a multiple of 15 minutes, so each local hour starts on a UTC
    # quarter hour; checking those handles half-hour zones and DST alike.
    ts = start - start % 900
    while ts < end:
        local = dt.datetime.fromtimestamp(ts, zone)
        if local.minute == 0 and local.second == 0:
            edges.append(ts)
        ts += 900
    return edges


def _shift_buckets(start: int, end: int, calendar: ShiftCalendar) -> list[Bucket]:
    out: list[Bucket] = []
    cursor = start
    for inst in calendar.instances(start, end):
        a, b = max(inst.start, start), min(inst.end, end)
        if a >= b:
            continue
        if a > cursor:
            out.append(Bucket(cursor, a))
        out.append(Bucket(a, b, inst.shift_id, inst.date))
        cursor = b
    if cursor < end:
        out.append(Bucket(cursor, end))
    return out


def kpi_rows(config: PlantConfig, store: Store, line: str, start: int, end: int,
             by: By | None) -> list[dict[str, Any]]:
    """One dict per bucket with the keys of §4 and §9, ratios None where undefined."""
    zone = config.site.zone()
    calendar = ShiftCalendar(config.calendar, zone)
    bucket_list = buckets(start, end, by, zone, calendar)
    sums = store.minute_totals(config.site.id, line, [(b.start, b.end) for b in bucket_list])
    rows: list[dict[str, Any]] = []
    for bucket, totals in zip(bucket_list, sums, strict=True):
        shift_s, break_s, off_s = calendar.kind_seconds(bucket.start, bucket.end)
        fill = CalendarFill(shift_s, break_s, off_s)
        filled = fill_uncovered(totals, fill)
        row: dict[str, Any] = {"line": line, "from": iso(bucket.start, zone),
                               "to": iso(bucket.end, zone)}
        if by == "shift":
            row["shift"] = bucket.shift
            row["date"] = bucket.date.isoformat() if bucket.date else None
        row.update(compute_kpis(filled, fill.calendar_s, config.policy.setup_is_planned))
        rows.append(row)
    return rows
