"""Process-level set-up shared by every command: quiet logs, compilation cache."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
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
    add_xla_flags(CPU_XLA_FLAGS, Path(path))
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


CPU_XLA_FLAGS: tuple[str, ...] = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)
"""XLA flags every command adds (when XLA knows them and ``XLA_FLAGS`` does not set them).

XLA's concurrency-optimized CPU scheduler deadlocks some large programs with JAX 0.10.2: the
MJX ``trifinger_cube`` env step at 256 envs on a CPU never finished (every thread asleep,
nothing running; docs/history/benchmarks-log-2026-12-01-to-07.md). With the classic scheduler it runs (7.1K env
steps/s). The C backend's env step showed no change beyond this machine's run-to-run noise
(3 alternating pairs of ``dexdistill bench envs``, valve and trifinger at 256 envs)."""


def add_xla_flags(flags: tuple[str, ...], cache: Path) -> list[str]:
    """Appends to ``$XLA_FLAGS`` each of ``flags`` it does not already name and this jaxlib
    knows (XLA aborts a process on an unknown flag, and flags come and go between releases);
    returns those added. No effect once JAX's backends exist, so call it before any array op.

    Whether a flag is known is asked once per jaxlib version in a subprocess and kept in
    ``cache/xla_flags.json``."""
    present = os.environ.get("XLA_FLAGS", "")
    named = {token.split("=")[0] for token in present.split()}
    wanted = [f for f in flags if f.split("=")[0] not in named]
    known = _xla_known(wanted, cache) if wanted else {}
    added = [f for f in wanted if known[f]]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([present, *added]).strip()
    return added


def _xla_known(flags: list[str], cache: Path) -> dict[str, bool]:
    """Whether this jaxlib's XLA knows each of ``flags``: from ``cache/xla_flags.json``
    (read once), asking a subprocess per flag not in it yet (written back once)."""
    import jaxlib

    file = cache / "xla_flags.json"
    try:
        known = json.loads(file.read_text())
    except (OSError, ValueError):
        known = {}
    keys = {f: f"{jaxlib.__version__} {f}" for f in flags}
    missing = [f for f in flags if keys[f] not in known]
    for flag in missing:
        probe = "import jax.numpy as jp; jp.zeros(1).block_until_ready()"
        env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
        try:
            run = subprocess.run(
                [sys.executable, "-c", probe], env=env, capture_output=True, timeout=300
            )
            known[keys[flag]] = run.returncode == 0
        except subprocess.TimeoutExpired:
            known[keys[flag]] = False
    if missing:
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(known, indent=1))
            tmp.replace(file)  # atomic: concurrent processes may probe too
        except OSError:
            pass  # a read-only cache: ask again next time
    return {f: bool(known[keys[f]]) for f in flags}


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
