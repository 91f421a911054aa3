"""Frozen dataclass configs <-> JSON-able dicts, and dotted overrides from strings."""

from __future__ import annotations

import ast
import dataclasses
import typing
from typing import Any


def to_dict(config: Any) -> dict[str, Any]:
    """A nested dataclass as plain JSON-able data (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuilds a (nested, frozen) dataclass of type ``cls`` from :func:`to_dict`'s output."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise ValueError(
                f"unknown config field {key!r} for {cls.__name__}; allowed: {sorted(names)}"
            )
        kwargs[key] = _coerce(hints[key], value)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=False))
    if origin in (typing.Union, __import__("types").UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=(0.5, 1.0)", "d=raycast"]`` -> ``{"a.b": 1, "c": (0.5, 1.0), "d": "raycast"}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(
                f"override {item!r}: expected KEY=VALUE, e.g. randomization.physics.enabled=False"
            )
        key, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out[key.strip()] = value
    return out
