"""The plant configuration (DESIGN §5): examples load, broken configs name file, key path
and expectation, `linewatch config check` exits 0/2 without tracebacks, and raw values are
canonicalised as S4 says."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from linewatch.canonical import canonical_value
from linewatch.config import ConfigError, PlantConfig, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example.yaml"
REFERENCE = REPO / "docs" / "configuration.md"

# DESIGN §5 verbatim, plus the Sparkplug source `spb` that its reject_count refers to.
DESIGN_EXAMPLE = """\
site: {id: kt-01, name: Kwun Tong plant, timezone: Asia/Hong_Kong}
policy: {micro_stop_s: 120, setup_is_planned: false, stop_after_s: 60}
calendar:
  shifts:   [{id: A, start: "08:00", end: "16:00", days: [mon, tue, wed, thu, fri]}]
  breaks:   [{start: "12:00", end: "12:30"}]        # days default to the shift days
  holidays: ["2026-01-01"]
products: [{id: P30, name: "Cap 30 mm", ideal_cycle_s: 30, units_per_cycle: 1}]
reasons:  [{code: fault, name: Machine fault, name_zh: 機器故障, category: unplanned_stop}]
lines:
  - id: L1
    name: Injection moulding 1
    detection: state                 # or: counts
    default_product: P30
    counter_max: 65535
    targets: {oee: 0.75}
    state_map:                       # raw value -> category, or {category, reason}
      "1": running
      "2": {category: unplanned_stop, reason: fault}
      "3": setup
    reason_map: {"17": fault}        # optional: raw reason value -> reason code
    product_map: {"101": P30}        # optional: raw product/recipe value -> product id
    products: {P30: {ideal_cycle_s: 28, units_per_cycle: 4}}   # optional per-line overrides
    signals:                         # role -> source
      state:        {source: plc1, node: "nsu=urn:acme:plc;s=L1.State"}   # or ns=2;s=…
      total_count:  {source: broker, topic: "plant/L1/count", path: "$.total", ts_path: "$.ts"}
      reject_count: {source: spb, group: Plant1, node: Edge1, device: L1, metric: "Count/Reject",
                     counter_max: 4294967295}
      telemetry:    [{name: temperature, source: plc1, node: "ns=2;s=L1.Temp"}]
    simulation: {}                   # the simulator's parameters for this line (simulator docs)
    upgrade:
      description: Servo press and vision inspection
      installed_on: 2026-05-15
      baseline: {from: 2026-02-01, to: 2026-04-30}
      after:    {from: 2026-06-01, to: 2026-08-31}
      targets:  {oee: 0.80, scrap_ratio: 0.02}
sources:
  opcua:
    - id: plc1
      endpoint: "opc.tcp://127.0.0.1:4840"
      mode: subscribe                # or poll
      interval_ms: 500
      timestamp: source              # source | server | received
      security: {policy: Basic256Sha256, mode: SignAndEncrypt,      # or policy: None
                 certificate: data/pki/own/cert.der, private_key: data/pki/own/key.pem,
                 trust_dir: data/pki/trusted}   # own certificate generated on first start
      auth: {username: edge, password_env: PLC1_PASSWORD}
  mqtt:
    - id: broker
      host: 127.0.0.1
      port: 1883
      format: json                   # json | plain | sparkplug
      qos: 1
      client_id: linewatch-kt-01
      tls: {ca_file: certs/ca.pem}   # optional; cert_file/key_file for client certificates
      auth: {username: edge, password_env: MQTT_PASSWORD}
    - id: spb                        # added: the Sparkplug source reject_count refers to
      host: 127.0.0.1
      format: sparkplug
storage:
  backend: sqlite                    # or influxdb
  sqlite: {path: data/linewatch.db, raw_retention_days: 7}
  influxdb: {api: v2, url: "http://localhost:8086", org: factory, bucket: linewatch,
             token_env: INFLUX_TOKEN}    # api: v1 -> database, retention_policy, ...
edge: {spool: data/spool.db, spool_max_mb: 1024, grace_s: 10, health_port: 9108}
"""

# A small valid plant that the broken configs below are derived from.
BASE = """\
site: {id: kt-01, name: Kwun Tong plant, timezone: Asia/Hong_Kong}
calendar:
  shifts:
    - {id: D, start: "08:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat]}
    - {id: N, start: "20:00", end: "08:00", days: [mon, tue, wed, thu, fri, sat]}
  breaks: [{start: "12:00", end: "13:00"}]
products: [{id: P30, ideal_cycle_s: 12, units_per_cycle: 8}]
reasons:
  - {code: fault, name: Machine fault, name_zh: 機器故障, category: unplanned_stop}
lines:
  - id: L1
    default_product: P30
    state_map:
      "1": running
      "2": {category: unplanned_stop, reason: fault}
      "3": setup
    reason_map: {"0": null, "17": fault}
    product_map: {"101": P30}
    products: {P30: {ideal_cycle_s: 11.5}}
    signals:
      state: {source: plc1, node: "ns=2;s=L1.State"}
      total_count: {source: plc1, node: "ns=2;s=L1.Count"}
      reject_count: {source: broker, topic: "kt01/{line}/vision", path: "$.rejects"}
    upgrade:
      baseline: {from: 2026-02-01, to: 2026-04-30}
      after: {from: 2026-06-01, to: 2026-08-31}
  - id: L2
    detection: counts
    default_product: P30
    signals:
      total_count: {source: spb, group: KT01, node: Edge1, device: L2, metric: Count/Total}
sources:
  opcua: [{id: plc1, endpoint: "opc.tcp://127.0.0.1:4840"}]
  mqtt:
    - {id: broker, format: json}
    - {id: spb, format: sparkplug}
"""

STATE_CATEGORIES_EXPECTED = "expected 'running', 'setup', 'unplanned_stop' or 'planned_stop'"


# --- helpers ---------------------------------------------------------------------------


def edit(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced once; fails loudly when `old` is not there."""
    assert text.count(old) == 1, f"fixture text not found exactly once: {old!r}"
    return text.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def assert_problem(err: ConfigError, path: Path, key_path: str, *words: str) -> str:
    """One line of the error names the file, then exactly `key_path`, then all `words`."""
    prefix = f"{path}: {key_path}: " if key_path else f"{path}: "
    lines = [line for line in str(err).splitlines() if line.startswith(prefix)]
    assert lines, f"no problem at {key_path!r} in:\n{err}"
    line = lines[0]
    for word in words:
        assert word in line, f"{word!r} missing from {line!r}"
    assert err.source == str(path)
    return line


def broken(tmp_path: Path, old: str, new: str, text: str = BASE) -> tuple[Path, ConfigError]:
    path = write(tmp_path, edit(text, old, new))
    return path, load_error(path)


def linewatch_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("linewatch")
    return subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def model_keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every key (alias or field name) of `model` and of every model nested in it."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        stack: list[typing.Any] = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                keys |= model_keys(annotation, seen)
            stack.extend(typing.get_args(annotation))
    return keys


# --- (a) the examples load -------------------------------------------------------------


def test_annotated_example_yaml_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.site.id == "kt-01"
    assert config.site.timezone == "Asia/Hong_Kong"
    assert [s.id for s in config.calendar.shifts] == ["D", "N"]
    assert (config.calendar.shifts[1].start, config.calendar.shifts[1].end) == ("20:00", "08:00")
    state_line, counts_line = config.lines
    assert state_line.detection == "state"
    assert counts_line.detection == "counts"
    assert "{line}" in (state_line.signals.reject_count.topic or "")
    assert {m.format for m in config.sources.mqtt} >= {"json", "sparkplug"}
    assert {r.category for r in config.reasons} == {"unplanned_stop", "planned_stop", "setup"}
    assert all(r.name_zh for r in config.reasons)
    assert state_line.upgrade is not None and state_line.upgrade.after is not None


def test_annotated_example_yaml_shows_every_key_of_the_model() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = sorted(k for k in model_keys(PlantConfig) if not re.search(rf"\b{k}:", text))
    assert not missing, f"config/example.yaml does not show: {missing}"


def test_configuration_reference_documents_every_key_of_the_model() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = sorted(k for k in model_keys(PlantConfig) if f"`{k}`" not in text)
    assert not missing, f"docs/configuration.md does not document: {missing}"


def test_design_section_5_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DESIGN_EXAMPLE))
    line = config.line("L1")
    assert line.counter_max == 65535
    assert line.state_map["2"].reason == "fault"
    assert line.state_map["3"].category == "setup"
    assert line.signals.reject_count is not None
    assert line.signals.reject_count.metric == "Count/Reject"
    assert line.upgrade is not None and line.upgrade.baseline is not None
    assert str(line.upgrade.baseline.from_) == "2026-02-01"


def test_base_fixture_config_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.line("L1").reason_map == {"0": None, "17": "fault"}


def test_a_missing_calendar_means_one_24h_shift_every_day(tmp_path: Path) -> None:
    text = "site: {id: kt-01}\nlines: [{id: L1, detection: counts}]\n"
    config = load_config(write(tmp_path, text))
    [shift] = config.calendar.shifts
    assert (shift.start, shift.end) == ("00:00", "24:00")
    assert shift.days == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_S4_unquoted_and_quoted_state_map_keys_are_canonicalised(tmp_path: Path) -> None:
    text = edit(BASE, '"1": running', "1.0: running")
    text = edit(
        text,
        '"3": setup',
        '"+3": setup\n      false: setup\n      " TRUE ": running\n      " RUN ": running',
    )
    line = load_config(write(tmp_path, text)).line("L1")
    assert set(line.state_map) == {"1", "2", "3", "false", "true", "RUN"}


def test_reason_map_null_means_ignore_that_raw_value(tmp_path: Path) -> None:
    line = load_config(write(tmp_path, BASE)).line("L1")
    assert "0" in line.reason_map
    assert line.reason_map["0"] is None


def test_builtin_reasons_unmapped_and_unexplained_need_no_catalog_entry(tmp_path: Path) -> None:
    text = edit(
        BASE, '"3": setup', '"3": setup\n      "9": {category: unplanned_stop, reason: unmapped}'
    )
    text = edit(text, '"17": fault}', '"17": fault, "18": unexplained}')
    line = load_config(write(tmp_path, text)).line("L1")
    assert line.state_map["9"].reason == "unmapped"
    assert line.reason_map["18"] == "unexplained"


def test_a_night_shift_directly_after_the_day_shift_does_not_overlap(tmp_path: Path) -> None:
    text = edit(
        BASE,
        "days: [mon, tue, wed, thu, fri, sat]}\n    - {id: N",
        "days: [mon, tue, wed, thu, fri, sat, sun]}\n    - {id: N",
    )
    text = edit(
        text,
        'end: "08:00", days: [mon, tue, wed, thu, fri, sat]}',
        'end: "08:00", days: [mon, tue, wed, thu, fri, sat, sun]}',
    )
    assert len(load_config(write(tmp_path, text)).calendar.shifts) == 2


# --- (b) broken configs name file, key path and expectation ----------------------------


def test_config_error_names_file_key_path_and_expectation_for_a_misspelled_category(
    tmp_path: Path,
) -> None:
    path, err = broken(
        tmp_path,
        "{category: unplanned_stop, reason: fault}",
        "{category: unplaned_stop, reason: fault}",
    )
    assert_problem(
        err,
        path,
        'lines[0].state_map."2".category',
        STATE_CATEGORIES_EXPECTED,
        "got 'unplaned_stop'",
    )


def test_a_misspelled_short_form_category_is_reported_at_its_category(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '"3": setup', '"3": set_up')
    assert_problem(
        err, path, 'lines[0].state_map."3".category', STATE_CATEGORIES_EXPECTED, "got 'set_up'"
    )


def test_an_unknown_key_is_an_error_with_a_did_you_mean_hint(tmp_path: Path) -> None:
    path, err = broken(
        tmp_path, "  - id: L1\n    default_product: P30", "  - id: L1\n    default_prodcut: P30"
    )
    assert_problem(
        err,
        path,
        "lines[0].default_prodcut",
        "unknown key",
        "did you mean 'default_product'?",
        "expected one of:",
    )


def test_an_unknown_nested_key_is_an_error_with_a_did_you_mean_hint(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "{P30: {ideal_cycle_s: 11.5}}", "{P30: {ideal_cycle: 11.5}}")
    assert_problem(
        err,
        path,
        "lines[0].products.P30.ideal_cycle",
        "unknown key",
        "did you mean 'ideal_cycle_s'?",
    )


def test_a_missing_site_id_is_reported_as_a_missing_required_key(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "site: {id: kt-01, name:", "site: {name:")
    assert_problem(err, path, "site.id", "required key is missing")


def test_a_wrong_detection_value_lists_the_allowed_values(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "detection: counts", "detection: count")
    assert_problem(err, path, "lines[1].detection", "expected 'state' or 'counts'", "got 'count'")


def test_a_capitalised_day_name_is_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '"20:00", days: [mon,', '"20:00", days: [Mon,')
    assert_problem(err, path, "calendar.shifts[0].days[0]", "'mon'", "'sun'", "got 'Mon'")


def test_an_unknown_time_zone_is_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "timezone: Asia/Hong_Kong", "timezone: Asia/HongKong")
    assert_problem(err, path, "site.timezone", "IANA time zone", "got 'Asia/HongKong'")


def test_an_unquoted_time_read_by_yaml_as_a_number_asks_for_quotes(tmp_path: Path) -> None:
    path, err = broken(
        tmp_path, '{id: D, start: "08:00", end: "20:00"', '{id: D, start: "08:00", end: 20:00'
    )
    assert_problem(err, path, "calendar.shifts[0].end", 'expected a time "HH:MM" in quotes')


def test_an_impossible_time_is_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '{start: "12:00", end: "13:00"}', '{start: "12:00", end: "25:00"}')
    assert_problem(err, path, "calendar.breaks[0].end", 'expected a time "HH:MM"', "got '25:00'")


def test_a_numeric_looking_unquoted_id_is_rejected_as_not_text(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "products: [{id: P30,", "products: [{id: 30,")
    assert_problem(err, path, "products[0].id", "valid string", "got 30")


def test_default_product_must_name_a_defined_product(tmp_path: Path) -> None:
    path, err = broken(
        tmp_path, "  - id: L1\n    default_product: P30", "  - id: L1\n    default_product: P31"
    )
    assert_problem(
        err,
        path,
        "lines[0].default_product",
        "expected a product id from products (P30)",
        "got 'P31'",
    )


def test_product_map_targets_must_name_defined_products(tmp_path: Path) -> None:
    path, err = broken(tmp_path, 'product_map: {"101": P30}', "product_map: {101: P99}")
    assert_problem(
        err, path, 'lines[0].product_map."101"', "expected a product id from products", "got 'P99'"
    )


def test_per_line_product_overrides_must_name_defined_products(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "{P30: {ideal_cycle_s: 11.5}}", "{P3O: {ideal_cycle_s: 11.5}}")
    assert_problem(
        err, path, "lines[0].products.P3O", "expected a product id from products", "got 'P3O'"
    )


def test_state_map_reasons_must_name_defined_reason_codes(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "reason: fault}", "reason: jam}")
    assert_problem(
        err,
        path,
        'lines[0].state_map."2".reason',
        "expected a reason code from reasons (fault, unexplained, unmapped)",
        "got 'jam'",
    )


def test_reason_map_targets_must_name_defined_reason_codes(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '"17": fault}', '"17": fualt}')
    assert_problem(
        err, path, 'lines[0].reason_map."17"', "expected a reason code from reasons", "got 'fualt'"
    )


def test_a_signal_source_must_name_a_defined_source(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "state: {source: plc1,", "state: {source: plc2,")
    assert_problem(
        err,
        path,
        "lines[0].signals.state.source",
        "expected a source id from sources (broker, plc1, spb)",
        "got 'plc2'",
    )


def test_a_sparkplug_signal_needs_a_metric(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "device: L2, metric: Count/Total}", "device: L2}")
    assert_problem(
        err, path, "lines[1].signals.total_count", "expected metric for Sparkplug source 'spb'"
    )


def test_an_opcua_signal_needs_a_node_or_browse_path(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '{source: plc1, node: "ns=2;s=L1.Count"}', "{source: plc1}")
    assert_problem(
        err,
        path,
        "lines[0].signals.total_count",
        "expected node or browse_path for OPC UA source 'plc1'",
    )


def test_an_mqtt_json_signal_needs_a_topic(tmp_path: Path) -> None:
    path, err = broken(tmp_path, 'topic: "kt01/{line}/vision", ', "")
    assert_problem(
        err, path, "lines[0].signals.reject_count", "expected topic for MQTT source 'broker'"
    )


def test_S7_reject_count_alone_is_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '      total_count: {source: plc1, node: "ns=2;s=L1.Count"}\n', "")
    assert_problem(
        err, path, "lines[0].signals.reject_count", "expected total_count or good_count as well"
    )


def test_detection_state_needs_a_state_map(tmp_path: Path) -> None:
    text = edit(
        BASE,
        '      "1": running\n      "2": {category: unplanned_stop, reason: fault}\n'
        '      "3": setup\n',
        "",
    )
    path, err = broken(tmp_path, "    state_map:\n", "    state_map: {}\n", text)
    assert_problem(err, path, "lines[0].state_map", "expected a state_map with detection: state")


def test_overlapping_shifts_are_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '{id: N, start: "20:00"', '{id: N, start: "19:00"')
    assert_problem(
        err, path, "calendar.shifts[1]", "expected shifts that do not overlap", "overlaps shift 'D'"
    )


def test_a_night_shift_crossing_midnight_overlapping_next_mornings_shift_is_rejected(
    tmp_path: Path,
) -> None:
    # The night shift starting Monday 20:00 ends Tuesday 09:00, inside Tuesday's day shift.
    path, err = broken(
        tmp_path, '{id: N, start: "20:00", end: "08:00"', '{id: N, start: "20:00", end: "09:00"'
    )
    assert_problem(
        err, path, "calendar.shifts[1]", "expected shifts that do not overlap", "overlaps shift 'D'"
    )


def test_a_sunday_night_shift_overlapping_monday_morning_is_rejected(tmp_path: Path) -> None:
    text = """\
site: {id: kt-01}
calendar:
  shifts:
    - {id: D, start: "07:00", end: "19:00", days: [mon]}
    - {id: N, start: "19:00", end: "08:00", days: [sun]}
lines: [{id: L1, detection: counts}]
"""
    path = write(tmp_path, text)
    assert_problem(
        load_error(path),
        path,
        "calendar.shifts[1]",
        "expected shifts that do not overlap",
        "overlaps shift 'D'",
    )


def test_duplicate_line_ids_are_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "  - id: L2\n", "  - id: L1\n")
    assert_problem(err, path, "lines[1].id", "expected a unique id", "'L1' is used twice")


def test_duplicate_shift_ids_are_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "{id: N, start:", "{id: D, start:")
    assert_problem(err, path, "calendar.shifts[1].id", "expected a unique id", "'D' is used twice")


def test_an_upgrade_period_ending_before_it_starts_is_rejected(tmp_path: Path) -> None:
    path, err = broken(
        tmp_path,
        "baseline: {from: 2026-02-01, to: 2026-04-30}",
        "baseline: {from: 2026-04-30, to: 2026-02-01}",
    )
    assert_problem(
        err,
        path,
        "lines[0].upgrade.baseline",
        "expected 'to' (2026-02-01) on or after 'from' (2026-04-30)",
    )


def test_the_after_period_must_start_after_the_baseline_ends(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "after: {from: 2026-06-01", "after: {from: 2026-04-30")
    assert_problem(
        err,
        path,
        "lines[0].upgrade.after.from",
        "expected the after period to start after the baseline period ends",
    )


def test_influxdb_backend_without_org_and_bucket_is_rejected(tmp_path: Path) -> None:
    text = BASE + "storage: {backend: influxdb, influxdb: {url: 'http://localhost:8086'}}\n"
    path = write(tmp_path, text)
    assert_problem(
        load_error(path), path, "storage.influxdb", "expected org and bucket with api: v2"
    )


def test_influxdb_backend_without_a_token_is_rejected(tmp_path: Path) -> None:
    text = BASE + "storage: {backend: influxdb, influxdb: {org: factory, bucket: lw}}\n"
    path = write(tmp_path, text)
    assert_problem(
        load_error(path), path, "storage.influxdb", "expected token_env or token_file with api: v2"
    )


def test_influxdb_backend_without_an_influxdb_block_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "storage: {backend: influxdb}\n")
    assert_problem(
        load_error(path), path, "storage", "expected an influxdb block with backend: influxdb"
    )


def test_text_that_is_not_yaml_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "site: {id: kt-01\nlines: [\n")
    line = assert_problem(load_error(path), path, "", "not valid YAML", "line 2, column 6")
    assert re.search(r"line \d+, column \d+: not valid YAML \(", line)


def test_a_top_level_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "- site\n- lines\n")
    assert_problem(load_error(path), path, "", "expected a YAML mapping")


def test_an_empty_file_is_rejected_as_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert_problem(load_error(path), path, "", "expected a YAML mapping")


def test_a_file_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-plant.yaml"
    assert_problem(load_error(path), path, "", "cannot read the file", "No such file")


def test_S4_two_state_map_keys_that_canonicalise_to_one_value_are_rejected(
    tmp_path: Path,
) -> None:
    path, err = broken(tmp_path, '"3": setup', '"3": setup\n      "2.0": running')
    assert_problem(err, path, "lines[0].state_map", "two keys mean the same raw value '2'", "S4")


def test_S4_an_unquoted_number_key_and_its_quoted_spelling_are_one_key(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '"17": fault}', '"17": fault, 17.0: fault}')
    assert_problem(err, path, "lines[0].reason_map", "two keys mean the same raw value '17'")


def test_all_structural_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = edit(BASE, "timezone: Asia/Hong_Kong", "timezone: HKT")
    path, err = broken(tmp_path, '"3": setup', '"3": setpu', text)
    assert_problem(err, path, "site.timezone", "got 'HKT'")
    assert_problem(err, path, 'lines[0].state_map."3".category', "got 'setpu'")


# Found while writing these tests and fixed in config.py / canonical.py.


def test_duplicate_source_ids_are_reported_at_their_real_key_path(tmp_path: Path) -> None:
    path, err = broken(
        tmp_path, "    - {id: spb, format: sparkplug}", "    - {id: plc1, format: sparkplug}"
    )
    assert_problem(err, path, "sources.mqtt[1].id", "expected a unique id")


def test_an_unquoted_impossible_holiday_date_is_a_config_error(tmp_path: Path) -> None:
    path, err = broken(tmp_path, "  breaks:", "  holidays: [2026-02-30]\n  breaks:")
    # PyYAML builds dates before the model sees them, so the message gives line and column.
    assert_problem(err, path, "", "line 6, column 14", "'2026-02-30' is not a real date")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "big5.yaml"
    path.write_bytes(BASE.replace("機器故障", "").encode() + "# 觀塘\n".encode("big5"))
    assert_problem(load_error(path), path, "", "UTF-8")


def test_S4_two_unquoted_state_map_keys_equal_as_numbers_are_rejected(tmp_path: Path) -> None:
    path, err = broken(tmp_path, '"3": setup', "3: setup\n      3.0: running")
    assert_problem(err, path, "", "found the key 3.0 twice")


# --- (c) the CLI: exit codes, messages, no tracebacks ---------------------------------


def test_cli_config_check_accepts_the_example_with_exit_0_and_an_ok_line() -> None:
    result = linewatch_cli("config", "check", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert f"{EXAMPLE}: ok" in result.stdout
    assert "site kt-01" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_config_check_rejects_a_bad_config_with_exit_2_naming_file_path_expectation(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, edit(BASE, '"3": setup', '"3": unplaned_stop'))
    result = linewatch_cli("config", "check", path)
    assert result.returncode == 2
    assert result.stderr.startswith("config error:\n")
    assert (
        f'{path}: lines[0].state_map."3".category: {STATE_CATEGORIES_EXPECTED}, '
        "got 'unplaned_stop'"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert "ok" not in result.stdout


def test_cli_config_check_of_a_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    result = linewatch_cli("config", "check", path)
    assert result.returncode == 2
    assert f"{path}: cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_config_check_of_text_that_is_not_yaml_exits_2_without_traceback(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "site: {id: kt-01\nlines: [\n")
    result = linewatch_cli("config", "check", path)
    assert result.returncode == 2
    assert f"{path}: line 2, column 6: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_config_check_of_a_cross_check_error_exits_2_without_traceback(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, edit(BASE, "state: {source: plc1,", "state: {source: plc9,"))
    result = linewatch_cli("config", "check", path)
    assert result.returncode == 2
    assert f"{path}: lines[0].signals.state.source: expected a source id" in result.stderr
    assert "got 'plc9'" in result.stderr
    assert "Traceback" not in result.stderr


# --- (d) S4 canonical values -----------------------------------------------------------


@pytest.mark.parametrize("raw", ["2.0", "02", "+2", "2e0", "2", 2, 2.0, " 2 "])
def test_S4_state_value_spellings_canonicalise_to_one_key(raw: object) -> None:
    assert canonical_value(raw) == "2"


def test_S4_decimals_lose_trailing_zeros() -> None:
    assert canonical_value("2.50") == "2.5"


@pytest.mark.parametrize("raw", [True, "TRUE", " true ", "True"])
def test_S4_booleans_canonicalise_to_lower_case_true(raw: object) -> None:
    assert canonical_value(raw) == "true"


@pytest.mark.parametrize("raw", [False, "FALSE", " false "])
def test_S4_booleans_canonicalise_to_lower_case_false(raw: object) -> None:
    assert canonical_value(raw) == "false"


def test_S4_text_is_trimmed_and_keeps_its_case() -> None:
    assert canonical_value(" RUN ") == "RUN"


def test_S4_an_integral_float_is_written_as_an_integer() -> None:
    assert canonical_value(2.0) == "2"


def test_S4_negative_zero_is_zero() -> None:
    assert canonical_value("-0") == "0"


def test_S4_nan_stays_text() -> None:
    assert canonical_value("nan") == "nan"


def test_S4_an_exponent_is_written_out() -> None:
    assert canonical_value("1e3") == "1000"


def test_S4_a_huge_exponent_stays_as_written_and_never_raises_or_hangs() -> None:
    # No PLC state code has more than 40 digits: such a value is kept as written (documented
    # in docs/time-model.md) instead of being expanded to thousands of digits.
    assert canonical_value("1e5000") == "1e5000"
    assert canonical_value("1e100000000") == "1e100000000"
