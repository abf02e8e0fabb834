"""The plug point between the simulator and a protocol server or client (DESIGN §12).

`simulator.runner.run_realtime` steps every line simulator and hands each step's samples to
every `Publisher`: the OPC UA server (`simulator.opcua_server`) and the MQTT publisher
(`simulator.mqtt_publisher`) implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from linewatch.sample import Sample

__all__ = ["Publisher"]


class PublisherError(Exception):
    """A publisher that cannot serve: its broker or port cannot be reached or bound."""


class Publisher(Protocol):
    """Something that makes simulated samples visible to a collector."""

    async def start(self) -> None:
        """Bind or connect; returns when ready to publish."""
        ...

    async def publish(self, samples: Sequence[Sample]) -> None:
        """Publish samples (of any lines), given in time order."""
        ...

    async def stop(self) -> None:
        """Unbind or disconnect; idempotent."""
        ...
