"""Process-level set-up shared by every command: quiet logs, compilation cache."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path
from typing import Any


def choose_headless_gl() -> str | None:
    """Sets ``MUJOCO_GL=egl`` when none is set, there is no display and EGL is installed
    (offscreen MuJoCo rendering for videos). Must run before ``mujoco`` is imported, which
    reads the variable once. Returns the backend now requested (None: MuJoCo's default)."""
    headless = "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY")
    if headless and ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    return os.environ.get("MUJOCO_GL")


def setup(cache_dir: str | None = None) -> None:
    """Silences XLA's C++ log noise and enables JAX's persistent compilation cache.

    With ``DEXDISTILL_MULTIHOST=1`` it also calls ``jax.distributed.initialize()``.
    Call before the first jit. ``cache_dir`` defaults to ``$DEXDISTILL_CACHE`` or
    ``~/.cache/dexdistill/jax``; a second run of the same command then loads its
    compiled programs instead of recompiling them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    import jax

    path = (
        cache_dir
        or os.environ.get("DEXDISTILL_CACHE")
        or str(Path.home() / ".cache/dexdistill/jax")
    )
    Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _cache_min_compile_s())
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    if os.environ.get("DEXDISTILL_MULTIHOST") == "1" and not jax.distributed.is_initialized():
        # One process per host; the coordinator comes from the cluster environment (TPU pods,
        # SLURM) or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID. Every stage
        # then shards its env batch over the devices of all hosts (jax.devices()); see
        # pipelines/distributed.py for who writes what.
        jax.distributed.initialize(
            num_processes=_int_env("JAX_NUM_PROCESSES"), process_id=_int_env("JAX_PROCESS_ID")
        )


def _cache_min_compile_s() -> float:
    """Programs compiling faster than this are not cached: ``$DEXDISTILL_CACHE_MIN_COMPILE_S``,
    default 1 s (a user's run compiles a few large programs; the test suite sets 0, see
    ``tests/conftest.py``)."""
    return _number_env("DEXDISTILL_CACHE_MIN_COMPILE_S", float, 1.0)


def _int_env(name: str) -> int | None:
    """``int($name)``, or None when unset (then JAX detects the cluster itself)."""
    return _number_env(name, int, None)


def _number_env(name: str, kind: type[int] | type[float], default: float | None) -> Any:
    """``kind($name)``, ``default`` when unset; a bad value names the variable in one line."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name}={value!r}: must be {what}") from None
