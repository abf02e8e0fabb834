"""The InfluxDB storage backend (DESIGN §7): line protocol writes, InfluxQL reads.

Writes go to ``/api/v2/write`` through influxdb-client (``api: v2``: InfluxDB 2.x, 3.x and
1.8+) or to ``/write`` over plain HTTP (``api: v1``: InfluxDB 1.x; influxdb-client has no v1
write path). Every read is InfluxQL on ``/query`` — raw selects and ``SUM()`` over explicit
UTC bounds, never ``tz()`` or Flux — so one read path serves 1.x, 2.x (through the bucket's
DBRP mapping) and 3.x. The measurements, tags and fields are described in docs/storage.md.

InfluxDB has no transactions and no delete that works on every version, so the Store
contract is kept with upserts only: a point with the same measurement, tag set and
timestamp replaces the fields it carries. Every write therefore carries every field
(``None`` is written as an explicit "none" value, see `_NO_TIME`), a tombstone is a point of
zeros, a deleted stop a point with ``deleted=1``. A failed batch may be partly stored, but
each of its parts is an idempotent upsert, so re-sending the whole batch ends in exactly the
state of one successful write.
"""

from __future__ import annotations

import base64
import gzip as gzip_module
import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from linewatch.rollup import (
    ADDITIVE_FIELDS,
    LineStatus,
    MinuteRecord,
    RawSample,
    StopEvent,
    Totals,
    WriteBatch,
    checkpoint_site,
)
from linewatch.storage.base import StoreError

if TYPE_CHECKING:
    from linewatch.config import InfluxStorage

logger = logging.getLogger(__name__)

Api = Literal["v1", "v2"]

MINUTE = "lw_minute"
STOP = "lw_stop"
STATUS = "lw_status"
SAMPLE = "lw_sample"
CHECKPOINT = "lw_checkpoint"
# Sums of lw_minute per line and UTC quarter hour, rebuilt by every write that touches a
# quarter: every real UTC offset is a multiple of 15 minutes, so the hour, day and shift
# buckets of a site's calendar are made of whole quarters (as SqliteStore's lw_minute_15m).
QUARTER = "lw_minute_15m"
QUARTER_S = 900
MEASUREMENTS = (MINUTE, QUARTER, STOP, SAMPLE, STATUS, CHECKPOINT)

# lw_minute fields: the additive sums, energy_kwh (0 when unknown) and has_energy (1 when
# energy_kwh is known): a re-sent record without energy must overwrite an earlier value, and
# a field left out of a write keeps its old value, so "unknown" is written explicitly.
MINUTE_FIELDS = (*ADDITIVE_FIELDS, "energy_kwh", "has_energy")
_INT_FIELDS = frozenset(ADDITIVE_FIELDS) - {"ideal_s"}
# reason_at and last_sample are epoch seconds; no real one is negative, so -1 means None.
_NO_TIME = -1.0
# Lines per HTTP write: a few MB, well under InfluxDB 1.x's default 25 MB max-body-size.
WRITE_CHUNK = 20_000
# Raw samples go out in smaller chunks, this many requests at a time: InfluxDB parses
# concurrent writes in parallel (1.6 on 2 cores: ~2x the points/s of one request at a time).
SAMPLE_CHUNK = 5_000
WRITE_CONCURRENCY = 2
# InfluxQL statements per /query request (a minute_totals call may need one per bucket edge).
STATEMENTS_PER_QUERY = 200
# Rows per chunk of a chunked /query response; chunked responses are not cut off by a
# server's max-row-limit.
CHUNK_SIZE = 10_000
# The existence checks before a write query one time range per cluster of timestamps; a gap
# longer than this starts a new range, so one late record never makes a query scan hours.
CLUSTER_GAP_S = 300
DEFAULT_TIMEOUT_S = 10.0

_TOTAL_SELECT = ", ".join(f'SUM("{name}") AS "{name}"' for name in MINUTE_FIELDS)


class InfluxHTTPError(StoreError):
    """InfluxDB answered with an HTTP error status (401/403: the credentials were refused)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InfluxStore:
    """The Store on an InfluxDB database (v1) or bucket (v2); safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        api: Api = "v1",
        database: str | None = None,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        token: str | None = None,
        gzip: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.api = api
        self.gzip = gzip
        self.timeout_s = timeout_s
        if api == "v2":
            if not (org and bucket and token):
                raise ValueError("api v2 needs org, bucket and token")
            self.database: str = bucket
            self.retention_policy: str | None = None
            self.org: str | None = org
        else:
            if not database:
                raise ValueError("api v1 needs a database")
            self.database = database
            self.retention_policy = retention_policy
            self.org = None
        self.username = username
        # Credentials live only in this header value; they never reach a URL, a log or repr.
        self._auth: str | None = None
        self._token = token
        if api == "v2":
            self._auth = f"Token {token}"
        elif username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode()
        self._lock = threading.Lock()
        self._last_seq = 0
        # Per (site, line, signal) of a line in _learned: no sample newer than this ts_ms is
        # stored (learned from the server once per line, then raised by this store's own
        # writes; a signal without a mark has nothing stored). Newer samples skip the
        # first-wins lookup. This assumes one writer per line (DESIGN §13: one edge per
        # hall); a mark that is too high only costs lookups.
        self._newest_ms: dict[tuple[str, str, str], int] = {}
        self._learned: set[tuple[str, str]] = set()
        self._posters: ThreadPoolExecutor | None = None  # for concurrent sample chunks
        self._client: Any = None  # influxdb_client.InfluxDBClient, created on the first v2 write
        self._write_api: Any = None
        self._closed = False

    @classmethod
    def from_config(cls, storage: InfluxStorage) -> InfluxStore:
        """Open the store a config's ``storage.influxdb`` block describes (secrets read here)."""
        from linewatch.config import read_secret

        if storage.api == "v2":
            return cls(storage.url, api="v2", org=storage.org, bucket=storage.bucket,
                       token=read_secret(storage.token_env, storage.token_file),
                       gzip=storage.gzip)
        password = read_secret(storage.password_env, storage.password_file)
        return cls(storage.url, api="v1", database=storage.database,
                   retention_policy=storage.retention_policy, username=storage.username,
                   password=password, gzip=storage.gzip)

    def __repr__(self) -> str:
        target = f"bucket={self.database!r}" if self.api == "v2" else f"db={self.database!r}"
        return f"InfluxStore({self.url!r}, api={self.api!r}, {target})"

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """Where the data goes, for messages: URL plus database or bucket (never a secret)."""
        kind = "bucket" if self.api == "v2" else "database"
        return f"InfluxDB {self.url} ({kind} {self.database!r})"

    # --- writing --------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        """Store the batch (see Store.write); re-sending a failed batch is always safe."""
        if not batch:
            return
        if self._closed:
            raise StoreError(f"{self.where}: store is closed")
        # Last occurrence of a key wins, as in SqliteStore.
        minutes = list({record.key: record for record in batch.minutes}.values())
        # Checked before anything is sent: a bad checkpoint fails without writing.
        checkpoints = [(checkpoint_site(line, data), line,
                        json.dumps(data, separators=(",", ":")))
                       for line, data in batch.checkpoints.items()]
        samples = _first_per_key(batch.samples)
        try:
            stale, existing = self._existing(minutes, samples)
            if existing:
                samples = [s for s in samples if _sample_key(s) not in existing]
            seq = self._next_seq(len(samples))
            sample_lines = _sample_lines(samples, seq)
            lines = [_minute_line(r) for r in minutes]
            lines += [_zero_minute_line(*key) for key in stale]
            lines += _stop_lines(batch.stops, batch.deleted_stops)
            now = int(time.time())
            lines += [_status_line(s, now) for s in {(s.site, s.line): s
                                                     for s in batch.statuses}.values()]
            last = [_checkpoint_line(site, line, data, now) for site, line, data in checkpoints]
        except (TypeError, ValueError) as err:
            raise StoreError(f"{self.where}: cannot encode the batch as line protocol "
                             f"({err})") from err
        # Samples first, then rollups and events, then the quarter-hour sums rebuilt from
        # the stored minutes, checkpoints last: a checkpoint never runs ahead of its data.
        # Marks go up before the post: if it fails halfway, a re-send looks the samples up
        # (a mark too high costs lookups; one too low could let a repeat overwrite).
        self._stored_up_to(samples)
        self._post_samples(sample_lines)
        for chunk in _chunks(lines, WRITE_CHUNK):
            self._post_lines(chunk, "s")
        quarters = {(r.site, r.line, r.ts - r.ts % QUARTER_S) for r in minutes}
        quarters |= {(site, line, ts - ts % QUARTER_S) for site, line, ts, *_ in stale}
        last = self._quarter_lines(quarters) + last
        for chunk in _chunks(last, WRITE_CHUNK):
            self._post_lines(chunk, "s")
        logger.debug("%s: wrote %d minutes (%d stale shift points), %d stops, %d deleted "
                     "stops, %d statuses, %d samples (%d already stored), %d checkpoints",
                     self.where, len(minutes), len(stale), len(batch.stops),
                     len(batch.deleted_stops), len(batch.statuses), len(samples),
                     len(batch.samples) - len(samples), len(checkpoints))

    def _existing(self, minutes: list[MinuteRecord], samples: list[RawSample]
                  ) -> tuple[list[tuple[str, str, str, str, str, int]],
                             set[tuple[str, str, str, int]]]:
        """Stored points a write must know about, in one /query request.

        Returns the lw_minute points of the batch's keys stored under another ``shift`` tag
        (the shift is informative, not part of the key, so those must be zeroed), and the
        sample keys already stored (the first stored sample wins).
        """
        statements: list[str] = []
        kinds: list[tuple[str, str, str]] = []
        by_line: dict[tuple[str, str], list[int]] = defaultdict(list)
        for record in minutes:
            by_line[(record.site, record.line)].append(record.ts)
        for (site, line), stamps in by_line.items():
            for lo, hi in _clusters(stamps, CLUSTER_GAP_S):
                statements.append(
                    f'SELECT "span_s", "product", "shift", "source" FROM {self._from(MINUTE)} '
                    f"WHERE {_match(site=site, line=line)} AND time >= {lo}s AND time <= {hi}s")
                kinds.append(("minute", site, line))
        # Samples: a line this store has not asked about yet is looked up whole (and its
        # newest sample per signal learned); otherwise only samples that are not newer than
        # their signal's mark can already be stored (usually none in a drain).
        unknown = set(map(_line_key, samples)) - self._learned
        for site, line in unknown:
            statements.append(f'SELECT LAST("good") FROM {self._from(SAMPLE)} '
                              f'WHERE {_match(site=site, line=line)} GROUP BY "signal"')
            kinds.append(("newest", site, line))
        marks = self._newest_ms
        candidates = [s for s in samples if (s.site, s.line) in unknown
                      or s.ts_ms <= marks.get((s.site, s.line, s.signal), -1)]
        by_line = defaultdict(list)
        for sample in candidates:
            by_line[(sample.site, sample.line)].append(sample.ts_ms)
        for (site, line), stamps in by_line.items():
            for lo, hi in _clusters(stamps, CLUSTER_GAP_S * 1000):
                statements.append(
                    f'SELECT "good", "signal" FROM {self._from(SAMPLE)} '
                    f"WHERE {_match(site=site, line=line)} AND time >= {lo}ms AND time <= {hi}ms")
                kinds.append(("sample", site, line))
        stale: list[tuple[str, str, str, str, str, int]] = []
        existing: set[tuple[str, str, str, int]] = set()
        if not statements:
            return stale, existing
        shifts = {r.key: r.shift for r in minutes}
        # Minute and sample statements need different epochs; ms serves both exactly.
        for (kind, site, line), rows in zip(kinds, self._select(statements, "ms"),
                                            strict=True):
            for row in rows:
                if kind == "minute":
                    ts = row["time"] // 1000
                    product, source = row["product"] or "", row["source"] or ""
                    shift = row["shift"] or ""
                    want = shifts.get((site, line, ts, product, source))
                    if want is not None and shift != want:
                        stale.append((site, line, ts, product, source, shift))
                elif kind == "sample":
                    existing.add((site, line, row["signal"] or "", row["time"]))
                else:
                    self._raise_mark((site, line, row["signal"] or ""), row["time"])
            if kind == "newest":
                with self._lock:
                    self._learned.add((site, line))
        return stale, existing

    def _raise_mark(self, key: tuple[str, str, str], ts_ms: int) -> None:
        with self._lock:
            if ts_ms > self._newest_ms.get(key, -1):
                self._newest_ms[key] = ts_ms

    def _stored_up_to(self, samples: list[RawSample]) -> None:
        """Raise each signal's newest-stored mark to the newest of these samples."""
        newest: dict[tuple[str, str, str], int] = {}
        get = newest.get
        for key, ts_ms in zip(map(_series_key, samples), map(_ts_ms, samples), strict=True):
            if ts_ms > get(key, -1):
                newest[key] = ts_ms
        for key, ts_ms in newest.items():
            # Only lines the server was asked about: for the others a mark would claim
            # that nothing newer is stored without anyone having looked.
            if key[:2] in self._learned:
                self._raise_mark(key, ts_ms)

    def _quarter_lines(self, quarters: set[tuple[str, str, int]]) -> list[str]:
        """lw_minute_15m points for the given quarters, summed from the stored minutes.

        A quarter is rebuilt from its minutes rather than patched, so a replaced or deleted
        record leaves nothing behind; an emptied quarter gets a point of zeros.
        """
        by_line: dict[tuple[str, str], list[int]] = defaultdict(list)
        for site, line, quarter in quarters:
            by_line[(site, line)].append(quarter)
        statements: list[str] = []
        owners: list[tuple[str, str, set[int]]] = []
        for (site, line), starts in by_line.items():
            for lo, hi in _clusters(starts, 4 * 3600):
                statements.append(
                    f"SELECT {_TOTAL_SELECT} FROM {self._from(MINUTE)} "
                    f"WHERE {_match(site=site, line=line)} AND time >= {lo}s "
                    f"AND time < {hi + QUARTER_S}s GROUP BY time({QUARTER_S}s) fill(none)")
                owners.append((site, line, {q for q in starts if lo <= q <= hi}))
        lines: list[str] = []
        for (site, line, wanted), rows in zip(owners, self._select(statements, "s"),
                                              strict=True):
            found = {row["time"]: row for row in rows}
            head = _tags(QUARTER, site=site, line=line)
            for quarter in sorted(wanted):
                row = found.get(quarter, {})
                fields = ",".join(f"{name}={_num(row.get(name) or 0)}"
                                  for name in MINUTE_FIELDS)
                lines.append(f"{head} {fields} {quarter}")
        return lines

    def _next_seq(self, count: int) -> int:
        """First of `count` increasing sample sequence numbers (µs of the wall clock)."""
        with self._lock:
            first = max(time.time_ns() // 1000, self._last_seq + 1)
            self._last_seq = first + count - 1
        return first

    def _post_samples(self, lines: list[str]) -> None:
        """POST sample lines, several chunks at once: their order does not matter (distinct
        keys), and InfluxDB parses concurrent writes in parallel."""
        chunks = list(_chunks(lines, SAMPLE_CHUNK))
        if len(chunks) <= 1:
            for chunk in chunks:
                self._post_lines(chunk, "ms")
            return
        with self._lock:
            if self._posters is None:
                self._posters = ThreadPoolExecutor(max_workers=WRITE_CONCURRENCY,
                                                   thread_name_prefix="influx-write")
            posters = self._posters
        futures = [posters.submit(self._post_lines, chunk, "ms") for chunk in chunks]
        errors = [err for err in (f.exception() for f in futures) if err is not None]
        if errors:
            raise errors[0]

    def _post_lines(self, lines: list[str], precision: Literal["s", "ms"]) -> None:
        body = "\n".join(lines).encode()
        if self.api == "v2":
            self._post_v2(body, precision)
        else:
            self._post_v1(body, precision)

    def _post_v2(self, body: bytes, precision: Literal["s", "ms"]) -> None:
        """POST /api/v2/write through influxdb-client's synchronous write API."""
        from influxdb_client.client.exceptions import InfluxDBError
        from urllib3.exceptions import HTTPError as Urllib3Error

        write_api = self._v2_write_api()
        try:
            write_api.write(bucket=self.database, org=self.org, record=body,
                            write_precision=precision)
        except InfluxDBError as err:
            status = getattr(err, "status", None)
            raise StoreError(f"{self.where}: write failed (HTTP {status}: "
                             f"{_clip(err.message)})") from err
        except (Urllib3Error, OSError) as err:
            raise StoreError(f"{self.where}: write failed, server not reachable "
                             f"({type(err).__name__}: {_clip(str(err))})") from err

    def _v2_write_api(self) -> Any:
        with self._lock:
            if self._write_api is None:
                # Imported here: influxdb-client is only needed for api v2.
                from influxdb_client import InfluxDBClient
                from influxdb_client.client.write_api import SYNCHRONOUS

                self._client = InfluxDBClient(url=self.url, token=self._token, org=self.org,
                                              enable_gzip=self.gzip,
                                              timeout=int(self.timeout_s * 1000))
                self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
            return self._write_api

    def _post_v1(self, body: bytes, precision: Literal["s", "ms"]) -> None:
        """POST /write?db=…&rp=…&precision=… (InfluxDB 1.x)."""
        params = {"db": self.database, "precision": precision}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._http("POST", "/write", params, body, headers, action="write")

    # --- reading --------------------------------------------------------------------------

    def minute_totals(
        self, site: str, line: str, buckets: Sequence[tuple[int, int]]
    ) -> list[Totals]:
        """Sum the line's minute records per [start, end) bucket, one Totals per bucket.

        The whole quarter hours of the buckets come from lw_minute_15m, summed by InfluxDB
        on the coarsest UTC grid the bucket edges allow (``GROUP BY time(1d, 16h)`` for a
        year of Hong Kong days: 365 rows); minutes at edges off the quarter hour come from
        lw_minute, one SUM() per edge range. All bounds are explicit UTC; no tz().
        """
        cores: list[tuple[int, int, int]] = []  # (bucket, start, end) on quarter hours
        edges: list[tuple[int, int, int]] = []  # (bucket, start, end) summed from minutes
        for idx, (start, end) in enumerate(buckets):
            start, end = int(start), int(end)
            if end < start:
                raise ValueError(f"bucket {idx} ends before it starts ({start}, {end})")
            first = -(-start // QUARTER_S) * QUARTER_S
            last = end // QUARTER_S * QUARTER_S
            if first < last:
                cores.append((idx, first, last))
                edges += [(idx, a, b) for a, b in ((start, first), (last, end)) if a < b]
            elif start < end:
                edges.append((idx, start, end))
        where = _match(site=site, line=line)
        statements = [f"SELECT {_TOTAL_SELECT} FROM {self._from(MINUTE)} "
                      f"WHERE {where} AND time >= {a}s AND time < {b}s" for _, a, b in edges]
        runs = _grid_runs(cores)
        statements += [f"SELECT {_TOTAL_SELECT} FROM {self._from(QUARTER)} WHERE {where} "
                       f"AND time >= {members[0][1]}s AND time < {members[-1][2]}s "
                       f"GROUP BY time({grid}s, {members[0][1] % grid}s) fill(none)"
                       for grid, members in runs]
        results = self._select(statements, "s")
        totals = [Totals() for _ in buckets]
        for (idx, _, _), rows in zip(edges, results, strict=False):
            for row in rows:
                totals[idx].add(_totals(row))
        for (grid, members), rows in zip(runs, results[len(edges):], strict=True):
            _add_grouped(totals, members, rows, grid)
        return totals

    def minutes(self, site: str, line: str, start: int, end: int) -> list[MinuteRecord]:
        """Return the line's minute records with start <= ts < end, by ts, product, source."""
        [rows] = self._select([f"SELECT * FROM {self._from(MINUTE)} "
                               f"WHERE {_match(site=site, line=line)} "
                               f"AND time >= {int(start)}s AND time < {int(end)}s"], "s")
        records = [r for r in map(_minute_record, rows) if not r.is_empty()]
        records.sort(key=lambda r: (r.ts, r.product, r.source))
        return records

    def stops(self, site: str, line: str, start: int, end: int) -> list[StopEvent]:
        """Return the line's stop events overlapping [start, end), by start."""
        [rows] = self._select([f"SELECT * FROM {self._from(STOP)} "
                               f"WHERE {_match(site=site, line=line)} "
                               f'AND time < {int(end)}s AND "end" > {int(start)}'], "s")
        events = [_stop_event(site, line, row) for row in rows if not row.get("deleted")]
        events.sort(key=lambda e: e.start)
        return events

    def statuses(self, site: str) -> list[LineStatus]:
        """Return the latest status point of each line of the site, by line."""
        [rows] = self._select([f"SELECT * FROM {self._from(STATUS)} WHERE {_match(site=site)} "
                               'GROUP BY "line" ORDER BY time DESC LIMIT 1'], "s")
        out = [_line_status(site, row) for row in rows]
        out.sort(key=lambda s: s.line)
        return out

    def samples(
        self, site: str, line: str, start_ms: int, end_ms: int, signal: str | None = None
    ) -> list[RawSample]:
        """Return raw samples with start_ms <= ts_ms < end_ms in time, then insertion, order."""
        where = _match(site=site, line=line) if signal is None else _match(
            site=site, line=line, signal=signal)
        [rows] = self._select([f'SELECT "signal", "value", "text", "good", "seq" '
                               f"FROM {self._from(SAMPLE)} WHERE {where} "
                               f"AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"],
                              "ms")
        rows.sort(key=lambda r: (r["time"], r.get("seq") or 0.0))
        return [RawSample(site, line, r["signal"] or "", r["time"],
                          None if r.get("value") is None else float(r["value"]), r.get("text"),
                          bool(r.get("good"))) for r in rows]

    def load_checkpoint(self, site: str, line: str) -> dict[str, Any] | None:
        """Return the line's latest checkpoint, or None; the edge spool holds the primary copy."""
        [rows] = self._select([f'SELECT "data" FROM {self._from(CHECKPOINT)} '
                               f"WHERE {_match(site=site, line=line)} "
                               "ORDER BY time DESC LIMIT 1"], "s")
        return json.loads(rows[0]["data"]) if rows else None

    def prune_samples(self, older_than_ms: int) -> int:
        """Delete raw samples with ts_ms < older_than_ms (v1: DELETE, v2: /api/v2/delete)."""
        [rows] = self._select([f'SELECT COUNT("good") FROM {self._from(SAMPLE)} '
                               f"WHERE time < {int(older_than_ms)}ms"], "ms")
        count = int(rows[0]["count"]) if rows else 0
        if count == 0:
            return 0
        if self.api == "v1":
            self._query([f"DELETE FROM {_ident(SAMPLE)} WHERE time < {int(older_than_ms)}ms"],
                        "ms")
        else:
            # InfluxQL on 2.x is read-only; 3.x has no delete at all (use bucket retention).
            stop = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(older_than_ms // 1000))
            stop += f".{older_than_ms % 1000:03d}Z"
            body = json.dumps({"start": "1970-01-01T00:00:00Z", "stop": stop,
                               "predicate": f'_measurement="{SAMPLE}"'}).encode()
            self._http("POST", "/api/v2/delete", {"org": self.org or "", "bucket": self.database},
                       body, {"Content-Type": "application/json"}, action="delete")
        logger.info("%s: pruned %d raw samples older than %d ms", self.where, count,
                    older_than_ms)
        return count

    def close(self) -> None:
        """Release the HTTP client; a second close does nothing."""
        with self._lock:
            self._closed = True
            if self._posters is not None:
                self._posters.shutdown(wait=True)
                self._posters = None
            if self._client is not None:
                self._client.close()
                self._client = self._write_api = None

    # --- InfluxQL over HTTP ---------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        """The /ping headers: ``version`` (X-Influxdb-Version) and ``build`` (X-Influxdb-Build)."""
        url = f"{self.url}/ping"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                headers = response.headers
        except urllib.error.HTTPError as err:
            raise InfluxHTTPError(f"{self.url}: /ping answered HTTP {err.code}", err.code
                                  ) from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(f"{self.url}: not reachable ({reason})") from err
        return {"version": headers.get("X-Influxdb-Version") or "unknown",
                "build": headers.get("X-Influxdb-Build") or ""}

    def influxql(self, statement: str, database: str | None = None) -> list[dict[str, Any]]:
        """Rows of one InfluxQL statement with this store's credentials (admin tools).

        ``database`` defaults to the store's; "" sends none (SHOW DATABASES, CREATE DATABASE).
        """
        return self._query([statement], "s", self.database if database is None else database)[0]

    def _from(self, measurement: str) -> str:
        if self.retention_policy:
            return f"{_ident(self.database)}.{_ident(self.retention_policy)}.{_ident(measurement)}"
        return _ident(measurement)

    def _select(self, statements: list[str], epoch: Literal["s", "ms"]
                ) -> list[list[dict[str, Any]]]:
        """Rows (column name -> value, tags included) of each statement, in order."""
        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(statements), STATEMENTS_PER_QUERY):
            out.extend(self._query(statements[start:start + STATEMENTS_PER_QUERY], epoch))
        return out

    def _query(self, statements: list[str], epoch: Literal["s", "ms"],
               database: str | None = None) -> list[list[dict[str, Any]]]:
        """Run several statements in one /query request (chunked), rows per statement."""
        params = {"epoch": epoch, "chunked": "true", "chunk_size": str(CHUNK_SIZE)}
        database = self.database if database is None else database
        if database:
            params["db"] = database
        form = urllib.parse.urlencode({"q": ";\n".join(statements)}).encode()
        body = self._http("POST", "/query", params, form,
                          {"Content-Type": "application/x-www-form-urlencoded"}, action="query")
        rows: list[list[dict[str, Any]]] = [[] for _ in statements]
        for part in _json_stream(body):
            if "error" in part:
                raise StoreError(f"{self.where}: query failed ({_clip(str(part['error']))})")
            for result in part.get("results", ()):
                if "error" in result:
                    raise StoreError(f"{self.where}: query failed "
                                     f"({_clip(str(result['error']))})")
                target = rows[result.get("statement_id", 0)]
                for series in result.get("series", ()):
                    columns, tags = series["columns"], series.get("tags") or {}
                    target.extend({**tags, **dict(zip(columns, values, strict=True))}
                                  for values in series.get("values", ()))
        return rows

    def _http(self, method: str, path: str, params: dict[str, str], body: bytes | None,
              headers: dict[str, str], action: str) -> bytes:
        """One HTTP request; any failure becomes a StoreError that names no secret."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        if self._auth is not None:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            detail = _error_text(err.read())
            hint = " (check the credentials)" if err.code in (401, 403) else ""
            raise InfluxHTTPError(f"{self.where}: {action} failed (HTTP {err.code}: {detail})"
                                  f"{hint}", err.code) from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(f"{self.where}: {action} failed, server not reachable ({reason})"
                             ) from err


# --- line protocol --------------------------------------------------------------------------


def _tags(measurement: str, **tags: str) -> str:
    """Measurement and tags in key order; an empty tag value is left out (InfluxDB forbids it)."""
    parts = [measurement]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(f"{key}={_escape_tag(value)}")
    return ",".join(parts)


def _escape_tag(value: str) -> str:
    if "\n" in value:
        raise ValueError(f"a tag value cannot hold a newline: {value!r}")
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _num(value: float | int | bool) -> str:
    """A float field (no ``i`` suffix): every numeric field is a float (DESIGN §7)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"InfluxDB cannot store {number!r}")
    return repr(number)


def _text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _minute_line(record: MinuteRecord) -> str:
    head = _tags(MINUTE, site=record.site, line=record.line, product=record.product,
                 shift=record.shift, source=record.source)
    fields = [f"{name}={_num(getattr(record, name))}" for name in ADDITIVE_FIELDS]
    energy = record.energy_kwh
    # A tombstone is_empty(): all zeros and no energy, so it overwrites the record's sums
    # with nothing and minutes() leaves it out.
    fields.append(f"energy_kwh={_num(0.0 if energy is None else energy)}")
    fields.append(f"has_energy={'0' if energy is None else '1'}")
    return f"{head} {','.join(fields)} {int(record.ts)}"


def _zero_minute_line(site: str, line: str, ts: int, product: str, source: str,
                      shift: str) -> str:
    """A tombstone for a point stored under a shift tag the record no longer has."""
    return _minute_line(MinuteRecord(site, line, ts, product, shift=shift, source=source))


def _stop_lines(stops: Iterable[StopEvent], deleted: Iterable[tuple[str, str, int]]
                ) -> list[str]:
    """One line per (site, line, start): upserts, then deletes win (Store.write)."""
    upserts = {(s.site, s.line, int(s.start)): s for s in stops}
    gone = {(site, line, int(start)) for site, line, start in deleted}
    lines = []
    for key, event in upserts.items():
        fields = (f"end={_num(event.end)},category={_text(event.category)},"
                  f"reason={_text(event.reason or '')},reason_by={_text(event.reason_by or '')},"
                  f"reason_at={_num(_NO_TIME if event.reason_at is None else event.reason_at)},"
                  f"open={_num(bool(event.open))},deleted={'1' if key in gone else '0'}")
        lines.append(f"{_tags(STOP, site=event.site, line=event.line)} {fields} {key[2]}")
    for site, line, start in gone - upserts.keys():
        # Only the flag: the event's other fields stay as stored, and reads skip it.
        lines.append(f"{_tags(STOP, site=site, line=line)} deleted=1 {start}")
    return lines


def _status_line(status: LineStatus, now: int) -> str:
    last = _NO_TIME if status.last_sample is None else status.last_sample
    fields = (f"category={_text(status.category)},since={_num(status.since)},"
              f"reason={_text(status.reason or '')},last_sample={_num(last)},"
              f"product={_text(status.product or '')},updated={_num(status.updated)}")
    # Stamped with the write time: the latest point is the current status.
    return f"{_tags(STATUS, site=status.site, line=status.line)} {fields} {now}"


def _sample_lines(samples: Sequence[RawSample], first_seq: int) -> list[str]:
    """lw_sample lines; the hot path of a drain, so heads are cached and fields inlined."""
    heads: dict[tuple[str, str, str], str] = {}
    lines = []
    append = lines.append
    isfinite = math.isfinite
    for seq, sample in enumerate(samples, first_seq):
        key = (sample.site, sample.line, sample.signal)
        head = heads.get(key)
        if head is None:
            head = heads[key] = _tags(SAMPLE, site=key[0], line=key[1], signal=key[2])
        value, text, good = sample.value, sample.text, sample.good
        # seq keeps insertion order among samples of one millisecond (InfluxDB orders ties
        # by series, not by arrival).
        if text is None and value is not None and good is not None:
            # No float() call: an int value prints without a dot, still a float field.
            if not isfinite(value):
                raise ValueError(f"InfluxDB cannot store {value!r}")
            append(f"{head} value={value!r},good={1 if good else 0},seq={seq} "
                   f"{sample.ts_ms:d}")
            continue
        if good is None:
            raise ValueError(f"sample {sample.signal!r} at {sample.ts_ms} ms has no quality")
        fields = [] if value is None else [f"value={_num(value)}"]
        if text is not None:
            fields.append(f"text={_text(text)}")
        fields.append(f"good={1 if good else 0},seq={seq}")
        append(f"{head} {','.join(fields)} {sample.ts_ms:d}")
    return lines


def _checkpoint_line(site: str, line: str, data: str, now: int) -> str:
    return f"{_tags(CHECKPOINT, site=site, line=line)} data={_text(data)} {now}"


_sample_key = attrgetter("site", "line", "signal", "ts_ms")
_line_key = attrgetter("site", "line")
_series_key = attrgetter("site", "line", "signal")
_ts_ms = attrgetter("ts_ms")


def _first_per_key(samples: list[RawSample]) -> list[RawSample]:
    """The batch's samples without repeats of a (site, line, signal, ts_ms): the first wins."""
    keys = list(map(_sample_key, samples))
    if len(set(keys)) == len(keys):
        return samples  # the usual case, checked at C speed
    seen: set[tuple[str, str, str, int]] = set()
    out = []
    for key, sample in zip(keys, samples, strict=True):
        if key not in seen:
            seen.add(key)
            out.append(sample)
    return out



# --- reading helpers ------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _match(**tags: str) -> str:
    """An InfluxQL condition on tag values; an empty value matches a missing tag."""
    return " AND ".join(f"{_ident(k)} = {_literal(v)}" for k, v in tags.items())


def _grid_runs(cores: list[tuple[int, int, int]]) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """Split the bucket cores into runs that each tile one grid: (grid seconds, cores).

    A run's grid divides the length of each of its cores and their distance from its first
    core, so every core is a whole number of grid intervals. Greedy: a core that would make
    the grid finer starts a new run (a DST day of 23 h between days of 24 h is a run alone;
    a clipped first day does not shrink the grid of the days after it).
    """
    runs: list[tuple[int, list[tuple[int, int, int]]]] = []
    for core in cores:
        _, a, b = core
        if runs:
            grid, members = runs[-1]
            origin = members[0][1]
            if math.gcd(grid, a - origin, b - origin) == grid:
                members.append(core)
                continue
        runs.append((b - a, [core]))
    return runs


def _add_grouped(totals: list[Totals], cores: list[tuple[int, int, int]],
                 rows: list[dict[str, Any]], grid: int) -> None:
    """Add each [time, time + grid) row to the bucket whose quarter-hour core holds it."""
    j = 0
    for row in sorted(rows, key=lambda r: r["time"]):
        start = row["time"]
        while j < len(cores) and cores[j][2] <= start:
            j += 1
        if j == len(cores):
            break
        idx, a, b = cores[j]
        if a <= start and start + grid <= b:
            totals[idx].add(_totals(row))


def _int(value: Any) -> int:
    return round(value) if value is not None else 0


def _totals(row: dict[str, Any]) -> Totals:
    totals = Totals()
    for name in ADDITIVE_FIELDS:
        value = row.get(name) or 0
        setattr(totals, name, _int(value) if name in _INT_FIELDS else float(value))
    if row.get("has_energy"):
        totals.energy_kwh = float(row.get("energy_kwh") or 0.0)
    return totals


def _minute_record(row: dict[str, Any]) -> MinuteRecord:
    record = MinuteRecord(row.get("site") or "", row.get("line") or "", int(row["time"]),
                          row.get("product") or "", shift=row.get("shift") or "",
                          source=row.get("source") or "")
    for name in ADDITIVE_FIELDS:
        value = row.get(name) or 0
        setattr(record, name, _int(value) if name in _INT_FIELDS else float(value))
    if row.get("has_energy"):
        record.energy_kwh = float(row.get("energy_kwh") or 0.0)
    return record


def _stop_event(site: str, line: str, row: dict[str, Any]) -> StopEvent:
    reason_at = row.get("reason_at")
    return StopEvent(site, line, int(row["time"]), _int(row.get("end")),
                     row.get("category") or "", row.get("reason") or None,
                     row.get("reason_by") or None,
                     None if reason_at is None or reason_at < 0 else _int(reason_at),
                     open=bool(row.get("open")))


def _line_status(site: str, row: dict[str, Any]) -> LineStatus:
    last = row.get("last_sample")
    return LineStatus(site, row.get("line") or "", row.get("category") or "",
                      _int(row.get("since")), row.get("reason") or None,
                      None if last is None or last < 0 else _int(last),
                      row.get("product") or None, _int(row.get("updated")))


def _json_stream(body: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of a (chunked) /query response, one after the other."""
    text = body.decode()
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        obj, pos = decoder.raw_decode(text, pos)
        yield obj


def _error_text(body: bytes) -> str:
    """The message of an InfluxDB error response ({"error": …} in 1.x, {"message": …} in 2.x)."""
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _clip(text) or "no message"
    if isinstance(data, dict):
        return _clip(str(data.get("error") or data.get("message") or text))
    return _clip(text)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _clusters(stamps: list[int], gap: int) -> list[tuple[int, int]]:
    """[lo, hi] ranges covering the stamps, split where two neighbours are more than gap apart."""
    ordered = sorted(set(stamps))
    out: list[tuple[int, int]] = []
    lo = prev = ordered[0]
    for stamp in ordered[1:]:
        if stamp - prev > gap:
            out.append((lo, prev))
            lo = stamp
        prev = stamp
    out.append((lo, prev))
    return out


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
