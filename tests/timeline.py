"""Test helpers: build a plant from YAML text and feed one line's samples through the model.

Times in rows are local wall-clock strings in the plant's zone ("2026-03-02 08:00:05"),
so a hand computation in a test comment reads like the shift it describes.
"""

from __future__ import annotations

import csv
import datetime as dt
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linewatch.config import PlantConfig, parse_config
from linewatch.kpi_query import kpi_rows, parse_time
from linewatch.line_model import LineModel
from linewatch.replay import replay
from linewatch.rollup import MinuteRecord, StopEvent, Totals
from linewatch.sample import Quality, Sample
from linewatch.shift_calendar import ShiftCalendar
from linewatch.state_tracker import LineTracker
from linewatch.storage.sqlite import SqliteStore

Row = tuple[str, str, Any] | tuple[str, str, Any, str]


def plant(yaml_text: str) -> PlantConfig:
    return parse_config(textwrap.dedent(yaml_text), "test.yaml")


def epoch(config: PlantConfig, local: str) -> int:
    """UTC epoch seconds of a local wall-clock time (or an ISO time with offset)."""
    return parse_time(local, config.site.zone())


def samples(config: PlantConfig, rows: list[Row], line: str = "L1") -> list[Sample]:
    out = []
    for row in rows:
        quality = Quality.BAD if len(row) > 3 and row[3] == "bad" else Quality.GOOD
        text = row[0]
        zone = config.site.zone()
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        ts_ms = round(moment.timestamp() * 1000)
        out.append(Sample(ts_ms, line, row[1], row[2], quality))
    return out


@dataclass
class Run:
    """What a tracker emitted: records merged by key (later writes replace), stops by start."""

    tracker: LineTracker
    minutes: dict[tuple, MinuteRecord] = field(default_factory=dict)
    stops: dict[int, StopEvent] = field(default_factory=dict)

    def totals(self) -> Totals:
        total = Totals()
        for record in self.minutes.values():
            total.add(record)
        return total

    def category_seconds(self) -> dict[str, int]:
        totals = self.totals()
        return {name: getattr(totals, name) for name in (
            "running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
            "no_data_s", "unscheduled_s")}

    def per_minute(self) -> dict[int, Totals]:
        out: dict[int, Totals] = defaultdict(Totals)
        for record in self.minutes.values():
            out[record.ts].add(record)
        return dict(out)


def tracker(config: PlantConfig, line: str = "L1", checkpoint: dict | None = None
            ) -> LineTracker:
    calendar = ShiftCalendar(config.calendar, config.site.zone())
    return LineTracker(LineModel.build(config, config.line(line)), calendar, checkpoint)


def collect(run: Run) -> None:
    out = run.tracker.drain()
    for record in out.minutes:
        if record.is_empty():
            run.minutes.pop(record.key, None)
        else:
            run.minutes[record.key] = record
    for event in out.stops:
        run.stops[event.start] = event
    for _site, _line, start in out.deleted_stops:
        run.stops.pop(start, None)


def feed(config: PlantConfig, rows: list[Row], line: str = "L1", finish: bool = True) -> Run:
    """Apply rows to a fresh tracker (end of input as at the end of a replay, R3)."""
    run = Run(tracker(config, line))
    for sample in samples(config, rows, line):
        run.tracker.apply(sample)
    if finish:
        run.tracker.finish()
    collect(run)
    return run


def write_csv(path: Path, config: PlantConfig, rows: list[Row], line: str = "L1") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "asset", "signal", "value", "quality"])
        for sample in samples(config, rows, line):
            moment = dt.datetime.fromtimestamp(sample.ts / 1000, dt.UTC)
            writer.writerow([moment.isoformat().replace("+00:00", "Z"), sample.asset,
                             sample.signal, sample.value, sample.quality.value])
    return path


def replay_rows(tmp_path: Path, config: PlantConfig, rows: list[Row], line: str = "L1",
                name: str = "samples.csv") -> SqliteStore:
    """Replay rows through `linewatch.replay` into a SQLite store under tmp_path."""
    store = SqliteStore(tmp_path / "linewatch.db")
    replay(config, store, write_csv(tmp_path / name, config, rows, line))
    return store


def kpi(config: PlantConfig, store: SqliteStore, start: str, end: str, by: str | None = None,
        line: str = "L1") -> list[dict[str, Any]]:
    zone = config.site.zone()
    return kpi_rows(config, store, line, parse_time(start, zone), parse_time(end, zone),
                    by)  # type: ignore[arg-type]
