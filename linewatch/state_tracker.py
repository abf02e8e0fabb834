"""The per-line time model of DESIGN §3–§4 as pure code: samples in, rollups and stops out.

A `LineTracker` is fed one line's samples in time order. It keeps the line's raw state as a
list of segments ``[start, category, reason]`` (state lines: S4/S5/S10; counts lines: S11 with
a no-data overlay, S12), the product in force (S9) and per-minute count accumulators (S6–S8).
When time is known up to ``known`` (exclusive), minutes that are final (R2) are emitted:
the raw segments are overlaid with the shift calendar (T2–T4), runs of unplanned seconds
become stops judged on their whole length (T5, T6), and seconds and counts are summed per
UTC minute and product (R1). Everything after the last final minute stays in the tracker,
so a checkpoint taken at any time can be resumed and give the same result (R3).

All times inside are UTC epoch seconds, except sample timestamps (milliseconds).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from linewatch.canonical import canonical_value, parse_number
from linewatch.line_model import LineModel
from linewatch.rollup import LineStatus, MinuteRecord, StopEvent, WriteBatch
from linewatch.sample import Sample
from linewatch.shift_calendar import ShiftCalendar

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
STOP_CATEGORIES = ("unplanned_stop", "planned_stop", "setup")
# How much sample time passes between two attempts to emit final minutes.
EMIT_EVERY_S = 60


class BadInput(Exception):
    """A good-quality sample whose value cannot be used for its role (§8 bad input)."""

    def __init__(self, kind: str, detail: str):
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


class LineTracker:
    """Classifies every second of one line and sums minute rollups (see module docstring)."""

    def __init__(self, model: LineModel, calendar: ShiftCalendar,
                 checkpoint: dict[str, Any] | None = None) -> None:
        self.model = model
        self.calendar = calendar
        self.counts_line = model.detection == "counts"
        self.unmapped: Counter[str] = Counter()
        self.out = WriteBatch()
        self._shift_cache: dict[int, str] = {}
        self.origin: int | None = None  # start of the first minute not yet final
        self.known = 0  # the raw state is known for seconds < known
        self.segs: list[list[Any]] = []  # [start, category, reason], from origin on
        self.nodata: list[list[Any]] = []  # counts lines: [start, end or None] (S12)
        self.prods: list[list[Any]] = []  # [start, product id], from origin on
        self.acc: dict[tuple[int, str], list[Any]] = {}  # (minute, product) -> counts
        self.last_ms: int | None = None
        self.at_last: set[tuple[str, str, bool]] = set()
        self.counters: dict[str, int] = {}
        self.energy_last: float | None = None
        self.seen: set[str] = set(model.mapped_count_roles)
        self.raw_state: str | None = None
        self.stop_base = "no_data"  # category the state signal (or S11) gives, before reasons
        self.phase = "none"  # counts lines: none | stopped | running
        self.run_until: int | None = None
        self.carry: list[Any] | None = None  # [start, reason] of a stop going on at origin
        self.prov_minutes: set[tuple[int, str]] = set()
        self.prov_stops: set[int] = set()
        self.run_cat = "no_data"
        self.run_since: int | None = None
        self.next_emit = 0
        if checkpoint is not None:
            self._restore(checkpoint)

    # --- samples --------------------------------------------------------------------------

    def apply(self, sample: Sample) -> str | None:
        """Apply one sample; return why it was skipped, or None. Raises BadInput."""
        ts = sample.ts
        if self.last_ms is not None:
            if ts < self.last_ms:
                return "older"
            key = (sample.signal, str(sample.value), sample.good)
            if ts == self.last_ms:
                if key in self.at_last:
                    return "duplicate"
            else:
                self.at_last = set()
        else:
            key = (sample.signal, str(sample.value), sample.good)
        sec = ts // 1000
        if self.origin is None:
            self._begin(sec)
        self._advance_known(sec)
        self.last_ms = ts
        self.at_last.add(key)
        signal = sample.signal
        if signal == "state":
            if not self.counts_line:
                self._on_state(sample, sec)
        elif signal in ("total_count", "good_count", "reject_count"):
            self._on_count(signal, sample, sec)
        elif signal == "reason":
            self._on_reason(sample, sec)
        elif signal == "product":
            self._on_product(sample, sec)
        elif signal == "energy_kwh":
            self._on_energy(sample, sec)
        if sec >= self.next_emit:
            self.next_emit = sec + EMIT_EVERY_S
            self._emit(provisional=False)
        return None

    def advance_to(self, now: int) -> None:
        """Declare the raw state known up to ``now`` (exclusive) and emit final minutes."""
        if self.origin is None:
            return
        self._advance_known(now)
        self._emit(provisional=False)

    def finish(self) -> None:
        """Write everything up to the last sample, an open stop judged so far (R3)."""
        if self.origin is None:
            return
        self._emit(provisional=False)
        self._emit(provisional=True)

    def drain(self) -> WriteBatch:
        """Hand over what was emitted since the last drain."""
        out, self.out = self.out, WriteBatch()
        return out

    def _begin(self, sec: int) -> None:
        origin = sec - sec % 60
        self.origin = origin
        self.known = origin
        # S5, S11: before a line's first sample its state is no_data.
        self.segs = [[origin, "no_data", None]]
        self.prods = [[origin, self.model.default_product]]
        self.run_since = origin
        self.next_emit = origin + EMIT_EVERY_S

    def _advance_known(self, t: int) -> None:
        if t <= self.known:
            return
        if self.phase == "running" and self.run_until is not None and self.run_until <= t:
            # S11: no increase within stop_after_s of the last one: a stop from then on.
            self.phase = "stopped"
            self.stop_base = "unplanned_stop"
            self._push(self.run_until, "unplanned_stop", "unexplained")
            self.run_until = None
        self.known = t

    def _push(self, start: int, category: str, reason: str | None) -> None:
        segs = self.segs
        last = segs[-1]
        if last[0] == start:
            # S1: samples of the same second apply in order; the last one holds the second.
            last[1] = category
            last[2] = reason
            if len(segs) > 1 and segs[-2][1] == category and segs[-2][2] == reason:
                segs.pop()
        elif last[1] != category or last[2] != reason:
            segs.append([start, category, reason])

    def _on_state(self, sample: Sample, sec: int) -> None:
        if not sample.good:
            self.raw_state = None
            self.stop_base = "no_data"
            self._push(sec, "no_data", None)  # S5
            return
        canon = canonical_value(sample.value)
        if canon == self.raw_state:
            return  # T5: a repeated sample neither ends a stop nor resets its reason
        self.raw_state = canon
        entry = self.model.state_map.get(canon)
        if entry is None:
            self.unmapped[canon] += 1  # S4
            category, reason = "unplanned_stop", "unmapped"
        else:
            category, reason = entry
        self.stop_base = category
        self._push(sec, category, reason)

    def _on_reason(self, sample: Sample, sec: int) -> None:
        if not sample.good:
            return  # S10
        canon = canonical_value(sample.value)
        if canon in self.model.reason_map:
            code = self.model.reason_map[canon]
            if code is None:
                return  # mapped to "no reason", e.g. a PLC's 0
        elif canon in self.model.reason_category:
            code = canon
        else:
            raise BadInput("unknown_reason", f"reason value {canon!r} is not in reason_map "
                           "or the reasons catalog")
        base = self.stop_base
        if base not in STOP_CATEGORIES:
            return  # S10 sets the reason of the current stop; there is none
        category = base
        reason_category = self.model.reason_category.get(code, "unplanned_stop")
        if base == "unplanned_stop" and reason_category in ("planned_stop", "setup"):
            category = reason_category
        self._push(sec, category, code)

    def _on_product(self, sample: Sample, sec: int) -> None:
        if not sample.good:
            return  # S10
        canon = canonical_value(sample.value)
        product = self.model.product_map.get(canon, canon)
        if product not in self.model.unit_ideal_s:
            raise BadInput("unknown_product", f"product value {canon!r} names no product")
        prods = self.prods
        if prods[-1][1] == product:
            return
        if prods[-1][0] == sec:
            prods[-1][1] = product
            if len(prods) > 1 and prods[-2][1] == product:
                prods.pop()
        else:
            prods.append([sec, product])

    def _on_count(self, role: str, sample: Sample, sec: int) -> None:
        if not sample.good:
            if self.counts_line:
                self._open_nodata(sec)  # S12
            return  # S6: never moves the baseline
        number = parse_number(sample.value)
        if number is None or number < 0 or not number.is_integer():
            raise BadInput("wrong_type", f"{role} value {sample.value!r} is not a count")
        value = int(number)
        if self.counts_line:
            self._close_nodata(sec)
        self.seen.add(role)
        prev = self.counters.get(role)
        self.counters[role] = value
        if prev is None:
            # S6: the first good sample is a baseline; S11: from it, a stop until an increase.
            if self.counts_line and self.phase == "none":
                self.phase = "stopped"
                self.stop_base = "unplanned_stop"
                self._push(sec, "unplanned_stop", "unexplained")
            return
        if value >= prev:
            delta = value - prev
        else:
            counter_max = self.model.counter_max[role]
            rollover = prev >= 0.9 * counter_max
            delta = value + counter_max + 1 - prev if rollover else value
        if delta == 0:
            return
        product = self.prods[-1][1]
        acc = self._acc(sec, product)
        seen = self.seen
        if role == "total_count":
            acc[0] += delta
            has_good, has_reject = "good_count" in seen, "reject_count" in seen
            if has_good and not has_reject:
                acc[2] += delta
            elif not has_good:
                acc[1] += delta  # S7: good = total - reject (reject 0 when absent)
            adds_total = True
        elif role == "good_count":
            acc[1] += delta
            adds_total = "total_count" not in seen
            if adds_total:
                acc[0] += delta
            elif "reject_count" not in seen:
                acc[2] -= delta
        else:
            acc[2] += delta
            adds_total = "total_count" not in seen
            if adds_total:
                acc[0] += delta
            elif "good_count" not in seen:
                acc[1] -= delta
        if adds_total:
            acc[3] += delta * self.model.unit_ideal_s.get(product, 0.0)
            if self.counts_line:
                self._on_increase(sec)

    def _on_increase(self, sec: int) -> None:
        stop_after = self.model.stop_after_s
        if self.phase == "running":
            self.run_until = sec + stop_after
            return
        self.phase = "running"
        self.stop_base = "running"
        self.run_until = sec + stop_after
        self._push(sec, "running", None)

    def _open_nodata(self, sec: int) -> None:
        if not self.nodata or self.nodata[-1][1] is not None:
            self.nodata.append([sec, None])

    def _close_nodata(self, sec: int) -> None:
        if self.nodata and self.nodata[-1][1] is None:
            if self.nodata[-1][0] == sec:
                self.nodata.pop()
            else:
                self.nodata[-1][1] = sec

    def _on_energy(self, sample: Sample, sec: int) -> None:
        if not sample.good:
            return  # S10
        value = parse_number(sample.value)
        if value is None:
            raise BadInput("wrong_type", f"energy_kwh value {sample.value!r} is not a number")
        prev = self.energy_last
        self.energy_last = value
        # S8: a drop is always a reset; the first sample is a baseline (but marks the span).
        delta = 0.0 if prev is None else (value - prev if value >= prev else value)
        acc = self._acc(sec, self.prods[-1][1])
        acc[4] = (acc[4] or 0.0) + delta

    def _acc(self, sec: int, product: str) -> list[Any]:
        key = (sec - sec % 60, product)
        acc = self.acc.get(key)
        if acc is None:
            acc = self.acc[key] = [0, 0, 0, 0.0, None]
        return acc

    # --- emission -------------------------------------------------------------------------

    def _raw_segments(self, a: int, b: int) -> list[tuple[int, int, str, str | None]]:
        out: list[tuple[int, int, str, str | None]] = []
        segs = self.segs
        for i, (start, category, reason) in enumerate(segs):
            end = segs[i + 1][0] if i + 1 < len(segs) else b
            start, end = max(start, a), min(end, b)
            if start < end:
                out.append((start, end, category, reason))
        if not self.counts_line or not self.nodata:
            return out
        merged: list[tuple[int, int, str, str | None]] = []
        gaps = [(s, b if e is None else min(e, b)) for s, e in self.nodata]
        k = 0
        for start, end, category, reason in out:
            cur = start
            while k < len(gaps) and gaps[k][1] <= cur:
                k += 1
            j = k
            while j < len(gaps) and gaps[j][0] < end:
                gs, ge = max(gaps[j][0], cur), min(gaps[j][1], end)
                if gs > cur:
                    merged.append((cur, gs, category, reason))
                if gs < ge:
                    merged.append((gs, ge, "no_data", None))
                cur = max(cur, ge)
                if gaps[j][1] > end:
                    break
                j += 1
            if cur < end:
                merged.append((cur, end, category, reason))
        return merged

    def _pieces(self, a: int, b: int) -> list[list[Any]]:
        """Raw segments overlaid with the calendar: [start, end, category, reason, kind]."""
        raw = self._raw_segments(a, b)
        spans = self.calendar.spans(a, b)
        pieces: list[list[Any]] = []
        i = j = 0
        while i < len(raw) and j < len(spans):
            r_start, r_end, category, reason = raw[i]
            span = spans[j]
            start, end = max(r_start, span.start), min(r_end, span.end)
            if start < end:
                kind = span.kind
                if category == "running":
                    final = "running"  # T2, T3: overtime and running through a break
                elif kind == "shift":
                    final = category  # T4
                elif kind == "break":
                    final = "planned_stop"  # T3
                else:
                    final = "unscheduled"  # T2
                if pieces and pieces[-1][1] == start and pieces[-1][2] == final \
                        and pieces[-1][3] == reason and pieces[-1][4] == kind:
                    pieces[-1][1] = end
                else:
                    pieces.append([start, end, final, reason, kind])
            if r_end <= span.end:
                i += 1
            if span.end <= r_end:
                j += 1
        return pieces

    def _stops(self, pieces: list[list[Any]], a: int, b: int) -> list[list[Any]]:
        """Runs of unplanned seconds (T5): [start, end, reason, first piece, last piece, open]."""
        stops: list[list[Any]] = []
        current: list[Any] | None = None
        for idx, piece in enumerate(pieces):
            if piece[2] == "unplanned_stop":
                if current is None:
                    if self.carry is not None and piece[0] == a:
                        current = [self.carry[0], piece[1], self.carry[1], idx, idx, False]
                    else:
                        current = [piece[0], piece[1], None, idx, idx, False]
                else:
                    current[1] = piece[1]
                    current[4] = idx
                if piece[3] is not None:
                    current[2] = piece[3]
            elif current is not None:
                stops.append(current)
                current = None
        if current is not None:
            current[5] = current[1] >= b
            stops.append(current)
        return stops

    def _emit(self, provisional: bool) -> None:
        a = self.origin
        assert a is not None
        if provisional:
            last = (self.last_ms // 1000) if self.last_ms is not None else a
            b = max(self.known, last + 1)
        else:
            b = self.known
        if b <= a:
            return
        micro = self.model.micro_stop_s
        pieces = self._pieces(a, b)
        stops = self._stops(pieces, a, b)
        closing: StopEvent | None = None
        if self.carry is not None and not (pieces and pieces[0][2] == "unplanned_stop"
                                           and stops and stops[0][0] == self.carry[0]):
            # The stop carried over ended exactly at the last final minute boundary.
            closing = self._event(self.carry[0], a, self.carry[1], a - self.carry[0], False)
        if provisional:
            final_end = b
        else:
            final_end = b - b % 60
            for stop in stops:
                if stop[5] and stop[1] - stop[0] < micro:
                    # R2: its classification (T5) is still unknown.
                    final_end = min(final_end, stop[0] - stop[0] % 60)
            if final_end <= a:
                self._status(pieces, a, b)
                return
        status_pieces = [list(p) for p in pieces]
        for stop in stops:
            if stop[1] - stop[0] < micro:
                for idx in range(stop[3], stop[4] + 1):
                    pieces[idx][2] = "micro_stop"
        records = self._records(pieces, a, final_end)
        for (minute, product), acc in list(self.acc.items()):
            if minute >= final_end:
                continue
            record = records.get((minute, product))
            if record is None:
                record = records[(minute, product)] = self._record(minute, product)
            record.total_count += acc[0]
            record.good_count += acc[1]
            record.reject_count += acc[2]
            record.ideal_s += acc[3]
            record.energy_kwh = acc[4]
            if not provisional:
                del self.acc[(minute, product)]
        events: list[StopEvent] = [] if closing is None else [closing]
        new_carry: list[Any] | None = None
        for start, end, reason, _first, _last, is_open in stops:
            if start >= final_end:
                break
            length = end - start
            events.append(self._event(start, end, reason, length, is_open))
            if length >= micro and start >= a:
                key = (start - start % 60, self._product_at(start))
                record = records.get(key)
                if record is None:
                    record = records[key] = self._record(*key)
                record.failures += 1  # T6: in the minute of its first second
            if end > final_end or (end == final_end and is_open):
                new_carry = [start, reason]
        self._settle_provisional(records, events, a, final_end, provisional)
        self.out.minutes.extend(records.values())
        self.out.stops.extend(events)
        self._status(status_pieces, a, b)
        if not provisional:
            self._advance_origin(final_end, status_pieces, new_carry)

    def _records(self, pieces: list[list[Any]], a: int, end: int
                 ) -> dict[tuple[int, str], MinuteRecord]:
        records: dict[tuple[int, str], MinuteRecord] = {}
        prods = self.prods
        k = 0
        for start, stop, category, _reason, kind in pieces:
            stop = min(stop, end)
            field = category + "_s"
            s = start
            while s < stop:
                while k + 1 < len(prods) and prods[k + 1][0] <= s:
                    k += 1
                minute = s - s % 60
                e = min(stop, minute + 60)
                if k + 1 < len(prods) and prods[k + 1][0] < e:
                    e = prods[k + 1][0]
                product = prods[k][1]
                record = records.get((minute, product))
                if record is None:
                    record = records[(minute, product)] = self._record(minute, product)
                n = e - s
                record.span_s += n
                setattr(record, field, getattr(record, field) + n)
                if kind != "off":
                    record.scheduled_s += n
                    if kind == "break":
                        record.break_s += n
                s = e
            if stop >= end:
                break
        return records

    def _record(self, minute: int, product: str) -> MinuteRecord:
        shift = self._shift_cache.get(minute)
        if shift is None:
            if len(self._shift_cache) > 4096:
                self._shift_cache.clear()
            shift = self._shift_cache[minute] = self.calendar.shift_at(minute)
        return MinuteRecord(site=self.model.site, line=self.model.line, ts=minute,
                            product=product, shift=shift)

    def _event(self, start: int, end: int, reason: str | None, length: int,
               is_open: bool) -> StopEvent:
        category = "micro_stop" if length < self.model.micro_stop_s else "unplanned_stop"
        return StopEvent(site=self.model.site, line=self.model.line, start=start, end=end,
                         category=category, reason=reason, open=is_open)

    def _product_at(self, t: int) -> str:
        product = self.prods[0][1]
        for start, pid in self.prods:
            if start > t:
                break
            product = pid
        return product

    def _settle_provisional(self, records: dict[tuple[int, str], MinuteRecord],
                            events: list[StopEvent], a: int, end: int,
                            provisional: bool) -> None:
        """Tombstone what an earlier end-of-input write put where nothing is now (R3)."""
        emitted = set(records)
        starts = {e.start for e in events if e.start >= a}
        for key in sorted(self.prov_minutes):
            if key[0] < end and key not in emitted:
                records[key] = MinuteRecord(site=self.model.site, line=self.model.line,
                                            ts=key[0], product=key[1],
                                            shift=self.calendar.shift_at(key[0]))
        for start in sorted(self.prov_stops):
            if start < end and start not in starts:
                self.out.deleted_stops.append((self.model.site, self.model.line, start))
        if provisional:
            self.prov_minutes = {k for k in emitted if not records[k].is_empty()}
            self.prov_stops = starts
        else:
            self.prov_minutes = {k for k in self.prov_minutes if k[0] >= end}
            self.prov_stops = {s for s in self.prov_stops if s >= end}

    def _status(self, pieces: list[list[Any]], a: int, b: int) -> None:
        if not pieces:
            return
        category, reason = pieces[-1][2], pieces[-1][3]
        since = pieces[-1][0]
        for piece in reversed(pieces):
            if piece[2] != category:
                break
            since = piece[0]
        if since == a and self.run_cat == category and self.run_since is not None:
            since = self.run_since
        if category == "unplanned_stop" and self.carry is not None and since <= a:
            since = self.carry[0]
        last = self.last_ms // 1000 if self.last_ms is not None else None
        self.out.statuses = [LineStatus(
            site=self.model.site, line=self.model.line, category=category, since=since,
            reason=reason, last_sample=last, product=self.prods[-1][1] or None, updated=b,
        )]

    def _advance_origin(self, end: int, pieces: list[list[Any]],
                        carry: list[Any] | None) -> None:
        """Drop what is final before ``end`` and remember what the next minute starts from."""
        a = self.origin
        assert a is not None
        run_cat, run_since = self.run_cat, self.run_since
        for piece in pieces:
            if piece[0] >= end:
                break
            if piece[2] != run_cat:
                run_cat, run_since = piece[2], piece[0]
        self.run_cat, self.run_since = run_cat, run_since
        self.carry = carry
        self.origin = end
        self.segs = _clip(self.segs, end)
        self.prods = _clip(self.prods, end)
        self.nodata = [g for g in self.nodata if g[1] is None or g[1] > end]

    # --- checkpoint -----------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """The whole tracker state as JSON-compatible data (R3)."""
        return {
            "version": CHECKPOINT_VERSION,
            "site": self.model.site,
            "line": self.model.line,
            "origin": self.origin,
            "known": self.known,
            "segs": self.segs,
            "nodata": self.nodata,
            "prods": self.prods,
            "acc": [[m, p, *v] for (m, p), v in sorted(self.acc.items())],
            "last_ms": self.last_ms,
            "at_last": sorted([list(k) for k in self.at_last]),
            "counters": self.counters,
            "energy_last": self.energy_last,
            "seen": sorted(self.seen),
            "raw_state": self.raw_state,
            "stop_base": self.stop_base,
            "phase": self.phase,
            "run_until": self.run_until,
            "carry": self.carry,
            "prov_minutes": sorted([list(k) for k in self.prov_minutes]),
            "prov_stops": sorted(self.prov_stops),
            "run_cat": self.run_cat,
            "run_since": self.run_since,
            "next_emit": self.next_emit,
        }

    def _restore(self, data: dict[str, Any]) -> None:
        if data.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
        self.origin = data["origin"]
        self.known = data["known"]
        self.segs = [list(s) for s in data["segs"]]
        self.nodata = [list(g) for g in data["nodata"]]
        self.prods = [list(p) for p in data["prods"]]
        self.acc = {(m, p): list(v) for m, p, *v in data["acc"]}
        self.last_ms = data["last_ms"]
        self.at_last = {(s, v, bool(g)) for s, v, g in data["at_last"]}
        self.counters = dict(data["counters"])
        self.energy_last = data["energy_last"]
        self.seen = set(data["seen"]) | set(self.model.mapped_count_roles)
        self.raw_state = data["raw_state"]
        self.stop_base = data["stop_base"]
        self.phase = data["phase"]
        self.run_until = data["run_until"]
        self.carry = data["carry"]
        self.prov_minutes = {(m, p) for m, p in data["prov_minutes"]}
        self.prov_stops = set(data["prov_stops"])
        self.run_cat = data["run_cat"]
        self.run_since = data["run_since"]
        self.next_emit = data["next_emit"]


def _clip(segments: list[list[Any]], end: int) -> list[list[Any]]:
    """Keep the segment in force at ``end`` (moved to start there) and those after it."""
    keep = 0
    for i, seg in enumerate(segments):
        if seg[0] <= end:
            keep = i
        else:
            break
    out = segments[keep:]
    out[0] = [end, *out[0][1:]]
    return out
