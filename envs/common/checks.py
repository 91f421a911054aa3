"""Config validation in one place: types, allowed values and bounds, one-line errors.

Every config dataclass of the project validates itself with these two functions, so
every message has the same form (``field=value: what is allowed``):

* :func:`check_types` walks a (nested) dataclass and checks each field against its
  annotation: ``int``, ``float``, ``bool`` and ``str`` by type, and a ``Literal[...]``
  field by value (``allowed values are [...]``), so allowed values are written once, as
  the field's type, and :func:`choices` turns that type into the tuple code needs.
* :func:`require` checks one value: ``allowed``, ``ge``, ``gt``, ``le``, ``lt``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from typing import Any, Literal

_PLAIN = {int: int, float: (int, float), bool: bool, str: str}


def choices(tp: Any) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` type (``choices(Literal["a", "b"]) == ("a", "b")``)."""
    if typing.get_origin(tp) is not Literal:
        raise TypeError(f"{tp!r} is not a Literal type")
    return typing.get_args(tp)


def _literal_args(tp: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal`` (or ``Literal | None``) annotation, else None."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    args = typing.get_args(tp)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and typing.get_origin(inner[0]) is Literal:
            return (*typing.get_args(inner[0]), None)
    return None


def check_types(config: Any, prefix: str = "") -> None:
    """Raises a one-line ``ValueError`` for the first field that does not match its type.

    Nested dataclasses are checked with a dotted ``prefix`` (``ppo.network.activation``).
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_types(value, f"{name}.")
            continue
        allowed = _literal_args(tp)
        if allowed is not None:
            require(name, value, allowed=allowed)
            continue
        expected = _PLAIN.get(tp)
        if expected is None:
            continue
        ok = isinstance(value, expected) and not (tp in (int, float) and isinstance(value, bool))
        if not ok:
            raise ValueError(f"{name}={value!r}: expected {tp.__name__}")


def require(
    name: str,
    value: Any,
    *,
    allowed: Iterable[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> None:
    """Raises ``ValueError("name=value: ...")`` unless ``value`` satisfies every given bound.

    ``allowed``: the value must be one of these; ``ge`` / ``gt`` / ``le`` / ``lt``: the
    value must be ``>=`` / ``>`` / ``<=`` / ``<`` the bound. Two bounds read as a range
    (``must be in [0, 1)``).
    """
    if allowed is not None:
        allowed = list(allowed)
        if value not in allowed:
            raise ValueError(f"{name}={value!r}: allowed values are {allowed}")
        return
    low = (ge, "[") if ge is not None else (gt, "(") if gt is not None else None
    high = (le, "]") if le is not None else (lt, ")") if lt is not None else None
    ok = (
        (ge is None or value >= ge)
        and (gt is None or value > gt)
        and (le is None or value <= le)
        and (lt is None or value < lt)
    )
    if ok:
        return
    if low is not None and high is not None:
        raise ValueError(f"{name}={value!r}: must be in {low[1]}{low[0]}, {high[0]}{high[1]}")
    bound, op = (
        (ge, ">=")
        if ge is not None
        else (gt, ">")
        if gt is not None
        else (le, "<=")
        if le is not None
        else (lt, "<")
    )
    raise ValueError(f"{name}={value!r}: must be {op} {bound}")
