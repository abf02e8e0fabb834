"""The storage interface (DESIGN §7): one Protocol that the SQLite and InfluxDB backends implement.

Times are UTC: epoch seconds for rollups, stops and statuses, epoch milliseconds for raw
samples. Every range is half-open, ``[start, end)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from linewatch.rollup import LineStatus, MinuteRecord, RawSample, StopEvent, Totals, WriteBatch


class StoreError(Exception):
    """A store that cannot be opened or used (missing file, unknown schema version, …)."""


@runtime_checkable
class Store(Protocol):
    """Where the edge writes rollups, events, statuses, raw samples and checkpoints (DESIGN §7)."""

    def write(self, batch: WriteBatch) -> None:
        """Commit a whole batch in one transaction: all of it is stored, or none of it.

        - ``minutes`` upsert by ``MinuteRecord.key`` (site, line, ts, product, source): a
          re-sent record replaces the stored one and never double-counts (R2). A record whose
          ``is_empty()`` is true is a tombstone and deletes the stored record with its key.
          When a key occurs more than once in the batch, the last occurrence wins.
        - ``stops`` upsert by (site, line, start); then ``deleted_stops`` delete by
          (site, line, start), so a key in both lists ends up deleted.
        - ``statuses`` upsert by (site, line).
        - ``samples`` append; a sample whose (site, line, signal, ts_ms) is already stored
          is ignored (the first one stored wins).
        - ``checkpoints`` map a line id to the tracker's JSON-serialisable checkpoint; the
          dict must hold the key ``"site"`` and is upserted by (checkpoint["site"], line).
          A checkpoint without ``"site"`` raises ValueError before anything is written.

        A failure of the backend raises StoreError and leaves nothing of the batch stored,
        so the caller may re-send the whole batch.
        """
        ...

    def minute_totals(
        self, site: str, line: str, buckets: Sequence[tuple[int, int]]
    ) -> list[Totals]:
        """Sum the line's minute records (all sources) whose ts lies in each [start, end) bucket.

        Buckets are UTC epoch seconds, sorted and non-overlapping. One Totals per bucket, in
        the order given; ``energy_kwh`` is None when no record in the bucket has energy.
        """
        ...

    def minutes(self, site: str, line: str, start: int, end: int) -> list[MinuteRecord]:
        """Return the line's minute records with start <= ts < end, by ts, product, source."""
        ...

    def stops(self, site: str, line: str, start: int, end: int) -> list[StopEvent]:
        """Return stop events with event.start < end and event.end > start, ordered by start."""
        ...

    def statuses(self, site: str) -> list[LineStatus]:
        """Return the current status of each line of the site, ordered by line."""
        ...

    def samples(
        self, site: str, line: str, start_ms: int, end_ms: int, signal: str | None = None
    ) -> list[RawSample]:
        """Return raw samples with start_ms <= ts_ms < end_ms by time, ties in insertion order."""
        ...

    def load_checkpoint(self, site: str, line: str) -> dict[str, Any] | None:
        """Return the line's last committed tracker checkpoint, or None when there is none."""
        ...

    def prune_samples(self, older_than_ms: int) -> int:
        """Delete raw samples with ts_ms < older_than_ms, return how many; rollups, events stay."""
        ...

    def close(self) -> None:
        """Release the connection; the store must not be used afterwards."""
        ...
