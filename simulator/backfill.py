"""`linewatch backfill`: months of simulated history, generated in simulated time.

Each line's `LineSimulator` is stepped one local day at a time and its samples go straight
through the real time model: the line's `LineTracker` resumed from the store's checkpoint
(as `linewatch.replay` does), `tracker.apply` per sample, then one `store.write` per day
with the minute rollups, stop events, line status and every tracker's checkpoint; at the
end `tracker.finish()` writes everything up to the last sample (R3).

The lines are independent, so they run in worker processes (one per line, up to one per
CPU and one more) while this process writes each day once every line has produced it; the
result is the same as with ``workers=1``, which runs everything in this process.

Raw samples are not stored (there would be millions, and `raw_retention_days` would prune
them anyway); a backfilled history has rollups and stops only. Telemetry is not generated:
the time model does not use it.

Resuming: a line whose tracker has a checkpoint continues its PLC registers, meter and
product from it, so a later range continues the earlier one without a counter jump. The
range starts no earlier than one second after the line's last recorded sample; the random
stream is seeded by seed and line as always, so ``A..B`` then ``B..C`` is a different (but
equally valid) history than ``A..C`` at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from linewatch.config import Line, PlantConfig
from linewatch.line_model import LineModel
from linewatch.rollup import MinuteRecord, WriteBatch
from linewatch.shift_calendar import ShiftCalendar
from linewatch.state_tracker import LineTracker
from linewatch.storage.base import Store
from simulator.line_sim import LineSimulator, Resume

__all__ = ["BackfillError", "BackfillSummary", "backfill", "day_edges", "resume_of"]

logger = logging.getLogger(__name__)

# Days a line's worker may run ahead of the store writer (bounds memory).
QUEUE_DAYS = 4
# How often the writer checks that a silent worker is still alive.
POLL_S = 1.0


class BackfillError(RuntimeError):
    """A line's worker failed; the message holds its traceback."""


@dataclass
class BackfillSummary:
    days: int = 0
    samples: int = 0
    minutes: int = 0
    stops: int = 0
    workers: int = 1
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> samples
    started: dict[str, int] = field(default_factory=dict)  # line -> first simulated second

    def render(self) -> str:
        out = (f"{self.days} day(s), {self.samples} samples through the time model, "
               f"{self.minutes} minute records, {self.stops} stop events written")
        for reason, count in sorted(self.skipped.items()):
            out += f"; skipped {count}: {reason}"
        return out


@dataclass
class _DayOut:
    """What one line produced for one day: its tracker's output and checkpoint."""

    line: str
    batch: WriteBatch
    checkpoint: dict[str, Any]
    samples: int
    skipped: Counter[str]
    # Between processes the minute records travel as tuples: unpickling ~1,440 slotted
    # dataclasses a line-day costs ~10x more than the tuples and rebuilding them.
    minute_rows: list[tuple[Any, ...]] | None = None

    def pack(self) -> _DayOut:
        self.minute_rows = [_minute_row(r) for r in self.batch.minutes]
        self.batch.minutes = []
        return self

    def unpack(self) -> _DayOut:
        if self.minute_rows is not None:
            self.batch.minutes = [MinuteRecord(*row) for row in self.minute_rows]
            self.minute_rows = None
        return self


_minute_row = attrgetter(*(f.name for f in fields(MinuteRecord)))


def day_edges(config: PlantConfig, start: int, end: int) -> list[int]:
    """start, every local midnight strictly between, end (UTC epoch s)."""
    zone = config.site.zone()
    edges = [start]
    day = dt.datetime.fromtimestamp(start, zone).date() + dt.timedelta(days=1)
    while True:
        midnight = int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp())
        if midnight >= end:
            break
        edges.append(midnight)
        day += dt.timedelta(days=1)
    if end > start:
        edges.append(end)
    return edges


def resume_of(tracker: LineTracker) -> Resume | None:
    """The PLC registers, meter and product a tracker last saw; None for a fresh line."""
    if tracker.last_ms is None:
        return None
    product = tracker.prods[-1][1] if tracker.prods else None
    return Resume(counters=dict(tracker.counters), energy_kwh=tracker.energy_last,
                  product=product or None)


def line_start(start: int, checkpoint: dict[str, Any] | None) -> int:
    """Where a line's backfill begins: `start`, or just after its last recorded sample."""
    last_ms = checkpoint.get("last_ms") if checkpoint else None
    return start if last_ms is None else max(start, last_ms // 1000 + 1)


class _LineRun:
    """One line's simulator feeding its tracker, a day at a time."""

    def __init__(self, config: PlantConfig, line: Line, seed: int, start: int,
                 checkpoint: dict[str, Any] | None) -> None:
        calendar = ShiftCalendar(config.calendar, config.site.zone())
        self.tracker = LineTracker(LineModel.build(config, line), calendar, checkpoint)
        self.start = line_start(start, checkpoint)
        self.sim = LineSimulator(config, line, seed, self.start, telemetry=False,
                                 record_truth=False, resume=resume_of(self.tracker))

    def step(self, until: int, final: bool) -> _DayOut:
        tracker = self.tracker
        skipped: Counter[str] = Counter()
        samples = self.sim.run(until) if until > self.start else []
        apply = tracker.apply
        for sample in samples:
            reason = apply(sample)
            if reason is not None:
                skipped[reason] += 1
        if final:
            tracker.finish()
        return _DayOut(tracker.model.line, tracker.drain(), tracker.checkpoint(),
                       len(samples), skipped)


def _worker(config: PlantConfig, lines: Sequence[Line], seed: int, start: int,
            checkpoints: dict[str, dict[str, Any] | None], edges: Sequence[int],
            out: Any) -> None:
    """A worker process: steps its lines day by day and queues each day's output."""
    try:
        runs = [_LineRun(config, line, seed, start, checkpoints[line.id]) for line in lines]
        last = len(edges) - 2
        for i, day_end in enumerate(edges[1:]):
            out.put([run.step(day_end, final=i == last).pack() for run in runs])
    except BaseException:  # reported to the writer, which raises BackfillError
        out.put(traceback.format_exc())


def backfill(config: PlantConfig, store: Store, start: int, end: int, seed: int,
             progress: Callable[[int], None] | None = None,
             workers: int | None = None) -> BackfillSummary:
    """Simulate [start, end) (UTC epoch s) for every line into `store`; see the module doc.

    `progress` is called with 1 after each simulated day is written. The lines are split
    over `workers` processes (default: one per line, at most one per CPU and one more);
    with ``workers=1`` everything runs in this process. The result does not depend on it.
    """
    lines = list(config.lines)
    if workers is None:
        workers = min(len(lines), (os.cpu_count() or 1) + 1)
    workers = max(1, min(workers, len(lines)))
    summary = BackfillSummary(workers=workers)
    site = config.site.id
    checkpoints = {line.id: store.load_checkpoint(site, line.id) for line in lines}
    edges = day_edges(config, start, end)
    if len(edges) < 2:
        return summary

    def commit(outs: list[_DayOut]) -> None:
        batch = WriteBatch()
        for out in outs:
            batch.minutes += out.batch.minutes
            batch.stops += out.batch.stops
            batch.deleted_stops += out.batch.deleted_stops
            batch.statuses += out.batch.statuses
            batch.checkpoints[out.line] = out.checkpoint
            summary.samples += out.samples
            summary.skipped.update(out.skipped)
        summary.minutes += len(batch.minutes)
        summary.stops += len(batch.stops)
        store.write(batch)
        summary.days += 1
        if progress is not None:
            progress(1)

    for line in lines:
        first = summary.started[line.id] = line_start(start, checkpoints[line.id])
        if first > start:
            logger.warning("line %s: the store already holds samples up to %s; backfilling "
                           "it from there", line.id,
                           dt.datetime.fromtimestamp(first, config.site.zone()))
    if workers == 1:
        runs = [_LineRun(config, line, seed, start, checkpoints[line.id]) for line in lines]
        last = len(edges) - 2
        for i, day_end in enumerate(edges[1:]):
            commit([run.step(day_end, final=i == last) for run in runs])
    else:
        _parallel(config, lines, seed, start, checkpoints, edges, workers, commit)
    logger.info("backfill %s..%s: %s", start, end, summary.render())
    return summary


def _parallel(config: PlantConfig, lines: list[Line], seed: int, start: int,
              checkpoints: dict[str, dict[str, Any] | None], edges: list[int], workers: int,
              commit: Callable[[list[_DayOut]], None]) -> None:
    """Run the lines in worker processes; this process writes each day as it completes."""
    # fork: the workers inherit the config, and callers need no ``__main__`` guard (spawn
    # would re-import the caller's main module). Workers use only a simulator and a tracker
    # each; the store stays with this process.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    groups = [lines[i::workers] for i in range(workers)]
    queues = [context.Queue(maxsize=QUEUE_DAYS) for _ in groups]
    procs = [context.Process(target=_worker, name=f"backfill-{i}", daemon=True,
                             args=(config, group, seed, start, checkpoints, edges, q))
             for i, (group, q) in enumerate(zip(groups, queues, strict=True))]
    for proc in procs:
        proc.start()
    try:
        for _day in edges[1:]:
            outs: list[_DayOut] = []
            for proc, q in zip(procs, queues, strict=True):
                outs += _receive(proc, q)
            commit(outs)
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()


def _receive(proc: Any, q: Any) -> list[_DayOut]:
    while True:
        try:
            item = q.get(timeout=POLL_S)
        except queue.Empty:
            if not proc.is_alive():
                raise BackfillError(f"{proc.name} ended without its output "
                                    f"(exit code {proc.exitcode})") from None
            continue
        if isinstance(item, str):
            raise BackfillError(f"{proc.name} failed:\n{item}")
        return [out.unpack() for out in item]
