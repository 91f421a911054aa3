"""Task registry: ``make(name, **overrides)``, ``default_config(name)``, ``names()``."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from dexdistill.envs.base import Env

_TASKS: dict[str, tuple[str, str]] = {
    "dclaw_valve": ("dexdistill.envs.tasks.dclaw_valve", "DClawValve"),
    "trifinger_cube": ("dexdistill.envs.tasks.trifinger_cube", "TriFingerCube"),
    "hand_cube": ("dexdistill.envs.tasks.hand_cube", "HandCube"),
    "point_mass": ("dexdistill.envs.tasks.point_mass", "PointMass"),
}


def names() -> list[str]:
    """Registered task names."""
    return list(_TASKS)


def _module(name: str) -> Any:
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; registered tasks: {names()}")
    return importlib.import_module(_TASKS[name][0])


def default_config(name: str) -> Any:
    """The task's default (frozen) config dataclass."""
    return _module(name).default_config()


def with_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """Returns ``config`` with fields replaced; nested fields use dots.

    Example: ``with_overrides(cfg, {"episode_length": 50,
    "randomization.physics.enabled": False})``. Unknown fields raise a one-line
    ``ValueError`` listing the allowed ones.
    """
    for key, value in overrides.items():
        config = _replace_path(config, key.split("."), value, key)
    return config


def _replace_path(obj: Any, path: list[str], value: Any, full: str) -> Any:
    fields = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in fields:
        raise ValueError(f"unknown config field {full!r}; allowed here: {sorted(fields)}")
    if len(path) > 1:
        value = _replace_path(getattr(obj, head), path[1:], value, full)
    return dataclasses.replace(obj, **{head: value})


def make(name: str, config: Any | None = None, **overrides: Any) -> Env:
    """Builds task ``name`` from ``config`` (default: its default config) and overrides.

    Overrides are top-level fields as keyword arguments; pass nested ones with
    :func:`with_overrides`. The config is validated before anything is built.
    """
    module = _module(name)
    config = config if config is not None else module.default_config()
    config = with_overrides(config, overrides)
    config.validate()
    return getattr(module, _TASKS[name][1])(config)
