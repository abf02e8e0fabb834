"""The line simulator (simulator/line_sim.py), the real-time loop and the backfill command.

The plant is config/demo.yaml (Asia/Hong_Kong; shifts D 08–20 and N 20–08 Mon–Sat, lunch
12:00–13:00, dinner 00:00–00:30; 2026-06-19 is a holiday; the upgrade of every line is
installed on 2026-06-15). 2026-06-08 is a Monday.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from linewatch.canonical import canonical_value
from linewatch.config import PlantConfig, Signals, load_config
from linewatch.kpi_query import kpi_rows
from linewatch.sample import Sample
from linewatch.shift_calendar import BREAK, OFF, ShiftCalendar
from linewatch.storage.sqlite import SqliteStore
from simulator.cli import backfill_command, build_publishers
from simulator.line_sim import (
    RESET_BELOW,
    LineSimulator,
    Params,
    Resume,
    SimulationError,
    local_midnight,
)
from simulator.runner import RunStats, run_realtime

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
SEED = 7


@pytest.fixture(scope="module")
def demo() -> PlantConfig:
    return load_config(DEMO)


def day(config: PlantConfig, date: str) -> int:
    return local_midnight(config, dt.date.fromisoformat(date))


def simulate(config: PlantConfig, line_id: str, start: str, days: float, seed: int = SEED,
             telemetry: bool = False) -> tuple[LineSimulator, list[Sample]]:
    sim = LineSimulator(config, config.line(line_id), seed, day(config, start),
                        telemetry=telemetry)
    return sim, sim.run(day(config, start) + int(days * 86400))


def with_simulation(config: PlantConfig, line_id: str, **changes: object) -> PlantConfig:
    """The config with some simulation parameters of one line changed."""
    lines = []
    for line in config.lines:
        if line.id == line_id:
            sim = line.simulation.model_copy(update=changes)
            line = line.model_copy(update={"simulation": sim})
        lines.append(line)
    return config.model_copy(update={"lines": lines})


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_the_same_samples_however_run_is_stepped(demo: PlantConfig) -> None:
    start = day(demo, "2026-06-08") + 3 * 3600 + 17
    end = start + 2 * 86400
    for line in demo.lines:
        whole = LineSimulator(demo, line, SEED, start).run(end)
        stepped_sim = LineSimulator(demo, line, SEED, start)
        stepped: list[Sample] = []
        t = start
        for step in (1, 1, 7, 59, 3600, 1, 86_000, 40_000, 100_000):
            t = min(end, t + step)
            stepped += stepped_sim.run(t)
        assert stepped_sim.run(t) == []  # nothing twice
        assert stepped == whole, line.id
        assert all(start * 1000 <= s.ts < end * 1000 for s in whole)
        assert [s.ts for s in whole] == sorted(s.ts for s in whole)
        other = LineSimulator(demo, line, SEED + 1, start).run(end)
        assert other != whole


# --- the upgrade --------------------------------------------------------------------------


def test_after_upgrade_parameters_apply_from_local_midnight_of_installed_on(
        demo: PlantConfig) -> None:
    line = demo.line("L1")
    sim = LineSimulator(demo, line, SEED, day(demo, "2026-06-01"))
    before = sim.params_at(day(demo, "2026-06-15") - 1)
    after = sim.params_at(day(demo, "2026-06-15"))
    assert before == Params.of(line.simulation, upgraded=False)
    assert (before.cycle_factor, before.reject_rate, before.mtbf_s) == (1.12, 0.035, 6000)
    assert (after.cycle_factor, after.reject_rate, after.mtbf_s) == (1.03, 0.012, 12000)
    assert after.micro_per_s == 2 / 3600
    # L2 sets no after_upgrade cycle_factor: it keeps its value.
    l2 = LineSimulator(demo, demo.line("L2"), SEED, day(demo, "2026-06-01"))
    assert l2.params_at(day(demo, "2026-07-01")).cycle_factor == 1.10


def test_after_upgrade_the_line_fails_less_rejects_less_and_cycles_faster(
        demo: PlantConfig) -> None:
    sim, _ = simulate(demo, "L1", "2026-06-01", 28)
    assert sim.truth is not None
    upgrade = day(demo, "2026-06-15")

    def period(lo: int, hi: int) -> tuple[float, float, float]:
        units = [u for u in sim.truth.units if lo * 1000 <= u[0] < hi * 1000]
        rejects = sum(u[2] for u in units) / sum(u[1] for u in units)
        running = sum(min(e, hi) - max(s, lo) for s, e, c, _ in sim.truth.intervals
                      if c == "running" and s < hi and e > lo)
        stops = sum(1 for s, e, c, _ in sim.truth.intervals
                    if c == "unplanned_stop" and lo <= s < hi and e - s >= 120)
        return rejects, running / len(units) * 8, stops / running * 3600

    reject_before, cycle_before, fails_before = period(upgrade - 14 * 86400, upgrade)
    reject_after, cycle_after, fails_after = period(upgrade, upgrade + 14 * 86400)
    assert reject_after < 0.6 * reject_before
    assert cycle_after < 0.97 * cycle_before  # 20 s × 1.12 + partial cycles vs 20 s × 1.03
    assert fails_after < 0.75 * fails_before


# --- S6 counters ----------------------------------------------------------------------------


def s6_drops(samples: Sequence[Sample], role: str, counter_max: int) -> tuple[int, int]:
    """(rollovers, resets) as S6 reads the register's drops."""
    rollovers = resets = 0
    prev: int | None = None
    for s in samples:
        if s.signal != role:
            continue
        value = int(s.value)  # type: ignore[call-overload]
        if prev is not None and value < prev:
            if prev >= RESET_BELOW * counter_max:
                rollovers += 1
            else:
                resets += 1
                assert value == 0
        prev = value
    return rollovers, resets


def made(sim: LineSimulator) -> int:
    """Units of the cycles published so far (the simulator may have generated a bit more)."""
    assert sim.truth is not None
    return sum(u[1] for u in sim.truth.units if u[0] < sim.until * 1000)


def decode(samples: Sequence[Sample], role: str, counter_max: int) -> int:
    """The register's deltas summed as S6 reads them."""
    total = 0
    prev: int | None = None
    for s in samples:
        if s.signal != role:
            continue
        value = int(s.value)  # type: ignore[call-overload]
        if prev is not None:
            if value >= prev:
                total += value - prev
            elif prev >= RESET_BELOW * counter_max:
                total += value + counter_max + 1 - prev
            else:
                total += value
        prev = value
    return total


def test_s6_counters_roll_over_at_counter_max_and_reset_below_0_9_max(
        demo: PlantConfig) -> None:
    config = with_simulation(demo, "L3", counter_resets_per_week=3.0)
    sim, samples = simulate(config, "L3", "2026-06-08", 7)
    totals = [int(s.value) for s in samples if s.signal == "total_count"]  # type: ignore[call-overload]
    assert max(totals) <= 65535 and min(totals) >= 0
    assert max(totals) > 65000  # the register reaches the top before it wraps
    rollovers, resets = s6_drops(samples, "total_count", 65535)
    assert rollovers >= 1
    assert resets >= 2
    assert sim.stats.resets >= resets
    # Decoding the register by S6 gives back every unit the line made.
    assert sim.truth is not None
    assert decode(samples, "total_count", 65535) == made(sim)


def test_s6_a_reset_waits_while_a_register_is_above_0_9_max(demo: PlantConfig) -> None:
    # Resets every ~10 minutes, from registers near the top: the first ones must wait for
    # the rollover, or S6 would read the drop as a rollover and count ~65,000 units.
    config = with_simulation(demo, "L3", counter_resets_per_week=1000.0)
    start = day(config, "2026-06-08") + 9 * 3600
    sim = LineSimulator(config, config.line("L3"), SEED, start,
                        resume=Resume(counters={"total_count": 64_000, "reject_count": 10}))
    samples = sim.run(start + 86400)
    assert sim.stats.postponed_resets > 0
    rollovers, resets = s6_drops(samples, "total_count", 65535)
    assert rollovers == 1 and resets > 10
    first_zero = next(s for s in samples if s.signal == "total_count" and s.value == 0)
    first_wrap = next(s for s in samples if s.signal == "total_count"
                      and int(s.value) < 100)  # type: ignore[call-overload]
    assert first_wrap.ts <= first_zero.ts
    assert sim.truth is not None
    assert decode(samples, "total_count", 65535) == made(sim)


# --- S4 states --------------------------------------------------------------------------------


def test_s4_state_values_map_to_the_intended_categories(demo: PlantConfig) -> None:
    for line_id in ("L1", "L2"):
        sim, samples = simulate(demo, line_id, "2026-06-08", 7)
        line = demo.line(line_id)
        assert sim.truth is not None
        intervals = sim.truth.intervals
        starts = [i[0] for i in intervals]
        catalog = {r.code: r.category for r in demo.reasons}
        seen: Counter[str] = Counter()
        pending_reason: dict[int, str] = {}
        for s in samples:
            if s.signal == "reason":
                code = line.reason_map.get(canonical_value(s.value), canonical_value(s.value))
                if code is not None:
                    pending_reason[s.ts] = code
        for s in samples:
            if s.signal != "state":
                continue
            entry = line.state_map[canonical_value(s.value)]  # S4: always a mapped value
            interval = intervals[max(i for i, a in enumerate(starts) if a <= s.second)]
            category = entry.category
            code = pending_reason.get(s.ts)
            if code is not None and catalog[code] in ("planned_stop", "setup"):
                category = catalog[code]  # S10
            assert category == interval[2], (line_id, s)
            seen[category] += 1
        assert set(seen) == {"running", "unplanned_stop", "setup", "planned_stop"}


def test_state_values_are_reverse_lookups_of_the_state_map(demo: PlantConfig) -> None:
    l1 = LineSimulator(demo, demo.line("L1"), SEED, day(demo, "2026-06-08"))
    values = l1.intent_values()
    assert values["run"] == (1, "running")
    assert values["micro"] == (2, "unplanned_stop")
    assert values["setup"] == (3, "setup")
    assert values["idle"] == (0, "planned_stop")
    assert values["break"] == (4, "planned_stop")
    assert values["fail:planned_maintenance"] == (2, "planned_stop")  # S10 via reason 44
    l2 = LineSimulator(demo, demo.line("L2"), SEED, day(demo, "2026-06-08"))
    assert l2.intent_values()["run"] == ("RUN", "running")


def test_a_state_line_without_a_running_value_is_refused(demo: PlantConfig) -> None:
    line = demo.line("L1")
    broken = line.model_copy(update={"state_map": {k: v for k, v in line.state_map.items()
                                                   if v.category != "running"}})
    with pytest.raises(SimulationError, match="no running value"):
        LineSimulator(demo, broken, SEED, day(demo, "2026-06-08"))


def test_s11_a_counts_line_publishes_no_state_only_counts(demo: PlantConfig) -> None:
    _, samples = simulate(demo, "L3", "2026-06-08", 2)
    assert {s.signal for s in samples} == {"total_count", "reject_count"}


# --- calendar: breaks, holidays, overtime -------------------------------------------------------


def test_t3_t2_breaks_holidays_and_off_time_are_idle_with_no_counts(demo: PlantConfig) -> None:
    calendar = ShiftCalendar(demo.calendar, demo.site.zone())
    start = day(demo, "2026-06-13")  # Sat; Sun off; Fri 19 a holiday
    for line_id in ("L2", "L3"):  # neither works overtime
        _, samples = simulate(demo, line_id, "2026-06-13", 8)
        # Units made (a PLC counter reset to 0 may come at any time).
        counts = [s for s in samples if s.signal == "total_count" and s.ts > start * 1000
                  and s.value != 0]
        kinds = Counter(calendar.spans(s.second, s.second + 1)[0].kind for s in counts)
        assert set(kinds) == {"shift"}, line_id
        states = {canonical_value(s.value): s for s in samples if s.signal == "state"}
        if line_id == "L2":
            assert set(states) == {"RUN", "STOP", "SETUP", "IDLE", "BREAK"}
        holiday = day(demo, "2026-06-19")
        on_holiday = [s for s in counts if holiday + 8 * 3600 <= s.second < holiday + 86400]
        assert on_holiday == []
    # L2's state during a break and on the holiday.
    _, samples = simulate(demo, "L2", "2026-06-18", 2)
    state_at: dict[int, str] = {}
    for s in samples:
        if s.signal == "state":
            state_at[s.second] = canonical_value(s.value)
    changes = sorted(state_at)

    def state(t: int) -> str:
        return state_at[max(c for c in changes if c <= t)]

    lunch = day(demo, "2026-06-18") + 12 * 3600
    assert all(state(t) == "BREAK" for t in range(lunch, lunch + 3600, 60))
    holiday = day(demo, "2026-06-19")
    assert all(state(t) == "IDLE" for t in range(holiday + 8 * 3600, holiday + 86400, 600))
    assert calendar.spans(lunch, lunch + 1)[0].kind == BREAK
    assert calendar.spans(holiday + 10 * 3600, holiday + 10 * 3600 + 1)[0].kind == OFF


def test_t2_overtime_runs_on_only_right_after_a_shift(demo: PlantConfig) -> None:
    config = with_simulation(demo, "L1", overtime_probability=1.0, overtime_h=2.0)
    calendar = ShiftCalendar(config.calendar, config.site.zone())
    sim, samples = simulate(config, "L1", "2026-06-13", 2)  # Sat; the N shift ends Sun 08:00
    sunday_8 = day(config, "2026-06-14") + 8 * 3600
    off_counts = [s for s in samples if s.signal == "total_count"
                  and calendar.spans(s.second, s.second + 1)[0].kind == OFF]
    assert off_counts, "overtime produced nothing"
    assert all(sunday_8 <= s.second < sunday_8 + 2 * 3600 for s in off_counts)
    assert 3600 <= sim.stats.overtime_s <= 2 * 3600


# --- changeovers, energy, telemetry -----------------------------------------------------------


def test_s9_changeovers_switch_the_product_during_setup(demo: PlantConfig) -> None:
    sim, samples = simulate(demo, "L1", "2026-06-08", 4)
    products = [canonical_value(s.value) for s in samples if s.signal == "product"]
    assert products[0] == "101"  # the rotation starts with P30; product_map reversed
    assert set(products) == {"101", "102", "103"}
    switches = [s for s in samples if s.signal == "product"][1:]
    assert len(switches) == sim.stats.changeovers >= 3
    last_state: str | None = None
    for s in samples:
        if s.signal == "state":
            last_state = canonical_value(s.value)
        elif s.signal == "product" and s in switches:
            assert last_state == "3"  # setup


def test_s9_a_changeover_without_setup_time_switches_the_product_while_running(
        demo: PlantConfig) -> None:
    config = with_simulation(demo, "L1", changeover_min=0.0, changeover_every_h=2.0)
    sim, samples = simulate(config, "L1", "2026-06-08", 1)
    assert "3" not in {canonical_value(s.value) for s in samples if s.signal == "state"}
    switches = [s for s in samples if s.signal == "product"][1:]
    assert len(switches) == sim.stats.changeovers >= 3
    assert sim.truth is not None
    assert "setup" not in {i[2] for i in sim.truth.intervals}


def test_a_line_without_signals_publishes_every_role(demo: PlantConfig) -> None:
    line = demo.line("L1").model_copy(update={"signals": Signals()})
    config = demo.model_copy(update={"lines": [line, *demo.lines[1:]]})
    _, samples = simulate(config, "L1", "2026-06-08", 1, telemetry=True)
    assert {s.signal for s in samples} == {"state", "reason", "product", "total_count",
                                           "reject_count", "energy_kwh"}


def test_s8_energy_meter_is_cumulative_and_draws_more_while_running(demo: PlantConfig) -> None:
    sim, samples = simulate(demo, "L1", "2026-06-08", 2)
    readings = [(s.ts, float(s.value)) for s in samples  # type: ignore[arg-type]
                if s.signal == "energy_kwh"]
    assert len(readings) >= 2 * 1440
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(readings))
    assert sim.truth is not None
    running_s = sum(e - s for s, e, c, _ in sim.truth.intervals if c == "running")
    other_s = 2 * 86400 - running_s
    used = readings[-1][1] - readings[0][1]
    expected = (22 * running_s + 4 * other_s) / 3600
    assert used == pytest.approx(expected, rel=0.01)


def test_telemetry_every_interval_only_when_asked(demo: PlantConfig) -> None:
    _, samples = simulate(demo, "L1", "2026-06-08", 0.25, telemetry=True)
    temps = [s for s in samples if s.signal == "temperature"]
    speeds = [s for s in samples if s.signal == "speed"]
    assert len(temps) == len(speeds) == pytest.approx(6 * 3600 / 5, abs=1)
    assert {b.ts - a.ts for a, b in itertools.pairwise(temps)} == {5000}
    _, quiet = simulate(demo, "L1", "2026-06-08", 0.25, telemetry=False)
    assert not {"temperature", "speed"} & {s.signal for s in quiet}


# --- the real-time loop -------------------------------------------------------------------------


class FakeClock:
    """Wall-clock time that moves only when the loop sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    def __init__(self, stop: asyncio.Event, batches: int, fail: bool = False) -> None:
        self.events: list[str] = []
        self.batches: list[list[Sample]] = []
        self.stop_event, self.limit, self.fail = stop, batches, fail

    async def start(self) -> None:
        self.events.append("start")

    async def publish(self, samples: Sequence[Sample]) -> None:
        self.batches.append(list(samples))
        if len(self.batches) >= self.limit:
            self.stop_event.set()
        if self.fail:
            raise ConnectionError("broker gone")

    async def stop(self) -> None:
        self.events.append("stop")


def test_run_realtime_publishes_every_lines_samples_in_time_order(demo: PlantConfig) -> None:
    clock = FakeClock(day(demo, "2026-06-09") + 10 * 3600 + 0.25)  # a Tuesday morning
    stats = RunStats()

    async def main() -> tuple[Recorder, Recorder]:
        stop = asyncio.Event()
        good, bad = Recorder(stop, 40), Recorder(asyncio.Event(), 10**9, fail=True)
        await run_realtime(demo, [bad, good], SEED, speed=60, stop_event=stop,
                           clock=clock, sleep=clock.sleep, stats=stats)
        return good, bad

    good, bad = asyncio.run(main())
    assert good.events == ["start", "stop"] and bad.events == ["start", "stop"]
    samples = [s for batch in good.batches for s in batch]
    assert [s.ts for s in samples] == sorted(s.ts for s in samples)
    assert {s.asset for s in samples} == {"L1", "L2", "L3"}
    sim0 = int(day(demo, "2026-06-09") + 10 * 3600)
    assert samples[0].ts == sim0 * 1000
    assert samples[-1].ts < stats.sim_until * 1000
    # 60× speed: a step for every simulated second (1/60 s of wall time).
    assert stats.steps >= 40 and stats.sim_until - sim0 == stats.steps
    assert bad.batches == good.batches  # the failing publisher got the same batches
    assert stats.errors == {0: len(bad.batches)}
    # The same seed and start give what LineSimulator gives directly.
    direct = LineSimulator(demo, demo.line("L2"), SEED, sim0).run(stats.sim_until)
    assert [s for s in samples if s.asset == "L2"] == direct


def test_build_publishers_refuses_a_bad_mqtt_override(demo: PlantConfig) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        build_publishers(demo, None, "localhost")


# --- linewatch backfill -------------------------------------------------------------------------


def test_backfill_command_writes_days_and_rejects_bad_windows(
        demo: PlantConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DEMO.read_text(encoding="utf-8").replace("path: data/linewatch.db",
                                                    f"path: {tmp_path / 'lw.db'}")
    config_path = tmp_path / "demo.yaml"
    config_path.write_text(text, encoding="utf-8")
    assert backfill_command(config_path, "2026-06-08", "2026-06-07", 1) == 2
    assert backfill_command(config_path, "2026-06-08T10:00:30", "2026-06-09", 1) == 2
    assert backfill_command(tmp_path / "missing.yaml", "2026-06-08", "2026-06-09", 1) == 2
    assert backfill_command(config_path, "2026-06-08", "2026-06-10", 1) == 0
    err = capsys.readouterr().err
    assert "2 day(s)" in err
    with SqliteStore(tmp_path / "lw.db") as store:
        rows = kpi_rows(demo, store, "L1", day(demo, "2026-06-08"), day(demo, "2026-06-10"),
                        "day")
    assert [r["calendar_s"] for r in rows] == [86400, 86400]
    # No data only after the last sample of the last day (R3, T10): a few seconds.
    assert rows[0]["no_data_s"] == 0 and rows[1]["no_data_s"] < 120
    assert all(r["total_count"] > 10_000 and r["running_s"] > 12 * 3600 for r in rows)
