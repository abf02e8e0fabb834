"""The shift calendar as UTC time (DESIGN T7, T8): which seconds are shift, break or off.

Shifts, breaks and holidays are wall-clock rules in the site's zone, matched on the local date
a shift instance starts. `ShiftCalendar` turns them into UTC epoch-second spans. Queries are
answered from cached tilings of fixed UTC chunks with `bisect`, because the state tracker asks
for every minute of a year.

Wall times that do not exist (the hour skipped when clocks go forward) map to the instant of
the jump, so the wall-to-UTC mapping stays monotonic and shifts that do not overlap on the wall
clock never overlap in UTC. Wall times that occur twice map to the first occurrence (fold=0).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from linewatch.config import DAYS, Calendar

SHIFT = "shift"
BREAK = "break"
OFF = "off"

_DAY_MIN = 24 * 60
# A week of UTC seconds: a one-minute query almost always falls in a single cached chunk, and a
# year of KPI buckets touches only ~53 chunks.
_CHUNK_S = 7 * 86400
# Bounds on the caches of a long-running edge process; a decade of chunks fits well within.
_MAX_CHUNKS = 2048
_MAX_DATES = 16384
_ONE_DAY = dt.timedelta(days=1)

# (start, end, kind, shift_id, shift_date) of one piece of a tiling.
_Seg = tuple[int, int, str, str | None, dt.date | None]


@dataclass(frozen=True, slots=True)
class CalendarSpan:
    """A maximal stretch [start, end) of UTC seconds with one calendar kind."""

    start: int
    end: int
    kind: str
    shift_id: str | None
    shift_date: dt.date | None


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One shift on one local start date, [start, end) in UTC epoch seconds."""

    shift_id: str
    date: dt.date
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A tiling of the UTC seconds [k * _CHUNK_S, (k + 1) * _CHUNK_S) with running sums."""

    starts: list[int]
    segs: list[_Seg]
    # cum[kind][i]: seconds of that kind in segs[:i]; kind 0 shift, 1 break, 2 off.
    cum: tuple[list[int], list[int], list[int]]


_KIND_INDEX = {SHIFT: 0, BREAK: 1, OFF: 2}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _span_minutes(start: str, end: str) -> tuple[int, int]:
    """(start, end) minutes from the local midnight of the start date; end <= start wraps."""
    lo, hi = _minutes(start), _minutes(end)
    if hi <= lo:
        hi += _DAY_MIN
    return lo, hi


def _wall_to_utc(zone: ZoneInfo, date: dt.date, minutes: int) -> int:
    """UTC epoch s of the wall time `minutes` after local midnight of `date`."""
    naive = dt.datetime(date.year, date.month, date.day) + dt.timedelta(minutes=minutes)
    first = int(naive.replace(tzinfo=zone).timestamp())
    later = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    if later >= first:
        return first  # an ordinary wall time, or the first of two (clocks going back)
    # In a gap fold=0 would land after wall times that follow it; use the jump instead: the
    # first second in (later, first] whose offset is the new one.
    new_offset = dt.datetime.fromtimestamp(first, zone).utcoffset()
    lo, hi = later, first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class _Rule:
    """A shift or break as minutes from its date's midnight and the weekdays it applies to."""

    id: str
    start: int
    end: int
    days: frozenset[str] | None


class ShiftCalendar:
    """Answers which UTC seconds are shift, break or off under a `Calendar` in `zone`."""

    def __init__(self, calendar: Calendar, zone: ZoneInfo) -> None:
        self.calendar = calendar
        self.zone = zone
        self._shifts = [
            _Rule(s.id, *_span_minutes(s.start, s.end), frozenset(s.days))
            for s in calendar.shifts
        ]
        self._breaks = [
            _Rule("", *_span_minutes(b.start, b.end),
                  None if b.days is None else frozenset(b.days))
            for b in calendar.breaks
        ]
        self._holidays = frozenset(calendar.holidays)
        self._days: dict[dt.date, tuple[int, bool]] = {}
        self._walls: dict[tuple[dt.date, int], int] = {}
        self._windows: dict[dt.date, tuple[tuple[int, int], ...]] = {}
        self._dates: dict[dt.date, tuple[tuple[ShiftInstance, tuple[_Seg, ...]], ...]] = {}
        self._chunks: dict[int, _Chunk] = {}

    # --- public queries --------------------------------------------------------------------

    def spans(self, start: int, end: int) -> list[CalendarSpan]:
        """Tile [start, end) in time order with maximal spans of one (kind, shift, date)."""
        if end <= start:
            return []
        chunk = self._chunks.get(start // _CHUNK_S) or self._chunk(start // _CHUNK_S)
        i = bisect_right(chunk.starts, start) - 1
        seg = chunk.segs[i]
        if end <= seg[1]:
            return [CalendarSpan(start, end, seg[2], seg[3], seg[4])]
        out: list[CalendarSpan] = []
        t = start
        while t < end:
            chunk = self._chunks.get(t // _CHUNK_S) or self._chunk(t // _CHUNK_S)
            segs = chunk.segs
            i = bisect_right(chunk.starts, t) - 1
            while i < len(segs) and t < end:
                _, seg_end, kind, shift_id, shift_date = segs[i]
                hi = seg_end if seg_end < end else end
                last = out[-1] if out else None
                # Chunk edges cut spans that are one; join them again.
                if (last is not None and last.kind == kind and last.shift_id == shift_id
                        and last.shift_date == shift_date):
                    out[-1] = CalendarSpan(last.start, hi, kind, shift_id, shift_date)
                else:
                    out.append(CalendarSpan(t, hi, kind, shift_id, shift_date))
                t = hi
                i += 1
        return out

    def kind_seconds(self, start: int, end: int) -> tuple[int, int, int]:
        """(shift_s, break_s, off_s) of [start, end); shift_s excludes breaks (T8: add them)."""
        totals = [0, 0, 0]
        t = start
        while t < end:
            k = t // _CHUNK_S
            chunk = self._chunks.get(k) or self._chunk(k)
            hi = min(end, (k + 1) * _CHUNK_S)
            starts, segs, cum = chunk.starts, chunk.segs, chunk.cum
            i = bisect_right(starts, t) - 1
            j = bisect_right(starts, hi - 1) - 1
            if i == j:
                totals[_KIND_INDEX[segs[i][2]]] += hi - t
            else:
                totals[_KIND_INDEX[segs[i][2]]] += segs[i][1] - t
                totals[_KIND_INDEX[segs[j][2]]] += hi - segs[j][0]
                for n in range(3):
                    totals[n] += cum[n][j] - cum[n][i + 1]
            t = hi
        return totals[0], totals[1], totals[2]

    def instances(self, start: int, end: int) -> list[ShiftInstance]:
        """Shift instances overlapping [start, end), in time order, not clipped."""
        if end <= start:
            return []
        date = self._local_date(start) - _ONE_DAY  # the day before may run past midnight
        last = self._local_date(end - 1)
        found: list[ShiftInstance] = []
        while date <= last:
            for inst, _ in self._date_instances(date):
                if inst.start < end and inst.end > start:
                    found.append(inst)
            date += _ONE_DAY
        found.sort(key=lambda inst: inst.start)
        return found

    def shift_at(self, ts: int) -> str:
        """Id of the shift instance containing second `ts`, or "off"."""
        chunk = self._chunks.get(ts // _CHUNK_S) or self._chunk(ts // _CHUNK_S)
        shift_id = chunk.segs[bisect_right(chunk.starts, ts) - 1][3]
        return OFF if shift_id is None else shift_id

    # --- building --------------------------------------------------------------------------

    def _local_date(self, ts: int) -> dt.date:
        return dt.datetime.fromtimestamp(ts, self.zone).date()

    def _day(self, date: dt.date) -> tuple[int, bool]:
        """(UTC of local midnight, whether the day is exactly 24 h) of local `date`."""
        found = self._days.get(date)
        if found is None:
            if len(self._days) >= _MAX_DATES:
                self._days.clear()
            midnight = _wall_to_utc(self.zone, date, 0)
            following = _wall_to_utc(self.zone, date + _ONE_DAY, 0)
            found = self._days[date] = (midnight, following - midnight == 86400)
        return found

    def _wall(self, date: dt.date, minutes: int) -> int:
        """UTC epoch s of a wall time on `date`; minutes past 24:00 fall on the next dates."""
        if minutes >= _DAY_MIN:
            date += dt.timedelta(days=minutes // _DAY_MIN)
            minutes %= _DAY_MIN
        midnight, uniform = self._day(date)
        # A day of exactly 24 h keeps one offset throughout (tzdata has no zone that changes
        # its offset twice in a day), so only the days clocks change need zoneinfo per time.
        if uniform:
            return midnight + minutes * 60
        key = (date, minutes)
        found = self._walls.get(key)
        if found is None:
            if len(self._walls) >= _MAX_DATES:
                self._walls.clear()
            found = self._walls[key] = _wall_to_utc(self.zone, date, minutes)
        return found

    def _break_windows(self, date: dt.date) -> tuple[tuple[int, int], ...]:
        """Each break's UTC window placed on local `date`, in the order of the config."""
        found = self._windows.get(date)
        if found is None:
            if len(self._windows) >= _MAX_DATES:
                self._windows.clear()
            found = self._windows[date] = tuple(
                (self._wall(date, b.start), self._wall(date, b.end)) for b in self._breaks
            )
        return found

    def _date_instances(
        self, date: dt.date
    ) -> tuple[tuple[ShiftInstance, tuple[_Seg, ...]], ...]:
        """The instances starting on local `date`, each with its shift and break pieces."""
        cached = self._dates.get(date)
        if cached is not None:
            return cached
        built: list[tuple[ShiftInstance, tuple[_Seg, ...]]] = []
        weekday = DAYS[date.weekday()]
        if date not in self._holidays:
            for shift in self._shifts:
                if shift.days is not None and weekday not in shift.days:
                    continue
                start, end = self._wall(date, shift.start), self._wall(date, shift.end)
                if end <= start:
                    continue  # wholly inside the hour skipped when clocks go forward
                inst = ShiftInstance(shift.id, date, start, end)
                built.append((inst, self._pieces(inst, weekday)))
        built.sort(key=lambda item: item[0].start)
        if len(self._dates) >= _MAX_DATES:
            self._dates.clear()
        result = self._dates[date] = tuple(built)
        return result

    def _pieces(self, inst: ShiftInstance, weekday: str) -> tuple[_Seg, ...]:
        """Tile one instance with shift and break pieces."""
        start, end = inst.start, inst.end
        if not self._breaks:
            return ((start, end, SHIFT, inst.shift_id, inst.date),)
        cuts: list[tuple[int, int]] = []
        # A break is a daily wall-clock window: any of its occurrences that overlaps the
        # instance counts (the next date's for a night shift, the previous date's for one
        # crossing into this instance's morning).
        placed = (self._break_windows(inst.date - _ONE_DAY), self._break_windows(inst.date),
                  self._break_windows(inst.date + _ONE_DAY))
        for i, brk in enumerate(self._breaks):
            if brk.days is not None and weekday not in brk.days:
                continue
            for windows in placed:
                lo, hi = windows[i]
                if lo < end and hi > start:
                    cuts.append((lo if lo > start else start, hi if hi < end else end))
        cuts.sort()
        pieces: list[_Seg] = []
        cursor = inst.start
        for lo, hi in cuts:
            if hi <= cursor:
                continue
            lo = max(lo, cursor)
            if lo > cursor:
                pieces.append((cursor, lo, SHIFT, inst.shift_id, inst.date))
            if pieces and pieces[-1][2] == BREAK and pieces[-1][1] == lo:
                pieces[-1] = (pieces[-1][0], hi, BREAK, inst.shift_id, inst.date)
            else:
                pieces.append((lo, hi, BREAK, inst.shift_id, inst.date))
            cursor = hi
        if cursor < inst.end:
            pieces.append((cursor, inst.end, SHIFT, inst.shift_id, inst.date))
        return tuple(pieces)

    def _chunk(self, k: int) -> _Chunk:
        """Build (and cache) the tiling of chunk `k` from the instances of the dates it spans."""
        lo, hi = k * _CHUNK_S, (k + 1) * _CHUNK_S
        pieces: list[_Seg] = []
        date = self._local_date(lo) - _ONE_DAY  # the day before may run past midnight
        last = self._local_date(hi - 1)
        while date <= last:
            for _, inst_pieces in self._date_instances(date):
                pieces.extend(p for p in inst_pieces if p[0] < hi and p[1] > lo)
            date += _ONE_DAY
        pieces.sort(key=lambda piece: piece[0])
        segs: list[_Seg] = []
        cursor = lo
        for start, end, kind, shift_id, shift_date in pieces:
            if max(start, lo) < cursor:
                # The config check rejects overlapping shifts; a Calendar built in code is not
                # checked, and overlaps would break the tiling.
                raise ValueError(
                    f"shift {shift_id!r} of {shift_date} overlaps another shift instance"
                )
            start = max(start, lo)
            if start > cursor:
                segs.append((cursor, start, OFF, None, None))
            segs.append((start, min(end, hi), kind, shift_id, shift_date))
            cursor = min(end, hi)
        if cursor < hi:
            segs.append((cursor, hi, OFF, None, None))
        cum: tuple[list[int], list[int], list[int]] = ([0], [0], [0])
        for start, end, kind, _, _ in segs:
            n = _KIND_INDEX[kind]
            for m in range(3):
                cum[m].append(cum[m][-1] + (end - start if m == n else 0))
        if len(self._chunks) >= _MAX_CHUNKS:
            del self._chunks[next(iter(self._chunks))]
        chunk = self._chunks[k] = _Chunk([s[0] for s in segs], segs, cum)
        return chunk
