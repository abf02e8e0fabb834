"""The ``linewatch`` command (DESIGN §9). Exit codes: 0 ok, 2 usage or config error, 1 other."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from types import ModuleType

import typer

from linewatch.config import ConfigError, PlantConfig, load_config

app = typer.Typer(
    help="linewatch: production-line monitoring and OEE for manufacturing+ upgrades.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check plant configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

EXIT_USAGE = 2


def fail_usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def load_or_exit(path: Path) -> PlantConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        typer.echo(f"config error:\n{err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@config_app.command("check")
def config_check(file: Path = typer.Argument(..., help="Plant config YAML.")) -> None:
    """Validate a config: every error names the file, the key path and what was expected."""
    config = load_or_exit(file)
    typer.echo(
        f"{file}: ok — site {config.site.id}, {len(config.lines)} line(s), "
        f"{len(config.products)} product(s), {len(config.calendar.shifts)} shift(s)"
    )


@app.command("replay")
def replay_command(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
    input_file: Path = typer.Option(
        ..., "--input", help="samples.csv: timestamp,asset,signal,value,quality"),
) -> None:
    """Replay recorded samples through the time model into the store (R3)."""
    from tqdm import tqdm

    from linewatch.replay import replay
    from linewatch.storage import open_store

    config = load_or_exit(config_file)
    if not input_file.is_file():
        raise fail_usage(f"--input {input_file}: no such file")
    store = open_store(config)
    try:
        with tqdm(unit=" samples", disable=None, file=sys.stderr, desc="replay") as bar:
            summary = replay(config, store, input_file, progress=bar.update)
    except ValueError as err:
        raise fail_usage(str(err)) from None
    finally:
        store.close()
    for problem in summary.problems:
        typer.echo(f"{input_file}:{problem.removeprefix('line ')}", err=True)
    hidden = sum(summary.skipped.values()) - len(summary.problems)
    if hidden > 0:
        typer.echo(f"… and {hidden} more skipped row(s), counted below", err=True)
    typer.echo(summary.render())


@app.command("kpi")
def kpi_command(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
    line: str = typer.Option(..., "--line", help="Line id."),
    start: str = typer.Option(..., "--from", help="Window start (ISO 8601, site time, or date)."),
    end: str = typer.Option(..., "--to", help="Window end, exclusive."),
    by: str = typer.Option(None, "--by", help="Buckets: hour, shift or day."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per bucket."),
) -> None:
    """OEE and its building blocks for a line over [from, to), optionally bucketed."""
    import json

    from linewatch.kpi_query import WindowError, kpi_rows, parse_time
    from linewatch.storage import open_store

    config = load_or_exit(config_file)
    if line not in {ln.id for ln in config.lines}:
        known = ", ".join(ln.id for ln in config.lines)
        raise fail_usage(f"--line {line!r}: expected one of the config's lines ({known})")
    if by not in (None, "hour", "shift", "day"):
        raise fail_usage(f"--by {by!r}: expected hour, shift or day")
    zone = config.site.zone()
    try:
        start_ts = parse_time(start, zone, "--from")
        end_ts = parse_time(end, zone, "--to")
        store = open_store(config)
        try:
            rows = kpi_rows(config, store, line, start_ts, end_ts, by)  # type: ignore[arg-type]
        finally:
            store.close()
    except WindowError as err:
        raise fail_usage(str(err)) from None
    if as_json:
        for row in rows:
            row.pop("performance_above_1", None)
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    typer.echo(_kpi_table(config, rows, by))


def _kpi_table(config: PlantConfig, rows: list[dict], by: str | None) -> str:
    policy = config.policy
    head = (f"line {rows[0]['line']} · policy: micro_stop_s={policy.micro_stop_s} "
            f"setup_is_planned={str(policy.setup_is_planned).lower()} "
            f"stop_after_s={policy.stop_after_s}")

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def hours(seconds: float) -> str:
        return f"{seconds / 3600:.2f}"

    columns = ["from", "to"] + (["shift"] if by == "shift" else []) + [
        "OEE", "A", "P", "Q", "plan h", "run h", "stop h", "no data h", "good", "reject",
        "fail", "complete"]
    table = [columns]
    for row in rows:
        flag = "!" if row["performance"] is not None and row["performance"] > 1 else ""
        cells = [row["from"][:16].replace("T", " "), row["to"][:16].replace("T", " ")]
        if by == "shift":
            cells.append(row["shift"] or "off")
        cells += [pct(row["oee"]), pct(row["availability"]), pct(row["performance"]) + flag,
                  pct(row["quality"]), hours(row["planned_s"]), hours(row["run_s"]),
                  hours(row["unplanned_stop_s"]), hours(row["no_data_s"]),
                  str(row["good_count"]), str(row["reject_count"]), str(row["failures"]),
                  pct(row["completeness"])]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = [head, ""]
    for r in table:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    if any(row["performance"] is not None and row["performance"] > 1 for row in rows):
        lines.append("! performance above 100%: the configured ideal cycle is slower than "
                     "the line runs")
    return "\n".join(lines)


@app.command("simulate")
def simulate_command(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
    opcua_port: int = typer.Option(None, "--opcua-port", help="Serve OPC UA on this port."),
    mqtt: str = typer.Option(None, "--mqtt", help="Publish to this broker, HOST:PORT."),
    seed: int = typer.Option(1, "--seed", help="Random seed; the same seed gives the same lines."),
    speed: float = typer.Option(1.0, "--speed", help="Simulated seconds per wall second."),
) -> None:
    """Run the simulated PLC lines live behind an OPC UA server and MQTT (docs/simulator.md)."""
    raise typer.Exit(_component("simulator.cli").simulate_command(
        config_file, opcua_port, mqtt, seed, speed=speed))


@app.command("backfill")
def backfill_command(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
    start: str = typer.Option(..., "--from", help="First day (date or ISO time, site time)."),
    end: str = typer.Option(..., "--to", help="End, exclusive."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
) -> None:
    """Generate simulated history through the time model into the store, fast-forward."""
    raise typer.Exit(_component("simulator.cli").backfill_command(config_file, start, end, seed))


def _component(name: str) -> ModuleType:
    """Load a component package on demand: the core never imports simulator, edge or dashboard
    (DESIGN §1), the one console script still reaches them."""
    return importlib.import_module(name)


storage_app = typer.Typer(help="Create and check the configured store.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")


@storage_app.command("init")
def storage_init(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
    retention_days: int = typer.Option(
        0, "--retention-days", min=0,
        help="InfluxDB 2.x: retention of a new bucket in days (0 = keep for ever)."),
) -> None:
    """Create the SQLite file, the InfluxDB 1.x database or the 2.x bucket if missing."""
    from linewatch.storage import StoreError
    from linewatch.storage.admin import init_storage

    config = load_or_exit(config_file)
    try:
        message = init_storage(config, retention_days=retention_days or None)
    except ConfigError as err:  # a secret's environment variable or file is missing
        typer.echo(f"config error:\n{err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except StoreError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(message)


@storage_app.command("check")
def storage_check(
    config_file: Path = typer.Option(..., "--config", help="Plant config YAML."),
) -> None:
    """Report reachability, authentication and version of the store (exit 1 if a check fails)."""
    from linewatch.storage.admin import check_storage

    config = load_or_exit(config_file)
    try:
        checks = check_storage(config)
    except ConfigError as err:
        typer.echo(f"config error:\n{err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"storage backend {config.storage.backend} ({config_file})")
    for name, ok, detail in checks:
        typer.echo(f"  {'ok  ' if ok else 'FAIL'} {name:<10} {detail}")
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
