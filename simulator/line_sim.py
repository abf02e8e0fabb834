"""A simulated production line: a pure, deterministic generator of a PLC's samples.

`LineSimulator` turns one line of the plant config and its ``simulation:`` block into the
samples a PLC on that line would publish (DESIGN §3 roles, docs/simulator.md):

- The machine works only in the shift calendar's shifts (and, with ``overtime_probability``,
  for a while after a shift that is followed by time off). Outside shifts and on holidays it
  is idle; in breaks it stops. Both are planned states.
- While working it runs, with failures (exponential running time between them, mean
  ``mtbf_min``; exponential length, mean ``mttr_min``, at least `MIN_FAILURE_S`) that carry a
  reason drawn from ``failure_reasons``, micro stops (``micro_stops_per_h`` of running,
  exponential length, mean ``micro_stop_mean_s``) and changeovers (a setup of about
  ``changeover_min`` every ``changeover_every_h`` hours of running) to the next product of
  ``products``.
- A cycle takes ideal cycle × ``cycle_factor`` × (1 + N(0, ``cycle_noise``)); each unit is a
  reject with probability ``reject_rate``. Counters are cumulative registers wrapping at the
  line's ``counter_max`` (S6 rollover); ``counter_resets_per_week`` times a week on average
  the PLC zeroes them, but only while every register is below 0.9 × ``counter_max`` so that
  S6 reads the drop as a reset (otherwise the reset waits an hour).
- An energy meter (cumulative kWh: ``energy_kw_running`` while running, ``energy_kw_idle``
  otherwise) is read every `ENERGY_INTERVAL_S`, telemetry every ``telemetry_interval_s``.
- From local midnight of ``upgrade.installed_on`` the ``after_upgrade`` values apply.

State changes happen on whole seconds (the sample carries a few milliseconds of jitter
within that second), so the true timeline is a list of whole-second intervals and S1 never
has to break a tie. Only mapped roles are published (every role when the line maps no
signals at all, as in a replay config); a line with ``detection: counts`` publishes no state.

Everything comes from one ``random.Random`` seeded with ``seed * 1000003 + line index``
(telemetry from a second one): the same config, seed and start give the same samples,
however `run` is stepped, and the same production with or without telemetry.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import Any

from linewatch.config import (
    COUNT_ROLES,
    Line,
    PlantConfig,
    Simulation,
)
from linewatch.sample import Sample
from linewatch.shift_calendar import BREAK, OFF, ShiftCalendar

__all__ = [
    "ENERGY_INTERVAL_S",
    "LineSimulator",
    "Params",
    "Resume",
    "SimStats",
    "SimulationError",
    "TrueRecord",
    "local_midnight",
]

logger = logging.getLogger(__name__)

ENERGY_INTERVAL_S = 60  # the energy meter is read once a minute
MIN_FAILURE_S = 30  # a failure lasts at least this long
MIN_MICRO_S = 2  # a micro stop lasts at least this long
RESET_RETRY_S = 3600  # a counter reset that S6 would read as a rollover waits this long
RESET_BELOW = 0.9  # S6: a drop from below 0.9 × counter_max is a reset
_BLOCK_HORIZON_S = 2 * 86400  # how far one calendar look-up reaches
_NEVER = 1 << 62
_TS = attrgetter("ts")
# Calendar kind -> what the machine does.
_WORK, _BREAK, _IDLE = "work", "break", "idle"
_KIND = {"shift": _WORK, BREAK: _BREAK, OFF: _IDLE}
_PLANNED_REASON_CATEGORIES = ("planned_stop", "setup")
_DELTA_INDEX = {"total_count": 0, "good_count": 1, "reject_count": 2}


class SimulationError(ValueError):
    """A line the simulator cannot drive (its state_map or signals lack what it needs)."""


@dataclass(frozen=True, slots=True)
class Params:
    """The machine parameters in force over a period (before or after the upgrade)."""

    cycle_factor: float
    cycle_noise: float
    reject_rate: float
    mtbf_s: float
    mttr_s: float
    micro_per_s: float

    @classmethod
    def of(cls, sim: Simulation, upgraded: bool) -> Params:
        after = sim.after_upgrade

        def pick(name: str) -> float:
            value = getattr(after, name) if upgraded else None
            return float(getattr(sim, name) if value is None else value)

        return cls(
            cycle_factor=pick("cycle_factor"),
            cycle_noise=sim.cycle_noise,
            reject_rate=pick("reject_rate"),
            mtbf_s=pick("mtbf_min") * 60,
            mttr_s=pick("mttr_min") * 60,
            micro_per_s=pick("micro_stops_per_h") / 3600,
        )


@dataclass(frozen=True, slots=True)
class _Intent:
    """What the machine does in a phase and how the PLC shows it."""

    state: object | None  # raw state value (None: the line publishes no state)
    reason_raw: object | None  # raw reason value published with the state, if any
    category: str  # what the config makes of it: running | unplanned_stop | setup | planned_stop
    reason: str | None  # reason code the config gives it


@dataclass
class Resume:
    """Where a line's PLC registers stood, to continue them (backfill from a checkpoint)."""

    counters: dict[str, int] = field(default_factory=dict)
    energy_kwh: float | None = None
    product: str | None = None


@dataclass
class SimStats:
    """What the simulator generated (possibly a little ahead of what `run` returned)."""

    cycles: int = 0
    units: int = 0
    rejects: int = 0
    failures: int = 0
    micro_stops: int = 0
    changeovers: int = 0
    rollovers: int = 0
    resets: int = 0
    postponed_resets: int = 0
    overtime_s: int = 0


@dataclass
class TrueRecord:
    """What really happened, for `simulator.ground_truth` (times in UTC epoch s or ms).

    ``intervals`` are the machine's phases as the line's config reads them (state lines:
    what the published state and reason mean, S4/S10), whole seconds, generated possibly
    beyond what `run` returned; ``units`` every cycle (ms, units, rejects, product);
    ``energy`` every meter reading (ms, exact kWh). Only what lies at or before ``last_ms``,
    the last sample `run` returned, was published.
    """

    line: str
    detection: str
    count_roles: tuple[str, ...]
    intervals: list[list[Any]] = field(default_factory=list)  # [start, end, category, reason]
    units: list[tuple[int, int, int, str]] = field(default_factory=list)
    energy: list[tuple[int, float]] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None

    def add_interval(self, start: int, end: int, category: str, reason: str | None) -> None:
        intervals = self.intervals
        if intervals:
            last = intervals[-1]
            if last[1] == start and last[2] == category and last[3] == reason:
                last[1] = end
                return
        intervals.append([start, end, category, reason])


def local_midnight(config: PlantConfig, date: dt.date) -> int:
    """UTC epoch s of local midnight of `date` in the site's zone."""
    moment = dt.datetime.combine(date, dt.time(0), tzinfo=config.site.zone())
    return int(moment.timestamp())


@lru_cache(maxsize=64)
def _binomial_cdf(units: int, p: float) -> tuple[float, ...]:
    """P(rejects <= k) for k < units: one uniform draw gives a cycle's rejects (bisect)."""
    if p <= 0:
        return ()
    out = []
    acc = 0.0
    for k in range(units):
        acc += math.comb(units, k) * p**k * (1 - p) ** (units - k)
        out.append(acc)
    return tuple(out)


def _raw(key: str) -> object:
    """A config key as a PLC would send it: an integer when it is one, else the text."""
    if key.isdigit() or (key.startswith("-") and key[1:].isdigit()):
        return int(key)
    return key


class LineSimulator:
    """One simulated line; see the module docstring. `run` returns its samples in order."""

    def __init__(self, config: PlantConfig, line: Line, seed: int, start: int, *,
                 telemetry: bool = True, record_truth: bool = True,
                 resume: Resume | None = None) -> None:
        self.config = config
        self.line = line
        self.seed = seed
        self.start = int(start)
        self.telemetry = telemetry
        index = next((i for i, other in enumerate(config.lines) if other.id == line.id), None)
        if index is None:
            raise SimulationError(f"line {line.id} is not a line of the config")
        self.rng = random.Random(seed * 1000003 + index)
        # Telemetry draws from its own stream, so that the production history of a seed is
        # the same with telemetry (simulate) and without it (backfill).
        self._telemetry_rng = random.Random(f"telemetry:{seed}:{index}")
        self.calendar = ShiftCalendar(config.calendar, config.site.zone())
        self.stats = SimStats()
        sim = line.simulation
        self.sim = sim
        self._base = Params.of(sim, upgraded=False)
        self._after = Params.of(sim, upgraded=True)
        installed = line.upgrade.installed_on if line.upgrade else None
        self.upgrade_at: int | None = (local_midnight(config, installed)
                                       if installed is not None else None)

        roles = line.signals.roles()
        everything = not roles and not line.signals.telemetry  # a replay config: no signals
        self.count_roles: tuple[str, ...] = (
            ("total_count", "reject_count") if everything
            else tuple(r for r in COUNT_ROLES if r in roles))
        self.publishes_state = line.detection == "state" and (everything or "state" in roles)
        if line.detection == "state" and not self.publishes_state:
            raise SimulationError(f"line {line.id}: detection: state needs a state signal")
        self.publishes_reason = self.publishes_state and (everything or "reason" in roles)
        self.publishes_product = everything or "product" in roles
        self.publishes_energy = everything or "energy_kwh" in roles
        self.telemetry_names = [t.name for t in line.signals.telemetry] if telemetry else []
        self.counter_max = {
            role: (src.counter_max if (src := roles.get(role)) and src.counter_max
                   else line.counter_max)
            for role in COUNT_ROLES
        }
        self._cycles = self._cycle_table()
        self._product_raw = {pid: _raw(next((k for k, v in line.product_map.items()
                                             if v == pid), pid)) for pid in self._cycles}
        rotation = [p for p in sim.products if p in self._cycles]
        if not self.publishes_product:
            if len(rotation) > 1:
                logger.warning("line %s publishes no product: it makes %s only", line.id,
                               line.default_product)
            rotation = []
        if not rotation:
            rotation = [line.default_product or ""]
        self.rotation = rotation
        self._intents, self._fail_intents = self._plan_intents()
        self._fail_codes = list(self._fail_intents)
        self._fail_weights = [sim.failure_reasons[c] for c in self._fail_codes]
        self._reason_clear = next((_raw(k) for k, v in line.reason_map.items() if v is None),
                                  None)

        self.truth: TrueRecord | None = (
            TrueRecord(line.id, line.detection, self.count_roles) if record_truth else None)
        rng = self.rng
        # The PLC's registers and meter.
        self.registers: dict[str, int] = {}
        counters = resume.counters if resume else {}
        # Anywhere below 0.9 × counter_max, so that a reset can come before a 32-bit wrap.
        total = rng.randint(0, int(RESET_BELOW * self.counter_max["total_count"]))
        rejects = int(total * sim.reject_rate)
        start_values = {"total_count": total, "reject_count": rejects,
                        "good_count": total - rejects}
        for role in self.count_roles:
            value = counters.get(role)
            self.registers[role] = (int(value) if value is not None
                                    else start_values[role] % (self.counter_max[role] + 1))
        self.meter = (resume.energy_kwh if resume and resume.energy_kwh is not None
                      else round(rng.uniform(10_000, 90_000), 3))
        product = resume.product if resume and resume.product in self._cycles else None
        self.product = product or rotation[0]
        self._temperature = 45.0

        # Generation state.
        self._t = self.start  # phases are generated up to here (exclusive)
        self._until = self.start  # `run` returned samples up to here (exclusive)
        self._buf: list[Sample] = []
        self._pos = 0
        self._params = self._params_at(self.start)
        self._fail_left = self._draw_fail()
        self._micro_left = self._draw_micro()
        self._change_left = self._draw_change()
        self._pending: tuple[str, int, Any] | None = None  # a stop going on: kind, left, info
        self._prev_calendar_kind: str | None = None
        self._overtime_end = 0
        self._cycle_due: float | None = None
        self._last_state: object = None
        self._reason_set = False
        self._pending_switch = False
        rate = sim.counter_resets_per_week / (7 * 86400 * 1000)
        self._reset_rate = rate
        self._next_reset_ms = self._draw_reset(self.start * 1000)
        self._next_energy_ms = self.start * 1000 + rng.randrange(1, ENERGY_INTERVAL_S * 1000)
        self._tele_every_ms = max(1, int(sim.telemetry_interval_s * 1000))
        self._next_tele_ms = (self.start * 1000
                              + self._telemetry_rng.randrange(0, self._tele_every_ms))
        self._initial_samples()
        self._gen = self._produce()

    # --- public ---------------------------------------------------------------------------

    def run(self, until: int) -> list[Sample]:
        """The samples with ts in [previous until, until) in time order (until: UTC epoch s)."""
        until = int(until)
        if until <= self._until:
            return []
        gen = self._gen
        while self._t < until:
            next(gen)
        buf = self._buf
        cut = bisect_left(buf, until * 1000, lo=self._pos, key=_TS)
        out = buf[self._pos:cut]
        self._pos = cut
        if cut > 65536:
            del buf[:cut]
            self._pos = 0
        self._until = until
        if out and self.truth is not None:
            if self.truth.first_ms is None:
                self.truth.first_ms = out[0].ts
            self.truth.last_ms = out[-1].ts
        return out

    @property
    def until(self) -> int:
        """The time `run` has returned samples up to (exclusive), UTC epoch s."""
        return self._until

    def params_at(self, t: int) -> Params:
        """The machine parameters in force at UTC epoch second `t`."""
        return self._params_at(t)

    def intent_values(self) -> dict[str, tuple[object | None, str]]:
        """kind -> (raw state value, category it should mean): for tests and docs."""
        out = {kind: (i.state, i.category) for kind, i in self._intents.items()}
        for code, intent in self._fail_intents.items():
            out[f"fail:{code}"] = (intent.state, intent.category)
        return out

    # --- set-up ---------------------------------------------------------------------------

    def _cycle_table(self) -> dict[str, tuple[float, int]]:
        """product id -> (ideal cycle s, units per cycle), the line's overrides applied."""
        out: dict[str, tuple[float, int]] = {}
        for product in self.config.products:
            cycle, units = product.ideal_cycle_s, product.units_per_cycle
            override = self.line.products.get(product.id)
            if override is not None:
                if override.ideal_cycle_s is not None:
                    cycle = override.ideal_cycle_s
                if override.units_per_cycle is not None:
                    units = override.units_per_cycle
            out[product.id] = (cycle, units)
        return out

    def _plan_intents(self) -> tuple[dict[str, _Intent], dict[str, _Intent]]:
        """Raw state (and reason) values for each machine phase, by reverse state_map."""
        line = self.line
        catalog = {r.code: r.category for r in self.config.reasons}
        catalog.setdefault("unmapped", "unplanned_stop")
        catalog.setdefault("unexplained", "unplanned_stop")
        for code in line.simulation.failure_reasons:
            if code not in catalog:
                raise SimulationError(f"line {line.id}: failure reason {code!r} is not in the "
                                      "reasons catalog")

        def reason_raw(code: str) -> object:
            key = next((k for k, v in line.reason_map.items() if v == code), None)
            return _raw(key) if key is not None else code

        if not self.publishes_state:
            # detection: counts (no state signal): the phases mean what the machine does.
            plain = {"run": "running", "micro": "unplanned_stop", "setup": "setup",
                     "break": "planned_stop", "idle": "planned_stop"}
            intents = {k: _Intent(None, None, c, None) for k, c in plain.items()}
            fails = {code: _Intent(None, None, "unplanned_stop", code)
                     for code in line.simulation.failure_reasons}
            return intents, fails

        by_category: dict[str, list[tuple[str, str | None]]] = {}
        for key, entry in line.state_map.items():
            by_category.setdefault(entry.category, []).append((key, entry.reason))
        if "running" not in by_category:
            raise SimulationError(f"line {line.id}: state_map has no running value")
        if "unplanned_stop" not in by_category:
            raise SimulationError(f"line {line.id}: state_map has no unplanned_stop value")
        run_key, run_reason = by_category["running"][0]
        stops = by_category["unplanned_stop"]
        stop_key, stop_reason = next(((k, r) for k, r in stops if r is None), stops[0])
        stop = _Intent(_raw(stop_key), None, "unplanned_stop", stop_reason)

        def via_stop(category: str) -> _Intent:
            """No state value of this category: a stop with a reason of it (S10), if any."""
            code = next((c for c, cat in catalog.items() if cat == category), None)
            if code is None or not self.publishes_reason:
                return stop
            return _Intent(stop.state, reason_raw(code), category, code)

        def first(category: str, last: bool = False) -> _Intent:
            keys = by_category.get(category)
            if not keys:
                return via_stop(category)
            key, reason = keys[-1] if last else keys[0]
            return _Intent(_raw(key), None, category, reason)

        intents = {
            "run": _Intent(_raw(run_key), None, "running", run_reason),
            "micro": stop,
            "setup": first("setup"),
            "idle": first("planned_stop"),
            "break": first("planned_stop", last=True),
        }
        fails: dict[str, _Intent] = {}
        for code in line.simulation.failure_reasons:
            if not self.publishes_reason:
                fails[code] = stop
                continue
            category = catalog[code]
            if category not in _PLANNED_REASON_CATEGORIES:
                category = "unplanned_stop"
            fails[code] = _Intent(stop.state, reason_raw(code), category, code)
        return intents, fails

    # --- random draws ---------------------------------------------------------------------

    def _params_at(self, t: int) -> Params:
        if self.upgrade_at is not None and t >= self.upgrade_at:
            return self._after
        return self._base

    def _draw_fail(self) -> int:
        return max(1, round(self.rng.expovariate(1 / self._params.mtbf_s)))

    def _draw_micro(self) -> int:
        rate = self._params.micro_per_s
        return max(1, round(self.rng.expovariate(rate))) if rate > 0 else _NEVER

    def _draw_change(self) -> int:
        if len(self.rotation) < 2:
            return _NEVER
        return max(1, round(self.sim.changeover_every_h * 3600 * self.rng.uniform(0.8, 1.2)))

    def _draw_reset(self, after_ms: int) -> int:
        if self._reset_rate <= 0 or not self.count_roles:
            return _NEVER
        return after_ms + max(1, int(self.rng.expovariate(self._reset_rate)))

    # --- generation -----------------------------------------------------------------------

    def _initial_samples(self) -> None:
        """What a PLC shows first: every mapped value once (the state comes with phase 1)."""
        ms = self.start * 1000
        line = self.line.id
        out = self._buf
        if self.publishes_product:
            out.append(Sample(ms, line, "product", self._product_raw.get(self.product,
                                                                          self.product)))
        for role in self.count_roles:
            out.append(Sample(ms, line, role, self.registers[role]))
        if self.publishes_energy:
            out.append(Sample(ms, line, "energy_kwh", self.meter))
            if self.truth is not None:
                self.truth.energy.append((ms, self.meter))

    def _next_block(self) -> tuple[int, int, str]:
        """The next stretch from `_t` in which the machine works, has a break, or idles."""
        t = self._t
        if self._overtime_end > t:
            return t, self._overtime_end, _WORK
        spans = self.calendar.spans(t, t + _BLOCK_HORIZON_S)
        kind = _KIND[spans[0].kind]
        end = spans[0].end
        for span in spans[1:]:
            if _KIND[span.kind] != kind:
                break
            end = span.end
        previous = self._prev_calendar_kind
        self._prev_calendar_kind = kind
        if (kind == _IDLE and previous == _WORK and self.sim.overtime_probability > 0
                and self.rng.random() < self.sim.overtime_probability):
            length = round(self.sim.overtime_h * 3600 * self.rng.uniform(0.5, 1.0))
            self._overtime_end = min(end, t + max(1, length))
            self.stats.overtime_s += self._overtime_end - t
            return t, self._overtime_end, _WORK
        return t, end, kind

    def _produce(self) -> Iterator[None]:
        """Generate phase after phase; yields after each one (see `run`)."""
        stats = self.stats
        rng = self.rng
        sim = self.sim
        while True:
            a, b, kind = self._next_block()
            if kind != _WORK:
                self._pending = None  # a break or the end of the shift ends any stop
                self._phase(a, b, kind)
                yield
                continue
            t = a
            while t < b:
                params = self._params_at(t)
                if params is not self._params:
                    self._params = params  # the upgrade: new failure and micro-stop clocks
                    self._fail_left = self._draw_fail()
                    self._micro_left = self._draw_micro()
                if self._pending is not None:
                    pkind, left, info = self._pending
                    end = min(b, t + left)
                    self._phase(t, end, pkind, info)
                    left -= end - t
                    self._pending = (pkind, left, info) if left > 0 else None
                    t = end
                    yield
                    continue
                limit = b
                if self.upgrade_at is not None and t < self.upgrade_at < limit:
                    limit = self.upgrade_at
                step = max(1, min(self._fail_left, self._micro_left, self._change_left,
                                  limit - t))
                self._phase(t, t + step, "run")
                t += step
                self._fail_left -= step
                self._micro_left -= step
                self._change_left -= step
                yield
                if t >= b:
                    break
                if self._fail_left <= 0:
                    length = max(MIN_FAILURE_S, round(rng.expovariate(1 / params.mttr_s)))
                    code = (rng.choices(self._fail_codes, self._fail_weights)[0]
                            if self._fail_codes else None)
                    self._pending = ("fail", length, code)
                    self._fail_left = self._draw_fail()
                    stats.failures += 1
                elif self._micro_left <= 0:
                    length = max(MIN_MICRO_S, round(rng.expovariate(1 / sim.micro_stop_mean_s)))
                    self._pending = ("micro", length, None)
                    self._micro_left = self._draw_micro()
                    stats.micro_stops += 1
                elif self._change_left <= 0:
                    rotation = self.rotation
                    following = rotation[(rotation.index(self.product) + 1) % len(rotation)
                                         ] if self.product in rotation else rotation[0]
                    length = round(sim.changeover_min * 60 * rng.uniform(0.8, 1.2))
                    self.product = following
                    self._change_left = self._draw_change()
                    stats.changeovers += 1
                    if length >= 1:
                        self._pending = ("setup", length, following)
                    else:
                        self._pending_switch = True  # published as the next run starts

    def _phase(self, a: int, b: int, kind: str, info: Any = None) -> None:
        """Emit the samples of one phase [a, b) (whole seconds) and record its truth."""
        rng = self.rng
        line = self.line.id
        events: list[Sample] = []
        add = events.append
        if kind == "fail":
            intent = self._intents["micro"] if info is None else self._fail_intents[info]
        else:
            intent = self._intents[kind]
        a_ms, b_ms = a * 1000, b * 1000
        state_ms = a_ms
        if self.publishes_state and intent.state != self._last_state:
            state_ms = a_ms + rng.randrange(0, 400)
            add(Sample(state_ms, line, "state", intent.state))
            self._last_state = intent.state
            if intent.reason_raw is not None:
                add(Sample(state_ms, line, "reason", intent.reason_raw))
                self._reason_set = True
            elif self._reason_set and self._reason_clear is not None:
                add(Sample(state_ms, line, "reason", self._reason_clear))  # alarm cleared
                self._reason_set = False
        if self.truth is not None:
            self.truth.add_interval(a, b, intent.category, intent.reason)
        if kind == "setup" or self._pending_switch:
            self._pending_switch = False
            if self.publishes_product:
                add(Sample(state_ms + 1, line, "product",
                           self._product_raw.get(self.product, self.product)))
        running = kind == "run"
        if running:
            self._cycles_in(state_ms, b, events)
        else:
            self._cycle_due = None
        while self._next_reset_ms < b_ms:
            self._reset(self._next_reset_ms, events)
        periodic: list[Sample] = []
        if self.publishes_energy:
            self._energy_in(a_ms, b_ms, running, periodic)
        if self.telemetry_names:
            self._telemetry_in(b_ms, running, periodic)
        events += periodic
        # Stable: among equal times the state, reason and product samples stay first. A reset
        # may fall before the state sample's jitter, so the phase's own samples are sorted too.
        events.sort(key=_TS)
        self._buf += events
        self._t = b

    def _cycles_in(self, state_ms: int, b: int, events: list[Sample]) -> None:
        """Count samples of the cycles that complete in a running phase ending at b."""
        rng = self.rng
        gauss, random_ = rng.gauss, rng.random
        params = self._params
        ideal, units = self._cycles.get(self.product, (0.0, 1))
        if ideal <= 0:
            return
        mean = ideal * params.cycle_factor
        noise = params.cycle_noise
        cdf = _binomial_cdf(units, params.reject_rate)
        due = self._cycle_due
        if due is None:
            factor = gauss(1.0, noise)
            due = state_ms / 1000 + mean * (factor if factor > 0.5 else 0.5)
        line = self.line.id
        regs = self.registers
        # (role, which delta: 0 units / 1 good / 2 rejects, counter_max) per published register
        slots = [(role, _DELTA_INDEX[role], self.counter_max[role]) for role in self.count_roles]
        values = [regs[role] for role in self.count_roles]
        n_slots = len(slots)
        truth = self.truth.units if self.truth is not None else None
        product = self.product
        b_ms = b * 1000
        next_reset = self._next_reset_ms
        add = events.append
        cycles = total_rejects = rollovers = 0
        while due < b:
            ms = int(due * 1000)
            if ms >= b_ms:
                break
            if ms <= state_ms:
                ms = state_ms + 1
            if next_reset <= ms:
                for k in range(n_slots):
                    regs[slots[k][0]] = values[k]
                self._reset(next_reset, events)
                next_reset = self._next_reset_ms
                values = [regs[role] for role in self.count_roles]
                continue
            rejects = bisect_right(cdf, random_()) if cdf else 0
            deltas = (units, units - rejects, rejects)
            for k in range(n_slots):
                role, which, top = slots[k]
                delta = deltas[which]
                if delta:
                    value = values[k] + delta
                    if value > top:
                        value -= top + 1
                        rollovers += 1
                    values[k] = value
                    add(Sample(ms, line, role, value))
            cycles += 1
            total_rejects += rejects
            if truth is not None:
                truth.append((ms, units, rejects, product))
            factor = gauss(1.0, noise)
            due += mean * (factor if factor > 0.5 else 0.5)
        for k in range(n_slots):
            regs[slots[k][0]] = values[k]
        stats = self.stats
        stats.cycles += cycles
        stats.units += cycles * units
        stats.rejects += total_rejects
        stats.rollovers += rollovers
        self._cycle_due = due

    def _reset(self, ms: int, events: list[Sample]) -> None:
        """The PLC zeroes its counters (S6 reset), unless S6 would read it as a rollover."""
        regs = self.registers
        if all(regs[r] < RESET_BELOW * self.counter_max[r] for r in self.count_roles):
            line = self.line.id
            for role in self.count_roles:
                regs[role] = 0
                events.append(Sample(ms, line, role, 0))
            self.stats.resets += 1
            self._next_reset_ms = self._draw_reset(ms)
        else:
            self.stats.postponed_resets += 1
            self._next_reset_ms = ms + RESET_RETRY_S * 1000

    def _energy_in(self, a_ms: int, b_ms: int, running: bool, out: list[Sample]) -> None:
        kw = self.sim.energy_kw_running if running else self.sim.energy_kw_idle
        line = self.line.id
        base = self.meter
        truth = self.truth.energy if self.truth is not None else None
        t = self._next_energy_ms
        while t < b_ms:
            value = base + kw * (t - a_ms) / 3_600_000
            out.append(Sample(t, line, "energy_kwh", round(value, 3)))
            if truth is not None:
                truth.append((t, value))
            t += ENERGY_INTERVAL_S * 1000
        self._next_energy_ms = t
        self.meter = base + kw * (b_ms - a_ms) / 3_600_000

    def _telemetry_in(self, b_ms: int, running: bool, out: list[Sample]) -> None:
        rng = self._telemetry_rng
        line = self.line.id
        ideal, _units = self._cycles.get(self.product, (0.0, 1))
        rate = 60 / (ideal * self._params.cycle_factor) if running and ideal > 0 else 0.0
        target = 215.0 if running else 60.0
        t = self._next_tele_ms
        every = self._tele_every_ms
        alpha = 1 - math.exp(-every / 600_000)  # ten-minute thermal time constant
        while t < b_ms:
            self._temperature += (target - self._temperature) * alpha + rng.gauss(0, 0.2)
            for name in self.telemetry_names:
                if name == "speed":
                    value = round(rate * (1 + rng.gauss(0, 0.01)), 2) if rate else 0.0
                elif name == "temperature":
                    value = round(self._temperature, 1)
                else:
                    value = round(rng.gauss(50.0, 5.0), 2)
                out.append(Sample(t, line, name, value))
            t += every
        self._next_tele_ms = t
