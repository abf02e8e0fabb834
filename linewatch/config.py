"""The plant configuration (DESIGN §5): typed, validated once at load, passed down explicitly.

Every error names the file, the key path (``lines[0].state_map."2".category``) and what was
expected. Unknown keys are errors. Secrets never sit in the YAML: ``*_env`` names an
environment variable and ``*_file`` a file; `read_secret` is the only place that reads them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from linewatch.canonical import canonical_value

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STATE_CATEGORIES = ("running", "setup", "unplanned_stop", "planned_stop")
REASON_CATEGORIES = ("unplanned_stop", "planned_stop", "setup")
COUNT_ROLES = ("total_count", "good_count", "reject_count")
ROLES = ("state", "reason", *COUNT_ROLES, "product", "energy_kwh")
DEFAULT_COUNTER_MAX = 4294967295
# Reasons the time model assigns by itself (S4, S11); always known to the catalog.
BUILTIN_REASONS = {"unmapped": "unplanned_stop", "unexplained": "unplanned_stop"}

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ConfigError(Exception):
    """A configuration that cannot be used; the message names file, key path and expectation."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path}: {message}" if path else f"{source}: {message}"
                 for path, message in problems]
        super().__init__("\n".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_time(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            'expected a time "HH:MM" in quotes (YAML reads an unquoted 8:00 as a number)'
        )
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise ValueError(f'expected a time "HH:MM" (00:00 to 24:00), got {value!r}')
    return value


WallTime = Annotated[str, Field(description="wall-clock time HH:MM in site.timezone")]


class Site(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    timezone: str = "Asia/Hong_Kong"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"expected an IANA time zone such as Asia/Hong_Kong, got {value!r}"
            ) from err
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Policy(_Model):
    micro_stop_s: int = Field(120, ge=1)
    setup_is_planned: bool = False
    stop_after_s: int = Field(60, ge=1)


class Shift(_Model):
    id: str = Field(min_length=1)
    start: WallTime
    end: WallTime
    days: list[Day] = Field(default_factory=lambda: list(DAYS))

    _t_start = field_validator("start", mode="before")(_check_time)
    _t_end = field_validator("end", mode="before")(_check_time)


class Break(_Model):
    start: WallTime
    end: WallTime
    days: list[Day] | None = None  # None: the days of the shift it falls in

    _t_start = field_validator("start", mode="before")(_check_time)
    _t_end = field_validator("end", mode="before")(_check_time)


def _all_day_shift() -> list[Shift]:
    return [Shift(id="24h", start="00:00", end="24:00")]


class Calendar(_Model):
    shifts: list[Shift] = Field(default_factory=_all_day_shift)
    breaks: list[Break] = Field(default_factory=list)
    holidays: list[dt.date] = Field(default_factory=list)


class Product(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    ideal_cycle_s: float = Field(gt=0)
    units_per_cycle: int = Field(1, ge=1)


class ProductOverride(_Model):
    ideal_cycle_s: float | None = Field(None, gt=0)
    units_per_cycle: int | None = Field(None, ge=1)


class Reason(_Model):
    code: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    category: Literal["unplanned_stop", "planned_stop", "setup"]


class Targets(_Model):
    oee: float | None = None
    availability: float | None = None
    performance: float | None = None
    quality: float | None = None
    teep: float | None = None
    scrap_ratio: float | None = None
    throughput_per_h: float | None = None
    mtbf_s: float | None = None
    mttr_s: float | None = None
    energy_per_unit_kwh: float | None = None
    completeness: float | None = None
    good_count_per_shift: float | None = None


class StateMapEntry(_Model):
    category: Literal["running", "setup", "unplanned_stop", "planned_stop"]
    reason: str | None = None


def _canonical_keys(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        canon = canonical_value(key)
        if canon in out:
            raise ValueError(f"two keys mean the same raw value {canon!r} (S4 canonical form)")
        out[canon] = item
    return out


class SignalSource(_Model):
    """Where one role's values come from. Which keys apply depends on the source's kind."""

    source: str = Field(min_length=1)
    # OPC UA: a NodeId (ns=…;s=…, nsu=…;s=…) or a browse path from Objects.
    node: str | None = None
    browse_path: str | None = None
    # MQTT JSON / plain: a topic (may hold {line}); JSON path of the value and of its timestamp.
    topic: str | None = None
    path: str | None = None
    ts_path: str | None = None
    # Sparkplug B: group / edge node (``node``) / device / metric.
    group: str | None = None
    device: str | None = None
    metric: str | None = None
    counter_max: int | None = Field(None, ge=1)


class TelemetrySignal(SignalSource):
    name: str = Field(min_length=1)


class Signals(_Model):
    state: SignalSource | None = None
    reason: SignalSource | None = None
    total_count: SignalSource | None = None
    good_count: SignalSource | None = None
    reject_count: SignalSource | None = None
    product: SignalSource | None = None
    energy_kwh: SignalSource | None = None
    telemetry: list[TelemetrySignal] = Field(default_factory=list)

    def roles(self) -> dict[str, SignalSource]:
        return {role: src for role in ROLES if (src := getattr(self, role)) is not None}


class Period(_Model):
    """An inclusive range of local dates."""

    from_: dt.date = Field(alias="from")
    to: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.to < self.from_:
            raise ValueError(f"expected 'to' ({self.to}) on or after 'from' ({self.from_})")
        return self


class Upgrade(_Model):
    description: str = ""
    installed_on: dt.date | None = None
    baseline: Period | None = None
    after: Period | None = None
    targets: Targets = Field(default_factory=Targets)


class SimulationAfterUpgrade(_Model):
    """Parameters that change on the upgrade date; unset ones keep their earlier value."""

    cycle_factor: float | None = Field(None, gt=0)
    reject_rate: float | None = Field(None, ge=0, le=1)
    mtbf_min: float | None = Field(None, gt=0)
    mttr_min: float | None = Field(None, gt=0)
    micro_stops_per_h: float | None = Field(None, ge=0)


class Simulation(_Model):
    """The simulator's parameters for one line (see docs/simulator.md)."""

    cycle_factor: float = Field(1.08, gt=0)  # mean cycle relative to the ideal cycle
    cycle_noise: float = Field(0.05, ge=0, le=1)  # relative standard deviation of a cycle
    reject_rate: float = Field(0.03, ge=0, le=1)
    mtbf_min: float = Field(90.0, gt=0)  # mean running time between failures
    mttr_min: float = Field(12.0, gt=0)  # mean failure duration
    micro_stops_per_h: float = Field(4.0, ge=0)
    micro_stop_mean_s: float = Field(40.0, gt=0)
    failure_reasons: dict[str, float] = Field(default_factory=dict)  # reason code -> weight
    products: list[str] = Field(default_factory=list)  # product rotation; default: default_product
    changeover_every_h: float = Field(8.0, gt=0)
    changeover_min: float = Field(20.0, ge=0)
    energy_kw_running: float = Field(15.0, ge=0)
    energy_kw_idle: float = Field(3.0, ge=0)
    counter_resets_per_week: float = Field(0.5, ge=0)
    telemetry_interval_s: float = Field(5.0, gt=0)
    overtime_probability: float = Field(0.0, ge=0, le=1)  # chance a shift runs on past its end
    overtime_h: float = Field(2.0, gt=0)  # longest overtime after a shift, in hours
    after_upgrade: SimulationAfterUpgrade = Field(default_factory=SimulationAfterUpgrade)


class Line(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    detection: Literal["state", "counts"] = "state"
    default_product: str | None = None
    counter_max: int = Field(DEFAULT_COUNTER_MAX, ge=1)
    targets: Targets = Field(default_factory=Targets)
    state_map: dict[str, StateMapEntry] = Field(default_factory=dict)
    reason_map: dict[str, str | None] = Field(default_factory=dict)
    product_map: dict[str, str] = Field(default_factory=dict)
    products: dict[str, ProductOverride] = Field(default_factory=dict)
    signals: Signals = Field(default_factory=Signals)
    simulation: Simulation = Field(default_factory=Simulation)
    upgrade: Upgrade | None = None

    @field_validator("state_map", mode="before")
    @classmethod
    def _state_map_shape(cls, value: Any) -> Any:
        value = _canonical_keys(value)
        if isinstance(value, dict):
            return {k: ({"category": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @field_validator("reason_map", "product_map", mode="before")
    @classmethod
    def _raw_keys(cls, value: Any) -> Any:
        return _canonical_keys(value)


class OpcuaSecurity(_Model):
    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    trust_dir: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OpcuaSecurity:
        if self.policy == "None" and self.mode != "None":
            raise ValueError("expected mode None when policy is None")
        if self.policy != "None" and self.mode == "None":
            raise ValueError("expected mode Sign or SignAndEncrypt with policy Basic256Sha256")
        return self


class Auth(_Model):
    username: str
    password_env: str | None = None
    password_file: Path | None = None


class OpcuaSource(_Model):
    id: str = Field(min_length=1)
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    mode: Literal["subscribe", "poll"] = "subscribe"
    interval_ms: int = Field(500, ge=10)
    timestamp: Literal["source", "server", "received"] = "source"
    queue_size: int = Field(10, ge=1)  # values a server keeps per monitored item between publishes
    deadband: float | None = Field(None, ge=0)  # absolute; telemetry-only nodes, subscribe mode
    pki_dir: Path | None = None  # own certificate and rejected server certificates
    security: OpcuaSecurity = Field(default_factory=OpcuaSecurity)
    auth: Auth | None = None


class MqttTls(_Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttSource(_Model):
    id: str = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    format: Literal["json", "plain", "sparkplug"] = "json"
    qos: Literal[0, 1] = 1
    client_id: str | None = None
    tls: MqttTls | None = None
    auth: Auth | None = None


class Sources(_Model):
    opcua: list[OpcuaSource] = Field(default_factory=list)
    mqtt: list[MqttSource] = Field(default_factory=list)


class SqliteStorage(_Model):
    path: Path = Path("data/linewatch.db")
    raw_retention_days: int = Field(7, ge=0)


class InfluxStorage(_Model):
    api: Literal["v1", "v2"] = "v2"
    url: str = "http://localhost:8086"
    org: str | None = None
    bucket: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    gzip: bool = True

    @model_validator(mode="after")
    def _api_keys(self) -> InfluxStorage:
        if self.api == "v2":
            missing = [k for k in ("org", "bucket") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"expected {' and '.join(missing)} with api: v2")
            if self.token_env is None and self.token_file is None:
                raise ValueError("expected token_env or token_file with api: v2")
        elif self.database is None:
            raise ValueError("expected database with api: v1")
        return self


class Storage(_Model):
    backend: Literal["sqlite", "influxdb"] = "sqlite"
    sqlite: SqliteStorage = Field(default_factory=SqliteStorage)
    influxdb: InfluxStorage | None = None

    @model_validator(mode="after")
    def _backend_block(self) -> Storage:
        if self.backend == "influxdb" and self.influxdb is None:
            raise ValueError("expected an influxdb block with backend: influxdb")
        return self


class Edge(_Model):
    spool: Path = Path("data/spool.db")
    spool_max_mb: int = Field(1024, ge=1)
    grace_s: int = Field(10, ge=0)
    health_port: int = Field(9108, ge=0, le=65535)


class PlantConfig(_Model):
    site: Site
    policy: Policy = Field(default_factory=Policy)
    calendar: Calendar = Field(default_factory=Calendar)
    products: list[Product] = Field(default_factory=list)
    reasons: list[Reason] = Field(default_factory=list)
    lines: list[Line] = Field(min_length=1)
    sources: Sources = Field(default_factory=Sources)
    storage: Storage = Field(default_factory=Storage)
    edge: Edge = Field(default_factory=Edge)

    def line(self, line_id: str) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(line_id)

    def product(self, product_id: str) -> Product:
        for product in self.products:
            if product.id == product_id:
                return product
        raise KeyError(product_id)

    def reason_category(self, code: str) -> str | None:
        for reason in self.reasons:
            if reason.code == code:
                return reason.category
        return BUILTIN_REASONS.get(code)


# --- loading -----------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} twice (the same key, or the same number "
                    "spelled twice)", key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[no-untyped-call]
        except ValueError as err:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a real date ({err})", node.start_mark
            ) from err


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp",
                              _StrictLoader.construct_yaml_timestamp)



def load_config(path: str | Path) -> PlantConfig:
    """Read, validate and cross-check a plant config; raise ConfigError naming what is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(source, [("", f"cannot read the file ({err.strerror})")]) from err
    except UnicodeDecodeError as err:
        raise ConfigError(source, [("", f"expected UTF-8 text; byte {err.start} is not "
                                        "UTF-8 (save the file as UTF-8)")]) from err
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> PlantConfig:
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(source, [("", f"{where}not valid YAML ({problem})")]) from err
    if not isinstance(data, dict):
        raise ConfigError(source, [("", "expected a YAML mapping with site, lines, … at the top")])
    try:
        config = PlantConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, [_describe(e) for e in err.errors()]) from None
    problems = list(cross_check(config))
    if problems:
        raise ConfigError(source, problems)
    return config


def format_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f'."{part}"' if out else f'"{part}"'
    return out


def _describe(error: Any) -> tuple[str, str]:
    loc = tuple(p for p in error["loc"] if p not in ("function-after[_ordered(), Period]",))
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        hint = ""
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return format_path(loc), f"unknown key{hint}{expected}"
    if kind == "missing":
        return format_path(loc), "required key is missing"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return format_path(loc), f"expected {expected}, got {error.get('input')!r}"
    if "input" in error and kind not in ("value_error", "assertion_error"):
        message = f"{message}, got {error['input']!r}"
    return format_path(loc), message


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts, to suggest the right one for a typo."""
    annotation: Any = PlantConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(
                (f for n, f in annotation.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = typing.get_args(annotation)
            if not args:
                return []
            annotation = args[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    if origin is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def cross_check(config: PlantConfig) -> Iterable[tuple[str, str]]:
    """References between parts of the config: every name used must be defined once."""
    yield from _unique("products", [p.id for p in config.products])
    yield from _unique("reasons", [r.code for r in config.reasons], key="code")
    yield from _unique("lines", [line.id for line in config.lines])
    yield from _unique("calendar.shifts", [s.id for s in config.calendar.shifts])
    source_ids = [s.id for s in config.sources.opcua] + [s.id for s in config.sources.mqtt]
    yield from _unique("sources.opcua", [s.id for s in config.sources.opcua])
    opcua_ids = {s.id for s in config.sources.opcua}
    mqtt_seen: set[str] = set()
    for i, src in enumerate(config.sources.mqtt):
        if src.id in opcua_ids or src.id in mqtt_seen:
            yield (f"sources.mqtt[{i}].id", f"expected a unique id, {src.id!r} is used twice")
        mqtt_seen.add(src.id)
    yield from _shift_overlaps(config.calendar)

    product_ids = {p.id for p in config.products}
    reason_codes = {r.code for r in config.reasons} | set(BUILTIN_REASONS)
    opcua = {s.id: s for s in config.sources.opcua}
    mqtt = {s.id: s for s in config.sources.mqtt}
    products_hint = ", ".join(sorted(product_ids)) or "none defined"
    reasons_hint = ", ".join(sorted(reason_codes))

    for i, line in enumerate(config.lines):
        at = f"lines[{i}]"
        if line.default_product is not None and line.default_product not in product_ids:
            yield (f"{at}.default_product",
                   f"expected a product id from products ({products_hint}), "
                   f"got {line.default_product!r}")
        for raw, target in line.product_map.items():
            if target not in product_ids:
                yield (format_path((*_split(at), "product_map", raw)),
                       f"expected a product id from products ({products_hint}), got {target!r}")
        for pid in line.products:
            if pid not in product_ids:
                yield (format_path((*_split(at), "products", pid)),
                       f"expected a product id from products ({products_hint}), got {pid!r}")
        for raw, entry in line.state_map.items():
            if entry.reason is not None and entry.reason not in reason_codes:
                yield (format_path((*_split(at), "state_map", raw, "reason")),
                       f"expected a reason code from reasons ({reasons_hint}), "
                       f"got {entry.reason!r}")
        for raw, code in line.reason_map.items():
            if code is not None and code not in reason_codes:
                yield (format_path((*_split(at), "reason_map", raw)),
                       f"expected a reason code from reasons ({reasons_hint}), got {code!r}")
        if line.detection == "state" and not line.state_map:
            yield (f"{at}.state_map", "expected a state_map with detection: state "
                   "(or set detection: counts for a line without a state signal)")
        roles = line.signals.roles()
        if "reject_count" in roles and not ({"total_count", "good_count"} & roles.keys()):
            yield (f"{at}.signals.reject_count",
                   "expected total_count or good_count as well (S7: two counts give the third)")
        if line.detection == "counts" and roles and not (set(COUNT_ROLES) & roles.keys()):
            yield (f"{at}.signals", "expected a count signal with detection: counts")
        signals = [(role, src) for role, src in roles.items()]
        signals += [(f"telemetry[{j}]", t) for j, t in enumerate(line.signals.telemetry)]
        for role, src in signals:
            where = f"{at}.signals.{role}"
            if src.source in opcua:
                if not (src.node or src.browse_path):
                    yield (where, f"expected node or browse_path for OPC UA source {src.source!r}")
            elif src.source in mqtt:
                fmt = mqtt[src.source].format
                if fmt == "sparkplug":
                    missing = [k for k in ("group", "node", "metric") if not getattr(src, k)]
                    if missing:
                        yield (where, f"expected {', '.join(missing)} for Sparkplug source "
                               f"{src.source!r}")
                elif not src.topic:
                    yield (where, f"expected topic for MQTT source {src.source!r}")
            else:
                known = ", ".join(sorted(source_ids)) or "none defined under sources"
                yield (f"{where}.source",
                       f"expected a source id from sources ({known}), got {src.source!r}")
        upgrade = line.upgrade
        if (upgrade and upgrade.baseline and upgrade.after
                and upgrade.after.from_ <= upgrade.baseline.to):
            yield (f"{at}.upgrade.after.from",
                   "expected the after period to start after the baseline period ends")


def _split(at: str) -> tuple[Any, ...]:
    name, _, index = at.partition("[")
    return (name, int(index.rstrip("]")))


def _unique(where: str, ids: list[str], key: str = "id") -> Iterable[tuple[str, str]]:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            yield (f"{where}[{i}].{key}", f"expected a unique {key}, {value!r} is used twice")
        seen.add(value)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def shift_span_minutes(shift: Shift) -> tuple[int, int]:
    """(start, end) in minutes from the start of the shift's day; end > start (crosses midnight)."""
    start, end = _minutes(shift.start), _minutes(shift.end)
    if end <= start:
        end += 24 * 60
    return start, end


def _shift_overlaps(calendar: Calendar) -> Iterable[tuple[str, str]]:
    week = 7 * 24 * 60
    spans: list[tuple[int, int, int]] = []
    for i, shift in enumerate(calendar.shifts):
        start, end = shift_span_minutes(shift)
        for day in shift.days:
            offset = DAYS.index(day) * 24 * 60
            spans.append((offset + start, offset + end, i))
    for a_start, a_end, a in spans:
        for b_start, b_end, b in spans:
            if b <= a:
                continue
            for shift_by in (-week, 0, week):
                if a_start < b_end + shift_by and b_start + shift_by < a_end:
                    yield (f"calendar.shifts[{b}]",
                           f"expected shifts that do not overlap; overlaps shift "
                           f"{calendar.shifts[a].id!r}")
                    return


def read_secret(env: str | None, file: Path | None) -> str | None:
    """The value of a secret named by ``*_env`` or ``*_file``; None when neither is set."""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError("environment",
                              [(env, "expected this environment variable to be set")])
        return value
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(str(file),
                              [("", f"cannot read the secret ({err.strerror})")]) from err
    return None
