"""Records the time model writes (DESIGN §6): minute rollups, stop events, line status.

All rollup fields are additive, so the KPIs of any span are computed from their sums and
never from averaged ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

CATEGORIES = (
    "running",
    "micro_stop",
    "setup",
    "unplanned_stop",
    "planned_stop",
    "no_data",
    "unscheduled",
)
CATEGORY_FIELDS = tuple(f"{c}_s" for c in CATEGORIES)
# scheduled_s and break_s are linewatch additions to R1 (docs/storage.md): the seconds of the
# record inside shifts (T8) and inside breaks, so a query can fill time that has no record by
# the calendar (T10) from sums alone.
SECOND_FIELDS = ("span_s", *CATEGORY_FIELDS, "scheduled_s", "break_s")
COUNT_FIELDS = ("total_count", "good_count", "reject_count")
ADDITIVE_FIELDS = (*SECOND_FIELDS, "ideal_s", *COUNT_FIELDS, "failures")


@dataclass(slots=True)
class MinuteRecord:
    """One line, one UTC minute, one product (R1). ``ts`` is the minute start, UTC epoch s.

    A record covers ``[ts, ts + span_s)`` together with the other products' records of the
    same minute, in time order; ``span_s`` < 60 only at the end of a replay (R3).
    """

    site: str
    line: str
    ts: int
    product: str
    shift: str = "off"
    source: str = "edge"
    span_s: int = 0
    running_s: int = 0
    micro_stop_s: int = 0
    setup_s: int = 0
    unplanned_stop_s: int = 0
    planned_stop_s: int = 0
    no_data_s: int = 0
    unscheduled_s: int = 0
    scheduled_s: int = 0
    break_s: int = 0
    ideal_s: float = 0.0
    total_count: int = 0
    good_count: int = 0
    reject_count: int = 0
    energy_kwh: float | None = None
    failures: int = 0

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        return (self.site, self.line, self.ts, self.product, self.source)

    def is_empty(self) -> bool:
        """A tombstone: written over a provisional record that turned out not to exist."""
        return (
            self.span_s == 0
            and self.total_count == 0
            and self.good_count == 0
            and self.reject_count == 0
            and self.ideal_s == 0
            and self.energy_kwh is None
            and self.failures == 0
        )


@dataclass(slots=True)
class Totals:
    """Sums of rollup fields over any span; ``energy_kwh`` stays None until a value is added."""

    span_s: int = 0
    running_s: int = 0
    micro_stop_s: int = 0
    setup_s: int = 0
    unplanned_stop_s: int = 0
    planned_stop_s: int = 0
    no_data_s: int = 0
    unscheduled_s: int = 0
    scheduled_s: int = 0
    break_s: int = 0
    ideal_s: float = 0.0
    total_count: int = 0
    good_count: int = 0
    reject_count: int = 0
    energy_kwh: float | None = None
    failures: int = 0

    def add(self, other: MinuteRecord | Totals) -> None:
        for name in ADDITIVE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.energy_kwh is not None:
            self.energy_kwh = (self.energy_kwh or 0.0) + other.energy_kwh

    def as_dict(self) -> dict[str, float | int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class StopEvent:
    """A stop (T5) kept as an event, keyed by line and start (R5). Times are UTC epoch s."""

    site: str
    line: str
    start: int
    end: int
    category: str  # micro_stop | unplanned_stop
    reason: str | None = None
    reason_by: str | None = None
    reason_at: int | None = None
    open: bool = False  # still going at the time it was written

    @property
    def duration_s(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class LineStatus:
    """What a live tile shows: the current category, since when, and how fresh the data is."""

    site: str
    line: str
    category: str
    since: int
    reason: str | None
    last_sample: int | None
    product: str | None = None
    updated: int = 0


class RawSample(NamedTuple):
    """A sample as stored raw (lw_sample): millisecond timestamp, numeric or text value.

    A NamedTuple in the store's column order: the edge and a replay build one per sample.
    """

    site: str
    line: str
    signal: str
    ts_ms: int
    value: float | None
    text: str | None
    good: bool


@dataclass(slots=True)
class WriteBatch:
    """Everything one pipeline step writes, committed together (DESIGN §2, §8)."""

    minutes: list[MinuteRecord] = field(default_factory=list)
    stops: list[StopEvent] = field(default_factory=list)
    deleted_stops: list[tuple[str, str, int]] = field(default_factory=list)  # (site, line, start)
    statuses: list[LineStatus] = field(default_factory=list)
    samples: list[RawSample] = field(default_factory=list)
    checkpoints: dict[str, dict] = field(default_factory=dict)  # line -> tracker checkpoint

    def __bool__(self) -> bool:
        return bool(self.minutes or self.stops or self.deleted_stops or self.statuses
                    or self.samples or self.checkpoints)


def checkpoint_site(line: str, data: dict[str, Any]) -> str:
    """The site a checkpoint belongs to: the tracker puts it into the checkpoint itself."""
    site = data.get("site")
    if not isinstance(site, str) or not site:
        raise ValueError(f"checkpoint of line {line!r} has no 'site' key (expected the site id)")
    return site
