"""Storage backends behind one interface (DESIGN §7): embedded SQLite or InfluxDB."""

from __future__ import annotations

import logging

from linewatch.config import PlantConfig
from linewatch.storage.base import Store, StoreError
from linewatch.storage.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "StoreError", "open_store"]

logger = logging.getLogger(__name__)


def open_store(config: PlantConfig) -> Store:
    """Open the writable store the config's ``storage.backend`` names."""
    storage = config.storage
    if storage.backend == "sqlite":
        path = storage.sqlite.path
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.debug("opening sqlite store %s", path)
        return SqliteStore(path)
    if storage.backend == "influxdb":
        # Imported here: the SQLite-only edge and dashboard never load the InfluxDB code.
        from linewatch.storage.influx import InfluxStore

        assert storage.influxdb is not None  # the config model guarantees the block
        store = InfluxStore.from_config(storage.influxdb)
        logger.debug("opening influxdb store %r", store)
        return store
    raise ValueError(f"unknown storage backend {storage.backend!r}")
