"""Sinks drain the spool into stores (DESIGN §8): own cursor, ack after success, backoff on failure.

A record is acknowledged only after the store accepted the batch that holds it, and a
failed batch is re-sent whole after an exponential backoff (capped at ``max_delay_s``), so a
store that is down for an hour loses nothing: the backlog waits in the spool. Re-sending is
safe because every store write is an upsert by key (R2).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from edge.spool import Spool
from linewatch.rollup import WriteBatch
from linewatch.storage.base import Store, StoreError

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
BASE_DELAY_S = 0.1
MAX_DELAY_S = 5.0


class Sink(Protocol):
    """Something the spool drains into; ``write`` raises StoreError when it cannot store now."""

    name: str

    def write(self, batch: WriteBatch) -> None: ...


class StoreSink:
    """A sink that writes into a Store and counts its successes and failures."""

    def __init__(self, name: str, store: Store) -> None:
        self.name = name
        self.store = store
        self.batches = 0
        self.records = 0
        self.failures = 0
        self.last_error: str | None = None

    def write(self, batch: WriteBatch) -> None:
        """Write one batch; StoreError propagates (the caller retries), counted either way."""
        try:
            self.store.write(batch)
        except StoreError as err:
            self.failures += 1
            self.last_error = str(err)
            raise
        self.batches += 1
        self.records += batch_records(batch)


@dataclass
class DrainResult:
    """What one drain() call did."""

    batches: int = 0
    records: int = 0
    retries: int = 0
    seconds: float = 0.0
    complete: bool = False  # stopped because nothing was pending (not by stop or timeout)


def batch_records(batch: WriteBatch) -> int:
    """Records in a batch (checkpoints included), as counted in drain statistics."""
    return (len(batch.minutes) + len(batch.stops) + len(batch.deleted_stops)
            + len(batch.statuses) + len(batch.samples) + len(batch.checkpoints))


def drain(
    spool: Spool,
    sink: Sink,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    stop_event: threading.Event | None = None,
    timeout: float | None = None,
    follow: bool = False,
    poll_s: float = 0.2,
    base_delay_s: float = BASE_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
) -> DrainResult:
    """Write the sink's pending rows to it, acking each batch after success.

    Returns when nothing is pending (unless ``follow``: then it waits for more), when
    ``stop_event`` is set or after ``timeout`` seconds. A StoreError is retried with
    exponential backoff from ``base_delay_s`` up to ``max_delay_s``; the batch is never
    skipped. Any other exception is a bug and propagates, leaving the rows pending.
    While one batch is being written (in a worker thread) the next is read from the spool.
    """
    spool.register(sink.name)
    waiter = stop_event or threading.Event()
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    result = DrainResult()
    failures = 0
    cursor = spool.cursor(sink.name)
    current = spool.pending(sink.name, batch_size)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{sink.name}") as pool:
            while not waiter.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                last_id, batch = current
                if last_id == cursor:
                    if not follow:
                        result.complete = True
                        break
                    waiter.wait(_until(deadline, poll_s))
                    current = spool.pending(sink.name, batch_size)
                    continue
                written = pool.submit(sink.write, batch) if batch else None
                # Read on while the store works; dropped if this batch has to be re-sent.
                upcoming = spool.pending(sink.name, batch_size, after=last_id)
                try:
                    if written is not None:
                        written.result()
                except StoreError as err:
                    failures += 1
                    result.retries += 1
                    delay = min(max_delay_s, base_delay_s * 2 ** (failures - 1))
                    logger.warning("sink %s: batch of %d records not stored (%s); retry %d "
                                   "in %.1f s", sink.name, batch_records(batch), err, failures,
                                   delay)
                    waiter.wait(_until(deadline, delay))
                    continue  # the same batch again: nothing of it was acked
                if failures:
                    logger.info("sink %s: storing again after %d failed attempts", sink.name,
                                failures)
                failures = 0
                result.batches += written is not None
                result.records += batch_records(batch)
                spool.ack(sink.name, last_id)
                spool.prune()
                cursor, current = last_id, upcoming
    finally:
        result.seconds = time.monotonic() - started
    return result


def _until(deadline: float | None, delay: float) -> float:
    """The delay, shortened so that a wait never runs past the deadline."""
    if deadline is None:
        return delay
    return max(0.0, min(delay, deadline - time.monotonic()))
