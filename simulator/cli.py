"""What `linewatch backfill` and `linewatch simulate` run (DESIGN §9); the CLI wires them.

Both return the process exit code: 0 ok, 2 usage or config error, 1 anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tqdm import tqdm

from linewatch.config import ConfigError, PlantConfig, load_config, read_secret
from linewatch.kpi_query import WindowError, parse_time
from linewatch.storage import open_store
from linewatch.storage.base import StoreError
from simulator.backfill import BackfillError, backfill, day_edges
from simulator.publisher import Publisher, PublisherError
from simulator.runner import run_realtime

__all__ = ["backfill_command", "build_publishers", "simulate_command"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _say(message: str) -> None:
    """A line for the user on stderr (stdout stays free for data)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _error(message: str) -> None:
    _say(f"error: {message}")


def _load(config_path: Path) -> PlantConfig | None:
    try:
        return load_config(config_path)
    except ConfigError as err:
        _say(f"config error:\n{err}")
        return None


def backfill_command(config_path: Path, start: str, end: str, seed: int) -> int:
    """Simulate [start, end) of every line into the config's store, with a progress bar.

    `start` and `end` are what ``linewatch kpi`` accepts (a date is local midnight, so
    ``--from 2026-04-01 --to 2026-05-01`` is the 30 days of April); the range is half-open.
    """
    config = _load(config_path)
    if config is None:
        return EXIT_USAGE
    zone = config.site.zone()
    try:
        first = parse_time(start, zone, "--from")
        last = parse_time(end, zone, "--to")
    except WindowError as err:
        _error(str(err))
        return EXIT_USAGE
    if last <= first:
        _error("expected --to after --from")
        return EXIT_USAGE
    days = len(day_edges(config, first, last)) - 1
    try:
        store = open_store(config)
    except (StoreError, NotImplementedError, OSError) as err:
        _error(f"cannot open the store: {err}")
        return EXIT_ERROR
    try:
        with tqdm(total=days, unit="day", desc="backfill", file=sys.stderr,
                  disable=None) as bar:
            summary = backfill(config, store, first, last, seed, progress=bar.update)
    except (StoreError, BackfillError) as err:
        _error(str(err))
        return EXIT_ERROR
    finally:
        store.close()
    _say(f"backfill of {len(config.lines)} line(s): {summary.render()}")
    return EXIT_OK


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--mqtt {text!r}: expected HOST:PORT such as 127.0.0.1:1883")
    return host.strip("[]"), int(port)


def _used_sources(config: PlantConfig) -> set[str]:
    used: set[str] = set()
    for line in config.lines:
        used.update(src.source for src in line.signals.roles().values())
        used.update(t.source for t in line.signals.telemetry)
    return used


def build_publishers(config: PlantConfig, opcua_port: int | None,
                     mqtt: str | None) -> list[Publisher]:
    """One OPC UA server per OPC UA source and one publisher per MQTT source the lines use.

    `opcua_port` replaces the port of the endpoints (the n-th server gets opcua_port + n);
    `mqtt` ("HOST:PORT") the broker of every MQTT source. Raises ImportError when the
    server or publisher module is missing, ValueError on a bad `mqtt`.
    """
    used = _used_sources(config)
    opcua = [s for s in config.sources.opcua if s.id in used]
    brokers = [s for s in config.sources.mqtt if s.id in used]
    override = _host_port(mqtt) if mqtt is not None else None
    publishers: list[Publisher] = []
    if opcua:
        from simulator.opcua_server import SimOpcuaServer

        for n, source in enumerate(opcua):
            parsed = urlparse(source.endpoint)
            port = parsed.port if opcua_port is None else opcua_port + n
            kwargs: dict[str, Any] = {}
            if source.auth is not None:
                kwargs["password"] = read_secret(source.auth.password_env,
                                                 source.auth.password_file)
            publishers.append(SimOpcuaServer(config, source, parsed.hostname or "127.0.0.1",
                                             port, **kwargs))
    if brokers:
        from simulator.mqtt_publisher import SimMqttPublisher

        for source in brokers:
            host, port = override if override is not None else (source.host, source.port)
            publishers.append(SimMqttPublisher(config, source, host, port))
    return publishers


def simulate_command(config_path: Path, opcua_port: int | None, mqtt: str | None,
                     seed: int, speed: float = 1.0) -> int:
    """Serve every line's simulated samples over OPC UA and MQTT until SIGINT or SIGTERM."""
    config = _load(config_path)
    if config is None:
        return EXIT_USAGE
    try:
        publishers = build_publishers(config, opcua_port, mqtt)
    except ImportError as err:
        _error(f"the simulator's protocol servers are not installed ({err}); "
               "expected simulator/opcua_server.py and simulator/mqtt_publisher.py")
        return EXIT_ERROR
    except ConfigError as err:
        _say(f"config error:\n{err}")
        return EXIT_USAGE
    except ValueError as err:
        _error(str(err))
        return EXIT_USAGE
    if not publishers:
        _error(f"{config_path}: no line maps a signal to an OPC UA or MQTT source; "
               "nothing to serve")
        return EXIT_USAGE
    try:
        asyncio.run(_serve(config, publishers, seed, speed))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        _error(f"cannot serve: {err}")
        return EXIT_ERROR
    except PublisherError as err:  # a broker that cannot be reached
        _error(f"cannot serve: {err}")
        return EXIT_ERROR
    return EXIT_OK


async def _serve(config: PlantConfig, publishers: list[Publisher], seed: int,
                 speed: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    stats = await run_realtime(config, publishers, seed, speed, stop)
    _say(f"simulation stopped: {stats.samples} samples in {stats.steps} steps")
