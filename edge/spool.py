"""The edge's durable outbox (DESIGN §8): one SQLite file in WAL mode between pipeline and sinks.

The pipeline appends each `WriteBatch` — raw samples, final minute rollups, stop events,
deleted stops, line statuses and tracker checkpoints — in one transaction. Every record
becomes a row with an increasing id. Each sink drains with its own cursor (`pending`, then
`ack` after the store accepted the batch), and a row leaves the spool (`prune`) only after
every registered sink acknowledged it. When the file reaches ``max_mb`` the oldest raw
telemetry samples are dropped, never rollups, events, statuses or role samples.

The spool is also the primary home of the trackers' checkpoints (`checkpoint`): a store's
copy (lw_checkpoint) is for replay and backfill.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from linewatch.config import ROLES
from linewatch.rollup import (
    LineStatus,
    MinuteRecord,
    RawSample,
    StopEvent,
    WriteBatch,
    checkpoint_site,
)
from linewatch.storage.sqlite import write_transaction

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
# Health warns from this fill ratio on (DESIGN §8).
WARN_RATIO = 0.8
# When full, telemetry is dropped in chunks until the spool is below this ratio again, so a
# full spool does not drop a few rows before every single append.
DROP_TO_RATIO = 0.9
DROP_CHUNK = 5_000

# Row kinds, in the order one batch's records are appended (Store.write's order).
MINUTE, STOP, DELETED_STOP, STATUS, SAMPLE, CHECKPOINT = range(1, 7)

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_record (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids are never reused after a prune
    kind INTEGER NOT NULL,
    telemetry INTEGER NOT NULL DEFAULT 0,   -- 1: a raw telemetry sample (droppable when full)
    data TEXT,                              -- JSON array of the record's fields (not samples)
    site TEXT, line TEXT, signal TEXT, ts INTEGER, value REAL, text TEXT, good INTEGER
);
CREATE INDEX IF NOT EXISTS spool_telemetry ON spool_record (id) WHERE telemetry = 1;
CREATE TABLE IF NOT EXISTS spool_cursor (
    sink TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL                -- the sink acknowledged every row up to this id
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spool_checkpoint (
    line TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    data TEXT NOT NULL,
    record_id INTEGER NOT NULL              -- the last row appended with it
) WITHOUT ROWID;
"""

_INSERT = ("INSERT INTO spool_record (kind, telemetry, data, site, line, signal, ts, value, "
           "text, good) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_PENDING = ("SELECT id, kind, data, site, line, signal, ts, value, text, good FROM spool_record "
            "WHERE id > ? ORDER BY id LIMIT ?")
_minute_fields = attrgetter(*(f.name for f in fields(MinuteRecord)))
_stop_fields = attrgetter(*(f.name for f in fields(StopEvent)))
_status_fields = attrgetter(*(f.name for f in fields(LineStatus)))
_ROLES = frozenset(ROLES)


class Spool:
    """The outbox on one SQLite file; safe to share between the pipeline and sink threads."""

    def __init__(self, path: str | Path, max_mb: float = 1024) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_mb * 2**20)
        self.dropped_telemetry = 0  # raw telemetry samples dropped because the spool was full
        self._warned_full = False
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=BUSY_TIMEOUT_S)
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise RuntimeError(f"{self.path}: cannot switch the spool to WAL (got {mode!r})")
            # FULL: a committed batch survives a power cut, not only a crash; the pipeline
            # acknowledges MQTT messages once their batch is committed here (DESIGN §8).
            self._conn.execute("PRAGMA synchronous=FULL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: spool schema {version} is newer than this "
                                   f"linewatch understands ({SCHEMA_VERSION})")
            if version == 0:
                self._conn.executescript(
                    f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        except BaseException:
            self._conn.close()
            raise
        logger.debug("opened spool %s (max %d MB)", self.path, max_mb)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        return write_transaction(self._conn, self._lock)

    # --- the pipeline's side --------------------------------------------------------------

    def append(self, batch: WriteBatch) -> int:
        """Commit the batch's records and checkpoints in one transaction; return the last id."""
        # Built before BEGIN: a bad checkpoint fails without touching the file.
        checkpoints = [(line, checkpoint_site(line, data), json.dumps(data))
                       for line, data in batch.checkpoints.items()]
        rows: list[tuple[Any, ...]] = []
        rows += [(MINUTE, 0, json.dumps(_minute_fields(r)), *_NO_SAMPLE) for r in batch.minutes]
        rows += [(STOP, 0, json.dumps(_stop_fields(s)), *_NO_SAMPLE) for s in batch.stops]
        rows += [(DELETED_STOP, 0, json.dumps(list(key)), *_NO_SAMPLE)
                 for key in batch.deleted_stops]
        rows += [(STATUS, 0, json.dumps(_status_fields(s)), *_NO_SAMPLE) for s in batch.statuses]
        rows += [(SAMPLE, s.signal not in _ROLES, None, s.site, s.line, s.signal, s.ts_ms,
                  s.value, s.text, s.good) for s in batch.samples]
        # Last, so that a sink never receives a checkpoint before the records it covers.
        rows += [(CHECKPOINT, 0, json.dumps([line, data]), *_NO_SAMPLE)
                 for line, data in batch.checkpoints.items()]
        with self._transaction() as cur:
            if rows:
                self._make_room(cur)
                cur.executemany(_INSERT, rows)
            last_id = self._last_id(cur)
            if checkpoints:
                cur.executemany(
                    "INSERT OR REPLACE INTO spool_checkpoint (line, site, data, record_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(line, site, data, last_id) for line, site, data in checkpoints])
        return last_id

    def _last_id(self, cur: sqlite3.Cursor) -> int:
        row = cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'spool_record'"
                          ).fetchone()
        return int(row[0]) if row else 0

    def _make_room(self, cur: sqlite3.Cursor) -> None:
        """Drop the oldest raw telemetry while the spool is full (never anything else)."""
        used = self._used_bytes(cur)
        if used >= WARN_RATIO * self.max_bytes and not self._warned_full:
            logger.warning("spool %s is %.0f %% full (%d of %d MB)", self.path,
                           100 * used / self.max_bytes, used // 2**20, self.max_bytes // 2**20)
            self._warned_full = True
        elif used < WARN_RATIO * self.max_bytes:
            self._warned_full = False
        dropped = 0
        while used >= self.max_bytes or (dropped and used >= DROP_TO_RATIO * self.max_bytes):
            cur.execute("DELETE FROM spool_record WHERE id IN (SELECT id FROM spool_record "
                        "WHERE telemetry = 1 ORDER BY id LIMIT ?)", (DROP_CHUNK,))
            if cur.rowcount == 0:
                break  # nothing droppable left: rollups, events and role samples are kept
            dropped += cur.rowcount
            used = self._used_bytes(cur)
        if dropped:
            self.dropped_telemetry += dropped
            logger.warning("spool %s full: dropped the %d oldest raw telemetry samples (%d in "
                           "total)", self.path, dropped, self.dropped_telemetry)

    @staticmethod
    def _used_bytes(cur: sqlite3.Cursor) -> int:
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        free = cur.execute("PRAGMA freelist_count").fetchone()[0]
        size = cur.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def checkpoint(self, line: str) -> dict[str, Any] | None:
        """The line's last appended tracker checkpoint, or None."""
        with self._lock:
            row = self._conn.execute("SELECT data FROM spool_checkpoint WHERE line = ?",
                                     (line,)).fetchone()
        return json.loads(row[0]) if row else None

    def checkpoints(self) -> dict[str, dict[str, Any]]:
        """Every line's last appended checkpoint."""
        with self._lock:
            rows = self._conn.execute("SELECT line, data FROM spool_checkpoint").fetchall()
        return {line: json.loads(data) for line, data in rows}

    # --- the sinks' side ------------------------------------------------------------------

    def register(self, sink: str) -> None:
        """Add a sink (idempotent); from now on rows wait for its acknowledgement too."""
        with self._transaction() as cur:
            cur.execute("INSERT OR IGNORE INTO spool_cursor (sink, last_id) VALUES (?, 0)",
                        (sink,))

    def sinks(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT sink FROM spool_cursor ORDER BY sink")]

    def cursor(self, sink: str) -> int:
        """The last id the sink acknowledged."""
        with self._lock:
            row = self._conn.execute("SELECT last_id FROM spool_cursor WHERE sink = ?",
                                     (sink,)).fetchone()
        if row is None:
            raise KeyError(f"spool {self.path}: no sink {sink!r} registered")
        return int(row[0])

    def pending(self, sink: str, limit: int, after: int | None = None) -> tuple[int, WriteBatch]:
        """Up to `limit` rows after the sink's cursor, as one batch, and the last id read.

        The batch applies the rows in id order under Store.write's rules: later minute
        records and statuses replace earlier ones of the same key, and of a stop's upserts
        and deletes only the last one counts. With nothing pending the id is the cursor.
        ``after`` reads past an id instead of the cursor (a sink prefetching the batch that
        follows one still being written).
        """
        cursor = self.cursor(sink) if after is None else after
        with self._lock:
            rows = self._conn.execute(_PENDING, (cursor, limit)).fetchall()
        batch = WriteBatch()
        stop_ops: dict[tuple[str, str, int], StopEvent | None] = {}
        statuses: dict[tuple[str, str], LineStatus] = {}
        samples = batch.samples
        for _id, kind, data, site, line, signal, ts, value, text, good in rows:
            if kind == SAMPLE:
                # good == 1 rather than bool(good): this loop runs per sample of a drain.
                samples.append(RawSample(site, line, signal, ts, value, text, good == 1))
            elif kind == MINUTE:
                batch.minutes.append(MinuteRecord(*json.loads(data)))
            elif kind == STOP:
                event = StopEvent(*json.loads(data))
                stop_ops.pop((event.site, event.line, event.start), None)
                stop_ops[(event.site, event.line, event.start)] = event
            elif kind == DELETED_STOP:
                key_site, key_line, start = json.loads(data)
                stop_ops.pop((key_site, key_line, start), None)
                stop_ops[(key_site, key_line, start)] = None
            elif kind == STATUS:
                status = LineStatus(*json.loads(data))
                statuses[(status.site, status.line)] = status
            elif kind == CHECKPOINT:
                line_id, checkpoint = json.loads(data)
                batch.checkpoints[line_id] = checkpoint
            else:
                raise RuntimeError(f"spool {self.path}: row {_id} has unknown kind {kind}")
        batch.stops = [event for event in stop_ops.values() if event is not None]
        batch.deleted_stops = [key for key, event in stop_ops.items() if event is None]
        batch.statuses = list(statuses.values())
        return (rows[-1][0] if rows else cursor), batch

    def ack(self, sink: str, last_id: int) -> None:
        """The sink stored every row up to last_id; a cursor never moves back."""
        with self._transaction() as cur:
            cur.execute("UPDATE spool_cursor SET last_id = MAX(last_id, ?) WHERE sink = ?",
                        (last_id, sink))
            if cur.rowcount == 0:
                raise KeyError(f"spool {self.path}: no sink {sink!r} registered")

    def prune(self) -> int:
        """Delete the rows every registered sink acknowledged; return how many."""
        with self._transaction() as cur:
            cur.execute("DELETE FROM spool_record WHERE id <= "
                        "(SELECT MIN(last_id) FROM spool_cursor)")
            return cur.rowcount

    def depth(self, sink: str) -> int:
        """Rows the sink has not acknowledged yet."""
        cursor = self.cursor(sink)
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM spool_record WHERE id > ?",
                                          (cursor,)).fetchone()[0])

    def size_bytes(self) -> int:
        """Bytes in use by the spool's pages (pruned rows' pages are reused, not counted)."""
        with self._lock:
            return self._used_bytes(self._conn.cursor())

    def fill_ratio(self) -> float:
        """size_bytes() / max bytes; health warns from WARN_RATIO on."""
        return self.size_bytes() / self.max_bytes

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_NO_SAMPLE = (None,) * 7

