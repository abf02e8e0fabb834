"""The small JSON path dialect of MQTT mappings (DESIGN §5): ``$`` or ``$.a.b``, no arrays.

Shared by the MQTT collector (reading) and the simulator's publisher (writing).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MISSING", "get_json_path", "parse_json_path"]


class _Missing:
    """The marker `get_json_path` returns when the path is absent."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def parse_json_path(path: str) -> tuple[str, ...]:
    """``$`` → () (the whole payload); ``$.a.b`` → ("a", "b"). Nothing else is supported."""
    if path == "$":
        return ()
    keys = tuple(path[2:].split(".")) if path.startswith("$.") else ()
    if not keys or any(not key or "[" in key or "]" in key for key in keys):
        raise ValueError(f"expected a JSON path $ or $.key[.key…] (no arrays), got {path!r}")
    return keys


def get_json_path(doc: Any, keys: tuple[str, ...]) -> Any:
    """The value at `keys` in a decoded JSON document, or MISSING when it is not there."""
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return MISSING
        doc = doc[key]
    return doc
