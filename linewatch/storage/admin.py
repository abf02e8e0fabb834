"""`linewatch storage init|check` (DESIGN §7): create the configured store, report on it.

``init_storage`` creates what the edge will write into — the SQLite file and schema, the
InfluxDB 1.x database (``CREATE DATABASE``) or the InfluxDB 2.x bucket (influxdb-client's
buckets API) — and leaves an existing one untouched. ``check_storage`` reports
reachability, authentication and version as (check, ok, detail) rows. Secrets are read
through `linewatch.config.read_secret` and never appear in a message.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from linewatch.config import InfluxStorage, PlantConfig
from linewatch.storage.base import StoreError
from linewatch.storage.influx import InfluxHTTPError, InfluxStore
from linewatch.storage.sqlite import SCHEMA_VERSION, SqliteStore

logger = logging.getLogger(__name__)

Check = tuple[str, bool, str]


def init_storage(config: PlantConfig, retention_days: int | None = None) -> str:
    """Create the store if missing and say what was done; ``retention_days``: new v2 buckets."""
    storage = config.storage
    if storage.backend == "sqlite":
        path = storage.sqlite.path
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        SqliteStore(path).close()  # creates the schema (and switches to WAL) when missing
        verb = "opened existing" if existed else "created"
        return f"{verb} SQLite store {path} (schema {SCHEMA_VERSION}, WAL)"
    influx = _influx(config)
    with InfluxStore.from_config(influx) as store:
        store.ping()
        if influx.api == "v1":
            return _init_v1(store, influx)
        return _init_v2(store, influx, retention_days)


def _influx(config: PlantConfig) -> InfluxStorage:
    influx = config.storage.influxdb
    if influx is None:  # the config model refuses this; kept for type checkers
        raise StoreError("storage.influxdb: expected an influxdb block")
    return influx


def _init_v1(store: InfluxStore, influx: InfluxStorage) -> str:
    database = store.database
    names = {row.get("name") for row in store.influxql("SHOW DATABASES", database="")}
    if database in names:
        message = f"database {database!r} exists on {store.url}"
    else:
        # CREATE DATABASE is idempotent in 1.x; the check above only words the message.
        store.influxql(f'CREATE DATABASE "{_escape(database)}"', database="")
        message = f"created database {database!r} on {store.url}"
    if influx.retention_policy:
        policies = {row.get("name") for row in
                    store.influxql(f'SHOW RETENTION POLICIES ON "{_escape(database)}"',
                                   database="")}
        if influx.retention_policy not in policies:
            raise StoreError(
                f"{message}, but its retention policy {influx.retention_policy!r} does not "
                f"exist: create it, e.g. CREATE RETENTION POLICY "
                f'"{influx.retention_policy}" ON "{database}" DURATION 365d REPLICATION 1')
        message += f" (retention policy {influx.retention_policy!r})"
    logger.info("%s", message)
    return message


def _init_v2(store: InfluxStore, influx: InfluxStorage, retention_days: int | None) -> str:
    """Create the bucket (and a DBRP mapping where the server has no virtual one)."""
    from influxdb_client import BucketRetentionRules, InfluxDBClient
    from influxdb_client.client.exceptions import InfluxDBError
    from urllib3.exceptions import HTTPError as Urllib3Error

    from linewatch.config import read_secret

    token = read_secret(influx.token_env, influx.token_file)
    bucket_name, org = influx.bucket or "", influx.org or ""
    try:
        with InfluxDBClient(url=store.url, token=token, org=org,
                            timeout=int(store.timeout_s * 1000)) as client:
            buckets = client.buckets_api()
            bucket = buckets.find_bucket_by_name(bucket_name)
            if bucket is None:
                every = int(retention_days or 0) * 86400  # 0: keep for ever
                rules = BucketRetentionRules(type="expire", every_seconds=every)
                bucket = buckets.create_bucket(bucket_name=bucket_name, org=org,
                                               retention_rules=rules)
                kept = f"{retention_days} days" if retention_days else "for ever"
                message = f"created bucket {bucket_name!r} (org {org!r}, data kept {kept})"
            else:
                message = f"bucket {bucket_name!r} exists (org {org!r})"
            message += _ensure_dbrp(client, bucket, bucket_name)
    except InfluxDBError as err:
        status = getattr(err, "status", None)
        raise StoreError(f"{store.url}: cannot create bucket {bucket_name!r} (HTTP {status}: "
                         f"{err.message})") from err
    except (Urllib3Error, OSError) as err:
        raise StoreError(f"{store.url}: not reachable ({type(err).__name__})") from err
    logger.info("%s", message)
    return message


def _ensure_dbrp(client: Any, bucket: Any, name: str) -> str:
    """InfluxQL reads need database ``name`` mapped to the bucket; 2.2+ maps it virtually."""
    from influxdb_client.domain.dbrp_create import DBRPCreate
    from influxdb_client.service.dbr_ps_service import DBRPsService

    service = DBRPsService(client.api_client)
    found = service.get_dbr_ps(org_id=bucket.org_id, db=name)
    if getattr(found, "content", None):
        return f"; InfluxQL database {name!r} is mapped to it"
    service.post_dbrp(DBRPCreate(org_id=bucket.org_id, bucket_id=bucket.id, database=name,
                                 retention_policy="autogen", default=True))
    return f"; mapped InfluxQL database {name!r} to it (DBRP)"


def check_storage(config: PlantConfig) -> list[Check]:
    """(check, ok, detail) rows: InfluxDB reachability, auth, version; SQLite file, schema, WAL."""
    if config.storage.backend == "sqlite":
        return _check_sqlite(config)
    influx = _influx(config)
    checks: list[Check] = []
    store = InfluxStore.from_config(influx)
    try:
        try:
            info = store.ping()
        except StoreError as err:
            checks.append(("reachable", False, str(err)))
            for name in ("auth", "database", "version"):
                checks.append((name, False, "not checked: server not reachable"))
            return checks
        checks.append(("reachable", True, f"{store.url} answers /ping"))
        auth = _check_auth(store, influx)
        checks.append(auth)
        checks.append(_check_database(store, influx) if auth[1] else
                      ("database", False, "not checked: not authenticated"))
        checks.append(_check_version(info, influx))
    finally:
        store.close()
    return checks


def _who(influx: InfluxStorage) -> str:
    if influx.api == "v2":
        return f"token from {influx.token_env or influx.token_file}"
    return f"user {influx.username!r}" if influx.username else "no credentials"


def _check_auth(store: InfluxStore, influx: InfluxStorage) -> Check:
    """Run a harmless read with the configured secret (v2: on the bucket, v1: on the server)."""
    who = _who(influx)
    try:
        if influx.api == "v2":
            store.influxql("SHOW MEASUREMENTS LIMIT 1")
        else:
            store.influxql("SHOW DATABASES", database="")
    except InfluxHTTPError as err:
        if err.status in (401, 403):
            return ("auth", False, f"{who} refused (HTTP {err.status})")
        return ("auth", False, str(err))
    except StoreError as err:
        if influx.api == "v2" and "not found" in str(err):
            return ("auth", True, f"{who} accepted")  # the database check says the rest
        return ("auth", False, str(err))
    return ("auth", True, f"{who} accepted")


def _check_database(store: InfluxStore, influx: InfluxStorage) -> Check:
    """The database (v1) or the bucket's InfluxQL mapping (v2) exists and can be read."""
    name = store.database
    try:
        if influx.api == "v1":
            names = {row.get("name") for row in store.influxql("SHOW DATABASES", database="")}
            if name not in names:
                return ("database", False,
                        f"{name!r} does not exist (run `linewatch storage init`)")
        store.influxql("SHOW MEASUREMENTS LIMIT 1")
    except StoreError as err:
        if "not found" in str(err):
            return ("database", False, f"bucket {name!r} or its InfluxQL (DBRP) mapping does "
                                       "not exist (run `linewatch storage init`)")
        return ("database", False, str(err))
    kind = "bucket" if influx.api == "v2" else "database"
    return ("database", True, f"{kind} {name!r} can be read")


def _check_version(info: dict[str, str], influx: InfluxStorage) -> Check:
    version = info["version"]
    detail = f"InfluxDB {version}" + (f" ({info['build']})" if info["build"] else "")
    major_minor = _major_minor(version)
    if influx.api == "v2" and major_minor is not None and major_minor < (1, 8):
        return ("version", False, f"{detail}: api v2 needs InfluxDB 1.8+, 2.x or 3.x "
                                  "(use api: v1 for older 1.x servers)")
    if influx.api == "v1" and major_minor is not None and major_minor >= (2, 0):
        detail += " (api v1 on 2.x/3.x needs v1 compatibility credentials; api v2 is usual)"
    return ("version", True, detail)


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.lstrip("v").split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return None


def _check_sqlite(config: PlantConfig) -> list[Check]:
    path = config.storage.sqlite.path
    if not path.exists():
        return [("file", False, f"{path}: no such file (run `linewatch storage init`)"),
                ("schema", False, "not checked: no file"),
                ("wal", False, "not checked: no file")]
    checks: list[Check] = [("file", True, f"{path} ({path.stat().st_size / 2**20:.1f} MB)")]
    try:
        # Read-only: checking must not create a schema or change the journal mode.
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    except sqlite3.Error as err:
        return [*checks, ("schema", False, f"{path}: not readable as SQLite ({err})"),
                ("wal", False, "not checked")]
    if version == SCHEMA_VERSION:
        checks.append(("schema", True, f"version {version}"))
    elif version == 0:
        checks.append(("schema", False, "no linewatch schema (run `linewatch storage init`)"))
    else:
        checks.append(("schema", False, f"version {version}, this linewatch knows "
                                        f"{SCHEMA_VERSION}"))
    checks.append(("wal", mode == "wal", f"journal_mode {mode}"))
    return checks


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')
