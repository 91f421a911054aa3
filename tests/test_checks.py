"""envs.checks: one-line errors for types, Literal fields and bounds."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from dexdistill.envs.common import checks


@dataclasses.dataclass(frozen=True)
class _Inner:
    mode: Literal["a", "b"] = "a"


@dataclasses.dataclass(frozen=True)
class _Outer:
    n: int = 1
    x: float = 0.5
    flag: bool = True
    inner: _Inner = _Inner()
    optional: Literal["p", "q"] | None = None


def test_check_types_accepts_valid_configs_and_ints_as_floats():
    checks.check_types(_Outer())
    checks.check_types(_Outer(x=2, optional="q"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_Outer(n=1.5), r"^n=1.5: expected int$"),
        (_Outer(n=True), r"^n=True: expected int$"),
        (_Outer(flag=1), r"^flag=1: expected bool$"),
        (_Outer(inner=_Inner(mode="c")), r"^inner.mode='c': allowed values are \['a', 'b'\]$"),
        (_Outer(optional="r"), r"^optional='r': allowed values are \['p', 'q', None\]$"),
    ],
)
def test_check_types_names_the_field_and_what_is_allowed(config, message):
    with pytest.raises(ValueError, match=message):
        checks.check_types(config)


def test_choices_reads_a_literal_and_refuses_other_types():
    assert checks.choices(Literal["x", "y"]) == ("x", "y")
    with pytest.raises(TypeError):
        checks.choices(str)


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"ge": 1}, 0, r"^k=0: must be >= 1$"),
        ({"gt": 0}, 0.0, r"^k=0.0: must be > 0$"),
        ({"le": 1}, 2, r"^k=2: must be <= 1$"),
        ({"lt": 1}, 1, r"^k=1: must be < 1$"),
        ({"ge": 0, "lt": 1}, 1.0, r"^k=1.0: must be in \[0, 1\)$"),
        ({"gt": 0, "le": 1}, 0, r"^k=0: must be in \(0, 1\]$"),
        ({"allowed": ("u", "v")}, "w", r"^k='w': allowed values are \['u', 'v'\]$"),
    ],
)
def test_require_rejects_with_one_line(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        checks.require("k", value, **kwargs)


def test_require_accepts_values_on_the_bounds():
    checks.require("k", 1, ge=1, le=1)
    checks.require("k", 0.5, gt=0, lt=1)
    checks.require("k", "u", allowed=("u",))
