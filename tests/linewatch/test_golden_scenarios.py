"""Whole-shift golden scenarios through the real command line (DESIGN §3, §4, §6, §9).

Each scenario is a small recorded samples CSV and a plant config, run as a user would:
`linewatch replay --config F --input samples.csv`, then `linewatch kpi … --json`. The
expected numbers are worked out by hand in the comment at the top of each test: first the
timeline of the shift, then the category sums, then each KPI as a fraction.

Conventions of the hand computations:
- All times are Asia/Hong_Kong wall-clock (UTC+8, no DST). 2026-03-02 is a Monday.
- The input of every scenario ends with a sample exactly at the end of the queried window,
  so the window never depends on how the second of the last sample is counted.
- "planned" is planned_s [PBT] = running + micro_stop + setup + unplanned_stop (setup only
  when setup_is_planned is false, T9); "run" is run_s [APT] = running + micro_stop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest import approx

from tests.timeline import Row, plant, write_csv

LINEWATCH = str(Path(sys.executable).with_name("linewatch"))
CATEGORY_KEYS = ("running_s", "micro_stop_s", "setup_s", "unplanned_stop_s", "planned_stop_s",
                 "no_data_s", "unscheduled_s")
_UNSET = object()


# --- running the real CLI --------------------------------------------------------------------


def run_cli(*args: str) -> str:
    proc = subprocess.run([LINEWATCH, *args], capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, (
        f"linewatch {' '.join(args)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.stdout


def write_config(tmp_path: Path, yaml_text: str, name: str = "lw") -> Path:
    """The scenario's config with its own SQLite store under tmp_path."""
    db = tmp_path / f"{name}.db"
    text = textwrap.dedent(yaml_text)
    text += f"storage: {{backend: sqlite, sqlite: {{path: {json.dumps(str(db))}}}}}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_samples(tmp_path: Path, yaml_text: str, rows: list[Row],
                  name: str = "samples.csv") -> Path:
    return write_csv(tmp_path / name, plant(yaml_text), rows)


def replay_cli(config: Path, csv_path: Path) -> str:
    return run_cli("replay", "--config", str(config), "--input", str(csv_path))


def kpi_text(config: Path, start: str, end: str, by: str | None = None) -> str:
    args = ["kpi", "--config", str(config), "--line", "L1", "--from", start, "--to", end]
    if by is not None:
        args += ["--by", by]
    return run_cli(*args, "--json")


def kpi_cli(config: Path, start: str, end: str, by: str | None = None) -> list[dict[str, Any]]:
    rows = json.loads(kpi_text(config, start, end, by))
    assert isinstance(rows, list)
    return rows


def golden(tmp_path: Path, scenario: Scenario, by: str | None = None,
           start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    """Replay the scenario through the CLI into a fresh store and query its window."""
    config = write_config(tmp_path, scenario.yaml)
    out = replay_cli(config, write_samples(tmp_path, scenario.yaml, scenario.rows))
    n = len(scenario.rows)
    assert f"rows read: {n}, applied: {n}, skipped: 0" in out, out
    return kpi_cli(config, start or scenario.start, end or scenario.end, by)


# --- expected buckets ------------------------------------------------------------------------


def expect(frm: str, to: str, *, calendar: int, scheduled: int, planned: int, run: int,
           ideal: float, availability: float | None, performance: float | None,
           quality: float | None, oee: float | None, teep: float | None,
           mtbf: float | None, mttr: float | None, throughput: float | None,
           scrap: float | None, energy_per_unit: float | None, completeness: float | None,
           running: int = 0, micro: int = 0, setup: int = 0, unplanned: int = 0,
           planned_stop: int = 0, no_data: int = 0, unscheduled: int = 0, total: int = 0,
           good: int = 0, reject: int = 0, energy: float | None = None, failures: int = 0,
           shift: Any = _UNSET, date: Any = _UNSET) -> dict[str, Any]:
    """One bucket of `kpi --json` as worked out by hand (every key of DESIGN §9)."""
    out: dict[str, Any] = {
        "line": "L1", "from": frm, "to": to,
        "calendar_s": calendar, "planned_s": planned, "run_s": run, "ideal_s": float(ideal),
        "availability": availability, "performance": performance, "quality": quality,
        "oee": oee, "teep": teep, "failures": failures, "mtbf_s": mtbf, "mttr_s": mttr,
        "throughput_per_h": throughput, "scrap_ratio": scrap,
        "energy_per_unit_kwh": energy_per_unit, "completeness": completeness,
        "running_s": running, "micro_stop_s": micro, "setup_s": setup,
        "unplanned_stop_s": unplanned, "planned_stop_s": planned_stop, "no_data_s": no_data,
        "unscheduled_s": unscheduled, "scheduled_s": scheduled,
        "total_count": total, "good_count": good, "reject_count": reject,
        "energy_kwh": None if energy is None else float(energy),
    }
    if shift is not _UNSET:
        out["shift"] = shift
    if date is not _UNSET:
        out["date"] = date
    # The hand computation must itself be consistent (T1: categories partition calendar_s).
    assert sum(out[k] for k in CATEGORY_KEYS) == calendar, "hand computation: T1"
    return out


def assert_bucket(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every key equal: counts and seconds exactly, floats to rel 1e-12, nulls as null."""
    problems = []
    if set(row) != set(expected):
        problems.append(f"keys: missing {sorted(set(expected) - set(row))}, "
                        f"unexpected {sorted(set(row) - set(expected))}")
    for key, want in expected.items():
        if key not in row:
            continue
        got = row[key]
        if want is None or isinstance(want, str):
            ok = got == want
        elif isinstance(want, float):
            ok = isinstance(got, int | float) and not isinstance(got, bool) \
                and got == approx(want, rel=1e-12)
        else:
            ok = type(got) is type(want) and got == want
        if not ok:
            problems.append(f"{key}: expected {want!r}, got {got!r}")
    assert not problems, f"bucket {expected['from']} – {expected['to']}:\n" + "\n".join(problems)


# --- the scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    yaml: str
    rows: list[Row]
    start: str  # the queried window, local site time
    end: str
    split: int  # rows[:split] and rows[split:] for the replay-in-two-parts test (R3)


def on(day: str, rows: list[tuple]) -> list[Row]:
    return [(f"{day} {row[0]}", *row[1:]) for row in rows]


DAY_SHIFT = """
    calendar:
      shifts: [{id: A, start: "08:00", end: "16:00"}]
      breaks: [{start: "12:00", end: "12:30"}]
"""
STATE_MAP = """
        state_map:
          "1": running
          "2": {category: unplanned_stop, reason: fault}
          "3": setup
          "4": planned_stop
"""

G1 = Scenario(
    yaml="""
    site: {id: kt-01, name: Golden plant, timezone: Asia/Hong_Kong}
    policy: {micro_stop_s: 120, setup_is_planned: false}
    """ + DAY_SHIFT + """
    products: [{id: P30, name: Cap 30 mm, ideal_cycle_s: 30, units_per_cycle: 1}]
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P30
        counter_max: 65535
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("08:00:00", "state", "1"),
        ("08:00:00", "total_count", "1000"),
        ("08:00:00", "reject_count", "10"),
        ("08:00:00", "energy_kwh", "500"),
        ("09:00:00", "state", "2"),
        ("09:01:59", "state", "1"),
        ("10:00:00", "state", "2"),
        ("10:02:00", "state", "1"),
        ("10:30:00", "total_count", "1300"),
        ("10:30:00", "reject_count", "16"),
        ("11:00:00", "state", "2"),
        ("11:10:00", "state", "1"),
        ("11:59:00", "state", "2"),
        ("12:31:00", "state", "1"),
        ("14:00:00", "state", "3"),
        ("14:20:00", "state", "1"),
        ("15:59:00", "total_count", "1800"),
        ("15:59:00", "reject_count", "25"),
        ("15:59:00", "energy_kwh", "620.5"),
        ("16:00:00", "state", "1"),
    ]),
    start="2026-03-02T08:00", end="2026-03-02T16:00",
    split=11,  # part one ends with the 11:00:00 stop just begun (judged 1 s so far)
)

G2 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    """ + DAY_SHIFT + """
    products: [{id: P4, ideal_cycle_s: 4}]
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P4
        counter_max: 65535
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("08:00:00", "state", "1"),
        ("08:00:00", "total_count", "64000"),
        ("09:00:00", "total_count", "65530"),
        ("09:00:30", "total_count", "5"),
        ("10:00:00", "total_count", "994"),
        ("10:00:20", "total_count", "3"),
        ("11:00:00", "state", "1", "bad"),
        ("11:00:00", "total_count", "0", "bad"),
        ("11:30:00", "state", "1"),
        ("11:30:00", "total_count", "1470"),
        ("15:59:30", "total_count", "3470"),
        ("16:00:00", "state", "1"),
    ]),
    start="2026-03-02T08:00+08:00", end="2026-03-02T16:00+08:00",
    split=8,  # part one ends inside the data gap, after the bad counter sample
)

G3 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    """ + DAY_SHIFT + """
    products:
      - {id: P30, name: Cap 30 mm, ideal_cycle_s: 30, units_per_cycle: 1}
      - {id: P12, name: Cap 12 mm, ideal_cycle_s: 20, units_per_cycle: 2}
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P30
        product_map: {"101": P30, "102": P12}
        products: {P12: {ideal_cycle_s: 24, units_per_cycle: 4}}
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("08:00:00", "state", "1"),
        ("08:00:00", "product", "101"),
        ("08:00:00", "total_count", "0"),
        ("08:00:00", "good_count", "0"),
        ("10:00:00", "total_count", "200"),
        ("10:00:00", "good_count", "196"),
        ("11:59:00", "total_count", "400"),
        ("11:59:00", "good_count", "392"),
        ("12:00:00", "state", "4"),
        ("12:30:00", "state", "3"),
        ("12:30:00", "product", "102"),
        ("12:50:00", "state", "1"),
        ("14:00:00", "total_count", "1000"),
        ("14:00:00", "good_count", "990"),
        ("15:59:00", "total_count", "2000"),
        ("15:59:00", "good_count", "1980"),
        ("16:00:00", "state", "1"),
    ]),
    start="2026-03-02", end="2026-03-02T16:00",
    split=11,  # part one ends in the changeover, just after the product switch
)

G4 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    calendar:
      shifts: [{id: N, start: "22:00", end: "06:00", days: [mon, tue, wed, thu, fri]}]
      breaks: [{start: "02:00", end: "02:30"}]
    products: [{id: P15, ideal_cycle_s: 15}]
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P15
    """ + STATE_MAP,
    rows=[
        ("2026-03-02 21:50:00", "state", "1"),
        ("2026-03-02 21:50:00", "total_count", "0"),
        ("2026-03-02 23:30:00", "state", "2"),
        ("2026-03-02 23:45:00", "state", "1"),
        ("2026-03-03 00:10:00", "total_count", "600"),
        ("2026-03-03 02:10:00", "state", "2"),
        ("2026-03-03 02:40:00", "state", "1"),
        ("2026-03-03 05:59:00", "total_count", "1400"),
        ("2026-03-03 06:30:00", "state", "4"),
        ("2026-03-03 06:30:00", "total_count", "1460"),
        ("2026-03-03 08:00:00", "state", "4"),
    ],
    start="2026-03-02T20:00", end="2026-03-03T08:00",
    split=6,  # part one ends with the line stopped inside the break
)

G5 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    policy: {micro_stop_s: 120, stop_after_s: 900}
    calendar:
      shifts: [{id: M, start: "08:00", end: "12:00"}]
      breaks: [{start: "10:00", end: "10:15"}]
    products: [{id: P12, ideal_cycle_s: 12}]
    lines:
      - id: L1
        detection: counts
        default_product: P12
        counter_max: 65535
    """,
    rows=on("2026-03-02", [
        ("08:00:00", "total_count", "100"),
        ("08:01:00", "total_count", "110"),
        ("08:16:00", "total_count", "150"),
        ("08:30:00", "total_count", "200"),
        ("09:00:00", "total_count", "260"),
        ("09:10:00", "total_count", "0"),
        ("09:20:00", "total_count", "30"),
        ("09:36:59", "total_count", "60"),
        ("09:45:00", "total_count", "100"),
        ("10:17:00", "total_count", "130"),
        ("10:20:00", "total_count", "200"),
        ("10:35:00", "total_count", "300"),
        ("10:50:00", "total_count", "400"),
        ("11:05:00", "total_count", "500"),
        ("11:20:00", "total_count", "600"),
        ("11:35:00", "total_count", "700"),
        ("11:50:00", "total_count", "800"),
        ("12:30:00", "total_count", "800"),
    ]),
    start="2026-03-02T07:30", end="2026-03-02T12:30",
    split=6,  # part one ends with the reset to 0, the line still running until 09:15
)

G6 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    policy: {micro_stop_s: 120, setup_is_planned: true}
    """ + DAY_SHIFT + """
    products: [{id: P12, ideal_cycle_s: 12}]
    reasons:
      - {code: fault, name: Machine fault, category: unplanned_stop}
      - {code: meeting, name: Team meeting, category: planned_stop}
      - {code: changeover, name: Changeover, category: setup}
    lines:
      - id: L1
        default_product: P12
        reason_map: {"17": fault, "30": meeting, "40": changeover}
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("12:15:00", "state", "2"),
        ("12:35:00", "reason", "30"),
        ("12:50:00", "state", "2"),
        ("13:00:00", "state", "1"),
        ("13:00:00", "total_count", "0"),
        ("14:00:00", "state", "3"),
        ("14:30:00", "state", "1"),
        ("15:00:00", "state", "2"),
        ("15:01:00", "reason", "40"),
        ("15:10:00", "state", "1"),
        ("15:30:00", "state", "2"),
        ("15:30:30", "reason", "17"),
        ("15:40:00", "state", "1"),
        ("15:59:00", "total_count", "500"),
        ("16:00:00", "state", "1"),
    ]),
    start="2026-03-02T08:00", end="2026-03-02T16:00",
    split=8,  # part one ends in the 15:00 stop, 60 s long so far, before its reason
)

G7 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    """ + DAY_SHIFT + """
    products: [{id: P24, ideal_cycle_s: 24}]
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P24
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("08:00:00", "state", "1"),
        ("08:00:00", "total_count", "0"),
        ("08:00:00", "energy_kwh", "1000.0"),
        ("11:50:00", "state", "3"),
        ("12:20:00", "state", "1"),
        ("15:00:00", "total_count", "1000"),
        ("15:00:00", "energy_kwh", "1100.25"),
        ("17:00:00", "state", "3"),
        ("17:00:00", "total_count", "1200"),
        ("17:00:00", "energy_kwh", "1150.5"),
        ("17:30:00", "state", "2"),
        ("17:40:00", "state", "1"),
        ("17:59:00", "total_count", "1300"),
        ("18:00:00", "state", "1"),
    ]),
    start="2026-03-02T08:00", end="2026-03-02T18:00",
    split=4,  # part one ends in the setup that runs into the break
)

G8 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    """ + DAY_SHIFT + """
    products: [{id: P28, ideal_cycle_s: 28}]
    reasons: [{code: fault, name: Machine fault, category: unplanned_stop}]
    lines:
      - id: L1
        default_product: P28
    """ + STATE_MAP,
    rows=on("2026-03-02", [
        ("08:00:00", "state", "1.0"),
        ("08:00:00", "total_count", "0"),
        ("09:59:00", "state", "+2"),
        ("10:00:30", "state", "2"),
        ("10:01:00", "state", "01"),
        ("10:59:10", "state", "7"),
        ("11:00:50", "state", "1"),
        ("13:00:00", "state", "2"),
        ("13:30:00", "state", "7"),
        ("13:45:00", "state", "1"),
        ("15:00:00", "total_count", "900"),
        ("16:00:00", "state", "1"),
    ]),
    start="2026-03-02T08:00", end="2026-03-02T16:00",
    split=4,  # part one ends inside the 09:59 stop after the repeated sample
)

G9 = Scenario(
    yaml="""
    site: {id: kt-01, timezone: Asia/Hong_Kong}
    policy: {micro_stop_s: 120, stop_after_s: 300}
    calendar:
      shifts: [{id: E, start: "08:00", end: "10:00"}]
    products: [{id: P9, ideal_cycle_s: 9}]
    lines:
      - id: L1
        detection: counts
        default_product: P9
    """,
    rows=on("2026-03-02", [
        ("08:00:00", "good_count", "0"),
        ("08:00:00", "reject_count", "0"),
        ("08:00:30", "good_count", "10"),
        ("08:05:00", "good_count", "40"),
        ("08:09:00", "reject_count", "2"),
        ("08:14:00", "good_count", "100"),
        ("08:15:00", "good_count", "0", "bad"),
        ("08:20:00", "reject_count", "5", "bad"),
        ("08:30:00", "reject_count", "2"),
        ("08:40:00", "good_count", "130"),
        ("08:44:00", "good_count", "160"),
        ("08:49:00", "reject_count", "4"),
        ("09:58:00", "good_count", "200"),
        ("10:30:00", "reject_count", "4"),
    ]),
    start="2026-03-02T08:00", end="2026-03-02T10:30",
    split=8,  # part one ends inside the counts line's no_data span (S12)
)

SCENARIOS = {"G1": G1, "G2": G2, "G3": G3, "G4": G4, "G5": G5, "G6": G6, "G7": G7, "G8": G8,
             "G9": G9}


# --- the golden tests ------------------------------------------------------------------------


def test_G1_day_shift_micro_stop_boundary_failures_break_setup_rejects_energy(
        tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30, micro_stop_s 120, P30 = 30 s per unit.

    timeline (2026-03-02)      state           category          seconds
    08:00:00–09:00:00          1 running       running              3600
    09:00:00–09:01:59          2 fault         micro_stop            119  (119 < 120, T5)
    09:01:59–10:00:00          1               running              3481
    10:00:00–10:02:00          2               unplanned_stop        120  failure 1 (120 ≥ 120)
    10:02:00–11:00:00          1               running              3480
    11:00:00–11:10:00          2               unplanned_stop        600  failure 2
    11:10:00–11:59:00          1               running              2940
    11:59:00–12:00:00          2               micro_stop             60  (the break ends it)
    12:00:00–12:30:00          2 in the break  planned_stop         1800  (T3)
    12:30:00–12:31:00          2               micro_stop             60  (a new stop after
                                                                            the break, 60 s)
    12:31:00–14:00:00          1               running              5340
    14:00:00–14:20:00          3 setup         setup                1200
    14:20:00–16:00:00          1               running              6000

    sums: running 3600+3481+3480+2940+5340+6000 = 24841; micro 119+60+60 = 239;
    unplanned 120+600 = 720; setup 1200; planned_stop 1800; no_data 0; unscheduled 0;
    24841+239+720+1200+1800 = 28800 = calendar_s = scheduled_s. failures 2.
    counts: total 1800−1000 = 800 (+300 at 10:30, +500 at 15:59);
    reject 25−10 = 15 (+6, +9); good = 800−15 = 785 (S7).
    ideal_s = 800 × 30 = 24000. energy = 620.5 − 500 = 120.5 kWh.
    planned = 24841+239+1200+720 = 27000; run = 24841+239 = 25080.
    availability 25080/27000; performance 24000/25080; quality 785/800;
    oee = 24000 × 785/800 / 27000 = 23550/27000; teep = 23550/28800;
    mtbf 25080/2; mttr 720/2; throughput 785×3600/27000; scrap 15/800;
    energy per unit 120.5/785; completeness (28800−0)/28800.
    """
    rows = golden(tmp_path, G1)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=28800, scheduled=28800, running=24841, micro=239, setup=1200,
        unplanned=720, planned_stop=1800, no_data=0, unscheduled=0,
        planned=27000, run=25080, ideal=24000, total=800, good=785, reject=15,
        energy=120.5, failures=2,
        availability=25080 / 27000, performance=24000 / 25080, quality=785 / 800,
        oee=23550 / 27000, teep=23550 / 28800, mtbf=25080 / 2, mttr=720 / 2,
        throughput=785 * 3600 / 27000, scrap=15 / 800, energy_per_unit=120.5 / 785,
        completeness=28800 / 28800))


def test_G2_counter_rollover_reset_and_data_gap_running_through_break(tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30, counter_max 65535, P4 = 4 s per unit,
    total_count only (S7: good = total, reject 0).

    counter samples                          delta
    08:00:00  64000  baseline (S6)               0
    09:00:00  65530                           1530
    09:00:30      5  65530 ≥ 0.9×65535 = 58981.5: rollover 5 + 65535 + 1 − 65530 = 11
    10:00:00    994                            989
    10:00:20      3  1000 > 994 < 58981.5: reset, delta = 3
    11:00:00      0  bad quality: ignored, the baseline stays 3 (S6)
    11:30:00   1470  1470 − 3 = 1467 (revealed after the gap: kept)
    15:59:30   3470                           2000
    total = 1530+11+989+3+1467+2000 = 6000; ideal_s = 6000 × 4 = 24000.

    timeline                      category       seconds
    08:00:00–11:00:00  state 1    running          10800
    11:00:00–11:30:00  state bad  no_data           1800  (S5, until the next good state)
    11:30:00–16:00:00  state 1    running          16200  (incl. the break: T3)
    running 27000; no_data 1800; all else 0; 27000+1800 = 28800.
    planned = run = 27000. availability 27000/27000; performance 24000/27000; quality
    6000/6000; oee 24000/27000; teep 24000/28800; failures 0 → mtbf, mttr null;
    throughput 6000×3600/27000; scrap 0/6000; energy null; completeness (28800−1800)/28800.
    """
    rows = golden(tmp_path, G2)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=28800, scheduled=28800, running=27000, no_data=1800,
        planned=27000, run=27000, ideal=24000, total=6000, good=6000, reject=0,
        energy=None, failures=0,
        availability=27000 / 27000, performance=24000 / 27000, quality=6000 / 6000,
        oee=24000 / 27000, teep=24000 / 28800, mtbf=None, mttr=None,
        throughput=6000 * 3600 / 27000, scrap=0 / 6000, energy_per_unit=None,
        completeness=(28800 - 1800) / 28800))


def test_G3_product_switch_with_product_map_units_per_cycle_and_line_override(
        tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30. Products: P30 30 s / 1 unit = 30 s per unit;
    P12 globally 20 s / 2 units, but the line overrides it to 24 s / 4 units = 6 s per unit
    (S9). product_map 101 → P30, 102 → P12. total_count and good_count (S7: reject = total −
    good). Window --from 2026-03-02 (a date: local midnight) --to 2026-03-02T16:00.

    timeline                            category       seconds
    00:00–08:00  no record (T10)        unscheduled     28800
    08:00–12:00  state 1 (P30)          running         14400
    12:00–12:30  state 4 in the break   planned_stop     1800
    12:30–12:50  state 3, product 102   setup            1200
    12:50–16:00  state 1 (P12)          running         11400
    running 25800; setup 1200; planned_stop 1800; unscheduled 28800;
    25800+1200+1800+28800 = 57600 = calendar_s; scheduled 28800.

    counts                 total  good    product in force
    10:00                  +200   +196    P30
    11:59                  +200   +196    P30
    14:00                  +600   +598    P12
    15:59                 +1000   +990    P12
    total 2000, good 1980, reject 20.
    ideal_s = 400 × 30 + 1600 × 6 = 12000 + 9600 = 21600.
    planned = 25800 + 1200 = 27000; run 25800.
    availability 25800/27000; performance 21600/25800; quality 1980/2000;
    oee = 21600 × 1980/2000 / 27000 = 21384/27000; teep 21384/57600; failures 0;
    throughput 1980×3600/27000; scrap 20/2000; completeness 28800/28800.
    """
    rows = golden(tmp_path, G3)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T00:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=57600, scheduled=28800, running=25800, setup=1200, planned_stop=1800,
        unscheduled=28800,
        planned=27000, run=25800, ideal=21600, total=2000, good=1980, reject=20,
        availability=25800 / 27000, performance=21600 / 25800, quality=1980 / 2000,
        oee=21384 / 27000, teep=21384 / 57600, mtbf=None, mttr=None,
        throughput=1980 * 3600 / 27000, scrap=20 / 2000, energy_per_unit=None,
        completeness=28800 / 28800))


def test_G4_night_shift_across_midnight_by_shift_with_overtime_and_T10(tmp_path: Path) -> None:
    """
    Shift N 22:00–06:00 starting mon–fri, break 02:00–02:30 (its days default to the shift's:
    the break at 02:00 on Tuesday belongs to Monday's night shift, T7). P15 = 15 s per unit,
    total_count only. Window Mon 20:00 – Tue 08:00, --by shift.

    timeline                                 category        seconds   bucket
    Mon 20:00–21:50  no record at all        unscheduled       6600    off (T10)
    Mon 21:50–22:00  state 1, before shift   running            600    off (T2 overtime)
    Mon 22:00–23:30  state 1                 running           5400    N
    Mon 23:30–23:45  state 2                 unplanned_stop     900    N, failure 1
    Mon 23:45–Tue 02:00  state 1             running           8100    N
    Tue 02:00–02:10  state 1 in the break    running            600    N (T3)
    Tue 02:10–02:30  state 2 in the break    planned_stop      1200    N (T3)
    Tue 02:30–02:40  state 2                 unplanned_stop     600    N, failure 2 (the stop
                                                                       starts at the break end)
    Tue 02:40–06:00  state 1                 running          12000    N
    Tue 06:00–06:30  state 1 after shift     running           1800    off (T2 overtime)
    Tue 06:30–08:00  state 4 after shift     unscheduled       5400    off (T2)

    counts: baseline 0 at Mon 21:50; +600 (Tue 00:10) +800 (05:59) = 1400 in N; +60 at
    06:30 in the morning gap.

    bucket off Mon 20:00–22:00 (shift null, date null): calendar 7200, scheduled 0,
      running 600, unscheduled 6600; planned = run = 600; nothing made: ideal 0;
      availability 600/600; performance 0/600; quality null; oee 0 (nothing made); teep 0;
      mtbf/mttr null; throughput 0×3600/600; scrap null; completeness null (scheduled 0).
    bucket N 2026-03-02 (the start date, T7) 22:00–06:00: calendar = scheduled = 28800;
      running 5400+8100+600+12000 = 26100; unplanned 900+600 = 1500; planned_stop 1200;
      26100+1500+1200 = 28800. planned 26100+1500 = 27600; run 26100; total 1400;
      ideal 1400 × 15 = 21000. availability 26100/27600; performance 21000/26100;
      quality 1400/1400; oee 21000/27600; teep 21000/28800; failures 2; mtbf 26100/2;
      mttr 1500/2; throughput 1400×3600/27600; scrap 0/1400; completeness 28800/28800.
    bucket off Tue 06:00–08:00: calendar 7200, scheduled 0, running 1800, unscheduled 5400;
      planned = run = 1800; total 60; ideal 60 × 15 = 900. availability 1800/1800;
      performance 900/1800; quality 60/60; oee 900/1800; teep 900/7200; failures 0;
      throughput 60×3600/1800; scrap 0/60; completeness null.
    whole window, no --by: calendar 43200, scheduled 28800; running 600+26100+1800 = 28500;
      unplanned 1500; planned_stop 1200; unscheduled 6600+5400 = 12000; planned 30000;
      run 28500; total 1460; ideal 21900. availability 28500/30000; performance
      21900/28500; quality 1; oee 21900/30000; teep 21900/43200; mtbf 28500/2; mttr 1500/2;
      throughput 1460×3600/30000; scrap 0/1460; completeness 28800/28800 (sums, never
      averages).
    """
    rows = golden(tmp_path, G4, by="shift")
    assert len(rows) == 3
    assert_bucket(rows[0], expect(
        "2026-03-02T20:00:00+08:00", "2026-03-02T22:00:00+08:00", shift=None, date=None,
        calendar=7200, scheduled=0, running=600, unscheduled=6600,
        planned=600, run=600, ideal=0, total=0, failures=0,
        availability=600 / 600, performance=0 / 600, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 600, scrap=None, energy_per_unit=None,
        completeness=None))
    assert_bucket(rows[1], expect(
        "2026-03-02T22:00:00+08:00", "2026-03-03T06:00:00+08:00", shift="N",
        date="2026-03-02",
        calendar=28800, scheduled=28800, running=26100, unplanned=1500, planned_stop=1200,
        planned=27600, run=26100, ideal=21000, total=1400, good=1400, reject=0, failures=2,
        availability=26100 / 27600, performance=21000 / 26100, quality=1400 / 1400,
        oee=21000 / 27600, teep=21000 / 28800, mtbf=26100 / 2, mttr=1500 / 2,
        throughput=1400 * 3600 / 27600, scrap=0 / 1400, energy_per_unit=None,
        completeness=28800 / 28800))
    assert_bucket(rows[2], expect(
        "2026-03-03T06:00:00+08:00", "2026-03-03T08:00:00+08:00", shift=None, date=None,
        calendar=7200, scheduled=0, running=1800, unscheduled=5400,
        planned=1800, run=1800, ideal=900, total=60, good=60, reject=0, failures=0,
        availability=1800 / 1800, performance=900 / 1800, quality=60 / 60,
        oee=900 / 1800, teep=900 / 7200, mtbf=None, mttr=None,
        throughput=60 * 3600 / 1800, scrap=0 / 60, energy_per_unit=None, completeness=None))

    config = write_config(tmp_path, G4.yaml)  # the same store: the replay above wrote it
    whole = kpi_cli(config, G4.start, G4.end)
    assert len(whole) == 1
    assert_bucket(whole[0], expect(
        "2026-03-02T20:00:00+08:00", "2026-03-03T08:00:00+08:00",
        calendar=43200, scheduled=28800, running=28500, unplanned=1500, planned_stop=1200,
        unscheduled=12000,
        planned=30000, run=28500, ideal=21900, total=1460, good=1460, reject=0, failures=2,
        availability=28500 / 30000, performance=21900 / 28500, quality=1460 / 1460,
        oee=21900 / 30000, teep=21900 / 43200, mtbf=28500 / 2, mttr=1500 / 2,
        throughput=1460 * 3600 / 30000, scrap=0 / 1460, energy_per_unit=None,
        completeness=28800 / 28800))


def test_G5_counts_line_stop_after_s_reset_to_zero_break_and_overtime(tmp_path: Path) -> None:
    """
    detection: counts, stop_after_s 900, micro_stop_s 120. Shift M 08:00–12:00, break
    10:00–10:15. P12 = 12 s per unit. Window 07:30–12:30.

    count samples and what they mean (S11)
    08:00:00  100  baseline: unplanned_stop (unexplained) from here to the first increase
    08:01:00  110  +10 increase: running until 08:16:00
    08:16:00  150  +40 exactly stop_after_s later: no stop; running until 08:31:00
    08:30:00  200  +50 running until 08:45:00
    09:00:00  260  +60 (stop 08:45–09:00); running until 09:15:00
    09:10:00    0  reset (260 < 0.9×65535): delta 0, not an increase
    09:20:00   30  +30 (stop 09:15–09:20); running until 09:35:00
    09:36:59   60  +30 (stop 09:35:00–09:36:59); running until 09:51:59
    09:45:00  100  +40 running until 10:00:00
    10:17:00  130  +30 (stopped since 10:00:00); running until 10:32:00
    10:20:00  200  +70 until 10:35:00
    10:35:00 … 11:50:00  300, 400, 500, 600, 700, 800: +100 each, every 900 s exactly,
              so no stop; running until 11:50 + 900 s = 12:05:00
    12:30:00  800  delta 0 (end of input)
    total = 10+40+50+60+30+30+40+30+70+6×100 = 960; ideal_s = 960 × 12 = 11520.

    timeline                      category          seconds
    07:30:00–08:00:00  no record  unscheduled          1800  (T10)
    08:00:00–08:01:00             micro_stop             60  (stop of 60 s)
    08:01:00–08:45:00             running              2640
    08:45:00–09:00:00             unplanned_stop        900  failure 1
    09:00:00–09:15:00             running               900
    09:15:00–09:20:00             unplanned_stop        300  failure 2
    09:20:00–09:35:00             running               900
    09:35:00–09:36:59             micro_stop            119  (119 < 120)
    09:36:59–10:00:00             running              1381
    10:00:00–10:15:00  stopped in the break  planned_stop  900  (T3)
    10:15:00–10:17:00             unplanned_stop        120  failure 3 (120 ≥ 120; the
                                                              break ended the raw stop, T5)
    10:17:00–12:00:00             running              6180
    12:00:00–12:05:00  after the shift   running        300  (T2 overtime)
    12:05:00–12:30:00  stopped after it  unscheduled   1500  (T2)
    running 2640+900+900+1381+6180+300 = 12301; micro 60+119 = 179; unplanned
    900+300+120 = 1320; planned_stop 900; unscheduled 1800+1500 = 3300;
    12301+179+1320+900+3300 = 18000 = calendar_s; scheduled 14400.
    planned = 12301+179+1320 = 13800; run = 12301+179 = 12480.
    availability 12480/13800; performance 11520/12480; quality 960/960; oee 11520/13800;
    teep 11520/18000; mtbf 12480/3; mttr 1320/3; throughput 960×3600/13800; scrap 0/960;
    completeness (14400−0)/14400.
    """
    rows = golden(tmp_path, G5)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T07:30:00+08:00", "2026-03-02T12:30:00+08:00",
        calendar=18000, scheduled=14400, running=12301, micro=179, unplanned=1320,
        planned_stop=900, unscheduled=3300,
        planned=13800, run=12480, ideal=11520, total=960, good=960, reject=0, failures=3,
        availability=12480 / 13800, performance=11520 / 12480, quality=960 / 960,
        oee=11520 / 13800, teep=11520 / 18000, mtbf=12480 / 3, mttr=1320 / 3,
        throughput=960 * 3600 / 13800, scrap=0 / 960, energy_per_unit=None,
        completeness=14400 / 14400))


def test_G6_first_sample_mid_shift_reasons_and_setup_is_planned(tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30, setup_is_planned: true (T9). reason_map
    17 → fault (unplanned_stop), 30 → meeting (planned_stop), 40 → changeover (setup).
    P12 = 12 s per unit. The line's first sample is at 12:15, inside the break.

    timeline                                   category        seconds
    08:00:00–12:00:00  no record (T10)         no_data          14400
    12:00:00–12:15:00  no record, break (T10)  planned_stop       900
    12:15:00–12:30:00  state 2 in the break    planned_stop       900  (T3)
    12:30:00–12:35:00  state 2                 unplanned_stop     300  failure 1
    12:35:00–13:00:00  reason 30 = meeting     planned_stop      1500  (S10; the repeated
                       state 2 at 12:50 neither ends this stop nor drops its reason, T5)
    13:00:00–14:00:00  state 1                 running           3600
    14:00:00–14:30:00  state 3                 setup             1800
    14:30:00–15:00:00  state 1                 running           1800
    15:00:00–15:01:00  state 2                 micro_stop          60  (setup ends it)
    15:01:00–15:10:00  reason 40 = changeover  setup              540  (S10)
    15:10:00–15:30:00  state 1                 running           1200
    15:30:00–15:40:00  state 2 (+ reason 17 = fault at 15:30:30: stays unplanned)
                                               unplanned_stop     600  failure 2
    15:40:00–16:00:00  state 1                 running           1200
    sums: running 3600+1800+1200+1200 = 7800; micro 60; setup 1800+540 = 2340;
    unplanned 300+600 = 900; planned_stop 900+900+1500 = 3300; no_data 14400;
    7800+60+2340+900+3300+14400 = 28800.
    counts: baseline 0 at 13:00, 500 at 15:59: total 500; ideal_s 500 × 12 = 6000.
    planned = 7800+60+900 = 8760 (setup reported, not planned: T9); run = 7860.
    availability 7860/8760; performance 6000/7860; quality 500/500; oee 6000/8760;
    teep 6000/28800; mtbf 7860/2; mttr 900/2; throughput 500×3600/8760; scrap 0/500;
    completeness (28800−14400)/28800.

    --by hour, 11:00–13:00:
    11:00–12:00: no_data 3600 (T10), scheduled 3600; planned 0, run 0: availability,
      performance, quality, oee (planned 0), mtbf, mttr, throughput, scrap null; teep 0
      (nothing made); completeness (3600−3600)/3600 = 0.
    12:00–13:00: planned_stop 900+900+1500 = 3300, unplanned 300, failures 1; planned 300,
      run 0: availability 0/300; performance null (run 0); quality null; oee 0 (nothing
      made); teep 0; mtbf 0/1; mttr 300/1; throughput 0×3600/300; scrap null;
      completeness 3600/3600.
    """
    rows = golden(tmp_path, G6)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=28800, scheduled=28800, running=7800, micro=60, setup=2340, unplanned=900,
        planned_stop=3300, no_data=14400,
        planned=8760, run=7860, ideal=6000, total=500, good=500, reject=0, failures=2,
        availability=7860 / 8760, performance=6000 / 7860, quality=500 / 500,
        oee=6000 / 8760, teep=6000 / 28800, mtbf=7860 / 2, mttr=900 / 2,
        throughput=500 * 3600 / 8760, scrap=0 / 500, energy_per_unit=None,
        completeness=(28800 - 14400) / 28800))

    config = write_config(tmp_path, G6.yaml)
    hours = kpi_cli(config, "2026-03-02T11:00", "2026-03-02T13:00", by="hour")
    assert len(hours) == 2
    assert_bucket(hours[0], expect(
        "2026-03-02T11:00:00+08:00", "2026-03-02T12:00:00+08:00",
        calendar=3600, scheduled=3600, no_data=3600, planned=0, run=0, ideal=0,
        availability=None, performance=None, quality=None, oee=None, teep=0.0,
        mtbf=None, mttr=None, throughput=None, scrap=None, energy_per_unit=None,
        completeness=(3600 - 3600) / 3600))
    assert_bucket(hours[1], expect(
        "2026-03-02T12:00:00+08:00", "2026-03-02T13:00:00+08:00",
        calendar=3600, scheduled=3600, planned_stop=3300, unplanned=300, failures=1,
        planned=300, run=0, ideal=0,
        availability=0 / 300, performance=None, quality=None, oee=0.0, teep=0.0,
        mtbf=0 / 1, mttr=300 / 1, throughput=0 * 3600 / 300, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))


def test_G7_overtime_setup_in_break_and_outside_shift_energy_by_hour(tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30. P24 = 24 s per unit. Energy meter
    1000.0 → 1100.25 (15:00) → 1150.5 (17:00). Window 08:00–18:00.

    timeline                                 category        seconds
    08:00–11:50  state 1                     running          13800
    11:50–12:00  state 3                     setup              600
    12:00–12:20  state 3 in the break        planned_stop      1200  (T3: setup included)
    12:20–12:30  state 1 in the break        running            600  (T3)
    12:30–16:00  state 1                     running          12600
    16:00–17:00  state 1 after the shift     running           3600  (T2 overtime)
    17:00–17:30  state 3 after the shift     unscheduled       1800  (T2: setup included)
    17:30–17:40  state 2 after the shift     unscheduled        600  (T2; not a stop)
    17:40–18:00  state 1 after the shift     running           1200  (T2)
    running 13800+600+12600+3600+1200 = 31800; setup 600; planned_stop 1200;
    unscheduled 2400; 31800+600+1200+2400 = 36000 = calendar_s; scheduled 28800.
    counts: +1000 (15:00), +200 (17:00), +100 (17:59) = 1300; ideal 1300 × 24 = 31200.
    energy: 100.25 + 50.25 = 150.5 kWh.
    whole window: planned 31800+600 = 32400; run 31800; availability 31800/32400;
    performance 31200/31800; quality 1300/1300; oee 31200/32400; teep 31200/36000;
    failures 0; throughput 1300×3600/32400; scrap 0/1300; energy per unit 150.5/1300;
    completeness 28800/28800.

    --by hour (10 buckets 08:00 … 17:00), checked in full:
    08: running 3600; energy 0.0 (the baseline sample marks the span, S8); nothing made:
        performance 0/3600, quality null, oee 0, teep 0, throughput 0; availability 1.
    09: running 3600; no energy sample: energy null.
    10: running 3600.
    11: running 3000, setup 600; planned 3600, run 3000; availability 3000/3600.
    12: planned_stop 1200, running 600+1800 = 2400; planned = run = 2400.
    13: running 3600.   14: running 3600.
    15: running 3600; total 1000, ideal 24000; energy 100.25; performance 24000/3600 (> 1,
        not clipped); oee 24000/3600; teep 24000/3600; throughput 1000×3600/3600;
        energy per unit 100.25/1000.
    16: running 3600 overtime; scheduled 0: completeness null.
    17: running 1200, unscheduled 2400; scheduled 0; total 200+100 = 300, ideal 7200;
        energy 50.25; planned = run = 1200; performance 7200/1200; oee 7200/1200;
        teep 7200/3600; throughput 300×3600/1200; energy per unit 50.25/300.
    """
    rows = golden(tmp_path, G7)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T18:00:00+08:00",
        calendar=36000, scheduled=28800, running=31800, setup=600, planned_stop=1200,
        unscheduled=2400,
        planned=32400, run=31800, ideal=31200, total=1300, good=1300, reject=0,
        energy=150.5, failures=0,
        availability=31800 / 32400, performance=31200 / 31800, quality=1300 / 1300,
        oee=31200 / 32400, teep=31200 / 36000, mtbf=None, mttr=None,
        throughput=1300 * 3600 / 32400, scrap=0 / 1300, energy_per_unit=150.5 / 1300,
        completeness=28800 / 28800))

    config = write_config(tmp_path, G7.yaml)
    hours = kpi_cli(config, G7.start, G7.end, by="hour")
    assert [h["from"][11:16] for h in hours] == [f"{h:02d}:00" for h in range(8, 18)]

    def plain_hour(h: int, energy: float | None) -> dict[str, Any]:
        return expect(
            f"2026-03-02T{h:02d}:00:00+08:00", f"2026-03-02T{h + 1:02d}:00:00+08:00",
            calendar=3600, scheduled=3600, running=3600, planned=3600, run=3600, ideal=0,
            energy=energy,
            availability=3600 / 3600, performance=0 / 3600, quality=None, oee=0.0,
            teep=0.0, mtbf=None, mttr=None, throughput=0 * 3600 / 3600, scrap=None,
            energy_per_unit=None, completeness=3600 / 3600)

    assert_bucket(hours[0], plain_hour(8, energy=0.0))
    assert_bucket(hours[1], plain_hour(9, energy=None))
    assert_bucket(hours[2], plain_hour(10, energy=None))
    assert_bucket(hours[3], expect(
        "2026-03-02T11:00:00+08:00", "2026-03-02T12:00:00+08:00",
        calendar=3600, scheduled=3600, running=3000, setup=600, planned=3600, run=3000,
        ideal=0,
        availability=3000 / 3600, performance=0 / 3000, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 3600, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))
    assert_bucket(hours[4], expect(
        "2026-03-02T12:00:00+08:00", "2026-03-02T13:00:00+08:00",
        calendar=3600, scheduled=3600, running=2400, planned_stop=1200, planned=2400,
        run=2400, ideal=0,
        availability=2400 / 2400, performance=0 / 2400, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 2400, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))
    assert_bucket(hours[5], plain_hour(13, energy=None))
    assert_bucket(hours[6], plain_hour(14, energy=None))
    assert_bucket(hours[7], expect(
        "2026-03-02T15:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=3600, scheduled=3600, running=3600, planned=3600, run=3600, ideal=24000,
        total=1000, good=1000, reject=0, energy=100.25,
        availability=3600 / 3600, performance=24000 / 3600, quality=1000 / 1000,
        oee=24000 / 3600, teep=24000 / 3600, mtbf=None, mttr=None,
        throughput=1000 * 3600 / 3600, scrap=0 / 1000, energy_per_unit=100.25 / 1000,
        completeness=3600 / 3600))
    assert_bucket(hours[8], expect(
        "2026-03-02T16:00:00+08:00", "2026-03-02T17:00:00+08:00",
        calendar=3600, scheduled=0, running=3600, planned=3600, run=3600, ideal=0,
        availability=3600 / 3600, performance=0 / 3600, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 3600, scrap=None,
        energy_per_unit=None, completeness=None))
    assert_bucket(hours[9], expect(
        "2026-03-02T17:00:00+08:00", "2026-03-02T18:00:00+08:00",
        calendar=3600, scheduled=0, running=1200, unscheduled=2400, planned=1200, run=1200,
        ideal=7200, total=300, good=300, reject=0, energy=50.25,
        availability=1200 / 1200, performance=7200 / 1200, quality=300 / 300,
        oee=7200 / 1200, teep=7200 / 3600, mtbf=None, mttr=None,
        throughput=300 * 3600 / 1200, scrap=0 / 300, energy_per_unit=50.25 / 300,
        completeness=None))


def test_G8_canonical_state_values_unmapped_repeats_and_stops_across_hours(
        tmp_path: Path) -> None:
    """
    Shift A 08:00–16:00, break 12:00–12:30. P28 = 28 s per unit. State values in other
    spellings (S4): "1.0", "01" → 1; "+2" → 2; "7" is not in the state_map → unplanned_stop,
    reason unmapped.

    timeline                                        category        seconds
    08:00:00–09:59:00  "1.0"                        running           7140
    09:59:00–10:01:00  "+2", then "2" at 10:00:30   unplanned_stop     120  failure 1
                       (a repeated value does not end the stop, T5); 60 s in hour 09,
                       60 s in hour 10; the failure counts in hour 09 (T6)
    10:01:00–10:59:10  "01"                         running           3490
    10:59:10–11:00:50  "7" unmapped                 micro_stop         100  (50 + 50 s
                       across the 11:00 hour edge, judged on its whole 100 s, T5)
    11:00:50–13:00:00  "1" (through the break, T3)  running           7150
    13:00:00–13:45:00  "2", then "7" at 13:30       unplanned_stop    2700  failure 2
                       (a change of reason does not end the stop: one failure, not two)
    13:45:00–16:00:00  "1"                          running           8100
    running 7140+3490+7150+8100 = 25880; micro 100; unplanned 120+2700 = 2820;
    25880+100+2820 = 28800. counts: 900; ideal 900 × 28 = 25200.
    planned 28800; run 25980; availability 25980/28800; performance 25200/25980;
    quality 900/900; oee 25200/28800; teep 25200/28800; mtbf 25980/2; mttr 2820/2;
    throughput 900×3600/28800; scrap 0/900; completeness 28800/28800.

    --by hour 09:00–12:00 (no counts in these hours: performance 0, quality null, oee 0):
    09: running 3540, unplanned 60, failures 1: planned 3600, run 3540; availability
        3540/3600; mtbf 3540/1; mttr 60/1.
    10: unplanned 60, micro 50, running 3490, failures 0: planned 3600, run 3540;
        availability 3540/3600; mtbf, mttr null.
    11: micro 50, running 3550: planned = run = 3600; availability 1.
    """
    rows = golden(tmp_path, G8)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T16:00:00+08:00",
        calendar=28800, scheduled=28800, running=25880, micro=100, unplanned=2820,
        planned=28800, run=25980, ideal=25200, total=900, good=900, reject=0, failures=2,
        availability=25980 / 28800, performance=25200 / 25980, quality=900 / 900,
        oee=25200 / 28800, teep=25200 / 28800, mtbf=25980 / 2, mttr=2820 / 2,
        throughput=900 * 3600 / 28800, scrap=0 / 900, energy_per_unit=None,
        completeness=28800 / 28800))

    config = write_config(tmp_path, G8.yaml)
    hours = kpi_cli(config, "2026-03-02T09:00", "2026-03-02T12:00", by="hour")
    assert len(hours) == 3
    assert_bucket(hours[0], expect(
        "2026-03-02T09:00:00+08:00", "2026-03-02T10:00:00+08:00",
        calendar=3600, scheduled=3600, running=3540, unplanned=60, failures=1,
        planned=3600, run=3540, ideal=0,
        availability=3540 / 3600, performance=0 / 3540, quality=None, oee=0.0, teep=0.0,
        mtbf=3540 / 1, mttr=60 / 1, throughput=0 * 3600 / 3600, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))
    assert_bucket(hours[1], expect(
        "2026-03-02T10:00:00+08:00", "2026-03-02T11:00:00+08:00",
        calendar=3600, scheduled=3600, running=3490, micro=50, unplanned=60, failures=0,
        planned=3600, run=3540, ideal=0,
        availability=3540 / 3600, performance=0 / 3540, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 3600, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))
    assert_bucket(hours[2], expect(
        "2026-03-02T11:00:00+08:00", "2026-03-02T12:00:00+08:00",
        calendar=3600, scheduled=3600, running=3550, micro=50, planned=3600, run=3600,
        ideal=0,
        availability=3600 / 3600, performance=0 / 3600, quality=None, oee=0.0, teep=0.0,
        mtbf=None, mttr=None, throughput=0 * 3600 / 3600, scrap=None,
        energy_per_unit=None, completeness=3600 / 3600))


def test_G9_counts_line_good_and_reject_signals_with_bad_samples(tmp_path: Path) -> None:
    """
    detection: counts with good_count and reject_count only (S7: total = good + reject; an
    increase is a total delta > 0, so a reject increase counts too). stop_after_s 300,
    micro_stop_s 120. Shift E 08:00–10:00, no break. P9 = 9 s per unit. Window 08:00–10:30.

    samples                      delta          S11 / S12
    08:00:00 good 0, reject 0    baselines      unplanned_stop (unexplained) from 08:00:00
    08:00:30 good 10             good +10       increase: running until 08:05:30
    08:05:00 good 40             good +30       running until 08:10:00
    08:09:00 reject 2            reject +2      increase (total +2): running until 08:14:00
    08:14:00 good 100            good +60       exactly 300 s later: no stop; until 08:19:00
    08:15:00 good "0" bad        ignored (S6)   no_data from 08:15:00 (S12)
    08:20:00 reject "5" bad      ignored: the reject baseline stays 2
    08:30:00 reject 2            0              no_data ends; the S11 timeline without the
                                                bad samples says stopped since 08:19:00,
                                                so unplanned_stop from 08:30:00
    08:40:00 good 130            good +30       increase: running until 08:45:00
    08:44:00 good 160            good +30       running until 08:49:00
    08:49:00 reject 4            reject +2      exactly 300 s later: until 08:54:00
    09:58:00 good 200            good +40       increase: running until 10:03:00
    10:30:00 reject 4            0              (end of input)
    good 10+30+60+30+30+40 = 200; reject 2+2 = 4; total 204; ideal 204 × 9 = 1836.

    timeline                           category          seconds
    08:00:00–08:00:30                  micro_stop             30
    08:00:30–08:15:00                  running               870
    08:15:00–08:30:00                  no_data               900  (S12)
    08:30:00–08:40:00                  unplanned_stop        600  failure 1 (no_data ended
                                                                  the raw stop, T5)
    08:40:00–08:54:00                  running               840
    08:54:00–09:58:00                  unplanned_stop       3840  failure 2
    09:58:00–10:00:00                  running               120
    10:00:00–10:03:00  after the shift running               180  (T2 overtime)
    10:03:00–10:30:00  after the shift unscheduled          1620  (T2)
    running 870+840+120+180 = 2010; micro 30; unplanned 600+3840 = 4440; no_data 900;
    unscheduled 1620; 2010+30+4440+900+1620 = 9000 = calendar_s; scheduled 7200.
    planned = 2010+30+4440 = 6480; run = 2040.
    availability 2040/6480; performance 1836/2040; quality 200/204;
    oee = 1836 × 200/204 / 6480 = 1800/6480; teep 1800/9000; mtbf 2040/2; mttr 4440/2;
    throughput 200×3600/6480; scrap 4/204; completeness (7200−900)/7200.
    """
    rows = golden(tmp_path, G9)
    assert len(rows) == 1
    assert_bucket(rows[0], expect(
        "2026-03-02T08:00:00+08:00", "2026-03-02T10:30:00+08:00",
        calendar=9000, scheduled=7200, running=2010, micro=30, unplanned=4440, no_data=900,
        unscheduled=1620,
        planned=6480, run=2040, ideal=1836, total=204, good=200, reject=4, failures=2,
        availability=2040 / 6480, performance=1836 / 2040, quality=200 / 204,
        oee=1800 / 6480, teep=1800 / 9000, mtbf=2040 / 2, mttr=4440 / 2,
        throughput=200 * 3600 / 6480, scrap=4 / 204, energy_per_unit=None,
        completeness=(7200 - 900) / 7200))


# --- R3: re-running and continuing a replay ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_R3_replaying_the_same_file_again_changes_nothing(tmp_path: Path, name: str) -> None:
    """
    R3: a second replay of the same file finds every sample older than the line's checkpoint
    or (those at the checkpoint's own timestamp) identical to one already applied there.
    With n rows of which d share the last timestamp: "rows read: n, applied: 0, skipped: n",
    n − d skipped as older and d as duplicates; the KPI JSON (--by hour) is byte-for-byte
    the same.
    """
    scenario = SCENARIOS[name]
    config = write_config(tmp_path, scenario.yaml)
    csv_path = write_samples(tmp_path, scenario.yaml, scenario.rows)
    n = len(scenario.rows)
    last = max(row[0] for row in scenario.rows)
    d = sum(1 for row in scenario.rows if row[0] == last)

    first = replay_cli(config, csv_path)
    assert f"rows read: {n}, applied: {n}, skipped: 0" in first, first
    before = kpi_text(config, scenario.start, scenario.end, "hour")

    second = replay_cli(config, csv_path)
    assert f"rows read: {n}, applied: 0, skipped: {n}" in second, second
    reasons = {line.strip() for line in second.splitlines() if "skipped " in line
               and not line.startswith("rows read")}
    expected = {f"skipped {d}: duplicate of a recorded sample"}
    if n - d:
        expected.add(f"skipped {n - d}: older than the line's checkpoint")
    assert reasons == expected, second
    after = kpi_text(config, scenario.start, scenario.end, "hour")
    assert after == before


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_R3_replay_in_two_parts_equals_replay_at_once(tmp_path: Path, name: str) -> None:
    """
    R3: replaying rows[:split] and then rows[split:] (two `replay` commands, one store) gives
    the same KPI JSON, in every hour bucket, as replaying all rows at once into another
    store.
    Each split point is chosen inside something still open (a stop judged provisionally, a
    data gap, a counts line's running period, a setup), so the continuation has to rewrite
    what the end of part one wrote.
    """
    scenario = SCENARIOS[name]
    rows = scenario.rows
    assert rows[scenario.split - 1][0] != rows[scenario.split][0]  # a real time step

    once = write_config(tmp_path, scenario.yaml, name="once")
    replay_cli(once, write_samples(tmp_path, scenario.yaml, rows, name="all.csv"))

    parts = write_config(tmp_path, scenario.yaml, name="parts")
    out1 = replay_cli(parts, write_samples(tmp_path, scenario.yaml, rows[:scenario.split],
                                           name="part1.csv"))
    out2 = replay_cli(parts, write_samples(tmp_path, scenario.yaml, rows[scenario.split:],
                                           name="part2.csv"))
    k = scenario.split
    assert f"rows read: {k}, applied: {k}, skipped: 0" in out1, out1
    m = len(rows) - k
    assert f"rows read: {m}, applied: {m}, skipped: 0" in out2, out2

    # Hour buckets: every hour of the window compared, so a difference cannot cancel out.
    one_shot = kpi_cli(once, scenario.start, scenario.end, "hour")
    two_parts = kpi_cli(parts, scenario.start, scenario.end, "hour")
    assert two_parts == one_shot
