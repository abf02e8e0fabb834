"""InfluxStore's wire format, errors, secrets, auth, and `linewatch storage init|check`.

No InfluxDB 2.x binary can be installed here, so the v2 write path (influxdb-client to
/api/v2/write) is checked for what it sends against a local HTTP listener; the same listener
checks the v1 wire format. Everything else runs against the real influxd of tests/influxd.py.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linewatch.cli import app
from linewatch.config import ConfigError, PlantConfig
from linewatch.rollup import LineStatus, MinuteRecord, RawSample, StopEvent, Totals, WriteBatch
from linewatch.storage import StoreError, open_store
from linewatch.storage.admin import check_storage, init_storage
from linewatch.storage.influx import InfluxStore
from tests.influxd import Influxd, free_port, fresh_database, running_influxd

T0 = 1_704_067_200
TOKEN = "s3cr3t-t0ken-never-logged"
PASSWORD = "pa55-never-logged"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body, gunzipped when it says so."""
        if self.headers.get("Content-Encoding") == "gzip":
            return gzip.decompress(self.body).decode()
        return self.body.decode()


@dataclass
class Listener:
    """A local HTTP server that records every request and answers like InfluxDB would."""

    url: str
    requests: list[Request] = field(default_factory=list)
    write_status: int = 204
    write_error: str = ""

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.path in ("/api/v2/write", "/write")]


@pytest.fixture
def listener() -> Iterator[Listener]:
    state = Listener("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request("POST", parsed.path, dict(urllib.parse.parse_qsl(parsed.query)),
                              dict(self.headers.items()), self.rfile.read(length))
            state.requests.append(request)
            if parsed.path == "/query":
                # Empty results for every statement: nothing stored yet.
                form = dict(urllib.parse.parse_qsl(request.body.decode()))
                count = len(form.get("q", "").split(";\n"))
                body = json.dumps({"results": [{"statement_id": i} for i in range(count)]})
                self._answer(200, body.encode(), "application/json")
            elif state.write_status == 204:
                self._answer(204, b"", None)
            else:
                self._answer(state.write_status,
                             json.dumps({"code": "x", "message": state.write_error,
                                         "error": state.write_error}).encode(),
                             "application/json")

        def _answer(self, status: int, body: bytes, kind: str | None) -> None:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # keep pytest output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def batch() -> WriteBatch:
    return WriteBatch(
        minutes=[MinuteRecord("hk", "L 1", T0, "P,1", shift="A", span_s=60, running_s=60,
                              scheduled_s=60, ideal_s=50.5, total_count=10, good_count=9,
                              reject_count=1, energy_kwh=0.25)],
        stops=[StopEvent("hk", "L 1", T0, T0 + 90, "unplanned_stop", reason="jam")],
        statuses=[LineStatus("hk", "L 1", "running", T0, None, T0 + 5, "P,1", T0 + 6)],
        samples=[RawSample("hk", "L 1", "state", T0 * 1000 + 250, 1.0, None, True),
                 RawSample("hk", "L 1", "product", T0 * 1000 + 250, None, 'P "1"', False)],
        checkpoints={"L 1": {"site": "hk", "last": 1}},
    )


def v2_store(url: str, gzip_on: bool = False) -> InfluxStore:
    return InfluxStore(url, api="v2", org="factory", bucket="linewatch", token=TOKEN,
                       gzip=gzip_on)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """(measurement, tags, raw field values, timestamp) of simple line protocol (tests only)."""
    head, rest = _split_unescaped(line, " ", 1)
    fields_text, stamp = rest.rsplit(" ", 1)
    measurement, *tag_parts = _split_unescaped(head, ",")
    tags = {}
    for part in tag_parts:
        key, value = _split_unescaped(part, "=", 1)
        tags[_unescape(key)] = _unescape(value)
    fields = {}
    for part in _split_fields(fields_text):
        key, value = part.split("=", 1)
        fields[key] = value
    return _unescape(measurement), tags, fields, int(stamp)


def _split_unescaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split at separators that are not backslash-escaped; escapes stay in the parts."""
    out, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current += text[i:i + 2]
            i += 2
            continue
        if text[i] == sep and (maxsplit < 0 or len(out) < maxsplit):
            out.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    out.append(current)
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _split_fields(text: str) -> list[str]:
    out, current, quoted, i = [], "", False, 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\":
            current += text[i:i + 2]
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            out.append(current)
            current = ""
        else:
            current += char
        i += 1
    out.append(current)
    return out


# --- the v2 write path (influxdb-client → /api/v2/write) ------------------------------------


def test_v2_write_posts_line_protocol_with_org_bucket_precision_and_token(
        listener: Listener) -> None:
    with v2_store(listener.url) as store:
        store.write(batch())

    samples, rest, last = listener.writes()
    for request in (samples, rest, last):
        assert request.path == "/api/v2/write"
        assert request.query["org"] == "factory"
        assert request.query["bucket"] == "linewatch"
        assert request.headers["Authorization"] == f"Token {TOKEN}"
        assert "Content-Encoding" not in request.headers
        assert request.headers["Content-Type"].startswith("text/plain")
    assert [r.query["precision"] for r in (samples, rest, last)] == ["ms", "s", "s"]
    sample_lines = samples.text.split("\n")
    assert [line.rsplit(" ", 1)[0].split(",seq=")[0] for line in sample_lines] == [
        r"lw_sample,line=L\ 1,signal=state,site=hk value=1.0,good=1",
        r'lw_sample,line=L\ 1,signal=product,site=hk text="P \"1\"",good=0',
    ]
    assert all(line.endswith(f" {T0 * 1000 + 250}") for line in sample_lines)
    rollups = rest.text.split("\n")
    assert rollups == [
        r"lw_minute,line=L\ 1,product=P\,1,shift=A,site=hk,source=edge span_s=60,running_s=60,"
        "micro_stop_s=0,setup_s=0,unplanned_stop_s=0,planned_stop_s=0,no_data_s=0,"
        "unscheduled_s=0,scheduled_s=60,break_s=0,ideal_s=50.5,total_count=10,good_count=9,"
        f"reject_count=1,failures=0,energy_kwh=0.25,has_energy=1 {T0}",
        r'lw_stop,line=L\ 1,site=hk end=1704067290,category="unplanned_stop",reason="jam",'
        f'reason_by="",reason_at=-1.0,open=0,deleted=0 {T0}',
        rollups[2],  # lw_status: stamped with the write time, checked below
    ]
    measurement, tags, fields, _ = parse_line(rollups[2])
    assert (measurement, tags) == ("lw_status", {"line": "L 1", "site": "hk"})
    assert fields == {"category": '"running"', "since": str(T0), "reason": '""',
                      "last_sample": str(T0 + 5), "product": '"P,1"', "updated": str(T0 + 6)}
    # Then the quarter-hour sums rebuilt from what the server has (the listener: nothing)
    # and the checkpoint, last.
    quarter, checkpoint = last.text.split("\n")
    assert quarter.startswith(r"lw_minute_15m,line=L\ 1,site=hk span_s=0,running_s=0,")
    assert quarter.endswith(f" {T0}")
    assert checkpoint.startswith(
        r'lw_checkpoint,line=L\ 1,site=hk data="{\"site\":\"hk\",\"last\":1}" ')
    # The quarter's sums were asked for with a grouped InfluxQL SUM over the minutes.
    statements = [dict(urllib.parse.parse_qsl(r.body.decode()))["q"] for r in listener.requests
                  if r.path == "/query"]
    assert any("GROUP BY time(900s)" in q and '"lw_minute"' in q for q in statements)


def test_v2_write_is_gzip_compressed_when_enabled(listener: Listener) -> None:
    with v2_store(listener.url, gzip_on=True) as store:
        store.write(batch())

    for request in listener.writes():
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.body[:2] == b"\x1f\x8b"
        assert request.text.startswith(("lw_sample,", "lw_minute,", "lw_minute_15m,"))


def test_v2_reads_are_influxql_sums_over_explicit_utc_bounds_with_the_token(
        listener: Listener) -> None:
    with v2_store(listener.url) as store:
        got = store.minute_totals("hk", "L1", [(T0, T0 + 3600), (T0 + 3600, T0 + 7800)])
    assert got == [Totals(), Totals()]

    [query] = listener.requests
    assert query.path == "/query"
    assert query.query["db"] == "linewatch"
    assert query.headers["Authorization"] == f"Token {TOKEN}"
    edge, grouped = dict(urllib.parse.parse_qsl(query.body.decode()))["q"].split(";\n")
    where = """"site" = 'hk' AND "line" = 'L1' AND time >= """
    # The 10 minutes after the last whole quarter come from the minutes themselves ...
    assert edge.startswith('SELECT SUM("span_s") AS "span_s", ')
    assert edge.endswith(f'FROM "lw_minute" WHERE {where}{T0 + 7200}s AND time < {T0 + 7800}s')
    # ... the whole hours from the quarter-hour sums, grouped on the UTC hour grid.
    assert grouped.endswith(f'FROM "lw_minute_15m" WHERE {where}{T0}s AND time < {T0 + 7200}s '
                            "GROUP BY time(3600s, 0s) fill(none)")
    assert "tz(" not in edge + grouped


def test_every_numeric_field_is_a_float_and_tags_are_only_those_of_design_7(
        listener: Listener) -> None:
    allowed = {"lw_minute": {"site", "line", "product", "shift", "source"},
               "lw_sample": {"site", "line", "signal"}, "lw_stop": {"site", "line"},
               "lw_status": {"site", "line"}, "lw_checkpoint": {"site", "line"},
               "lw_minute_15m": {"site", "line"}}
    with v2_store(listener.url) as store:
        store.write(batch())
        store.write(WriteBatch(deleted_stops=[("hk", "L1", T0)]))
    lines = [line for r in listener.writes() for line in r.text.split("\n")]
    assert {parse_line(line)[0] for line in lines} == set(allowed)
    for line in lines:
        measurement, tags, fields, _ = parse_line(line)
        assert set(tags) <= allowed[measurement], line
        for key, value in fields.items():
            if not value.startswith('"'):
                float(value)  # parses as a number
                assert not value.endswith(("i", "u")), f"{key} is not a float in {line}"


# --- the v1 write path (HTTP /write) --------------------------------------------------------


def test_v1_write_posts_to_write_with_db_rp_precision_and_basic_auth(
        listener: Listener) -> None:
    store = InfluxStore(listener.url, api="v1", database="lw", retention_policy="two_weeks",
                        username="edge", password=PASSWORD, gzip=True)
    store.write(batch())

    samples, rest, _last = listener.writes()
    assert (samples.path, samples.query) == ("/write", {"db": "lw", "rp": "two_weeks",
                                                        "precision": "ms"})
    assert rest.query["precision"] == "s"
    expected = "Basic " + base64.b64encode(f"edge:{PASSWORD}".encode()).decode()
    assert samples.headers["Authorization"] == expected
    assert samples.headers["Content-Encoding"] == "gzip"
    assert samples.text.startswith(r"lw_sample,line=L\ 1,signal=state,site=hk value=1.0,")
    assert rest.text.split("\n")[0].startswith(r"lw_minute,line=L\ 1,product=P\,1,")
    # The rp-qualified measurement on reads, the password only in the header.
    query = listener.requests[0]
    assert '"lw"."two_weeks"."lw_sample"' in dict(urllib.parse.parse_qsl(query.body.decode()))["q"]
    assert all(PASSWORD not in r.path and PASSWORD not in json.dumps(r.query)
               for r in listener.requests)


# --- errors and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_unreachable_server_is_a_store_error_naming_the_url_but_no_secret(api: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = (v2_store(url) if api == "v2" else
             InfluxStore(url, database="lw", username="edge", password=PASSWORD))
    with pytest.raises(StoreError, match="not reachable") as caught:
        store.write(WriteBatch(statuses=[LineStatus("hk", "L1", "running", T0, None, T0)]))
    assert url in str(caught.value)
    assert TOKEN not in str(caught.value) and PASSWORD not in str(caught.value)
    with pytest.raises(StoreError, match="not reachable"):
        store.minute_totals("hk", "L1", [(T0, T0 + 60)])


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_refused_write_is_a_store_error_with_the_servers_message(listener: Listener,
                                                                api: str) -> None:
    listener.write_status, listener.write_error = 401, "unauthorized access"
    store = v2_store(listener.url) if api == "v2" else InfluxStore(listener.url, database="lw")
    with pytest.raises(StoreError, match="HTTP 401") as caught:
        store.write(WriteBatch(statuses=[LineStatus("hk", "L1", "running", T0, None, T0)]))
    assert "unauthorized access" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_token_and_password_never_reach_the_logs(listener: Listener,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, influxdb_client and urllib3 included
    with v2_store(listener.url, gzip_on=True) as store:
        store.write(batch())
        listener.write_status, listener.write_error = 500, "internal error"
        with pytest.raises(StoreError) as caught:
            store.write(batch())
        logging.getLogger("test").warning("%s / %r", caught.value, store)
    v1 = InfluxStore(f"http://127.0.0.1:{free_port()}", database="lw", username="edge",
                     password=PASSWORD)
    with pytest.raises(StoreError) as caught_v1:
        v1.write(batch())
    logging.getLogger("test").warning("%s / %r", caught_v1.value, v1)

    # The capture saw the store's DEBUG line of the write and both failures.
    assert "wrote 1 minutes" in caplog.text
    assert "HTTP 500: internal error" in caplog.text and "Connection refused" in caplog.text
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text
    assert TOKEN not in repr(store) and PASSWORD not in repr(v1)


def test_value_influxdb_cannot_store_is_refused_before_anything_is_sent(
        listener: Listener) -> None:
    with v2_store(listener.url) as store, pytest.raises(StoreError, match="line protocol"):
        store.write(WriteBatch(
            minutes=[MinuteRecord("hk", "L1", T0, "P1", span_s=60, ideal_s=float("nan"))],
            samples=[RawSample("hk", "L1", "state", T0 * 1000, 1.0, None, True)]))
    assert listener.writes() == []


# --- open_store and the config --------------------------------------------------------------


def plant_config(influxdb: dict[str, Any]) -> PlantConfig:
    return PlantConfig.model_validate({"site": {"id": "hk"},
                                       "lines": [{"id": "L1", "detection": "counts"}],
                                       "storage": {"backend": "influxdb", "influxdb": influxdb}})


def test_open_store_opens_influxdb_v2_with_the_token_from_the_environment(
        listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LW_TEST_TOKEN", TOKEN)
    config = plant_config({"api": "v2", "url": listener.url, "org": "factory",
                           "bucket": "linewatch", "token_env": "LW_TEST_TOKEN",
                           "gzip": False})
    store = open_store(config)
    try:
        assert isinstance(store, InfluxStore)
        store.write(WriteBatch(statuses=[LineStatus("hk", "L1", "running", T0, None, T0)]))
    finally:
        store.close()
    assert listener.writes()[0].headers["Authorization"] == f"Token {TOKEN}"


def test_open_store_opens_influxdb_v1_with_the_password_from_a_file(
        listener: Listener, tmp_path: Path) -> None:
    secret = tmp_path / "influx.password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    config = plant_config({"api": "v1", "url": listener.url, "database": "lw",
                           "username": "edge", "password_file": str(secret)})
    store = open_store(config)
    store.write(WriteBatch(statuses=[LineStatus("hk", "L1", "running", T0, None, T0)]))
    expected = "Basic " + base64.b64encode(f"edge:{PASSWORD}".encode()).decode()
    assert listener.writes()[0].headers["Authorization"] == expected


def test_open_store_without_the_token_variable_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LW_TEST_TOKEN", raising=False)
    config = plant_config({"api": "v2", "org": "factory", "bucket": "linewatch",
                           "token_env": "LW_TEST_TOKEN"})
    with pytest.raises(ConfigError, match="LW_TEST_TOKEN"):
        open_store(config)


# --- a real influxd with authentication -----------------------------------------------------


@pytest.fixture(scope="module")
def secured_influxd() -> Iterator[Influxd]:
    """An influxd with auth-enabled = true and one admin user (created while none exists)."""
    with running_influxd(auth=True) as server:
        server.query(f"CREATE USER admin WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES")
        yield server


def test_v1_basic_auth_against_influxd_with_auth_enabled(secured_influxd: Influxd) -> None:
    auth = ("admin", PASSWORD)
    secured_influxd.query('CREATE DATABASE "secure"', auth=auth)
    wrong = InfluxStore(secured_influxd.url, database="secure", username="admin",
                        password="wrong")
    with pytest.raises(StoreError, match="HTTP 401"):
        wrong.write(WriteBatch(minutes=[MinuteRecord("hk", "L1", T0, "P1", span_s=60)]))
    anonymous = InfluxStore(secured_influxd.url, database="secure")
    with pytest.raises(StoreError, match="HTTP 401"):
        anonymous.minute_totals("hk", "L1", [(T0, T0 + 60)])

    store = InfluxStore(secured_influxd.url, database="secure", username="admin",
                        password=PASSWORD)
    store.write(WriteBatch(minutes=[MinuteRecord("hk", "L1", T0, "P1", span_s=60,
                                                 total_count=3)]))
    assert store.minute_totals("hk", "L1", [(T0, T0 + 60)])[0].total_count == 3
    data = secured_influxd.query('SELECT SUM("total_count") FROM "lw_minute"', db="secure",
                                 auth=auth)
    assert data["results"][0]["series"][0]["values"][0][1] == 3


def test_storage_check_reports_refused_and_accepted_credentials(
        secured_influxd: Influxd, monkeypatch: pytest.MonkeyPatch) -> None:
    secured_influxd.query('CREATE DATABASE "checked"', auth=("admin", PASSWORD))
    block = {"api": "v1", "url": secured_influxd.url, "database": "checked",
             "username": "admin", "password_env": "LW_TEST_PASSWORD"}
    monkeypatch.setenv("LW_TEST_PASSWORD", "wrong")
    refused = dict((name, (ok, detail)) for name, ok, detail in
                   check_storage(plant_config(block)))
    assert refused["reachable"][0] is True
    assert refused["auth"] == (False, "user 'admin' refused (HTTP 401)")
    monkeypatch.setenv("LW_TEST_PASSWORD", PASSWORD)
    accepted = check_storage(plant_config(block))
    assert [(name, ok) for name, ok, _ in accepted] == [
        ("reachable", True), ("auth", True), ("database", True), ("version", True)]
    assert all(PASSWORD not in detail for _, _, detail in accepted)


# --- linewatch storage init / check ---------------------------------------------------------


def write_config(tmp_path: Path, storage: str) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text("site: {id: hk, timezone: Asia/Hong_Kong}\n"
                    "lines: [{id: L1, detection: counts}]\n"
                    f"storage: {storage}\n", encoding="utf-8")
    return path


def test_cli_storage_init_creates_the_database_once_and_check_reports_the_version(
        influxd: Influxd, tmp_path: Path) -> None:
    with fresh_database(influxd) as taken:
        influxd.query(f'DROP DATABASE "{taken}"')  # a name that surely does not exist
        config = write_config(tmp_path, "{backend: influxdb, influxdb: {api: v1, url: "
                                        f'"{influxd.url}", database: {taken}}}}}')
        runner = CliRunner()

        before = runner.invoke(app, ["storage", "check", "--config", str(config)])
        assert before.exit_code == 1, before.output
        assert f"FAIL database   {taken!r} does not exist" in before.output

        created = runner.invoke(app, ["storage", "init", "--config", str(config)])
        assert created.exit_code == 0, created.output
        assert f"created database '{taken}'" in created.output
        names = [v[0] for v in influxd.query("SHOW DATABASES")["results"][0]["series"][0]
                 ["values"]]
        assert taken in names
        again = runner.invoke(app, ["storage", "init", "--config", str(config)])
        assert again.exit_code == 0 and f"database '{taken}' exists" in again.output

        checked = runner.invoke(app, ["storage", "check", "--config", str(config)])
        assert checked.exit_code == 0, checked.output
        assert "ok   reachable" in checked.output
        assert "InfluxDB 1.6.7" in checked.output


def test_cli_storage_check_of_an_unreachable_server_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, "{backend: influxdb, influxdb: {api: v1, url: "
                                    f'"http://127.0.0.1:{free_port()}", database: lw}}}}')
    result = CliRunner().invoke(app, ["storage", "check", "--config", str(config)])
    assert result.exit_code == 1
    assert "FAIL reachable" in result.output


def test_cli_storage_init_with_a_missing_token_variable_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LW_TEST_TOKEN", raising=False)
    config = write_config(tmp_path, "{backend: influxdb, influxdb: {api: v2, org: f, "
                                    "bucket: b, token_env: LW_TEST_TOKEN}}")
    result = CliRunner().invoke(app, ["storage", "init", "--config", str(config)])
    assert result.exit_code == 2
    assert "LW_TEST_TOKEN" in result.output


def test_cli_storage_init_and_check_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "data" / "lw.db"
    config = write_config(tmp_path, f'{{backend: sqlite, sqlite: {{path: "{db}"}}}}')
    runner = CliRunner()

    missing = runner.invoke(app, ["storage", "check", "--config", str(config)])
    assert missing.exit_code == 1 and "FAIL file" in missing.output
    created = runner.invoke(app, ["storage", "init", "--config", str(config)])
    assert created.exit_code == 0 and "created SQLite store" in created.output
    checked = runner.invoke(app, ["storage", "check", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "ok   schema     version 1" in checked.output
    assert "ok   wal        journal_mode wal" in checked.output


def test_init_storage_refuses_a_missing_retention_policy(influxd: Influxd) -> None:
    with fresh_database(influxd) as database:
        config = plant_config({"api": "v1", "url": influxd.url, "database": database,
                               "retention_policy": "two_weeks"})
        with pytest.raises(StoreError, match="CREATE RETENTION POLICY"):
            init_storage(config)
        influxd.query(f'CREATE RETENTION POLICY "two_weeks" ON "{database}" DURATION 14d '
                      "REPLICATION 1")
        assert "retention policy 'two_weeks'" in init_storage(config)
