"""What really happened on a simulated line, in the terms `linewatch kpi` reports.

Written apart from `linewatch.state_tracker` on purpose: it starts from the simulator's own
record (`simulator.line_sim.TrueRecord`: the whole-second phases, every cycle, every meter
reading) rather than from samples, and applies DESIGN §3–§4 directly:

- the raw category of each second: on a state line what the published state and reason mean
  (S4, S10); on a counts line S11 applied to the seconds of the true cycles (running until
  ``stop_after_s`` after each, ``unplanned_stop`` from the baseline to the first one);
- before the line's first sample and after its last one there is no data (S5, T10);
- the calendar overlay (T2–T4) with `linewatch.shift_calendar.ShiftCalendar`: running is
  running everywhere; otherwise outside shifts ``unscheduled``, in breaks ``planned_stop``;
- stops (T5): maximal runs of ``unplanned_stop`` seconds, ``micro_stop`` when shorter than
  ``policy.micro_stop_s``; ``failures`` (T6): the others whose first second is in the window;
- counts (S6, S7) at the second of the cycle that made them: total, rejects (0 when the line
  maps no reject or good register) and good; ``ideal_s`` (S9) from each cycle's product;
- energy (S8): the meter's true rise between the readings in the window and the reading
  before it; None without a reading in the window.

`LineTruth.window(start, end)` gives the same keys as a ``linewatch kpi --json`` row.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

from linewatch.config import Line, PlantConfig
from linewatch.shift_calendar import BREAK, OFF, SHIFT, ShiftCalendar
from simulator.line_sim import LineSimulator, TrueRecord

__all__ = ["CATEGORY_KEYS", "COUNT_KEYS", "LineTruth", "ground_truth"]

logger = logging.getLogger(__name__)

CATEGORY_KEYS = ("running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
                 "no_data_s", "unscheduled_s")
COUNT_KEYS = ("total_count", "good_count", "reject_count")
# T10: time with no record at all counts by the calendar.
_UNCOVERED = {OFF: "unscheduled_s", BREAK: "planned_stop_s", SHIFT: "no_data_s"}


@dataclass(frozen=True, slots=True)
class Stop:
    """A run of unplanned seconds (T5), whole seconds [start, end)."""

    start: int
    end: int
    micro: bool


def _final(raw: str, kind: str) -> str:
    """T2–T4: a second's category from its raw category and its calendar kind."""
    if raw == "running":
        return "running"
    if kind == OFF:
        return "unscheduled"
    if kind == BREAK:
        return "planned_stop"
    return raw


class LineTruth:
    """The true category seconds, stops, counts and energy of one simulated line."""

    def __init__(self, config: PlantConfig, line: Line, record: TrueRecord) -> None:
        self.config = config
        self.line = line
        self.record = record
        self.calendar = ShiftCalendar(config.calendar, config.site.zone())
        self.micro_s = config.policy.micro_stop_s
        if record.first_ms is None or record.last_ms is None:
            self.cover = (0, 0)
        else:
            self.cover = (record.first_ms // 1000, record.last_ms // 1000 + 1)
        raw = self._raw_timeline()
        self.pieces = self._overlay(raw)  # [start, end, category], tiling the coverage
        self.stops = self._classify()
        self._starts = [p[0] for p in self.pieces]
        last_ms = record.last_ms if record.last_ms is not None else -1
        units = [u for u in record.units if u[0] <= last_ms]
        self._unit_secs = [u[0] // 1000 for u in units]
        ideal = self._unit_ideal()
        count_roles = set(record.count_roles)
        has_rejects = bool({"reject_count", "good_count"} & count_roles)
        # Running sums, so a window's counts are two look-ups.
        self._cum = [(0, 0, 0.0)]
        total = rejects = 0
        ideal_s = 0.0
        for _ms, n, r, product in units:
            total += n
            rejects += r if has_rejects else 0
            ideal_s += n * ideal.get(product, 0.0)
            self._cum.append((total, rejects, ideal_s))
        self._energy = [e for e in record.energy if e[0] <= last_ms]
        self._energy_secs = [e[0] // 1000 for e in self._energy]

    # --- building -------------------------------------------------------------------------

    def _unit_ideal(self) -> dict[str, float]:
        out = {}
        for product in self.config.products:
            cycle, units = product.ideal_cycle_s, product.units_per_cycle
            override = self.line.products.get(product.id)
            if override is not None:
                cycle = override.ideal_cycle_s or cycle
                units = override.units_per_cycle or units
            out[product.id] = cycle / units
        return out

    def _raw_timeline(self) -> list[tuple[int, int, str]]:
        """Raw categories (before the calendar) tiling the coverage."""
        lo, hi = self.cover
        if hi <= lo:
            return []
        if self.record.detection == "counts":
            return self._counts_timeline(lo, hi)
        out: list[tuple[int, int, str]] = []
        for start, end, category, _reason in self.record.intervals:
            a, b = max(start, lo), min(end, hi)
            if a >= b:
                continue
            if out and out[-1][2] == category and out[-1][1] == a:
                out[-1] = (out[-1][0], b, category)
            else:
                out.append((a, b, category))
        if not out or out[0][0] > lo or out[-1][1] < hi:
            raise ValueError(f"line {self.line.id}: the recorded phases do not cover the "
                             "samples")
        return out

    def _counts_timeline(self, lo: int, hi: int) -> list[tuple[int, int, str]]:
        """S11 from the true cycles: running until stop_after_s past each, else stopped."""
        stop_after = self.config.policy.stop_after_s
        last_ms = self.record.last_ms if self.record.last_ms is not None else -1
        increases = sorted({ms // 1000 for ms, n, _r, _p in self.record.units
                            if n > 0 and ms <= last_ms})
        out: list[tuple[int, int, str]] = []

        def add(a: int, b: int, category: str) -> None:
            b = min(b, hi)
            if a >= b:
                return
            if out and out[-1][2] == category and out[-1][1] == a:
                out[-1] = (out[-1][0], b, category)
            else:
                out.append((a, b, category))

        t = lo  # the baseline (the first count sample) starts a stop
        for sec in increases:
            if sec > t:
                add(t, sec, "unplanned_stop")
                t = sec
            add(t, sec + stop_after, "running")
            t = max(t, sec + stop_after)
        add(t, hi, "unplanned_stop")
        return out

    def _overlay(self, raw: list[tuple[int, int, str]]) -> list[list[Any]]:
        lo, hi = self.cover
        if hi <= lo:
            return []
        spans = self.calendar.spans(lo, hi)
        pieces: list[list[Any]] = []
        i = j = 0
        while i < len(raw) and j < len(spans):
            r_start, r_end, category = raw[i]
            span = spans[j]
            a, b = max(r_start, span.start), min(r_end, span.end)
            if a < b:
                final = _final(category, span.kind)
                if pieces and pieces[-1][2] == final and pieces[-1][1] == a:
                    pieces[-1][1] = b
                else:
                    pieces.append([a, b, final])
            if r_end <= span.end:
                i += 1
            else:
                j += 1
        return pieces

    def _classify(self) -> list[Stop]:
        """T5: each maximal unplanned piece is one stop; short ones become micro stops."""
        stops: list[Stop] = []
        for piece in self.pieces:
            if piece[2] != "unplanned_stop":
                continue
            # Pieces of one category are merged, so a piece is a maximal run, unless the
            # coverage ends: after it comes no_data (or T10's planned/unscheduled), which
            # ends a stop as well.
            start, end = piece[0], piece[1]
            micro = end - start < self.micro_s
            stops.append(Stop(start, end, micro))
            if micro:
                piece[2] = "micro_stop"
        return stops

    # --- queries --------------------------------------------------------------------------

    def window(self, start: int, end: int) -> dict[str, Any]:
        """The truth of [start, end) (UTC epoch s) with the keys of a `kpi --json` row."""
        seconds = dict.fromkeys(CATEGORY_KEYS, 0)
        lo, hi = self.cover
        # Covered time: the pieces.
        a, b = max(start, lo), min(end, hi)
        if a < b:
            k = max(0, bisect_right(self._starts, a) - 1)
            pieces = self.pieces
            while k < len(pieces) and pieces[k][0] < b:
                p_start, p_end, category = pieces[k]
                n = min(p_end, b) - max(p_start, a)
                if n > 0:
                    seconds[category + "_s"] += n
                k += 1
        # Time without data at all, before the first and after the last sample (T10).
        uncovered = ([(start, min(end, lo)), (max(start, hi), end)] if lo < hi
                     else [(start, end)])
        for u_start, u_end in uncovered:
            if u_start < u_end:
                for span in self.calendar.spans(u_start, u_end):
                    seconds[_UNCOVERED[span.kind]] += span.end - span.start
        shift_s, break_s, _off_s = self.calendar.kind_seconds(start, end)
        i = bisect_left(self._unit_secs, start)
        j = bisect_left(self._unit_secs, end)
        total = self._cum[j][0] - self._cum[i][0]
        rejects = self._cum[j][1] - self._cum[i][1]
        ideal_s = self._cum[j][2] - self._cum[i][2]
        failures = sum(1 for s in self.stops if not s.micro and start <= s.start < end)
        e_i = bisect_left(self._energy_secs, start)
        e_j = bisect_left(self._energy_secs, end)
        energy: float | None = None
        if e_j > e_i:
            before = self._energy[e_i - 1][1] if e_i > 0 else self._energy[e_i][1]
            energy = self._energy[e_j - 1][1] - before
        row: dict[str, Any] = {"line": self.line.id, "calendar_s": end - start}
        row.update(seconds)
        row.update({
            "scheduled_s": shift_s + break_s,
            "total_count": total,
            "good_count": total - rejects,
            "reject_count": rejects,
            "ideal_s": ideal_s,
            "failures": failures,
            "energy_kwh": energy,
        })
        return row

    def stops_in(self, start: int, end: int) -> list[Stop]:
        """The stops whose first second lies in [start, end)."""
        return [s for s in self.stops if start <= s.start < end]


def ground_truth(config: PlantConfig, sim: LineSimulator) -> LineTruth:
    """The truth of what `sim.run` has returned so far (it must record its truth)."""
    if sim.truth is None:
        raise ValueError(f"line {sim.line.id}: the simulator was built with record_truth=False")
    return LineTruth(config, sim.line, sim.truth)
