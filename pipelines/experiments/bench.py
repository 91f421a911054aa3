"""``dexdistill bench envs``: environment throughput per physics backend, compile time, ratios.

For each task, batch size and backend (``mujoco``: MuJoCo C through one host call per
step; ``mjx``) it times, separately from compilation:

* ``physics``: the backend's physics substeps alone (random controls, the same call the
  env makes: ``mjx.step`` in a loop, or the host ``mujoco.rollout`` round trip);
* ``env``: the full training step - randomized model, unmodeled effects,
  every observation (privileged, proprio, keypoints, point cloud), auto-reset;

and per batch size the raw ``mujoco.rollout`` rate (persistent pool, all cores, numpy
in and out, no JAX): once with one shared ``MjModel`` and once with one model per env, as
the env uses. Rates are *env* (control) steps per second; one env step is ``n_substeps``
physics steps. Each JAX measurement is one jitted ``lax.scan`` over ``steps``.
"""

from __future__ import annotations

import copy
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
from mujoco import rollout

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.envs.common import checks
from dexdistill.envs.physics import backends as physics
from dexdistill.envs.tasks.mjx_task import Impl, MjxTask
from dexdistill.pipelines.io import files

MeasuredBackend = Literal["mujoco", "mjx"]
"""The physics backends ``bench envs`` measures (``auto`` is one of them)."""


@dataclasses.dataclass(frozen=True)
class BenchEnvsConfig:
    """Options of 'dexdistill bench envs'."""

    tasks: tuple[str, ...] = ("point_mass", "dclaw_valve", "trifinger_cube", "hand_cube")
    """Tasks to measure, one after the other ('dexdistill envs' lists them)."""
    batch_sizes: tuple[int, ...] = (1, 64, 1024)
    """Numbers of parallel envs to time every task and backend at."""
    steps: int = 20
    """Control (env) steps per timed scan; rates are env steps per second."""
    repeats: int = 2
    """Timed runs after the compiling one; the fastest is the one reported."""
    point_cloud: Literal["surface", "raycast"] = "surface"
    """Point-cloud source for the 'env' measurement: 'surface' or 'raycast'."""
    impl: Impl = "jax"
    """MJX implementation: 'jax' or 'warp' (GPU)."""
    backends: tuple[MeasuredBackend, ...] = ("mujoco", "mjx")
    """Physics backends to measure side by side ('mujoco', 'mjx')."""
    raw_rollout: bool = True
    """Also time raw 'mujoco.rollout' on the host (off on accelerator machines, where
    only the MJX numbers matter and thousands of C rollouts would eat the time budget)."""
    out: str = "bench_out/envs.json"
    """Where the JSON results are written (rewritten after every batch size, so a run cut
    short by a time limit keeps what it measured)."""

    def validate(self) -> None:
        """Raises a one-line 'ValueError' naming the first bad field."""
        checks.check_types(self)
        validate_common(self.tasks, self.batch_sizes, self.repeats)
        checks.require("steps", self.steps, ge=1)
        if not self.backends:
            raise ValueError("backends=[]: name at least one of ['mujoco', 'mjx']")
        for backend in self.backends:
            checks.require("backends", backend, allowed=checks.choices(MeasuredBackend))


def validate_common(tasks: tuple[str, ...], batch_sizes: tuple[int, ...], repeats: int) -> None:
    """Checks the fields every benchmark config has (one-line ``ValueError``)."""
    unknown = [t for t in tasks if t not in envs.names()]
    if unknown or not tasks:
        raise ValueError(f"tasks={list(tasks)}: registered tasks are {envs.names()}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"batch_sizes={list(batch_sizes)}: must be non-empty, each >= 1")
    checks.require("repeats", repeats, ge=1)


def timed(fn: Any, *args: Any, repeats: int) -> tuple[float, float]:
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


def raw_rollout_sps(
    task: MjxTask,
    batch: int,
    steps: int,
    per_env_models: bool,
    qpos: np.ndarray | None = None,
    repeats: int = 5,
) -> float:
    """Env steps/s of bare ``mujoco.rollout`` (persistent pool, all cores) on ``batch`` envs.

    Random controls, ``n_substeps`` per env step, the C backend's model (pose sensors
    included); ``per_env_models`` gives every env its own ``MjModel`` copy, as the env does.
    ``qpos [batch, nq]``: start states (the env's own reset states; default: ``qpos0``).
    Timed as the env steps are (:func:`timed`): the best of ``repeats`` runs of ``steps``
    control steps, each from the same start states, after one untimed run.
    """
    m = task.physics.sensor_model if task.backend == "mujoco" else task.mj_model
    n = task.config.n_substeps
    models = [copy.copy(m) for _ in range(batch)] if per_env_models else [m] * batch
    nthread = physics.default_threads()
    datas = [mujoco.MjData(m) for _ in range(nthread)]
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    d = mujoco.MjData(m)
    mujoco.mj_resetData(m, d)
    state0 = np.zeros((batch, mujoco.mj_stateSize(m, full)))
    mujoco.mj_getState(m, d, state0[0], full)
    state0[:] = state0[0]
    if qpos is not None:
        state0[:, 1 : 1 + m.nq] = qpos
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    ctrls = np.random.default_rng(0).uniform(lo, hi, (steps, batch, 1, m.nu))
    ctrls = np.ascontiguousarray(np.repeat(ctrls, n, axis=2))

    def run(pool: rollout.Rollout) -> None:
        state = state0
        for ctrl in ctrls:
            out, _ = pool.rollout(models, datas, state, ctrl, nstep=n)
            state = np.ascontiguousarray(out[:, -1])

    with rollout.Rollout(nthread=nthread) as pool:
        _, best = timed(run, pool, repeats=repeats)
    return batch * steps / best


def _physics_fn(task: MjxTask, steps: int) -> Any:
    """Jitted ``[B]`` physics-only scan with random controls, on the task's backend."""
    lo, hi = jp.asarray(task._ctrl_lo), jp.asarray(task._ctrl_hi)

    def one(data: Any, params: dict[str, jax.Array], rng: jax.Array) -> Any:
        def body(d: Any, key: jax.Array) -> tuple[Any, None]:
            d = d.replace(ctrl=jax.random.uniform(key, lo.shape, minval=lo, maxval=hi))
            return task.physics.step(d, params), None

        return jax.lax.scan(body, data, jax.random.split(rng, steps))[0]

    return jax.jit(jax.vmap(one))


def _env_fn(env: Any, steps: int) -> Any:
    def run(state: envs.State, rng: jax.Array) -> envs.State:
        def body(s: envs.State, key: jax.Array) -> tuple[envs.State, None]:
            a = jax.random.uniform(key, (env.num_envs, env.action_size), minval=-1, maxval=1)
            return env.step(s, a), None

        return jax.lax.scan(body, state, jax.random.split(rng, steps))[0]

    return jax.jit(run)


def _make_task(name: str, cfg: BenchEnvsConfig, backend: str | None) -> Any:
    overrides: dict[str, Any] = {}
    if hasattr(envs.default_config(name), "impl"):
        overrides["point_cloud.source"] = cfg.point_cloud
        overrides["impl"] = cfg.impl
        overrides["backend"] = backend
    return envs.make(name, envs.with_overrides(envs.default_config(name), overrides))


def bench_backend(task: Any, b: int, cfg: BenchEnvsConfig) -> dict[str, Any]:
    """One task on one backend at batch ``b``: full env step and physics only."""
    env = wrappers.wrap_for_training(task, b)
    rng = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    state = jax.block_until_ready(jax.jit(env.reset)(rng))
    row: dict[str, Any] = {"reset_compile_s": time.perf_counter() - t0}
    env_fn = _env_fn(env, cfg.steps)
    first, best = timed(env_fn, state, rng, repeats=cfg.repeats)
    row.update(env_compile_s=first - best, env_sps=b * cfg.steps / best)
    host = getattr(getattr(task, "physics", None), "host", None)
    if host is not None:  # where one more env scan spends its time (MuJoCo C backend)
        busy, roll, t0 = host.busy_s, host.rollout_s, time.perf_counter()
        jax.block_until_ready(env_fn(state, rng))
        wall = time.perf_counter() - t0
        row["host_fraction"] = (host.busy_s - busy) / wall
        row["rollout_fraction"] = (host.rollout_s - roll) / wall
    if isinstance(task, MjxTask):
        first, best = timed(
            _physics_fn(task, cfg.steps),
            state.data,
            state.info["params"],
            jax.random.split(rng, b),
            repeats=cfg.repeats,
        )
        row.update(physics_compile_s=first - best, physics_sps=b * cfg.steps / best)
        row["env_over_physics"] = row["env_sps"] / row["physics_sps"]
    return row


def bench_task(name: str, cfg: BenchEnvsConfig, on_batch: Any = lambda out: None) -> dict[str, Any]:
    """Measures one task at every batch size and backend; returns a JSON-able dict.

    ``on_batch(out)`` is called with the partial result after every batch size."""
    is_mjx_task = hasattr(envs.default_config(name), "impl")
    backends = cfg.backends if is_mjx_task else ("none",)
    tasks = {bk: _make_task(name, cfg, bk if is_mjx_task else None) for bk in backends}
    first = next(iter(tasks.values()))
    out: dict[str, Any] = {"task": name, "action_size": first.action_size, "batches": {}}
    if isinstance(first, MjxTask):
        out["n_substeps"] = first.config.n_substeps
        if cfg.raw_rollout:
            out["mujoco_c_env_sps"] = mujoco_c_env_sps(first)
    for b in cfg.batch_sizes:
        row: dict[str, Any] = {}
        for bk, task in tasks.items():
            r = bench_backend(task, b, cfg)
            row.update({f"{bk}_{k}" if is_mjx_task else k: v for k, v in r.items()})
        if isinstance(first, MjxTask) and cfg.raw_rollout:
            c_task = tasks.get("mujoco", first)
            # raw rollouts start from the env's own reset states (contacts as in training)
            keys = jax.random.split(jax.random.PRNGKey(0), b)
            qpos = np.asarray(jax.jit(jax.vmap(c_task.reset))(keys).data.qpos, np.float64)
            for key, per_env in (("rollout_sps", False), ("rollout_per_env_models_sps", True)):
                row[key] = raw_rollout_sps(
                    c_task, b, cfg.steps, per_env, qpos=qpos, repeats=cfg.repeats
                )
            if "mujoco_env_sps" in row:
                row["mujoco_env_over_rollout"] = row["mujoco_env_sps"] / row["rollout_sps"]
            if "mujoco_env_sps" in row and "mjx_env_sps" in row:
                row["mujoco_over_mjx_env"] = row["mujoco_env_sps"] / row["mjx_env_sps"]
        out["batches"][str(b)] = row
        on_batch(out)
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
    path = Path(out)  # atomic: a kill between batches leaves the last complete files
    files.write_json(path, results)
    files.write_text(path.with_suffix(".md"), markdown)


def run(cfg: BenchEnvsConfig) -> dict[str, Any]:
    """Runs the benchmark, writes ``cfg.out`` and returns the results."""
    cfg.validate()
    results: dict[str, Any] = {**machine(), "config": dataclasses.asdict(cfg), "tasks": []}
    for name in cfg.tasks:
        done = list(results["tasks"])

        def partial(out: dict[str, Any], done: list = done) -> None:
            results["tasks"] = [*done, out]
            write_results(results, cfg.out, to_markdown(results))

        results["tasks"] = [*done, bench_task(name, cfg, partial)]
    write_results(results, cfg.out, to_markdown(results))
    return results


def to_markdown(results: dict[str, Any]) -> str:
    """A markdown table of a ``bench envs`` result (one row per task, batch size and backend)."""
    cfg = results["config"]
    lines = [
        f"Device: {results['device_kind']} ({results['cpu_count']} CPUs), jax {results['jax']}, "
        f"mujoco {results['mujoco']}, point cloud: {cfg['point_cloud']}, MJX impl: "
        f"{cfg['impl']}, {cfg['steps']} steps per timed scan.",
        "",
        "| task | batch | backend | env steps/s | physics steps/s | env/physics | "
        "raw rollout steps/s (shared / per-env models) | env/raw rollout | C env / MJX env "
        "| compile env (s) | compile physics (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in results["tasks"]:
        for b, r in t["batches"].items():
            prefixes = sorted({k.split("_")[0] for k in r if k.endswith("_env_sps")}) or [""]
            for bk in prefixes:
                pre = f"{bk}_" if bk else ""

                def f(key: str, fmt: str = "{:,.0f}", row: dict = r) -> str:
                    return fmt.format(row[key]) if key in row else "–"

                raw = (
                    f"{f('rollout_sps')} / {f('rollout_per_env_models_sps')}"
                    if bk == "mujoco"
                    else "–"
                )
                ratio = f("mujoco_env_over_rollout", "{:.2f}") if bk == "mujoco" else "–"
                speedup = f("mujoco_over_mjx_env", "{:.1f}×") if bk == "mujoco" else "–"
                lines.append(
                    f"| {t['task']} | {b} | {bk or '–'} | {f(pre + 'env_sps')} "
                    f"| {f(pre + 'physics_sps')} | {f(pre + 'env_over_physics', '{:.2f}')} "
                    f"| {raw} | {ratio} | {speedup} | {f(pre + 'env_compile_s', '{:.1f}')} "
                    f"| {f(pre + 'physics_compile_s', '{:.1f}')} |"
                )
    return "\n".join(lines) + "\n"
