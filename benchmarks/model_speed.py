"""How fast each task's model runs on MuJoCo C, per physics setting, and what it costs in fidelity.

For trifinger_cube and hand_cube (or ``--tasks``), every variant (timestep / substeps,
solver iterations, line-search iterations, friction cone) is run side by side in one
process:

* ``sps``: env steps/s of bare ``mujoco.rollout`` (persistent pool, ``--threads``) over
  ``--batch`` envs with one ``MjModel`` per env, from the env's own reset states;
* ``drift_mm`` / ``drift_deg``: after ``--seconds`` of the same smooth random joint
  targets from the same start states, how far the object ends from where the reference
  setting (each task's first variant: the settings before issue 12) puts it (median over
  envs, mm and degrees);
* ``yardstick``: the same drift between the reference and the reference with friction
  x0.9 (well inside the training randomization): a variant whose drift is at most this
  changes the task less than the randomization already does;
* ``diverged``: envs whose state became non-finite or whose object left the arena.

Run: ``python benchmarks/model_speed.py --out docs/bench/model_speed`` (writes .json, .md).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import jax
import mujoco
import numpy as np
from mujoco import rollout

from dexdistill import envs
from dexdistill.envs.tasks import geometry


def _variants(substeps_before: int, substeps_now: int, note: str = "") -> dict[str, dict]:
    """The settings compared for one task; the first is the reference."""
    fast = {"solver_iterations": 2, "ls_iterations": 3}
    return {
        f"sim_dt 0.005 ({substeps_before} substeps; the default before issue 12)": {
            "sim_dt": 0.005
        },
        f"sim_dt 0.01 ({substeps_now} substeps{note}; the default)": {"sim_dt": 0.01},
        "sim_dt 0.005, solver 2 / ls 3": {"sim_dt": 0.005, **fast},
        "sim_dt 0.01, solver 2 / ls 3": {"sim_dt": 0.01, **fast},
        "sim_dt 0.005, elliptic cone": {"sim_dt": 0.005, "_cone": "elliptic"},
    }


VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "trifinger_cube": _variants(4, 2),
    "hand_cube": _variants(10, 5, ", as Playground's LEAP"),
}
"""Per task: the first variant is the reference every drift and speed-up is measured from."""


def _task(name: str, overrides: dict[str, Any]) -> Any:
    fields = {k: v for k, v in overrides.items() if not k.startswith("_")}
    return envs.make(name, envs.with_overrides(envs.default_config(name), fields))


def _model(task: Any, overrides: dict[str, Any], friction: float = 1.0) -> mujoco.MjModel:
    m = copy.copy(task.mj_model)
    if overrides.get("_cone") == "elliptic":
        m.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    m.geom_friction[:, 0] *= friction
    return m


def _start_states(task: Any, batch: int) -> np.ndarray:
    """``[batch, nstate]`` full physics states from the env's own resets (randomization off)."""
    reset = jax.jit(jax.vmap(task.reset))
    s = reset(jax.random.split(jax.random.PRNGKey(0), batch))
    qpos = np.asarray(s.data.qpos, np.float64)
    m = task.mj_model
    d = mujoco.MjData(m)
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros((batch, mujoco.mj_stateSize(m, full)))
    for i in range(batch):
        mujoco.mj_resetData(m, d)
        d.qpos[:] = qpos[i]
        mujoco.mj_forward(m, d)
        mujoco.mj_getState(m, d, state[i], full)
    return state


def _controls(task: Any, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    """``[batch, steps, nu]`` smooth random joint targets (a random walk in the ctrl range)."""
    lo, hi = task._ctrl_lo.astype(np.float64), task._ctrl_hi.astype(np.float64)
    rng = np.random.default_rng(seed)
    mid = 0.5 * (lo + hi)
    walk = np.cumsum(rng.normal(0.0, 0.05, (batch, steps, len(lo))), axis=1)
    return np.clip(mid + walk * (hi - lo), lo, hi)


def _run(
    pool: rollout.Rollout,
    m: mujoco.MjModel,
    n_sub: int,
    state0: np.ndarray,
    ctrl: np.ndarray,
    nthread: int,
) -> tuple[np.ndarray, float]:
    """Final states ``[B, nstate]`` after ``ctrl [B, T, nu]`` held ``n_sub`` substeps each."""
    batch, steps, _ = ctrl.shape
    models = [copy.copy(m) for _ in range(batch)]
    datas = [mujoco.MjData(m) for _ in range(nthread)]
    nstate = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    out = np.empty((batch, n_sub, nstate))
    sensors = np.empty((batch, n_sub, m.nsensordata))
    warm = np.zeros((batch, m.nv))
    qvel = slice(1 + m.nq, 1 + m.nq + m.nv)
    state = np.ascontiguousarray(state0)
    t0 = time.perf_counter()
    for t in range(steps):
        c = np.ascontiguousarray(np.repeat(ctrl[:, t : t + 1], n_sub, axis=1))
        pool.rollout(
            models,
            datas,
            state,
            c,
            nstep=n_sub,
            skip_checks=True,
            initial_warmstart=warm,
            state=out,
            sensordata=sensors,
        )
        state = np.ascontiguousarray(out[:, -1])
        if n_sub > 1:  # the env's warm start: the last substep's acceleration
            warm = np.ascontiguousarray((out[:, -1, qvel] - out[:, -2, qvel]) / m.opt.timestep)
    return state, batch * steps / (time.perf_counter() - t0)


def _object_pose(task: Any, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object position ``[B, 3]`` and quaternion ``[B, 4]`` from full physics states."""
    q = state[:, 1 : 1 + task.mj_model.nq]
    a = task._obj_qadr
    return q[:, a : a + 3], q[:, a + 3 : a + 7]


def _drift(task: Any, ref: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """Median object position (mm) and angle (deg) difference; fraction diverged."""
    p0, q0 = _object_pose(task, ref)
    p1, q1 = _object_pose(task, other)
    bad = ~np.all(np.isfinite(other), axis=1) | (np.linalg.norm(p1[:, :2], axis=1) > 0.5)
    ok = ~bad
    if not ok.any():
        return float("nan"), float("nan"), 1.0
    dpos = 1000 * np.linalg.norm(p1[ok] - p0[ok], axis=1)
    q0n = q0[ok] / np.linalg.norm(q0[ok], axis=1, keepdims=True)
    q1n = q1[ok] / np.linalg.norm(q1[ok], axis=1, keepdims=True)
    ang = np.degrees(np.asarray(jax.vmap(geometry.rotation_angle)(q0n, q1n)))
    return float(np.median(dpos)), float(np.median(ang)), float(bad.mean())


def bench_task(name: str, batch: int, seconds: float, nthread: int) -> list[dict[str, Any]]:
    reference = next(iter(VARIANTS[name].values()))
    base = _task(name, reference)
    state0 = _start_states(_task(name, {"randomization.physics.enabled": False}), batch)
    steps = int(round(seconds / base.config.ctrl_dt))
    ctrl = _controls(base, batch, steps)
    rows = []
    with rollout.Rollout(nthread=nthread) as pool:
        ref, _ = _run(pool, base.mj_model, base.config.n_substeps, state0, ctrl, nthread)
        yard, _ = _run(pool, _model(base, {}, 0.9), base.config.n_substeps, state0, ctrl, nthread)
        yardstick = _drift(base, ref, yard)
        for label, overrides in VARIANTS[name].items():
            task = _task(name, overrides)
            m = _model(task, overrides)
            _run(pool, m, task.config.n_substeps, state0, ctrl[:, :2], nthread)  # warm up
            final, sps = _run(pool, m, task.config.n_substeps, state0, ctrl, nthread)
            dpos, dang, bad = _drift(base, ref, final)
            rows.append(
                {
                    "task": name,
                    "variant": label,
                    "overrides": overrides,
                    "substeps": task.config.n_substeps,
                    "sps": sps,
                    "drift_mm": dpos,
                    "drift_deg": dang,
                    "diverged": bad,
                    "yardstick_mm": yardstick[0],
                    "yardstick_deg": yardstick[1],
                    "batch": batch,
                    "seconds_simulated": seconds,
                    "threads": nthread,
                }
            )
            print(
                f"{name:15s} {label:55s} {sps:9.0f} env steps/s  drift {dpos:6.2f} mm "
                f"{dang:6.2f} deg  diverged {bad:.2f}  (friction x0.9: {yardstick[0]:.2f} mm "
                f"{yardstick[1]:.2f} deg)",
                flush=True,
            )
    base_sps = rows[0]["sps"]
    for r in rows:
        r["speedup"] = r["sps"] / base_sps
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| task | setting | substeps | env steps/s | × reference | object drift (mm / deg) "
        "| friction ×0.9 drift (mm / deg) | diverged |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['variant']} | {r['substeps']} | {r['sps']:.0f} | "
            f"{r['speedup']:.2f} | {r['drift_mm']:.1f} / {r['drift_deg']:.1f} | "
            f"{r['yardstick_mm']:.1f} / {r['yardstick_deg']:.1f} | {r['diverged']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(VARIANTS))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="")
    args = p.parse_args()
    rows = [r for t in args.tasks for r in bench_task(t, args.batch, args.seconds, args.threads)]
    md = to_markdown(rows)
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
        out.with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()
