"""`linewatch simulate`'s loop: every line simulated in (scaled) wall-clock time.

Simulated time starts at the wall clock's current second and advances `speed` simulated
seconds per wall second. Each step (at most `STEP_S` of wall time apart) asks every line's
`LineSimulator` for the samples up to the current simulated second and hands them, merged
in time order, to every `Publisher`. The loop yields to the event loop after each line and
each publisher, so servers keep answering their clients while it works; a publisher that
raises is logged and the loop goes on (its next step may succeed).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from operator import attrgetter

from linewatch.config import PlantConfig
from linewatch.sample import Sample
from simulator.line_sim import LineSimulator
from simulator.publisher import Publisher

__all__ = ["STEP_S", "RunStats", "run_realtime"]

logger = logging.getLogger(__name__)

STEP_S = 0.5  # longest wall-clock time between two steps
_TS = attrgetter("ts")


@dataclass
class RunStats:
    """What the loop did: steps, samples handed out, publisher errors by publisher index."""

    steps: int = 0
    samples: int = 0
    sim_until: int = 0
    errors: dict[int, int] = field(default_factory=dict)


async def run_realtime(config: PlantConfig, publishers: list[Publisher], seed: int,
                       speed: float = 1.0, stop_event: asyncio.Event | None = None, *,
                       clock: Callable[[], float] = time.time,
                       sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                       stats: RunStats | None = None) -> RunStats:
    """Simulate every line of `config` in wall-clock time × `speed` until `stop_event` is set.

    Publishers are started first (each `start` returns when it is ready) and stopped at the
    end, also on cancellation. `clock` and `sleep` are the wall clock and the wait between
    steps; tests replace them to move time without sleeping.
    """
    if speed <= 0:
        raise ValueError(f"expected speed > 0, got {speed}")
    stats = stats if stats is not None else RunStats()
    stop_event = stop_event if stop_event is not None else asyncio.Event()
    wall0 = clock()
    sim0 = int(wall0)
    # No ground truth: a simulation may run for weeks.
    sims = [LineSimulator(config, line, seed, sim0, record_truth=False)
            for line in config.lines]
    started: list[Publisher] = []
    try:
        for publisher in publishers:
            await publisher.start()
            started.append(publisher)
        logger.info("simulating %d line(s) from %d at %.3g× wall-clock time for %d "
                    "publisher(s)", len(sims), sim0, speed, len(publishers))
        until = sim0
        while not stop_event.is_set():
            now = sim0 + (clock() - wall0) * speed
            target = int(now)
            if target > until:
                per_line: list[list[Sample]] = []
                for sim in sims:
                    per_line.append(sim.run(target))
                    await asyncio.sleep(0)  # one line at a time, then let others in
                until = target
                batch = list(heapq.merge(*per_line, key=_TS))
                stats.steps += 1
                stats.sim_until = until
                if batch:
                    stats.samples += len(batch)
                    for index, publisher in enumerate(started):
                        try:
                            await publisher.publish(batch)
                        except Exception:
                            stats.errors[index] = stats.errors.get(index, 0) + 1
                            logger.exception("publisher %s failed to publish %d samples",
                                             type(publisher).__name__, len(batch))
                        await asyncio.sleep(0)
            # Wake for the next simulated second, but at least every STEP_S.
            wait = (until + 1 - (sim0 + (clock() - wall0) * speed)) / speed
            wait = min(STEP_S, max(0.01, wait))
            if stop_event.is_set():
                break
            await _wait(stop_event, sleep, wait)
    finally:
        for publisher in reversed(started):
            try:
                await publisher.stop()
            except Exception:
                logger.exception("publisher %s failed to stop", type(publisher).__name__)
        logger.info("simulation stopped after %d steps, %d samples", stats.steps,
                    stats.samples)
    return stats


async def _wait(stop_event: asyncio.Event, sleep: Callable[[float], Awaitable[object]],
                seconds: float) -> None:
    """Sleep `seconds`, or less when `stop_event` is set meanwhile."""
    sleeper = asyncio.ensure_future(sleep(seconds))
    stopper = asyncio.ensure_future(stop_event.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            if not task.done():
                task.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)
