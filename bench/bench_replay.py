"""Benchmark: `linewatch replay` of a realistic recorded month (DESIGN §12, target ≥ 50,000/s).

Generates a deterministic samples CSV for the three lines of bench/plant.yaml (30 days by
default, ~2 million rows), then times, each stage in its own fresh Python process:

- the bare baselines: reading the CSV with ``csv`` + ``datetime.fromisoformat`` (no tracker,
  no store), and a bare ``sqlite3`` ``executemany`` of the same rows into a table shaped
  like ``lw_sample`` (same unique index, WAL, synchronous=NORMAL);
- linewatch's own CSV reader (``linewatch.replay.read_samples``);
- ``replay()`` into a store that discards everything (parse + tracker only);
- ``replay(store_samples=False)`` into a fresh SqliteStore (rollups, stops, checkpoints);
- ``replay()`` into a fresh SqliteStore (everything, as ``linewatch replay`` does).

Run: ``.venv/bin/python bench/bench_replay.py [--days N] [--out DIR] [--repeat N]``;
``--profile`` runs one replay under cProfile and prints the hot spots instead.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import datetime as dt
import heapq
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from linewatch.config import PlantConfig, load_config
from linewatch.kpi_query import kpi_rows
from linewatch.replay import ReplaySummary, read_samples, replay
from linewatch.shift_calendar import ShiftCalendar
from linewatch.storage.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "plant.yaml"
TARGET_PER_S = 50_000  # DESIGN §12: replay / backfill through the tracker
SEED = 20261125
START_DATE = dt.date(2026, 3, 2)  # a Monday; local midnight in the site's zone

# The process every line follows (all times in seconds).
MTBF_S = 90 * 60  # mean running time between failures (exponential)
MTTR_S = 10 * 60  # mean failure length (exponential, at least MIN_FAILURE_S)
MIN_FAILURE_S = 30
MICRO_EVERY_S = 15 * 60  # mean running time between micro stops (exponential)
MICRO_S = (20, 90)  # micro stop length, uniform
CHANGEOVER_EVERY_S = 8 * 3600  # mean wall time between product changeovers
CHANGEOVER_S = 20 * 60  # mean changeover (setup) length
CYCLE_FACTOR = 1.05  # mean cycle / ideal cycle
CYCLE_NOISE = 0.05  # each cycle within ±5 % of the mean cycle
REJECT_RATE = 0.03  # share of cycles with rejects
TELEMETRY_S = 5  # temperature every 5 s
ENERGY_S = 60  # energy meter every 60 s
KW_RUNNING, KW_IDLE = 15.0, 3.0

# Raw PLC values, as bench/plant.yaml maps them.
STATE_VALUE = {"run": "1", "fail": "2", "micro": "2", "setup": "3", "break": "4", "idle": "0"}
RECIPE = {"P30": "101", "P38": "102"}
FAILURE_REASONS = ("17", "21", "30")  # fault, jam, material shortage
FAILURE_WEIGHTS = (3, 5, 1)


@dataclass(frozen=True)
class LineSpec:
    """How one bench line's PLC publishes (the config says how linewatch reads it)."""

    line: str
    state_signal: bool  # publishes state and reason (detection: state)
    counts: tuple[str, ...]  # count registers published, one sample per change
    stops_for_break: bool  # goes to state 4 over lunch; otherwise runs through
    telemetry: bool  # publishes a temperature every TELEMETRY_S
    counter_start: int  # register value at the start of the file


SPECS = (
    LineSpec("L1", True, ("total_count", "reject_count"), True, True, 1_234_567),
    LineSpec("L2", True, ("good_count", "reject_count"), False, True, 48_000),
    # 16-bit counter box, starting near the top so that it rolls over on the first day.
    LineSpec("L3", False, ("total_count",), True, False, 60_000),
)


@dataclass(frozen=True, slots=True)
class Phase:
    start: float
    end: float
    kind: str  # run | fail | micro | setup | break | idle
    info: str | None  # fail: raw reason value
    product: str  # product in force (a setup switches it)


Event = tuple[int, str, str, str]  # (ts_ms, signal, value, quality)


# --- the plant ----------------------------------------------------------------------------


def plant_config(db: Path | None = None) -> PlantConfig:
    config = load_config(CONFIG)
    if db is None:
        return config
    storage = config.storage.model_copy(
        update={"sqlite": config.storage.sqlite.model_copy(update={"path": db})}
    )
    return config.model_copy(update={"storage": storage})


def window(config: PlantConfig, days: int) -> tuple[int, int]:
    """UTC epoch seconds of local midnight of START_DATE and `days` later."""
    zone = config.site.zone()
    start = dt.datetime.combine(START_DATE, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(START_DATE + dt.timedelta(days=days), dt.time(0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def cycle_of(config: PlantConfig, line_id: str) -> dict[str, tuple[float, int]]:
    """Product id -> (ideal_cycle_s, units_per_cycle) of one line, overrides applied."""
    line = config.line(line_id)
    out = {}
    for product in config.products:
        override = line.products.get(product.id)
        cycle, units = product.ideal_cycle_s, product.units_per_cycle
        if override is not None:
            cycle = override.ideal_cycle_s or cycle
            units = override.units_per_cycle or units
        out[product.id] = (cycle, units)
    return out


def blocks(
    calendar: ShiftCalendar, start: int, end: int, through_breaks: bool
) -> list[tuple[int, int, str]]:
    """The window as maximal (start, end, work|break|idle) blocks from the shift calendar."""
    out: list[tuple[int, int, str]] = []
    for span in calendar.spans(start, end):
        if span.kind == "off":
            kind = "idle"
        elif span.kind == "break" and not through_breaks:
            kind = "break"
        else:
            kind = "work"
        if out and out[-1][2] == kind:
            out[-1] = (out[-1][0], span.end, kind)
        else:
            out.append((span.start, span.end, kind))
    return out


def phases(
    blocks_: list[tuple[int, int, str]], products: list[str], rng: random.Random
) -> list[Phase]:
    """Running periods broken by failures, micro stops and changeovers, inside work blocks."""
    out: list[Phase] = []
    product = products[0]
    fail_left = rng.expovariate(1 / MTBF_S)
    micro_left = rng.expovariate(1 / MICRO_EVERY_S)
    next_change = blocks_[0][0] + rng.uniform(0.3, 1.0) * CHANGEOVER_EVERY_S

    def add(a: float, b: float, kind: str, info: str | None = None) -> None:
        if out and out[-1].kind == kind and out[-1].info == info and out[-1].end == a:
            out[-1] = Phase(out[-1].start, b, kind, info, product)
        else:
            out.append(Phase(a, b, kind, info, product))

    for a, b, kind in blocks_:
        if kind != "work":
            add(a, b, kind)
            continue
        t = float(a)
        while t < b:
            step = min(fail_left, micro_left, max(0.0, next_change - t), b - t)
            if step > 0:
                add(t, t + step, "run")
                t += step
                fail_left -= step
                micro_left -= step
            if t >= b:
                break
            info = None
            if fail_left <= 0:
                kind = "fail"
                info = rng.choices(FAILURE_REASONS, FAILURE_WEIGHTS)[0]
                length = max(MIN_FAILURE_S, rng.expovariate(1 / MTTR_S))
                fail_left = rng.expovariate(1 / MTBF_S)
            elif micro_left <= 0:
                kind = "micro"
                length = rng.uniform(*MICRO_S)
                micro_left = rng.expovariate(1 / MICRO_EVERY_S)
            else:
                kind = "setup"
                length = max(300.0, rng.gauss(CHANGEOVER_S, 180))
                product = products[(products.index(product) + 1) % len(products)]
                next_change = t + length + rng.gauss(CHANGEOVER_EVERY_S, 1800)
            end = min(t + length, b)
            add(t, end, kind, info)
            t = end
    return out


def process_events(
    spec: LineSpec,
    phases_: list[Phase],
    cycles: dict[str, tuple[float, int]],
    wrap: int,
    bad_times: list[float],
    rng: random.Random,
) -> Iterator[Event]:
    """State, reason, product and count samples of one line, in time order."""
    registers = dict.fromkeys(spec.counts, spec.counter_start)
    if "reject_count" in registers:
        registers["reject_count"] = spec.counter_start // 40
    t0 = int(phases_[0].start * 1000)
    # What an OPC UA subscription delivers first: every mapped value once.
    yield (t0, "product", RECIPE[phases_[0].product], "good")
    for role, value in registers.items():
        yield (t0, role, str(value % wrap), "good")
    last_state: str | None = None
    bad = iter(sorted(bad_times))
    next_bad = next(bad, None)
    prev_kind = None
    for phase in phases_:
        events: list[Event] = []
        ms = int(phase.start * 1000)
        state = STATE_VALUE[phase.kind]
        if spec.state_signal:
            if state != last_state:
                events.append((ms, "state", state, "good"))
                last_state = state
            if phase.kind == "fail":
                delay = int(rng.uniform(1.0, 4.0) * 1000)
                events.append((ms + delay, "reason", phase.info or "0", "good"))
            elif prev_kind == "fail":
                events.append((ms + 50, "reason", "0", "good"))  # alarm acknowledged
        if phase.kind == "setup":
            switch = min(phase.start + 60, (phase.start + phase.end) / 2)
            events.append((int(switch * 1000), "product", RECIPE[phase.product], "good"))
        while next_bad is not None and next_bad < phase.end:
            bad_ms = int(next_bad * 1000)
            if spec.state_signal:
                # The PLC connection drops for a few seconds: a bad-quality state sample,
                # then the current state again once it is back.
                events.append((bad_ms, "state", state, "bad"))
                back = next_bad + rng.uniform(3, 20)
                if back < phase.end:
                    events.append((int(back * 1000), "state", state, "good"))
                else:
                    last_state = None
            else:
                role = spec.counts[0]
                events.append((bad_ms, role, str(registers[role] % wrap), "bad"))
            next_bad = next(bad, None)
        if phase.kind == "run":
            ideal, units = cycles[phase.product]
            mean = ideal * CYCLE_FACTOR
            t = phase.start + mean * rng.uniform(1 - CYCLE_NOISE, 1 + CYCLE_NOISE)
            while t < phase.end:
                ms = int(t * 1000)
                reject = rng.random() < REJECT_RATE
                if spec.counts == ("good_count", "reject_count"):
                    role = "reject_count" if reject else "good_count"
                    registers[role] += units
                    events.append((ms, role, str(registers[role] % wrap), "good"))
                else:
                    registers["total_count"] += units
                    events.append((ms, "total_count", str(registers["total_count"] % wrap), "good"))
                    if reject and "reject_count" in registers:
                        registers["reject_count"] += rng.randint(1, units)
                        events.append(
                            (ms + 20, "reject_count", str(registers["reject_count"] % wrap), "good")
                        )
                t += mean * rng.uniform(1 - CYCLE_NOISE, 1 + CYCLE_NOISE)
        events.sort(key=itemgetter(0))
        yield from events
        prev_kind = phase.kind


def periodic_events(
    spec: LineSpec, phases_: list[Phase], rng: random.Random, signal: str, every: int
) -> Iterator[Event]:
    """energy_kwh (cumulative meter) or temperature every `every` seconds."""
    start, end = phases_[0].start, phases_[-1].end
    offset = rng.uniform(0, every)
    i = 0
    kwh = rng.uniform(10_000, 90_000)
    temp = 180.0
    k = 0
    while True:
        t = start + offset + k * every
        if t >= end:
            return
        while phases_[i].end <= t:
            i += 1
        running = phases_[i].kind == "run"
        if signal == "energy_kwh":
            if k:
                kwh += (KW_RUNNING if running else KW_IDLE) * every / 3600
            value = f"{kwh:.3f}"
        else:
            temp += ((210.0 if running else 180.0) - temp) * 0.02 + rng.gauss(0, 0.3)
            value = f"{temp:.1f}"
        yield (int(t * 1000), signal, value, "good")
        k += 1


def line_events(config: PlantConfig, spec: LineSpec, days: int) -> Iterator[Event]:
    rng = random.Random(f"{SEED}-{spec.line}")
    zone = config.site.zone()
    calendar = ShiftCalendar(config.calendar, zone)
    start, end = window(config, days)
    line_blocks = blocks(calendar, start, end, through_breaks=not spec.stops_for_break)
    line_phases = phases(line_blocks, [p.id for p in config.products], rng)
    # One connection drop a day, in the middle of the day shift.
    bad_times = [start + d * 86400 + rng.uniform(9 * 3600, 19 * 3600) for d in range(days)]
    streams: list[Iterable[Event]] = [
        process_events(
            spec,
            line_phases,
            cycle_of(config, spec.line),
            config.line(spec.line).counter_max + 1,
            bad_times,
            random.Random(f"{SEED}-{spec.line}-process"),
        ),
        periodic_events(
            spec, line_phases, random.Random(f"{SEED}-{spec.line}-energy"), "energy_kwh", ENERGY_S
        ),
    ]
    if spec.telemetry:
        streams.append(
            periodic_events(
                spec,
                line_phases,
                random.Random(f"{SEED}-{spec.line}-temp"),
                "temperature",
                TELEMETRY_S,
            )
        )
    return heapq.merge(*streams, key=itemgetter(0))


def _tagged(line: str, events: Iterator[Event]) -> Iterator[tuple[int, str, str, str, str]]:
    for ts_ms, signal, value, quality in events:
        yield ts_ms, line, signal, value, quality


def generate(config: PlantConfig, days: int, path: Path) -> int:
    """Write the samples CSV of all lines in time order; return the number of rows."""
    merged = heapq.merge(
        *[_tagged(spec.line, line_events(config, spec, days)) for spec in SPECS],
        key=itemgetter(0),
    )
    rows = 0
    last_sec = -1
    prefix = ""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("timestamp", "asset", "signal", "value", "quality"))
        for ts_ms, line, signal, value, quality in merged:
            sec, ms = divmod(ts_ms, 1000)
            if sec != last_sec:
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                last_sec = sec
            writer.writerow((f"{prefix}.{ms:03d}Z", line, signal, value, quality))
            rows += 1
    return rows


# --- stages (each runs in a fresh process: `--stage NAME`) --------------------------------


class NullStore:
    """A store that keeps nothing: replay() through it measures parsing and the tracker."""

    def load_checkpoint(self, site: str, line: str) -> None:
        return None

    def write(self, batch: object) -> None:
        return None


def bare_parse(path: Path) -> list[tuple[int, str, str, str, str]]:
    """The bare baseline: csv + datetime.fromisoformat, rows to (ts_ms, asset, ...)."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    one_ms = dt.timedelta(milliseconds=1)
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for ts, asset, signal, value, quality in reader:
            out.append(
                ((dt.datetime.fromisoformat(ts) - epoch) // one_ms, asset, signal, value, quality)
            )
    return out


def bare_sqlite(
    rows: list[tuple[int, str, str, str, str]], db: Path, site: str
) -> tuple[float, float]:
    """The bare baseline: executemany of the raw rows into an lw_sample-shaped table."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE s (site TEXT NOT NULL, line TEXT NOT NULL, signal TEXT NOT NULL,"
        " ts_ms INTEGER NOT NULL, value REAL, text TEXT, good INTEGER NOT NULL)"
    )
    conn.execute("CREATE UNIQUE INDEX s_time ON s (site, line, ts_ms, signal)")
    values = []
    for ts_ms, asset, signal, value, quality in rows:
        try:
            number: float | None = float(value)
            text = None
        except ValueError:
            number, text = None, value
        values.append((site, asset, signal, ts_ms, number, text, quality != "bad"))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(values), 50_000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO s VALUES (?, ?, ?, ?, ?, ?, ?)", values[i : i + 50_000]
        )
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start, time.process_time() - cpu


def run_stage(stage: str, csv_path: Path, workdir: Path) -> dict[str, Any]:
    config = plant_config(workdir / f"{stage}.db")
    db = workdir / f"{stage}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    result: dict[str, Any] = {"stage": stage, "load_before": os.getloadavg()[0]}
    if stage == "bare_sqlite":
        parsed = bare_parse(csv_path)
        rows = len(parsed)
        seconds, cpu = bare_sqlite(parsed, db, config.site.id)
    else:
        start, cpu0 = time.perf_counter(), time.process_time()
        if stage == "bare_parse":
            rows = len(bare_parse(csv_path))
        elif stage == "read_samples":
            rows = sum(1 for _ in read_samples(csv_path, config, ReplaySummary()))
        else:
            store: Any = NullStore() if stage == "replay_null" else SqliteStore(db)
            summary = replay(config, store, csv_path, store_samples=stage == "replay")
            rows = summary.rows
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    if stage.startswith("replay"):
        rows = summary.rows
        result["applied"] = summary.applied
        result["skipped"] = dict(summary.skipped)
        result["unmapped"] = dict(summary.unmapped)
        if stage == "replay":
            result["kpis"] = realism(config, store, csv_path)
            store.close()
            result["db_mb"] = db.stat().st_size / 2**20
    result["rows"] = rows
    result["seconds"] = seconds
    result["cpu"] = cpu
    result["load_after"] = os.getloadavg()[0]
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def csv_window(config: PlantConfig, path: Path) -> tuple[int, int]:
    """The whole local days from the file's first to its last sample, as UTC epoch s."""
    with path.open("rb") as handle:
        handle.readline()
        first = handle.readline().split(b",", 1)[0].decode()
        handle.seek(max(0, path.stat().st_size - 4096))
        last = handle.read().splitlines()[-1].split(b",", 1)[0].decode()
    zone = config.site.zone()
    day0 = dt.datetime.fromisoformat(first).astimezone(zone).date()
    day1 = dt.datetime.fromisoformat(last).astimezone(zone).date() + dt.timedelta(days=1)
    return tuple(  # type: ignore[return-value]
        int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp()) for day in (day0, day1)
    )


def realism(config: PlantConfig, store: SqliteStore, csv_path: Path) -> dict[str, Any]:
    """KPIs of each line over the whole file, to show that the data looks like a plant."""
    start, end = csv_window(config, csv_path)
    out = {}
    for line in config.lines:
        (row,) = kpi_rows(config, store, line.id, start, end, None)
        out[line.id] = {
            key: row[key]
            for key in (
                "availability",
                "performance",
                "quality",
                "oee",
                "failures",
                "mttr_s",
                "micro_stop_s",
                "setup_s",
                "no_data_s",
                "good_count",
                "energy_kwh",
            )
        }
    return out


# --- the report ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
        "cpu": model,
        "ram": ram,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


STAGES = (
    ("bare_parse", "bare: csv + datetime.fromisoformat (no tracker, no store)"),
    ("bare_sqlite", "bare: sqlite3 executemany of the raw rows (lw_sample shape)"),
    ("read_samples", "linewatch.replay.read_samples (CSV → Sample)"),
    ("replay_null", "replay() into a null store (parse + tracker)"),
    ("replay_nosamples", "replay(store_samples=False) → SqliteStore"),
    ("replay", "replay() → SqliteStore (as `linewatch replay`)"),
)


def spawn(stage: str, csv_path: Path, workdir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--stage",
            stage,
            "--input",
            str(csv_path),
            "--workdir",
            str(workdir),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict[str, Any]], facts: dict[str, str], csv_info: str) -> str:
    out = io.StringIO()
    out.write("## Machine\n\n| | |\n|---|---|\n")
    for key, value in facts.items():
        out.write(f"| {key} | {value} |\n")
    out.write(
        f"\n## Input\n\n{csv_info}\n\n## Replay (DESIGN §12 target: "
        f"≥ {TARGET_PER_S:,} samples/s)\n\n"
    )
    out.write(
        "| stage | rows | wall s | CPU s | rows/s (wall) | rows/s (CPU) | vs target (CPU) "
        "| peak RSS MB | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for stage, label in STAGES:
        r = results.get(stage)
        if r is None:
            continue
        rate = r["rows"] / r["cpu"]
        out.write(
            f"| {label} | {r['rows']:,} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {rate:,.0f} | "
            f"{rate / TARGET_PER_S:.2f}× | {r['rss_mb']:.0f} | "
            f"{r['load_before']:.1f}–{r['load_after']:.1f} |\n"
        )
    full = results.get("replay")
    if full:
        rate = full["rows"] / full["cpu"]
        verdict = (
            "MEETS the target"
            if rate >= TARGET_PER_S
            else f"MISSES the target (needs {TARGET_PER_S / rate:.2f}× faster)"
        )
        out.write(
            f"\nreplay(): {rate:,.0f} samples per CPU second "
            f"({full['rows'] / full['seconds']:,.0f}/s wall) → {verdict}; "
            f"applied {full['applied']:,}, skipped {full['skipped'] or 0}, "
            f"unmapped {full['unmapped'] or 0}; store {full['db_mb']:.0f} MB.\n"
        )
        bare = results.get("bare_parse")
        if bare:
            out.write(
                f"replay() takes {full['cpu'] / bare['cpu']:.1f}× the CPU of the bare CSV parse"
            )
            if results.get("bare_sqlite"):
                both = bare["cpu"] + results["bare_sqlite"]["cpu"]
                out.write(f" and {full['cpu'] / both:.1f}× bare parse + bare insert")
            out.write(".\n")
        out.write("\n## Data check: KPIs over the whole file, per line\n\n")
        keys = list(next(iter(full["kpis"].values())))
        out.write("| line | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys) + "\n")
        for line, kpis in full["kpis"].items():
            cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in kpis.values()]
            out.write(f"| {line} | " + " | ".join(cells) + " |\n")
    return out.getvalue()


def profile(csv_path: Path, workdir: Path, top: int) -> None:
    config = plant_config()
    db = workdir / "profile.db"
    store = SqliteStore(db)
    profiler = cProfile.Profile()
    profiler.enable()
    summary = replay(config, store, csv_path)
    profiler.disable()
    store.close()
    print(f"profiled replay of {summary.rows:,} rows")
    for order in ("cumulative", "tottime"):
        print(f"\n### top {top} by {order}\n")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of samples (default 30)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for the CSV and stores "
        "(default: a temporary directory, removed afterwards)",
    )
    parser.add_argument("--input", type=Path, help="use this samples CSV instead of generating")
    parser.add_argument("--repeat", type=int, default=1, help="runs per stage, best kept")
    parser.add_argument(
        "--stages", default=",".join(s for s, _ in STAGES), help="comma-separated stages to run"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one replay() with cProfile instead of timing stages",
    )
    parser.add_argument("--top", type=int, default=15, help="rows of the profile (default 15)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage:  # a worker process
        print(json.dumps(run_stage(args.stage, args.input, args.workdir)))
        return 0

    workdir = args.out or Path(tempfile.mkdtemp(prefix="linewatch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        config = plant_config()
        csv_path = args.input or workdir / f"samples-{args.days}d.csv"
        if args.input is None:
            start = time.perf_counter()
            rows = generate(config, args.days, csv_path)
            took = time.perf_counter() - start
            print(f"generated {rows:,} rows in {took:.1f} s → {csv_path}", file=sys.stderr)
        if args.profile:
            profile(csv_path, workdir, args.top)
            return 0
        size = csv_path.stat().st_size / 2**20
        with csv_path.open(encoding="utf-8") as handle:
            counts: dict[str, int] = {}
            for row in csv.reader(handle):
                counts[row[2]] = counts.get(row[2], 0) + 1
        counts.pop("signal", None)
        total = sum(counts.values())
        mix = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        csv_info = f"`{csv_path.name}`: {total:,} rows, {size:.0f} MB, 3 lines; {mix}"
        results: dict[str, dict[str, Any]] = {}
        for stage in args.stages.split(","):
            best = None
            for _ in range(args.repeat):
                r = spawn(stage, csv_path, workdir)
                print(
                    f"{stage}: {r['rows']:,} rows in {r['seconds']:.2f} s wall, "
                    f"{r['cpu']:.2f} s CPU ({r['rows'] / r['cpu']:,.0f}/CPU-s)",
                    file=sys.stderr,
                )
                if best is None or r["cpu"] < best["cpu"]:
                    best = r
            assert best is not None
            results[stage] = best
        print(report(results, machine(), csv_info))
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
