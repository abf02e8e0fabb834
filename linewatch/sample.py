"""One reading of one signal of one line: the unit every collector produces (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Quality(StrEnum):
    GOOD = "good"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Sample:
    """``ts`` is UTC epoch milliseconds; the time model uses it truncated to the second (S1)."""

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
