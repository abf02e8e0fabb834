"""Benchmark: spool → InfluxDB drain and KPI by day on InfluxDB vs SQLite (DESIGN §12).

Starts a real ``influxd`` (the Debian 1.x package, tests/influxd.py) on a free port in a
temporary directory, then measures:

1. **drain**: an edge-like spool (raw samples of 3 lines × 5 signals plus their minute
   rollups, appended in 100 ms batches) drained by ``edge.sinks.drain`` into
   ``InfluxStore`` (api v1; gzip off and on), in points/s — next to the bare baseline of
   POSTing the same line protocol to /write with ``urllib`` (one request at a time, and two
   at a time as InfluxStore does for samples), and the client-side cost of influxdb-client's
   v2 write of the same line protocol against a local HTTP listener that answers 204 (no
   InfluxDB 2.x can be installed here; 1.6 has no /api/v2/write). Every drain is checked
   with COUNT() on the server.
2. **kpi**: 365 days of minute rollups of one line (bench/bench_kpi.py's plant process)
   written to InfluxStore and SqliteStore, then ``kpi_rows(…, by)`` on both, cold (a freshly
   restarted influxd; a SQLite file evicted from the page cache) and warm (best of N), next
   to a bare InfluxQL ``SUM … GROUP BY time(1d, -8h)`` over the minutes; the day rows of
   both backends must agree.

Run: ``.venv/bin/python bench/bench_influx.py [--points N] [--days N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bench_kpi
import bench_replay as plant

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.influxd

from edge.sinks import StoreSink, drain
from edge.spool import Spool
from linewatch.kpi_query import kpi_rows
from linewatch.rollup import ADDITIVE_FIELDS, MinuteRecord, RawSample, WriteBatch
from linewatch.storage.influx import (
    SAMPLE_CHUNK,
    InfluxStore,
    _minute_line,
    _sample_lines,
)
from linewatch.storage.sqlite import SqliteStore
from tests.influxd import Influxd, start_influxd

DRAIN_TARGET = 100_000  # DESIGN §12: spool → InfluxDB drain, points/s
KPI_TARGET_S = 1.0  # DESIGN §12: KPI by day, 1 line, 365 days of minute rollups
T0 = 1_772_409_600  # 2026-03-02 00:00 UTC
LINES = ("L1", "L2", "L3")
SIGNALS = ("state", "total_count", "good_count", "energy_kwh",
           *(f"telemetry_{i:02d}" for i in range(16)))
EDGE_BATCH_MS = 100
SAMPLES_PER_S = 20_000  # the edge's target rate: 2,000 samples per 100 ms spool batch


# --- machine and process facts --------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return handle.read().split()[0]


class Meter:
    """Wall and CPU seconds of this process and of influxd over a block."""

    def __init__(self, server: Influxd | None) -> None:
        self.pid = server.proc.pid if server and server.proc else None

    def __enter__(self) -> Meter:
        self.load0 = loadavg()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.s0 = proc_cpu_s(self.pid) if self.pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self.server_cpu = (proc_cpu_s(self.pid) - self.s0) if self.pid else 0.0
        self.load = f"{self.load0}–{loadavg()}"


# --- the drain ------------------------------------------------------------------------------


def edge_batches(points: int) -> tuple[list[WriteBatch], int]:
    """Spool batches as the edge appends them, and the number of points they hold.

    3 lines × 20 signals (60 series), each sampled every 100 ms of data time, appended in
    batches of 2,000 samples (100 ms of an edge taking 20,000 values/s); every minute of
    data time also gives one minute record per line, in the batch that closes it.
    """
    series = [(line, signal) for line in LINES for signal in SIGNALS]
    per_batch = SAMPLES_PER_S * EDGE_BATCH_MS // 1000
    batches: list[WriteBatch] = []
    made = k = 0
    minute_done = T0 - 60
    while made < points:
        batch = WriteBatch()
        for _ in range(per_batch):
            line, signal = series[k % len(series)]
            ts_ms = T0 * 1000 + (k // len(series)) * 100
            batch.samples.append(RawSample("bench", line, signal, ts_ms, float(k % 997) / 10,
                                           None, True))
            k += 1
        while minute_done + 120 <= ts_ms // 1000:
            minute_done += 60
            batch.minutes += [MinuteRecord("bench", line, minute_done, "P30", span_s=60,
                                           running_s=60, scheduled_s=60, ideal_s=55.0,
                                           total_count=2, good_count=2)
                              for line in LINES]
        made += len(batch.samples) + len(batch.minutes)
        batches.append(batch)
    return batches, made


def unique_samples(batches: list[WriteBatch]) -> int:
    return len({(s.line, s.signal, s.ts_ms) for b in batches for s in b.samples})


def post_raw(url: str, database: str, lines: list[str], precision: str, workers: int) -> None:
    """The bare baseline: POST pre-rendered line protocol to /write, `workers` at a time."""
    def post(start: int) -> None:
        body = "\n".join(lines[start:start + SAMPLE_CHUNK]).encode()
        request = urllib.request.Request(f"{url}/write?db={database}&precision={precision}",
                                         data=body)
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(0, len(lines), SAMPLE_CHUNK)))


class NullInflux:
    """A local HTTP listener that answers every write with 204 (client-side cost only)."""

    def __enter__(self) -> NullInflux:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def bench_drain(server: Influxd, points: int, repeat: int, workdir: Path) -> dict[str, Any]:
    """Spool append, drain and the bare baselines; every stage best-of and median of repeat."""
    batches, total = edge_batches(points)
    samples = [s for b in batches for s in b.samples]
    minutes = [m for b in batches for m in b.minutes]
    lines_ms = _sample_lines(samples, 1)
    lines_s = [_minute_line(m) for m in minutes]
    rows: dict[str, list[tuple[float, float, float, str]]] = {}
    checks: dict[str, bool] = {}
    run = 0

    def record(label: str, meter: Meter) -> None:
        rows.setdefault(label, []).append((meter.wall, meter.cpu, meter.server_cpu, meter.load))

    for _ in range(repeat):
        # The spool, as the edge fills it: one append per 100 ms batch.
        spool_path = workdir / f"spool{run}.db"
        with Spool(spool_path, max_mb=4096) as spool, Meter(None) as meter:
            for batch in batches:
                spool.append(batch)
        record("spool.append (edge batches of 100 ms)", meter)
        for label, gzip_on, size in (("drain → InfluxStore v1, gzip off, batches of 10,000",
                                      False, 10_000),
                                     ("drain → InfluxStore v1, gzip off, batches of 20,000",
                                      False, 20_000),
                                     ("drain → InfluxStore v1, gzip on, batches of 20,000",
                                      True, 20_000)):
            run += 1
            database = f"drain{run}"
            server.query(f'CREATE DATABASE "{database}"')
            copy = workdir / f"copy{run}.db"
            shutil.copy(spool_path, copy)
            with Spool(copy, max_mb=4096) as spool:
                store = InfluxStore(server.url, database=database, gzip=gzip_on, timeout_s=60)
                with Meter(server) as meter:
                    result = drain(spool, StoreSink("influx", store), size)
                store.close()
            record(label, meter)
            stored = server.count(database, "lw_sample", "good")
            checks[label] = (result.complete and stored == unique_samples(batches)
                             and server.count(database, "lw_minute", "span_s") == len(minutes))
            server.query(f'DROP DATABASE "{database}"')
            copy.unlink()
        for label, workers in (("bare: urllib POST /write of the same line protocol, "
                                "1 request at a time", 1),
                               ("bare: urllib POST /write of the same line protocol, "
                                "2 at a time", 2)):
            run += 1
            database = f"raw{run}"
            server.query(f'CREATE DATABASE "{database}"')
            with Meter(server) as meter:
                post_raw(server.url, database, lines_ms, "ms", workers)
                post_raw(server.url, database, lines_s, "s", 1)
            record(label, meter)
            checks[label] = server.count(database, "lw_sample", "good") == unique_samples(batches)
            server.query(f'DROP DATABASE "{database}"')
        spool_path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{spool_path}{suffix}").unlink(missing_ok=True)
        # Client-side cost of the v2 path (influxdb-client) vs urllib, against a 204 listener.
        with NullInflux() as null:
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            with InfluxDBClient(url=null.url, token="bench", org="factory") as client:
                write_api = client.write_api(write_options=SYNCHRONOUS)
                with Meter(None) as meter:
                    for start in range(0, len(lines_ms), SAMPLE_CHUNK):
                        body = "\n".join(lines_ms[start:start + SAMPLE_CHUNK]).encode()
                        write_api.write(bucket="b", record=body, write_precision="ms")
                record("client only: influxdb-client v2 write to a 204 listener", meter)
            with Meter(None) as meter:
                post_raw(null.url, "x", lines_ms, "ms", 1)
            record("client only: urllib POST to a 204 listener", meter)
    return {"rows": rows, "checks": checks, "points": total, "samples": len(samples),
            "minutes": len(minutes)}


# --- KPI by day -----------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def bench_kpi_both(server: Influxd, days: int, repeat: int, workdir: Path) -> dict[str, Any]:
    config = plant.plant_config(workdir / "kpi.db")
    start, end = bench_kpi.window(config, days)
    records = bench_kpi.minute_records(config, days)
    server.query('CREATE DATABASE "kpi"')
    influx = InfluxStore(server.url, database="kpi", timeout_s=120)
    with Meter(server) as influx_load:
        bench_kpi.load(influx, records)
    db = workdir / "kpi.db"
    with SqliteStore(db) as lite, Meter(None) as sqlite_load:
        bench_kpi.load(lite, records)
    out: dict[str, Any] = {"records": len(records), "influx_load": influx_load,
                           "sqlite_load": sqlite_load, "rows": [], "agree": {}}
    # Asia/Hong_Kong has no DST: a fixed offset is exact for the bare baseline's GROUP BY.
    offset_h = int(dt.datetime.fromtimestamp(start, config.site.zone()).utcoffset()
                   .total_seconds()) // 3600
    sums = ", ".join(f'SUM("{name}")' for name in (*ADDITIVE_FIELDS, "energy_kwh"))
    where = f"\"site\" = 'bench' AND \"line\" = 'L1' AND time >= {start}s AND time < {end}s"
    bare = {
        f"bare InfluxQL: one SUM … FROM lw_minute GROUP BY time(1d, -{offset_h}h)":
            f"SELECT {sums} FROM \"lw_minute\" WHERE {where} GROUP BY time(1d, -{offset_h}h)",
        f"bare InfluxQL: one SUM … FROM lw_minute_15m GROUP BY time(1d, -{offset_h}h)":
            f"SELECT {sums} FROM \"lw_minute_15m\" WHERE {where} GROUP BY time(1d, -{offset_h}h)",
    }
    results: dict[str, Any] = {}
    for by in ("day", "shift", "hour", None):
        for backend in ("InfluxDB", "SQLite"):
            label = f"{backend}: kpi_rows(by={by!r})"
            if backend == "InfluxDB":
                server.stop()
                server.start()  # cold: a fresh influxd process, its caches empty
                store: Any = InfluxStore(server.url, database="kpi", timeout_s=120)
            else:
                bench_kpi.evict(db)
                store = SqliteStore(db, readonly=True)
            cold = timed(lambda s=store, b=by: kpi_rows(config, s, "L1", start, end, b), 1)
            warm = timed(lambda s=store, b=by: kpi_rows(config, s, "L1", start, end, b), repeat)
            store.close()
            results[label] = warm[2]
            out["rows"].append((label, len(warm[2]), cold[:2], warm[:2]))
            print(f"{label}: cold {cold[0]:.3f} s, warm {warm[0]:.3f} s", file=sys.stderr)
        out["agree"][str(by)] = same_rows(results[f"InfluxDB: kpi_rows(by={by!r})"],
                                          results[f"SQLite: kpi_rows(by={by!r})"])
    reader = InfluxStore(server.url, database="kpi", timeout_s=120)
    for label, statement in bare.items():
        cold = timed(lambda q=statement: reader.influxql(q), 1)
        warm = timed(lambda q=statement: reader.influxql(q), repeat)
        out["rows"].append((label, len(warm[2]), cold[:2], warm[:2]))
    return out


def same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b, strict=True):
        for key, value in row_a.items():
            other = row_b.get(key)
            if isinstance(value, float) and isinstance(other, float):
                if abs(value - other) > 1e-9 * max(1.0, abs(value)):
                    return False
            elif value != other:
                return False
    return True


# --- report ---------------------------------------------------------------------------------


def report(drained: dict[str, Any], kpi: dict[str, Any] | None, facts: dict[str, str],
           version: str, args: argparse.Namespace) -> str:
    out = io.StringIO()
    out.write("## Machine\n\n| | |\n|---|---|\n")
    for key, value in {**facts, "influxd": version}.items():
        out.write(f"| {key} | {value} |\n")
    points = drained["points"]
    out.write(f"\n## Drain: {points:,} points ({drained['samples']:,} raw samples + "
              f"{drained['minutes']:,} minute records), best of {args.repeat}\n\n")
    out.write("| stage | points/s (best) | points/s (median) | wall s | CPU s (bench) | "
              "CPU s (influxd) | load | check |\n|---|---:|---:|---:|---:|---:|---|---|\n")
    for label, runs in drained["rows"].items():
        best = min(runs, key=lambda r: r[0])
        median = statistics.median(r[0] for r in runs)
        check = {True: "COUNT ok", False: "**COUNT WRONG**"}.get(
            drained["checks"].get(label), "")
        out.write(f"| {label} | {points / best[0]:,.0f} | {points / median:,.0f} | "
                  f"{best[0]:.2f} | {best[1]:.2f} | {best[2]:.2f} | {best[3]} | {check} |\n")
    if kpi is None:
        return out.getvalue()
    il, sl = kpi["influx_load"], kpi["sqlite_load"]
    out.write(f"\n## KPI by day: {kpi['records']:,} minute records ({args.days} days)\n\n"
              f"Written one day per `write`: InfluxStore {kpi['records'] / il.wall:,.0f} "
              f"records/s ({il.wall:.1f} s wall, {il.cpu:.1f} s CPU here, "
              f"{il.server_cpu:.1f} s CPU influxd); SqliteStore "
              f"{kpi['records'] / sl.wall:,.0f} records/s ({sl.wall:.1f} s).\n\n")
    out.write(f"| query | rows | cold s (wall / CPU) | warm s, best of {args.repeat} "
              "(wall / CPU) | verdict |\n|---|---:|---:|---:|---|\n")
    for label, rows, cold, warm in kpi["rows"]:
        verdict = ""
        if label.endswith("kpi_rows(by='day')"):
            worst = max(cold[0], warm[0])
            verdict = (f"meets ({KPI_TARGET_S / worst:.1f}× under)" if worst < KPI_TARGET_S
                       else f"MISSES ({worst / KPI_TARGET_S:.1f}× over)")
        out.write(f"| {label} | {rows:,} | {cold[0]:.3f} / {cold[1]:.3f} | "
                  f"{warm[0]:.3f} / {warm[1]:.3f} | {verdict} |\n")
    agree = ", ".join(f"{by}: {'yes' if ok else 'NO'}" for by, ok in kpi["agree"].items())
    out.write(f"\nInfluxDB and SQLite give the same kpi_rows: {agree}.\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500_000,
                        help="points in the drained spool (default 500,000)")
    parser.add_argument("--days", type=int, default=365, help="days of rollups (default 365)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage (default 3)")
    parser.add_argument("--skip", choices=("drain", "kpi"), help="leave one part out")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="linewatch-bench-influx-"))
    server = start_influxd(workdir / "influxd")
    try:
        version = server.ping() or "unknown"
        drained: dict[str, Any] = {"rows": {}, "checks": {}, "points": 0, "samples": 0,
                                   "minutes": 0}
        if args.skip != "drain":
            drained = bench_drain(server, args.points, args.repeat, workdir)
        kpi = bench_kpi_both(server, args.days, args.repeat, workdir) if args.skip != "kpi" \
            else None
        print(report(drained, kpi, plant.machine(), version, args))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
