"""Benchmark: `linewatch backfill` of the demo plant (the simulator issue: 3 lines × 120 days
in under 60 s; DESIGN §12: backfill through the tracker ≥ 50,000 samples/s).

Backfills config/demo.yaml's three lines over 120 days (2026-04-17 to 2026-08-15, local
dates, half-open; the lines' upgrade is installed on 2026-06-15) into a fresh SqliteStore
with `simulator.backfill.backfill`, exactly what ``linewatch backfill`` runs, and reports
wall and CPU time (this process and its worker processes), samples per second, peak RSS,
the load average around the run, and then the manufacturing+ comparison the data is for:
each line's KPIs from ``kpi_rows`` over its upgrade's baseline and after periods, clipped to
the backfilled days.

Run: ``.venv/bin/python bench/bench_backfill.py [--days N] [--workers N] [--seed N]``;
``--profile`` runs it in one process under cProfile and prints the hot spots instead.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from linewatch.config import PlantConfig, load_config
from linewatch.kpi_query import kpi_rows
from linewatch.storage.sqlite import SqliteStore
from simulator.backfill import BackfillSummary, backfill
from simulator.line_sim import local_midnight

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "config" / "demo.yaml"
START = dt.date(2026, 4, 17)
DAYS = 120
SEED = 1
TARGET_S = 60.0
TARGET_PER_S = 50_000


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({model}), {ram} RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def clip(config: PlantConfig, lo: dt.date, hi: dt.date, start: int, end: int
         ) -> tuple[int, int] | None:
    """An inclusive local date range as UTC seconds, clipped to [start, end)."""
    a = max(start, local_midnight(config, lo))
    b = min(end, local_midnight(config, hi + dt.timedelta(days=1)))
    return (a, b) if a < b else None


def pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def number(value: Any, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def compare(config: PlantConfig, store: SqliteStore, start: int, end: int) -> list[str]:
    out = ["| line | period | days | OEE | availability | performance | quality | "
           "failures | MTBF min | MTTR min | scrap | good/h | kWh/unit |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for line in config.lines:
        upgrade = line.upgrade
        if upgrade is None or upgrade.baseline is None or upgrade.after is None:
            continue
        oee: dict[str, float | None] = {}
        for name, period in (("baseline", upgrade.baseline), ("after", upgrade.after)):
            window = clip(config, period.from_, period.to, start, end)
            if window is None:
                out.append(f"| {line.id} | {name} | 0 | not backfilled |||||||||")
                continue
            row = kpi_rows(config, store, line.id, window[0], window[1], None)[0]
            oee[name] = row["oee"]
            days = (window[1] - window[0]) / 86400
            first = dt.datetime.fromtimestamp(window[0], config.site.zone()).date()
            last = dt.datetime.fromtimestamp(window[1] - 1, config.site.zone()).date()
            mtbf = None if row["mtbf_s"] is None else row["mtbf_s"] / 60
            mttr = None if row["mttr_s"] is None else row["mttr_s"] / 60
            out.append(
                f"| {line.id} | {name} {first}–{last} | {days:.0f} | **{pct(row['oee'])}** | "
                f"{pct(row['availability'])} | {pct(row['performance'])} | "
                f"{pct(row['quality'])} | {row['failures']} | {number(mtbf)} | "
                f"{number(mttr, 1)} | {pct(row['scrap_ratio'])} | "
                f"{number(row['throughput_per_h'])} | "
                f"{number(row['energy_per_unit_kwh'], 4)} |")
        if oee.get("baseline") is not None and oee.get("after") is not None:
            before, after = oee["baseline"], oee["after"]
            assert before is not None and after is not None
            out.append(f"| {line.id} | **change** | | **{(after - before) * 100:+.1f} pt** "
                       f"({(after / before - 1) * 100:+.0f} %) |||||||||")
    return out


def run(days: int, workers: int | None, seed: int, out_dir: Path) -> tuple[list[str], bool]:
    config = load_config(CONFIG)
    start = local_midnight(config, START)
    end = local_midnight(config, START + dt.timedelta(days=days))
    db = out_dir / "backfill.db"
    for path in out_dir.glob("backfill.db*"):
        path.unlink()
    store = SqliteStore(db)
    load_before = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary: BackfillSummary = backfill(config, store, start, end, seed, workers=workers)
    wall = time.perf_counter() - wall0
    cpu_self = time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_children = (children.ru_utime + children.ru_stime
                    - children0.ru_utime - children0.ru_stime)
    load_after = os.getloadavg()
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_child = children.ru_maxrss / 1024
    cpu = cpu_self + cpu_children
    size = sum(p.stat().st_size for p in out_dir.glob("backfill.db*")) / 1e6
    ok = wall < TARGET_S
    lines = [
        f"Machine: {machine()}. Run {dt.date.today()}.",
        "",
        f"Backfill of {len(config.lines)} lines × {summary.days} days "
        f"({START} to {START + dt.timedelta(days=days)}, seed {seed}) into a fresh "
        f"SqliteStore, {summary.workers} worker process(es):",
        "",
        "| samples | minute records | stop events | wall s | CPU s (all processes) | "
        "samples/s (wall) | samples/s (CPU) | peak RSS MB (writer / worker) | store MB | "
        "load average before → after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {summary.samples:,} | {summary.minutes:,} | {summary.stops:,} | "
        f"**{wall:.1f}** | {cpu:.1f} ({cpu_self:.1f} + {cpu_children:.1f}) | "
        f"{summary.samples / wall:,.0f} | {summary.samples / cpu:,.0f} | "
        f"{rss_self:.0f} / {rss_child:.0f} | {size:.0f} | "
        f"{load_before[0]:.1f} → {load_after[0]:.1f} |",
        "",
        f"Target: < {TARGET_S:.0f} s wall — **{'meets' if ok else 'misses'}** "
        f"({wall:.1f} s); DESIGN §12's {TARGET_PER_S:,} samples/s: "
        f"{summary.samples / wall:,.0f}/s.",
        "",
        "Baseline vs after (each line's `upgrade` periods, clipped to the backfilled days; "
        "`kpi_rows` over the store):",
        "",
        *compare(config, store, start, end),
    ]
    store.close()
    return lines, ok


def profile(days: int, seed: int, out_dir: Path) -> None:
    config = load_config(CONFIG)
    start = local_midnight(config, START)
    end = local_midnight(config, START + dt.timedelta(days=days))
    store = SqliteStore(out_dir / "profile.db")
    profiler = cProfile.Profile()
    profiler.enable()
    backfill(config, store, start, end, seed, workers=1)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: backfill's own choice)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=None, help="keep the store here")
    parser.add_argument("--profile", action="store_true", help="cProfile, one process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lw-bench-backfill-") as tmp:
        out_dir = args.out or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        if args.profile:
            profile(args.days, args.seed, out_dir)
            return 0
        lines, ok = run(args.days, args.workers, args.seed, out_dir)
        print("\n".join(lines))
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
