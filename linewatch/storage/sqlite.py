"""The embedded storage backend (DESIGN §7): one SQLite file in WAL mode.

The edge writes while the dashboard reads the same file from another process; WAL lets
readers see the last committed batch without blocking the writer. The schema is described
in docs/storage.md.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from linewatch.rollup import (
    LineStatus,
    MinuteRecord,
    RawSample,
    StopEvent,
    Totals,
    WriteBatch,
    checkpoint_site,
)
from linewatch.storage.base import StoreError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_MS = 10_000
# Granularity of the lw_minute_15m sums: every real UTC offset is a multiple of 15 minutes,
# so day and hour buckets of any site's calendar are made of whole quarters.
QUARTER_S = 900
# Raw samples are pruned in chunks of this many rows, each its own transaction, so that
# pruning a week of samples never holds the write lock long enough to stall the edge.
PRUNE_CHUNK = 20_000

MINUTE_COLUMNS = tuple(f.name for f in fields(MinuteRecord))
MINUTE_KEY = ("site", "line", "ts", "product", "source")
STOP_COLUMNS = ("site", "line", "start", "end", "category", "reason", "reason_by",
                "reason_at", "open")
STATUS_COLUMNS = tuple(f.name for f in fields(LineStatus))
SAMPLE_COLUMNS = ("site", "line", "signal", "ts_ms", "value", "text", "good")

SCHEMA = """
CREATE TABLE IF NOT EXISTS lw_minute (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    ts INTEGER NOT NULL,
    product TEXT NOT NULL,
    source TEXT NOT NULL,
    shift TEXT NOT NULL,
    span_s INTEGER NOT NULL,
    running_s INTEGER NOT NULL,
    micro_stop_s INTEGER NOT NULL,
    setup_s INTEGER NOT NULL,
    unplanned_stop_s INTEGER NOT NULL,
    planned_stop_s INTEGER NOT NULL,
    no_data_s INTEGER NOT NULL,
    unscheduled_s INTEGER NOT NULL,
    scheduled_s INTEGER NOT NULL,
    break_s INTEGER NOT NULL,
    ideal_s REAL NOT NULL,
    total_count INTEGER NOT NULL,
    good_count INTEGER NOT NULL,
    reject_count INTEGER NOT NULL,
    energy_kwh REAL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (site, line, ts, product, source)
) WITHOUT ROWID;

-- Sums of lw_minute per line and UTC quarter hour (ts = start of the quarter), rebuilt from
-- lw_minute for every quarter a batch touches; minute_totals reads whole quarters from here.
CREATE TABLE IF NOT EXISTS lw_minute_15m (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    ts INTEGER NOT NULL,
    span_s INTEGER NOT NULL,
    running_s INTEGER NOT NULL,
    micro_stop_s INTEGER NOT NULL,
    setup_s INTEGER NOT NULL,
    unplanned_stop_s INTEGER NOT NULL,
    planned_stop_s INTEGER NOT NULL,
    no_data_s INTEGER NOT NULL,
    unscheduled_s INTEGER NOT NULL,
    scheduled_s INTEGER NOT NULL,
    break_s INTEGER NOT NULL,
    ideal_s REAL NOT NULL,
    total_count INTEGER NOT NULL,
    good_count INTEGER NOT NULL,
    reject_count INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    energy_kwh REAL,
    records INTEGER NOT NULL,
    PRIMARY KEY (site, line, ts)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lw_stop (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    category TEXT NOT NULL,
    reason TEXT,
    reason_by TEXT,
    reason_at INTEGER,
    open INTEGER NOT NULL,
    PRIMARY KEY (site, line, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lw_stop_end ON lw_stop (site, line, "end");

CREATE TABLE IF NOT EXISTS lw_status (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    category TEXT NOT NULL,
    since INTEGER NOT NULL,
    reason TEXT,
    last_sample INTEGER,
    product TEXT,
    updated INTEGER NOT NULL,
    PRIMARY KEY (site, line)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lw_sample (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    signal TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    value REAL,
    text TEXT,
    good INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS lw_sample_time ON lw_sample (site, line, ts_ms, signal);

CREATE TABLE IF NOT EXISTS lw_checkpoint (
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (site, line)
) WITHOUT ROWID;
"""

# In Totals' field order, so that a row of sums builds a Totals positionally (fast).
_TOTAL_NAMES = tuple(f.name for f in fields(Totals))


def _columns(names: Sequence[str]) -> str:
    # Quoted because lw_stop has a column named "end", an SQL keyword.
    return ", ".join(f'"{name}"' for name in names)


def _placeholders(names: Sequence[str]) -> str:
    return ", ".join("?" * len(names))


_SUMS = ", ".join(f'SUM(m."{name}")' for name in _TOTAL_NAMES)
# A quarter is rebuilt from its minutes rather than patched with deltas, so replaced records
# leave no float rounding drift behind; GROUP BY yields no row for an emptied quarter.
_QUARTER_DELETE = "DELETE FROM lw_minute_15m WHERE site = ? AND line = ? AND ts = ?"
_QUARTER_REBUILD = f"""
    INSERT INTO lw_minute_15m (site, line, ts, {_columns(_TOTAL_NAMES)}, records)
    SELECT m.site, m.line, ?, {_SUMS}, COUNT(*) FROM lw_minute AS m
    WHERE m.site = ? AND m.line = ? AND m.ts >= ? AND m.ts < ?
    GROUP BY m.site, m.line
"""
# The ranges of one minute_totals call: whole quarters (from lw_minute_15m) and the minutes
# at bucket edges that are not on a quarter hour (from lw_minute). A temp table rather than
# json_each: its rowid order lets GROUP BY r.id run without sorting every summed row.
_RANGE_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS lw_range (
        id INTEGER PRIMARY KEY,
        bucket INTEGER NOT NULL,
        quarter INTEGER NOT NULL,
        b0 INTEGER NOT NULL,
        b1 INTEGER NOT NULL
    )
"""
# CROSS JOIN makes the ranges the outer loop, so each range is one primary-key range scan.
_RANGE_TOTALS_SQL = f"""
    SELECT r.bucket, {_SUMS}
    FROM temp.lw_range AS r CROSS JOIN {{table}} AS m
    WHERE r.quarter = ? AND m.site = ? AND m.line = ? AND m.ts >= r.b0 AND m.ts < r.b1
    GROUP BY r.id
"""
_QUARTER_TOTALS_SQL = _RANGE_TOTALS_SQL.format(table="lw_minute_15m")
_EDGE_TOTALS_SQL = _RANGE_TOTALS_SQL.format(table="lw_minute")
_MINUTE_UPSERT = (
    f"INSERT OR REPLACE INTO lw_minute ({_columns(MINUTE_COLUMNS)}) "
    f"VALUES ({_placeholders(MINUTE_COLUMNS)})"
)
_MINUTE_DELETE = (
    "DELETE FROM lw_minute WHERE site = ? AND line = ? AND ts = ? AND product = ? AND source = ?"
)
_MINUTES_SQL = (
    f"SELECT {_columns(MINUTE_COLUMNS)} FROM lw_minute "
    "WHERE site = ? AND line = ? AND ts >= ? AND ts < ? ORDER BY ts, product, source"
)
_STOP_UPSERT = (
    f"INSERT OR REPLACE INTO lw_stop ({_columns(STOP_COLUMNS)}) "
    f"VALUES ({_placeholders(STOP_COLUMNS)})"
)
_STOP_DELETE = "DELETE FROM lw_stop WHERE site = ? AND line = ? AND start = ?"
_STOPS_SQL = (
    f"SELECT {_columns(STOP_COLUMNS)} FROM lw_stop "
    'WHERE site = ? AND line = ? AND start < ? AND "end" > ? ORDER BY start'
)
_STATUS_UPSERT = (
    f"INSERT OR REPLACE INTO lw_status ({_columns(STATUS_COLUMNS)}) "
    f"VALUES ({_placeholders(STATUS_COLUMNS)})"
)
_STATUSES_SQL = f"SELECT {_columns(STATUS_COLUMNS)} FROM lw_status WHERE site = ? ORDER BY line"
# ON CONFLICT DO NOTHING rather than INSERT OR IGNORE: only a duplicate is skipped, while a
# NOT NULL violation still fails (and rolls back) the batch instead of vanishing silently.
_SAMPLE_INSERT = (
    f"INSERT INTO lw_sample ({_columns(SAMPLE_COLUMNS)}) "
    f"VALUES ({_placeholders(SAMPLE_COLUMNS)}) ON CONFLICT DO NOTHING"
)
# rowid breaks ties in ts_ms: samples of one millisecond come back in insertion order.
_SAMPLES_SQL = (
    f"SELECT {_columns(SAMPLE_COLUMNS)} FROM lw_sample "
    "WHERE site = ? AND line = ? AND ts_ms >= ? AND ts_ms < ?{signal} ORDER BY ts_ms, rowid"
)
_CHECKPOINT_UPSERT = "INSERT OR REPLACE INTO lw_checkpoint (site, line, data) VALUES (?, ?, ?)"

_minute_row = attrgetter(*MINUTE_COLUMNS)
_stop_row = attrgetter(*STOP_COLUMNS)
_status_row = attrgetter(*STATUS_COLUMNS)


@contextmanager
def write_transaction(conn: sqlite3.Connection,
                      lock: threading.Lock | threading.RLock) -> Iterator[sqlite3.Cursor]:
    """One all-or-nothing write on a connection opened with ``isolation_level=None``."""
    with lock:
        cur = conn.cursor()
        try:
            # IMMEDIATE takes the write lock up front, so a busy file fails (after the busy
            # timeout) before any statement ran rather than at COMMIT.
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                if conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            cur.close()


class SqliteStore:
    """The Store on one SQLite file; safe to share between threads of one process."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        # One connection per store; the lock keeps threads (Streamlit sessions, the edge's
        # sink and pruner) from interleaving statements of one transaction.
        self._lock = threading.RLock()
        self._conn = self._connect()
        logger.debug("opened %s (readonly=%s)", self.path, readonly)

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connection -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        options: dict[str, Any] = {
            "isolation_level": None,  # transactions are explicit: one BEGIN per batch
            "check_same_thread": False,
            "timeout": BUSY_TIMEOUT_MS / 1000,
        }
        try:
            if self.readonly:
                if not self.path.exists():
                    raise StoreError(f"{self.path}: no such store")
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       **options)
            else:
                conn = sqlite3.connect(self.path, **options)
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot open ({err})") from err
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this "
                                 f"linewatch understands ({SCHEMA_VERSION}); upgrade linewatch")
            # The temp schema is private to this connection, so even a read-only one has it.
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute(_RANGE_TABLE)
            if self.readonly:
                if version == 0:
                    raise StoreError(f"{self.path}: not a linewatch store (no schema yet)")
                return
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            # NORMAL under WAL: a power cut may lose the last commits but never corrupts.
            conn.execute("PRAGMA synchronous=NORMAL")
            if version == 0:
                conn.executescript(
                    f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;"
                )
                logger.info("created linewatch store %s (schema %d)", self.path, SCHEMA_VERSION)
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot use as a linewatch store ({err})") from err

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only, cannot write")
        try:
            with write_transaction(self._conn, self._lock) as cur:
                yield cur
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: write failed ({err})") from err

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"{self.path}: query failed ({err})") from err

    # --- writing --------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        """Commit the batch in one transaction (see Store.write for the rules)."""
        if not batch:
            return
        # Last occurrence of a key wins, so a record and its tombstone in one batch keep
        # their order even though upserts and deletes run as two statements.
        latest = {record.key: record for record in batch.minutes}
        minute_rows = [_minute_row(r) for r in latest.values() if not r.is_empty()]
        tombstones = [key for key, r in latest.items() if r.is_empty()]
        quarters = sorted({(site, line, ts - ts % QUARTER_S) for site, line, ts, _, _ in latest})
        # Serialise before BEGIN: a bad checkpoint fails without touching the file.
        checkpoint_rows = [
            (checkpoint_site(line, data), line, json.dumps(data, separators=(",", ":")))
            for line, data in batch.checkpoints.items()
        ]
        with self._transaction() as cur:
            if minute_rows:
                cur.executemany(_MINUTE_UPSERT, minute_rows)
            if tombstones:
                cur.executemany(_MINUTE_DELETE, tombstones)
            if quarters:
                cur.executemany(_QUARTER_DELETE, quarters)
                cur.executemany(_QUARTER_REBUILD, [(ts, site, line, ts, ts + QUARTER_S)
                                                   for site, line, ts in quarters])
            if batch.stops:
                cur.executemany(_STOP_UPSERT, map(_stop_row, batch.stops))
            if batch.deleted_stops:
                cur.executemany(_STOP_DELETE, batch.deleted_stops)
            if batch.statuses:
                cur.executemany(_STATUS_UPSERT, map(_status_row, batch.statuses))
            if batch.samples:
                # RawSample is a NamedTuple in column order: it is the row already.
                cur.executemany(_SAMPLE_INSERT, batch.samples)
            if checkpoint_rows:
                cur.executemany(_CHECKPOINT_UPSERT, checkpoint_rows)
        logger.debug(
            "committed %d minutes, %d tombstones, %d stops, %d deleted stops, %d statuses, "
            "%d samples, %d checkpoints", len(minute_rows), len(tombstones), len(batch.stops),
            len(batch.deleted_stops), len(batch.statuses), len(batch.samples),
            len(checkpoint_rows),
        )

    def prune_samples(self, older_than_ms: int) -> int:
        """Delete raw samples with ts_ms < older_than_ms; rollups, events and statuses stay."""
        total = 0
        while True:
            # Samples arrive roughly in time order, so the old ones sit at the low rowids
            # and each chunk's scan finds them first.
            with self._transaction() as cur:
                cur.execute(
                    "DELETE FROM lw_sample WHERE rowid IN "
                    "(SELECT rowid FROM lw_sample WHERE ts_ms < ? LIMIT ?)",
                    (older_than_ms, PRUNE_CHUNK),
                )
                count = cur.rowcount
            total += count
            if count < PRUNE_CHUNK:
                break
        logger.info("pruned %d raw samples older than %d ms", total, older_than_ms)
        return total

    # --- reading --------------------------------------------------------------------------

    def minute_totals(
        self, site: str, line: str, buckets: Sequence[tuple[int, int]]
    ) -> list[Totals]:
        """Sum the line's minute records per [start, end) bucket, one Totals per bucket."""
        ranges: list[tuple[int, int, int, int]] = []  # (bucket, quarter?, start, end)
        for idx, (start, end) in enumerate(buckets):
            ranges.extend(_split_bucket(idx, int(start), int(end)))
        if not ranges:
            return [Totals() for _ in buckets]
        with self._lock:
            try:
                # One read transaction: the quarter sums and the edge minutes come from the
                # same committed state even while the edge writes.
                self._conn.execute("BEGIN")
                try:
                    self._conn.execute("DELETE FROM temp.lw_range")
                    self._conn.executemany(
                        "INSERT INTO temp.lw_range (bucket, quarter, b0, b1) VALUES (?, ?, ?, ?)",
                        ranges,
                    )
                    rows = self._conn.execute(_QUARTER_TOTALS_SQL, (1, site, line)).fetchall()
                    rows += self._conn.execute(_EDGE_TOTALS_SQL, (0, site, line)).fetchall()
                finally:
                    # Nothing to keep: the temp rows served this call only.
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            except sqlite3.Error as err:
                raise StoreError(f"{self.path}: query failed ({err})") from err
        totals: list[Totals | None] = [None] * len(buckets)
        for idx, *sums in rows:
            found = totals[idx]
            if found is None:
                totals[idx] = Totals(*sums)
            else:
                found.add(Totals(*sums))
        return [Totals() if t is None else t for t in totals]

    def minutes(self, site: str, line: str, start: int, end: int) -> list[MinuteRecord]:
        """Return the line's minute records with start <= ts < end, by ts, product, source."""
        rows = self._query(_MINUTES_SQL, (site, line, start, end))
        return [MinuteRecord(*row) for row in rows]

    def stops(self, site: str, line: str, start: int, end: int) -> list[StopEvent]:
        """Return the line's stop events overlapping [start, end), by start."""
        rows = self._query(_STOPS_SQL, (site, line, end, start))
        return [StopEvent(*row[:-1], open=bool(row[-1])) for row in rows]

    def statuses(self, site: str) -> list[LineStatus]:
        """Return the current status of each line of the site, by line."""
        return [LineStatus(*row) for row in self._query(_STATUSES_SQL, (site,))]

    def samples(
        self, site: str, line: str, start_ms: int, end_ms: int, signal: str | None = None
    ) -> list[RawSample]:
        """Return raw samples with start_ms <= ts_ms < end_ms in time, then insertion, order."""
        params: list[Any] = [site, line, start_ms, end_ms]
        if signal is None:
            sql = _SAMPLES_SQL.format(signal="")
        else:
            sql = _SAMPLES_SQL.format(signal=" AND signal = ?")
            params.append(signal)
        return [RawSample(*row[:-1], good=bool(row[-1])) for row in self._query(sql, params)]

    def load_checkpoint(self, site: str, line: str) -> dict[str, Any] | None:
        """Return the line's last committed tracker checkpoint, or None."""
        rows = self._query("SELECT data FROM lw_checkpoint WHERE site = ? AND line = ?",
                           (site, line))
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close the connection; a second close does nothing."""
        with self._lock:
            self._conn.close()


def _split_bucket(idx: int, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The ranges that sum to bucket [start, end): whole quarters plus the minutes at its edges."""
    if end < start:
        raise ValueError(f"bucket {idx} ends before it starts ({start}, {end})")
    first = -(-start // QUARTER_S) * QUARTER_S  # first quarter boundary at or after start
    last = end // QUARTER_S * QUARTER_S  # last quarter boundary at or before end
    if first >= last:
        return [(idx, 0, start, end)] if start < end else []
    ranges = [(idx, 1, first, last)]
    if start < first:
        ranges.append((idx, 0, start, first))
    if last < end:
        ranges.append((idx, 0, last, end))
    return ranges

