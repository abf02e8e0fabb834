"""Benchmark: KPIs of one line over 365 days of minute rollups (DESIGN §12, target < 1 s).

Writes 365 days × 1440 minute records of line L1 (bench/plant.yaml) with
``SqliteStore.write``, one transaction per day. The records follow the same plant process
as bench/bench_replay.py (running, failures, micro stops, changeovers, lunch breaks, idle
Sundays): every record's seven category seconds sum to its span of 60 s, and counts, ideal
time and energy follow from its running seconds. Then times ``kpi_rows(config, store, "L1",
start, end, by)`` over the 365 days by day, hour, shift and as one bucket: cold (the file
evicted from the OS page cache, a fresh connection) and warm (best of N), next to the bare
baseline of one ``SELECT SUM(…) … GROUP BY`` over the same table.

Run: ``.venv/bin/python bench/bench_kpi.py [--days N] [--out DIR] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_replay as plant  # the plant process and machine facts of the replay benchmark

from linewatch.config import PlantConfig
from linewatch.kpi_query import kpi_rows
from linewatch.line_model import LineModel
from linewatch.rollup import ADDITIVE_FIELDS, CATEGORY_FIELDS, MinuteRecord, WriteBatch
from linewatch.shift_calendar import ShiftCalendar
from linewatch.storage.sqlite import SqliteStore

TARGET_S = 1.0  # DESIGN §12: KPI by day, 1 line, 365 days of minute rollups
LINE = "L1"
START_DATE = dt.date(2025, 11, 25)  # 365 days up to today, 2026-11-25
RAW_CATEGORY = {
    "run": "running",
    "fail": "unplanned_stop",
    "micro": "unplanned_stop",
    "setup": "setup",
    "break": "planned_stop",  # in a break: planned_stop either way (T3)
    "idle": "unscheduled",  # idle blocks are the off-shift time (T2)
}


def window(config: PlantConfig, days: int) -> tuple[int, int]:
    zone = config.site.zone()
    start = dt.datetime.combine(START_DATE, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(START_DATE + dt.timedelta(days=days), dt.time(0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def minute_records(config: PlantConfig, days: int) -> list[MinuteRecord]:
    """The line's minute records over the window, by (minute, product), in time order."""
    rng = random.Random(f"{plant.SEED}-kpi")
    zone = config.site.zone()
    calendar = ShiftCalendar(config.calendar, zone)
    start, end = window(config, days)
    spec = next(s for s in plant.SPECS if s.line == LINE)
    blocks = plant.blocks(calendar, start, end, through_breaks=not spec.stops_for_break)
    phases = plant.phases(blocks, [p.id for p in config.products], rng)
    model = LineModel.build(config, config.line(LINE))
    cycles = plant.cycle_of(config, LINE)
    micro_stop_s = config.policy.micro_stop_s
    records: dict[tuple[int, str], MinuteRecord] = {}

    def record(minute: int, product: str) -> MinuteRecord:
        found = records.get((minute, product))
        if found is None:
            found = records[(minute, product)] = MinuteRecord(
                site=config.site.id,
                line=LINE,
                ts=minute,
                product=product,
                shift=calendar.shift_at(minute),
            )
        return found

    made = 0.0  # cycles made so far, fractional
    for phase in phases:
        a, b = int(phase.start), int(phase.end)
        if a >= b:
            continue
        category = RAW_CATEGORY[phase.kind]
        if category == "unplanned_stop" and b - a < micro_stop_s:
            category = "micro_stop"  # T5: a stop shorter than micro_stop_s
        field = category + "_s"
        ideal, units = cycles[phase.product]
        per_s = 1 / (ideal * plant.CYCLE_FACTOR)
        s = a
        while s < b:
            minute = s - s % 60
            e = min(b, minute + 60)
            n = e - s
            rec = record(minute, phase.product)
            rec.span_s += n
            setattr(rec, field, getattr(rec, field) + n)
            if phase.kind != "idle":
                rec.scheduled_s += n
            if phase.kind == "break":
                rec.break_s += n
            if phase.kind == "run":
                before = int(made)
                made += n * per_s * rng.uniform(0.97, 1.03)
                shots = int(made) - before
                rejects = sum(
                    rng.randint(1, units) for _ in range(shots) if rng.random() < plant.REJECT_RATE
                )
                rec.total_count += shots * units
                rec.reject_count += rejects
                rec.good_count += shots * units - rejects
                rec.ideal_s += shots * units * model.unit_ideal_s[phase.product]
            kw = plant.KW_RUNNING if phase.kind == "run" else plant.KW_IDLE
            rec.energy_kwh = (rec.energy_kwh or 0.0) + kw * n / 3600
            s = e
        if category == "unplanned_stop":
            record(a - a % 60, phase.product).failures += 1  # T6
    out = sorted(records.values(), key=lambda r: (r.ts, r.product))
    for rec in out:
        if rec.energy_kwh is not None:
            rec.energy_kwh = round(rec.energy_kwh, 4)
        assert rec.span_s == sum(getattr(rec, name) for name in CATEGORY_FIELDS), rec
    return out


def load(store: SqliteStore, records: list[MinuteRecord]) -> None:
    """One write (transaction) per local day, as an edge's batches would add up to."""
    day: list[MinuteRecord] = []
    for rec in records:
        if day and (rec.ts + 8 * 3600) // 86400 != (day[0].ts + 8 * 3600) // 86400:
            store.write(WriteBatch(minutes=day))
            day = []
        day.append(rec)
    if day:
        store.write(WriteBatch(minutes=day))


def evict(db: Path) -> None:
    """Drop the file's pages from the OS page cache (cold start without root)."""
    for path in (db, Path(f"{db}-wal")):
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def bare_sql(
    start: int, end: int, by: str, zone_offset_s: int, table: str = "lw_minute"
) -> tuple[str, tuple[Any, ...]]:
    """One raw SUM … GROUP BY over a table (a fixed-offset zone: Asia/Hong_Kong has no DST)."""
    width = {"day": 86400, "hour": 3600}[by]
    sums = ", ".join(f"SUM({name})" for name in (*ADDITIVE_FIELDS, "energy_kwh"))
    sql = (
        f"SELECT (ts + ?) / {width} AS bucket, {sums} FROM {table} "
        "WHERE site = ? AND line = ? AND ts >= ? AND ts < ? GROUP BY bucket ORDER BY bucket"
    )
    return sql, (zone_offset_s, "bench", LINE, start, end)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best wall seconds, best CPU seconds, result) of `repeat` calls of fn()."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of rollups (default 365)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for the store (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="warm runs, best kept (default 5)")
    args = parser.parse_args(argv)

    workdir = args.out or Path(tempfile.mkdtemp(prefix="linewatch-bench-kpi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "kpi.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    try:
        config = plant.plant_config(db)
        start, end = window(config, args.days)
        t0 = time.perf_counter()
        records = minute_records(config, args.days)
        gen_s = time.perf_counter() - t0
        print(f"generated {len(records):,} minute records in {gen_s:.1f} s", file=sys.stderr)
        with SqliteStore(db) as store:
            t0, c0 = time.perf_counter(), time.process_time()
            load(store, records)
            load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"wrote them in {load_s:.1f} s", file=sys.stderr)
        db_mb = db.stat().st_size / 2**20
        zone = config.site.zone()
        offset = int(dt.datetime.fromtimestamp(start, zone).utcoffset().total_seconds())

        rows: list[tuple[str, int, tuple[float, float], tuple[float, float]]] = []
        results: dict[str, Any] = {}
        queries: list[tuple[str, str | None, Callable[[SqliteStore], Any]]] = []
        for by in ("day", "hour", "shift", None):
            queries.append(
                (
                    f"kpi_rows(by={by!r})",
                    by,
                    lambda s, b=by: kpi_rows(config, s, LINE, start, end, b),
                )
            )
        for by, table in (("day", "lw_minute"), ("hour", "lw_minute"), ("day", "lw_minute_15m")):
            sql, params = bare_sql(start, end, by, offset, table)
            # A raw query on the store's own connection (same pragmas, same file).
            queries.append(
                (
                    f"bare SQL: one SELECT SUM(…) FROM {table} GROUP BY {by}",
                    f"bare_{by}" if table == "lw_minute" else f"bare_{by}_15m",
                    lambda s, q=sql, p=params: s._conn.execute(q, p).fetchall(),
                )
            )
        for label, key, query in queries:
            evict(db)
            with SqliteStore(db, readonly=True) as store:
                cold = timed(lambda s=store, q=query: q(s), 1)
                warm = timed(lambda s=store, q=query: q(s), args.repeat)
            results[str(key)] = warm[2]
            rows.append((label, len(warm[2]), cold[:2], warm[:2]))
            print(f"{label}: cold {cold[0]:.3f} s, warm {warm[0]:.3f} s", file=sys.stderr)

        # The two must agree: linewatch's day sums equal the raw SQL's.
        check = all(
            row["total_count"] == raw[1 + ADDITIVE_FIELDS.index("total_count")]
            and row["running_s"] == raw[1 + ADDITIVE_FIELDS.index("running_s")]
            and row["failures"] == raw[1 + ADDITIVE_FIELDS.index("failures")]
            for row, raw in zip(results["day"], results["bare_day"], strict=True)
        )
        year = results["None"][0]
        print(
            report(rows, plant.machine(), len(records), db_mb, load_s, load_cpu, args, check, year)
        )
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(
    rows: list[tuple[str, int, tuple[float, float], tuple[float, float]]],
    facts: dict[str, str],
    records: int,
    db_mb: float,
    load_s: float,
    load_cpu: float,
    args: argparse.Namespace,
    check: bool,
    year: dict[str, Any],
) -> str:
    out = io.StringIO()
    out.write("## Machine\n\n| | |\n|---|---|\n")
    for key, value in facts.items():
        out.write(f"| {key} | {value} |\n")
    out.write(
        f"\n## Input\n\n{records:,} minute records of line {LINE} ({args.days} days from "
        f"{START_DATE}), written with SqliteStore.write one day per transaction in "
        f"{load_s:.1f} s wall / {load_cpu:.1f} s CPU ({records / load_s:,.0f} records/s); "
        f"store {db_mb:.0f} MB.\n\nOver the whole window: OEE {year['oee']:.3f}, "
        f"availability {year['availability']:.3f}, performance {year['performance']:.3f}, "
        f"quality {year['quality']:.3f}, {year['failures']} failures, "
        f"completeness {year['completeness']:.3f}.\n"
    )
    out.write(f"\n## KPI query (DESIGN §12 target: by day < {TARGET_S:.0f} s)\n\n")
    out.write(
        f"| query | buckets | cold s (wall / CPU) | warm s, best of {args.repeat} "
        "(wall / CPU) | verdict |\n|---|---:|---:|---:|---|\n"
    )
    for label, buckets, cold, warm in rows:
        verdict = ""
        if label == "kpi_rows(by='day')":
            worst = max(cold[0], warm[0])
            verdict = (
                f"meets ({TARGET_S / worst:.1f}× under)"
                if worst < TARGET_S
                else f"MISSES ({worst / TARGET_S:.1f}× over)"
            )
        out.write(
            f"| {label} | {buckets:,} | {cold[0]:.3f} / {cold[1]:.3f} | "
            f"{warm[0]:.3f} / {warm[1]:.3f} | {verdict} |\n"
        )
    out.write(f"\nDay sums of kpi_rows equal the bare SQL's: {'yes' if check else 'NO'}.\n")
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
