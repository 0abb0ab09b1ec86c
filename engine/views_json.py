"""One JSON form for every view: the one the API's response models write.

The API serialises its response dataclasses with pydantic; printing the same dataclasses
through ``to_jsonable`` gives the CLI the identical JSON (times as ``...Z``, tuples as
lists, computed fields included) instead of a second, hand-kept rendering.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

# Building an adapter compiles a serialiser for the type: once per type, not per call.
# Types are few (the view classes and JSON's scalars), so the cache needs no bound.
_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    adapter = _adapters.get(kind)
    if adapter is None:
        adapter = _adapters.setdefault(kind, TypeAdapter(kind))
    return adapter


def to_jsonable(value: Any) -> Any:
    """``value`` (a view, or a list, tuple or dict of them) as plain JSON values."""
    if isinstance(value, list | tuple):
        # The adapter of a bare ``list`` would infer its items' types, and inference skips
        # what the items' own schemas add (``computed_field``s such as ``next_offset``).
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    return _adapter(type(value)).dump_python(value, mode="json")
