"""``dexdistill bench envs``: environment throughput, compile time, ratio to MuJoCo C.

For each task and batch size it times, separately from compilation:

* ``physics``: the MJX physics substeps alone (nominal model, random controls);
* ``env``: the full training step - randomized model, unmodeled effects,
  every observation (privileged, proprio, keypoints, point cloud), auto-reset;

and, once per task, MuJoCo C (``mujoco.mj_step``, one thread) on the same model.
Rates are *env* (control) steps per second; one env step is ``n_substeps``
physics steps. Each measurement is one jitted ``lax.scan`` over ``steps``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jp
import mujoco
import numpy as np

import envs
from envs import wrappers
from envs.mjx_task import MjxTask


@dataclasses.dataclass(frozen=True)
class BenchEnvsConfig:
    """Options of ``dexdistill bench envs``."""

    tasks: tuple[str, ...] = ("point_mass", "dclaw_valve", "trifinger_cube", "hand_cube")
    batch_sizes: tuple[int, ...] = (1, 64, 1024)
    steps: int = 20
    """Control steps per timed scan."""
    repeats: int = 2
    """Timed runs after the compiling one; the best is reported."""
    point_cloud: Literal["surface", "raycast"] = "surface"
    """Point-cloud source for the ``env`` measurement: ``surface`` or ``raycast``."""
    impl: Literal["jax", "warp"] = "jax"
    """MJX implementation: ``jax`` or ``warp`` (GPU)."""
    out: str = "bench_out/envs.json"
    """Where the JSON results are written."""

    def validate(self) -> None:
        """Raises a one-line ``ValueError`` naming the first bad field."""
        validate_common(self.tasks, self.batch_sizes, self.repeats)
        if self.steps < 1:
            raise ValueError(f"steps={self.steps}: must be >= 1")
        for name, allowed in (("point_cloud", ("surface", "raycast")), ("impl", ("jax", "warp"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: allowed values are {allowed}")


def validate_common(tasks: tuple[str, ...], batch_sizes: tuple[int, ...], repeats: int) -> None:
    """Checks the fields every benchmark config has (one-line ``ValueError``)."""
    unknown = [t for t in tasks if t not in envs.names()]
    if unknown or not tasks:
        raise ValueError(f"tasks={list(tasks)}: registered tasks are {envs.names()}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"batch_sizes={list(batch_sizes)}: must be non-empty, each >= 1")
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: must be >= 1")


def _timed(fn: Any, *args: Any, repeats: int) -> tuple[float, float]:
    """(first call incl. compile, best of ``repeats`` later calls) in seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return first, best


def mujoco_c_env_sps(task: MjxTask, seconds: float = 1.0) -> float:
    """Env steps/s of single-threaded MuJoCo C (``mj_step``) with random controls."""
    m = task.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_resetData(m, d)
    rng = np.random.default_rng(0)
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    n_sub = task.config.n_substeps
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        d.ctrl[:] = rng.uniform(lo, hi)
        for _ in range(n_sub):
            mujoco.mj_step(m, d)
        steps += 1
    return steps / (time.perf_counter() - t0)


def _physics_fn(task: MjxTask, steps: int) -> Any:
    from mujoco import mjx

    model = task.mjx_model
    lo, hi = jp.asarray(task._ctrl_lo), jp.asarray(task._ctrl_hi)

    def one(data: Any, rng: jax.Array) -> Any:
        def body(d: Any, key: jax.Array) -> tuple[Any, None]:
            d = d.replace(ctrl=jax.random.uniform(key, lo.shape, minval=lo, maxval=hi))
            d = jax.lax.fori_loop(0, task.config.n_substeps, lambda _, x: mjx.step(model, x), d)
            return d, None

        return jax.lax.scan(body, data, jax.random.split(rng, steps))[0]

    return jax.jit(jax.vmap(one))


def _env_fn(env: Any, steps: int) -> Any:
    def run(state: envs.State, rng: jax.Array) -> envs.State:
        def body(s: envs.State, key: jax.Array) -> tuple[envs.State, None]:
            a = jax.random.uniform(key, (env.num_envs, env.action_size), minval=-1, maxval=1)
            return env.step(s, a), None

        return jax.lax.scan(body, state, jax.random.split(rng, steps))[0]

    return jax.jit(run)


def bench_task(name: str, cfg: BenchEnvsConfig) -> dict[str, Any]:
    """Measures one task at every batch size; returns a JSON-able dict."""
    overrides: dict[str, Any] = {}
    if hasattr(envs.default_config(name), "impl"):
        overrides["point_cloud.source"] = cfg.point_cloud
        overrides["impl"] = cfg.impl
    config = envs.with_overrides(envs.default_config(name), overrides)
    task = envs.make(name, config)
    out: dict[str, Any] = {"task": name, "action_size": task.action_size, "batches": {}}
    if isinstance(task, MjxTask):
        out["n_substeps"] = task.config.n_substeps
        out["mujoco_c_env_sps"] = mujoco_c_env_sps(task)
    for b in cfg.batch_sizes:
        env = wrappers.wrap_for_training(task, b)
        rng = jax.random.PRNGKey(0)
        t0 = time.perf_counter()
        state = jax.block_until_ready(jax.jit(env.reset)(rng))
        row: dict[str, Any] = {"reset_compile_s": time.perf_counter() - t0}
        first, best = _timed(_env_fn(env, cfg.steps), state, rng, repeats=cfg.repeats)
        row.update(env_compile_s=first - best, env_sps=b * cfg.steps / best)
        if isinstance(task, MjxTask):
            first, best = _timed(
                _physics_fn(task, cfg.steps),
                state.data,
                jax.random.split(rng, b),
                repeats=cfg.repeats,
            )
            row.update(physics_compile_s=first - best, physics_sps=b * cfg.steps / best)
            row["env_over_physics"] = row["env_sps"] / row["physics_sps"]
            row["physics_over_mujoco_c"] = row["physics_sps"] / out["mujoco_c_env_sps"]
        out["batches"][str(b)] = row
        print(
            json.dumps({"task": name, "batch": b, **{k: round(v, 3) for k, v in row.items()}}),
            flush=True,
        )
    return out


def machine() -> dict[str, Any]:
    """Where a benchmark ran: device, platform, CPU count, jax and mujoco versions."""
    return {
        "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind,
        "platform": platform.platform(),
        "cpu_count": __import__("os").cpu_count(),
        "jax": jax.__version__,
        "mujoco": mujoco.__version__,
    }


def write_results(results: dict[str, Any], out: str, markdown: str) -> None:
    """Writes ``out`` (JSON) and the markdown table next to it (``.md``)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    path.with_suffix(".md").write_text(markdown)


def run(cfg: BenchEnvsConfig) -> dict[str, Any]:
    """Runs the benchmark, writes ``cfg.out`` and returns the results."""
    cfg.validate()
    results = {
        **machine(),
        "config": dataclasses.asdict(cfg),
        "tasks": [bench_task(name, cfg) for name in cfg.tasks],
    }
    write_results(results, cfg.out, to_markdown(results))
    return results


def to_markdown(results: dict[str, Any]) -> str:
    """A markdown table of a ``bench envs`` result (one row per task and batch size)."""
    lines = [
        f"Device: {results['device_kind']} ({results['cpu_count']} CPUs), jax {results['jax']}, "
        f"mujoco {results['mujoco']}, point cloud: {results['config']['point_cloud']}, "
        f"{results['config']['steps']} steps per timed scan.",
        "",
        "| task | batch | env steps/s | physics steps/s | env/physics | physics/MuJoCo C | "
        "MuJoCo C steps/s | compile env (s) | compile physics (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in results["tasks"]:
        c = t.get("mujoco_c_env_sps")
        for b, r in t["batches"].items():

            def f(key: str, fmt: str = "{:.0f}", row: dict = r) -> str:
                return fmt.format(row[key]) if key in row else "-"

            lines.append(
                f"| {t['task']} | {b} | {f('env_sps')} | {f('physics_sps')} | {f('env_over_physics', '{:.2f}')} "
                f"| {f('physics_over_mujoco_c', '{:.2f}')} | {f'{c:.0f}' if c else '-'} "
                f"| {f('env_compile_s', '{:.1f}')} | {f('physics_compile_s', '{:.1f}')} |"
            )
    return "\n".join(lines) + "\n"
