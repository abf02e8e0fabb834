"""One reading of one signal of one line: the unit every collector produces (DESIGN §3)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Quality(StrEnum):
    GOOD = "good"
    BAD = "bad"


class Sample(NamedTuple):
    """``ts`` is UTC epoch milliseconds; the time model uses it truncated to the second (S1).

    A NamedTuple rather than a dataclass: collectors and replays build one per value, and
    a tuple is several times cheaper to create.
    """

    ts: int
    asset: str
    signal: str
    value: object
    quality: Quality = Quality.GOOD

    @property
    def second(self) -> int:
        return self.ts // 1000

    @property
    def good(self) -> bool:
        return self.quality is _GOOD


_GOOD = Quality.GOOD
