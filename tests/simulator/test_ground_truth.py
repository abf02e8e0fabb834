"""The simulator's ground truth against DESIGN §3–§4 and against the pipeline.

First the ground truth itself on hand-built records whose expected seconds are worked out
in the comments; then ACCEPTANCE 1 of the simulator issue: a week of the three demo lines,
their samples replayed through `linewatch.replay` into SQLite, and every KPI window read
back with `kpi_rows` equal to the truth; then `backfill` against a replay of the same
samples. The plant is config/demo.yaml (Asia/Hong_Kong, UTC+8; shifts D 08–20 and N 20–08
Mon–Sat; lunch 12:00–13:00; dinner 00:00–00:30; micro_stop_s 120, stop_after_s 60).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from linewatch.canonical import canonical_value
from linewatch.config import PlantConfig, load_config
from linewatch.kpi_query import kpi_rows
from linewatch.replay import COLUMNS, open_trackers, replay
from linewatch.sample import Sample
from linewatch.storage.sqlite import SqliteStore
from simulator.backfill import BackfillError, backfill, resume_of
from simulator.ground_truth import CATEGORY_KEYS, COUNT_KEYS, LineTruth, ground_truth
from simulator.line_sim import RESET_BELOW, LineSimulator, TrueRecord

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
SEED = 7  # a week with rollovers, resets, overtime and planned maintenance (asserted below)
EXACT_KEYS = (*CATEGORY_KEYS, *COUNT_KEYS, "failures", "scheduled_s", "calendar_s")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo() -> PlantConfig:
    return load_config(DEMO)


def at(config: PlantConfig, local: str) -> int:
    """UTC epoch s of a local wall-clock time (or date) in the plant's zone."""
    moment = dt.datetime.fromisoformat(local)
    return int(moment.replace(tzinfo=config.site.zone()).timestamp())


def write_csv(path: Path, samples: Sequence[Sample]) -> Path:
    """A samples CSV as `linewatch replay` reads it (millisecond UTC timestamps)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for s in samples:
            moment = _EPOCH + dt.timedelta(milliseconds=s.ts)
            writer.writerow([moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                             s.asset, s.signal, s.value, s.quality.value])
    return path


def assert_rows_equal(got: dict[str, Any], truth: dict[str, Any], where: str) -> None:
    diff = {k: (got[k], truth[k]) for k in EXACT_KEYS if got[k] != truth[k]}
    assert not diff, f"{where}: pipeline vs truth {diff}"
    assert got["ideal_s"] == pytest.approx(truth["ideal_s"], rel=1e-9, abs=1e-9), where
    if truth["energy_kwh"] is None:
        assert got["energy_kwh"] is None, where
    else:
        # Published readings are rounded to 1 Wh; the truth is the exact meter.
        assert got["energy_kwh"] == pytest.approx(truth["energy_kwh"], abs=2e-3), where


# --- the ground truth on its own ----------------------------------------------------------------


def record(config: PlantConfig, line: str, intervals: list[tuple[str, str, str]],
           first: str, last: str) -> TrueRecord:
    rec = TrueRecord(line, config.line(line).detection, ("total_count", "reject_count"))
    for a, b, category in intervals:
        rec.add_interval(at(config, a), at(config, b), category, None)
    rec.first_ms = at(config, first) * 1000
    rec.last_ms = at(config, last) * 1000 + 500
    return rec


def test_t3_t5_t6_t10_a_morning_of_a_state_line(demo: PlantConfig) -> None:
    d = "2026-06-09T"  # a Tuesday
    rec = record(demo, "L1", [
        (d + "09:00", d + "10:00", "running"),
        (d + "10:00", d + "10:01:40", "unplanned_stop"),     # 100 s < 120: micro (T5)
        (d + "10:01:40", d + "10:03:20", "running"),
        (d + "10:03:20", d + "10:08:20", "unplanned_stop"),  # 300 s: a failure (T6)
        (d + "10:08:20", d + "11:59:10", "running"),
        (d + "11:59:10", d + "13:00", "unplanned_stop"),     # 50 s, then the lunch break (T3)
        (d + "13:00", d + "13:20", "running"),
    ], first=d + "09:00", last=d + "13:09:59")  # no data after 13:10 (T10)
    truth = LineTruth(demo, demo.line("L1"), rec)
    row = truth.window(at(demo, d + "08:00"), at(demo, d + "14:00"))
    assert row["no_data_s"] == 3600 + 3000  # 08:00–09:00 and 13:10–14:00 (T10)
    assert row["running_s"] == 3600 + 100 + 6650 + 600
    assert row["micro_stop_s"] == 100 + 50  # the break ends the 11:59:10 stop (T5)
    assert row["unplanned_stop_s"] == 300
    assert row["planned_stop_s"] == 3600
    assert row["failures"] == 1
    assert sum(row[k] for k in CATEGORY_KEYS) == row["calendar_s"] == 6 * 3600
    # T6: the failure belongs to the window holding its first second, whatever its length.
    assert truth.window(at(demo, d + "10:03"), at(demo, d + "10:04"))["failures"] == 1
    assert truth.window(at(demo, d + "10:03"), at(demo, d + "10:04"))["unplanned_stop_s"] == 40
    assert truth.window(at(demo, d + "10:04"), at(demo, d + "11:00"))["failures"] == 0
    # T5: a micro stop stays micro in a window that holds only part of it (10:01–10:01:40).
    assert truth.window(at(demo, d + "10:01"), at(demo, d + "10:02"))["micro_stop_s"] == 40


def test_t2_overtime_runs_and_stops_outside_shifts_are_unscheduled(demo: PlantConfig) -> None:
    sun = "2026-06-14T"  # Saturday's N shift ends Sunday 08:00; Sunday is off
    rec = record(demo, "L1", [
        (sun + "06:00", sun + "07:50", "running"),
        (sun + "07:50", sun + "08:10", "unplanned_stop"),  # 10 min in shift, 10 min off
        (sun + "08:10", sun + "09:00", "running"),         # overtime
        (sun + "09:00", sun + "09:05", "unplanned_stop"),
        (sun + "09:05", sun + "12:00", "planned_stop"),
    ], first=sun + "06:00", last=sun + "11:59:59")
    truth = LineTruth(demo, demo.line("L1"), rec)
    row = truth.window(at(demo, sun + "06:00"), at(demo, sun + "12:00"))
    assert row["running_s"] == 110 * 60 + 50 * 60
    assert row["unplanned_stop_s"] == 600  # only the part in the shift: a failure
    assert row["failures"] == 1
    assert row["unscheduled_s"] == 600 + 300 + (3 * 3600 - 300)
    assert row["scheduled_s"] == 2 * 3600


def test_s11_a_counts_line_runs_until_stop_after_s_past_each_increase(
        demo: PlantConfig) -> None:
    t0 = at(demo, "2026-06-09T10:00")
    rec = TrueRecord("L3", "counts", ("total_count", "reject_count"))
    rec.units = [((t0 + s) * 1000 + 250, 6, r, "P30")
                 for s, r in ((30, 0), (60, 1), (90, 0), (300, 0))]
    rec.first_ms = t0 * 1000  # the baseline (first count sample)
    rec.last_ms = (t0 + 400) * 1000  # e.g. a counter reset sample
    truth = LineTruth(demo, demo.line("L3"), rec)
    row = truth.window(t0, t0 + 401)
    # [0, 30) stop from the baseline: micro; [30, 150) running; [150, 300) a failure;
    # [300, 360) running; [360, 401) a stop cut by the end of the data: micro so far.
    assert row["running_s"] == 120 + 60
    assert row["micro_stop_s"] == 30 + 41
    assert row["unplanned_stop_s"] == 150
    assert row["failures"] == 1
    assert (row["total_count"], row["reject_count"], row["good_count"]) == (24, 1, 23)
    assert row["ideal_s"] == pytest.approx(24 * 9 / 6)  # L3 overrides P30: 9 s per 6
    assert [(s.start - t0, s.end - t0, s.micro) for s in truth.stops] == [
        (0, 30, True), (150, 300, False), (360, 401, True)]


# --- ACCEPTANCE 1: a week of the demo plant through the pipeline ---------------------------------


@pytest.fixture(scope="module")
def week(demo: PlantConfig, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[list[LineSimulator], list[Sample], SqliteStore, int, int]:
    """Saturday 13 June 02:00:37 to Saturday 20 June 03:00:37, replayed into SQLite."""
    start = at(demo, "2026-06-13T02:00") + 37
    end = start + 7 * 86400 + 3600
    sims = [LineSimulator(demo, line, SEED, start) for line in demo.lines]
    samples: list[Sample] = []
    for sim in sims:
        samples += sim.run(end)
    samples.sort(key=lambda s: s.ts)
    tmp = tmp_path_factory.mktemp("week")
    store = SqliteStore(tmp / "linewatch.db")
    summary = replay(demo, store, write_csv(tmp / "samples.csv", samples))
    assert summary.applied == len(samples) and not summary.skipped
    return sims, samples, store, start, end


def test_acceptance_1_the_week_holds_rollovers_resets_changeovers_and_stops(
        demo: PlantConfig,
        week: tuple[list[LineSimulator], list[Sample], SqliteStore, int, int]) -> None:
    sims, samples, _store, start, end = week
    rollovers = resets = changeovers = 0
    for line in demo.lines:
        prev: dict[str, int] = {}
        product: str | None = None
        for s in samples:
            if s.asset != line.id:
                continue
            if s.signal in COUNT_KEYS:
                value = int(s.value)  # type: ignore[call-overload]
                before = prev.get(s.signal)
                if before is not None and value < before:
                    if before >= RESET_BELOW * line.counter_max:
                        rollovers += 1
                    else:
                        resets += 1
                prev[s.signal] = value
            elif s.signal == "product":
                value_text = canonical_value(s.value)
                changeovers += product is not None and value_text != product
                product = value_text
    assert rollovers >= 1 and resets >= 1 and changeovers >= 1
    assert {s.asset for s in samples} == {"L1", "L2", "L3"}
    assert (end - start) >= 7 * 86400
    overtime = failures = micro = planned_maintenance = 0
    for sim in sims:
        truth = ground_truth(demo, sim)
        row = truth.window(start, end)
        failures += row["failures"]
        micro += row["micro_stop_s"]
        overtime += sim.stats.overtime_s
        planned_maintenance += sum(1 for s in samples if s.asset == sim.line.id
                                   and s.signal == "reason" and s.value == 44)
    assert failures >= 10 and micro > 0
    assert overtime > 0 and planned_maintenance > 0  # T2 overtime and S10 do occur


def test_acceptance_1_replay_reproduces_the_ground_truth_exactly(
        demo: PlantConfig,
        week: tuple[list[LineSimulator], list[Sample], SqliteStore, int, int]) -> None:
    sims, _samples, store, start, end = week
    first_day = at(demo, "2026-06-13")
    windows = [(first_day, first_day + 8 * 86400)]  # the week, from before the first sample
    windows += [(first_day + d * 86400, first_day + (d + 1) * 86400) for d in range(8)]
    for sim in sims:
        truth = ground_truth(demo, sim)
        line = sim.line.id
        for a, b in windows:
            got = kpi_rows(demo, store, line, a, b, None)[0]
            assert_rows_equal(got, truth.window(a, b), f"{line} {a}..{b}")
        # Every hour as well (buckets of one query), and the stop events one by one.
        for got in kpi_rows(demo, store, line, first_day, first_day + 8 * 86400, "hour"):
            a, b = at(demo, got["from"]), at(demo, got["to"])
            assert_rows_equal(got, truth.window(a, b), f"{line} {got['from']}")
        events = [(e.start, e.end, e.category)
                  for e in store.stops(demo.site.id, line, start - 60, end + 60)]
        expected = [(s.start, s.end, "micro_stop" if s.micro else "unplanned_stop")
                    for s in truth.stops]
        assert events == expected, line
    whole = ground_truth(demo, sims[0]).window(*windows[0])
    assert whole["no_data_s"] > 0  # the hours before the first and after the last sample


# --- backfill ---------------------------------------------------------------------------------


def minutes(store: SqliteStore, config: PlantConfig, lo: int, hi: int) -> list[Any]:
    return [store.minutes(config.site.id, line.id, lo, hi) for line in config.lines]


def test_backfill_equals_a_replay_of_the_same_samples(demo: PlantConfig, tmp_path: Path) -> None:
    start, end = at(demo, "2026-06-08"), at(demo, "2026-06-11")
    serial = SqliteStore(tmp_path / "serial.db")
    days: list[int] = []
    summary = backfill(demo, serial, start, end, SEED, progress=days.append, workers=1)
    assert days == [1, 1, 1] and summary.days == 3 and not summary.skipped
    parallel = SqliteStore(tmp_path / "parallel.db")
    backfill(demo, parallel, start, end, SEED, workers=2)
    sims = [LineSimulator(demo, line, SEED, start, telemetry=False) for line in demo.lines]
    samples = sorted((s for sim in sims for s in sim.run(end)), key=lambda s: s.ts)
    assert summary.samples == len(samples)
    replayed = SqliteStore(tmp_path / "replayed.db")
    replay(demo, replayed, write_csv(tmp_path / "samples.csv", samples), store_samples=False)
    expected = minutes(replayed, demo, start - 60, end + 60)
    assert sum(len(m) for m in expected) >= 3 * 3 * 1440
    assert minutes(serial, demo, start - 60, end + 60) == expected
    assert minutes(parallel, demo, start - 60, end + 60) == expected
    for line in demo.lines:
        stops = replayed.stops(demo.site.id, line.id, start, end)
        assert serial.stops(demo.site.id, line.id, start, end) == stops
        assert parallel.stops(demo.site.id, line.id, start, end) == stops
        truth = ground_truth(demo, next(s for s in sims if s.line.id == line.id))
        assert_rows_equal(kpi_rows(demo, serial, line.id, start, end, None)[0],
                          truth.window(start, end), line.id)
    assert serial.samples(demo.site.id, "L1", start * 1000, end * 1000) == []  # not stored


def test_backfill_resumes_from_the_checkpoints(demo: PlantConfig, tmp_path: Path) -> None:
    d0, d2, d4 = at(demo, "2026-06-08"), at(demo, "2026-06-10"), at(demo, "2026-06-12")
    store = SqliteStore(tmp_path / "linewatch.db")
    backfill(demo, store, d0, d2, SEED, workers=1)
    trackers = open_trackers(demo, store)
    resumed = {line_id: resume_of(tracker) for line_id, tracker in trackers.items()}
    assert all(r is not None and r.counters for r in resumed.values())
    # A range the store already holds starts again just after each line's last sample.
    again = backfill(demo, store, d0 + 3600, d2, SEED, workers=1)
    last = {line_id: t.last_ms // 1000 for line_id, t in trackers.items() if t.last_ms}
    assert again.started == {line_id: sec + 1 for line_id, sec in last.items()}
    assert all(sec > d2 - 3600 for sec in last.values())
    assert again.samples < 1000 and not again.skipped
    store = SqliteStore(tmp_path / "fresh.db")
    backfill(demo, store, d0, d2, SEED, workers=1)
    second = backfill(demo, store, d2, d4, SEED, workers=2)
    assert second.started == dict.fromkeys(("L1", "L2", "L3"), d2)
    for line in demo.lines:
        # The second part is what a simulator continuing the PLC's registers makes: no
        # counter jump at the seam (S6), every second and count as its ground truth says.
        sim = LineSimulator(demo, line, SEED, d2, telemetry=False, resume=resumed[line.id])
        sim.run(d4)
        truth = ground_truth(demo, sim)
        got = kpi_rows(demo, store, line.id, d2, d4, None)[0]
        for key in (*COUNT_KEYS, "ideal_s"):
            assert got[key] == pytest.approx(truth.window(d2, d4)[key], rel=1e-9), line.id
        # On the counts line S11 carries over the seam: the last count of the first part
        # keeps it running up to stop_after_s (60 s) into the second.
        seam = d2 + (60 if line.detection == "counts" else 0)
        assert_rows_equal(kpi_rows(demo, store, line.id, seam, d4, None)[0],
                          truth.window(seam, d4), line.id)


def test_backfill_reports_a_worker_that_fails(demo: PlantConfig, tmp_path: Path) -> None:
    l2 = demo.line("L2")
    broken = l2.model_copy(update={"signals": l2.signals.model_copy(update={"state": None})})
    config = demo.model_copy(update={"lines": [demo.lines[0], broken, demo.lines[2]]})
    store = SqliteStore(tmp_path / "linewatch.db")
    with pytest.raises(BackfillError, match="detection: state needs a state signal"):
        backfill(config, store, at(demo, "2026-06-08"), at(demo, "2026-06-09"), SEED,
                 workers=2)
    assert store.load_checkpoint(demo.site.id, "L1") is None  # nothing half-written
