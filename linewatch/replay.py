"""`linewatch replay`: recorded samples through the time model into a store (DESIGN §9, R3).

The input is ``timestamp,asset,signal,value,quality`` CSV. Rows are applied in time order
per line (file order among equal timestamps, S1). The file is streamed in windows of
`SORT_WINDOW` rows, each sorted (stably) by time, so memory stays bounded and a file sorted
by line and then by time, or only roughly in time order, replays as if fully sorted. A row
older than what its line already applied is reported and skipped. A bad row is reported
with its line number and skipped; the summary counts every row read, applied and skipped,
by reason. Each line's tracker resumes from the checkpoint in the store, so a replay can
continue an earlier one and re-running a replay changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from linewatch.canonical import parse_number
from linewatch.config import PlantConfig
from linewatch.line_model import LineModel
from linewatch.rollup import RawSample, WriteBatch
from linewatch.sample import Quality, Sample
from linewatch.shift_calendar import ShiftCalendar
from linewatch.state_tracker import BadInput, LineTracker
from linewatch.storage.base import Store

logger = logging.getLogger(__name__)

COLUMNS = ("timestamp", "asset", "signal", "value", "quality")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)
_QUALITY = {"good": Quality.GOOD, "": Quality.GOOD, "bad": Quality.BAD}
# Rows sorted together; bounds memory (about 400 bytes a row) while tolerating disorder.
SORT_WINDOW = 200_000
# Samples per store transaction; each commit carries the trackers' checkpoints with it.
BATCH_SAMPLES = 50_000
MAX_REPORTED_ROWS = 50


@dataclass
class ReplaySummary:
    rows: int = 0
    applied: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # the first bad rows, with line numbers
    unmapped: Counter[str] = field(default_factory=Counter)  # "line: value"

    def skip(self, lineno: int, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        if len(self.problems) < MAX_REPORTED_ROWS:
            self.problems.append(f"line {lineno}: {detail}")

    def render(self) -> str:
        skipped = sum(self.skipped.values())
        out = [f"rows read: {self.rows}, applied: {self.applied}, skipped: {skipped}"]
        for reason, count in sorted(self.skipped.items()):
            out.append(f"  skipped {count}: {reason}")
        for key, count in sorted(self.unmapped.items()):
            out.append(f"  unmapped state value {key}: {count} sample(s) (S4: unplanned_stop)")
        return "\n".join(out)


def parse_timestamp(text: str) -> int:
    """ISO 8601 with an offset or Z to UTC epoch milliseconds."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("needs an offset or Z")
    return (moment - _EPOCH) // _ONE_MS


def read_samples(path: Path, config: PlantConfig, summary: ReplaySummary
                 ) -> Iterator[tuple[int, Sample]]:
    """(line number, sample) for each good row; bad rows go to the summary."""
    lines = {line.id for line in config.lines}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip().lower() for h in header]
        if tuple(header[:5]) != COLUMNS:
            raise ValueError(f"{path}: expected the header {','.join(COLUMNS)}, "
                             f"got {','.join(header)}")
        for row in reader:
            lineno = reader.line_num
            summary.rows += 1
            if len(row) not in (4, 5):
                summary.skip(lineno, "wrong number of columns",
                             f"expected 5 columns, got {len(row)}")
                continue
            ts_text, asset, signal, value = row[0], row[1].strip(), row[2].strip(), row[3]
            quality_text = row[4].strip().lower() if len(row) == 5 and row[4] else ""
            try:
                ts = parse_timestamp(ts_text)
            except ValueError:
                summary.skip(lineno, "bad timestamp",
                             f"timestamp {ts_text!r}: expected ISO 8601 with offset or Z")
                continue
            if asset not in lines:
                summary.skip(lineno, "unknown asset", f"asset {asset!r} is no line of the config")
                continue
            if not signal:
                summary.skip(lineno, "empty signal", "signal is empty")
                continue
            quality = _QUALITY.get(quality_text)
            if quality is None:
                summary.skip(lineno, "bad quality",
                             f"quality {row[4]!r}: expected good, bad or empty")
                continue
            yield lineno, Sample(ts, asset, signal, value, quality)


def _windows(rows: Iterable[tuple[int, Sample]]) -> Iterator[tuple[int, Sample]]:
    """The rows, sorted by time within consecutive windows of SORT_WINDOW rows."""
    window: list[tuple[int, Sample]] = []
    ordered = True
    last = -(2**63)
    for item in rows:
        ts = item[1].ts
        if ts < last:
            ordered = False
        last = ts
        window.append(item)
        if len(window) >= SORT_WINDOW:
            if not ordered:
                window.sort(key=_ts)  # stable: file order among equal timestamps
            yield from window
            window, ordered, last = [], True, -(2**63)
    if not ordered:
        window.sort(key=_ts)
    yield from window


def _ts(item: tuple[int, Sample]) -> int:
    return item[1].ts


def open_trackers(config: PlantConfig, store: Store) -> dict[str, LineTracker]:
    calendar = ShiftCalendar(config.calendar, config.site.zone())
    trackers = {}
    for line in config.lines:
        model = LineModel.build(config, line)
        trackers[line.id] = LineTracker(model, calendar,
                                        store.load_checkpoint(config.site.id, line.id))
    return trackers


def replay(config: PlantConfig, store: Store, path: Path,
           progress: Callable[[int], None] | None = None,
           store_samples: bool = True) -> ReplaySummary:
    """Apply a samples CSV to the store; see the module docstring."""
    summary = ReplaySummary()
    site = config.site.id
    trackers = open_trackers(config, store)
    resumed_ms = {line: t.last_ms for line, t in trackers.items()}
    rows = _windows(read_samples(path, config, summary))
    pending: list[RawSample] = []

    def commit(final: bool) -> None:
        batch = WriteBatch(samples=pending[:])
        for tracker in trackers.values():
            if final:
                tracker.finish()
            out = tracker.drain()
            batch.minutes += out.minutes
            batch.stops += out.stops
            batch.deleted_stops += out.deleted_stops
            batch.statuses += out.statuses
            batch.checkpoints[tracker.model.line] = tracker.checkpoint()
        store.write(batch)
        pending.clear()

    done = 0
    for lineno, sample in rows:
        tracker = trackers[sample.asset]
        try:
            skipped = tracker.apply(sample)
        except BadInput as err:
            summary.skip(lineno, f"bad input ({err.kind})", err.detail)
            continue
        if skipped == "older":
            before = resumed_ms[sample.asset]
            if before is not None and sample.ts < before:
                summary.skip(lineno, "older than the line's checkpoint",
                             "sample older than what this line already recorded")
            else:
                summary.skip(lineno, "out of time order",
                             f"sample older than an earlier sample of line {sample.asset} "
                             f"more than {SORT_WINDOW} rows before it (sort the file by time)")
            continue
        if skipped == "duplicate":
            summary.skip(lineno, "duplicate of a recorded sample",
                         "the same sample was already recorded")
            continue
        summary.applied += 1
        if store_samples:
            value = sample.value
            number = parse_number(value)
            pending.append(RawSample(site, sample.asset, sample.signal, sample.ts, number,
                                     None if number is not None else str(value), sample.good))
        done += 1
        if done % BATCH_SAMPLES == 0:
            commit(final=False)
            if progress:
                progress(BATCH_SAMPLES)
    commit(final=True)
    if progress:
        progress(done % BATCH_SAMPLES)
    for line_id, tracker in trackers.items():
        for value, count in tracker.unmapped.items():
            summary.unmapped[f"{line_id} {value!r}"] += count
    logger.info("replay of %s: %s", path, summary.render().replace("\n", "; "))
    return summary
