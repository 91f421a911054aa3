"""The evaluation stage: a trained teacher or student on fresh episodes, plus robustness sweeps.

``run(run_dir, cfg)`` loads the run directory's teacher (``DIR/teacher``) or student
(``DIR/student``), builds its task under the chosen condition, evaluates it on
``episodes`` fresh episodes and writes::

    DIR/eval/<policy>_<randomization>[_<backend>].json

with the success rate and its 95% interval, mean return and length, Dactyl's table of
consecutive successes and the drop rate (``hand_cube``), the student's gap to the
teacher on the *same* episodes, and, per requested sweep, success against one
parameter fixed at values from inside to well outside its training range.

What this module owns is the stage: loading, compiling and timing, the file. The
conditions (``train``, ``none``, ``heldout``, ``reality``, ``--backend``) are pure config
transforms in :mod:`envs.conditions`, the sweeps are :mod:`envs.sweeps`, the evaluator
itself is :mod:`envs.evaluate` and the printed table :mod:`pipelines.eval_table`.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill import envs
from dexdistill.envs.base import headline_metric
from dexdistill.envs.evaluation import evaluate as eval_lib, sweeps as sweep_lib
from dexdistill.envs.sim2real import conditions as cond_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import config_io, rundir
from dexdistill.pipelines.configs import EvaluateConfig
from dexdistill.pipelines.io import files
from dexdistill.pipelines.outputs import eval_table

# --------------------------------------------------------------------------- evaluators


@dataclasses.dataclass
class _Policy:
    """A loaded policy as ``make_evaluator`` wants it: a params factory and its params."""

    factory: Callable[[Any], Callable]
    params: Any
    init_carry: Callable[[int], Any]


def _as_policy(loaded: Any, kind: str) -> _Policy:
    """Params are passed as arguments (not baked into the compiled program as constants)."""
    if kind == "teacher":
        return _Policy(
            lambda p: dataclasses.replace(loaded, params=p[0], normalizer=p[1]).policy(True),
            (loaded.params, loaded.normalizer),
            loaded.initial_carry,
        )
    return _Policy(
        lambda p: dataclasses.replace(loaded, params=p).policy(True),
        loaded.params,
        loaded.initial_carry,
    )


class _Timer:
    """Seconds spent compiling vs running, summed over all evaluators."""

    def __init__(self) -> None:
        self.compile_s = 0.0
        self.run_s = 0.0

    def compile(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        self.compile_s += time.perf_counter() - t0
        return compiled

    def call(self, compiled: Any, *args: Any) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = jax.device_get(compiled(*args))
        self.run_s += time.perf_counter() - t0
        return out


def _evaluate(
    env: Any,
    policy: _Policy,
    episodes: int,
    key: jax.Array,
    timer: _Timer,
    reference: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Per-episode results ``{name: [episodes]}`` of one policy on ``env``."""
    fn = eval_lib.make_evaluator(env, policy.factory, episodes, policy.init_carry, reference)
    return timer.call(timer.compile(fn, policy.params, key), policy.params, key)


# --------------------------------------------------------------------------- the stage


def _load(run_dir: Path, policy: str) -> tuple[Any, Any]:
    """(loaded policy, loaded teacher or None); FileNotFoundError names the command to run."""
    if policy == "teacher":
        return rundir.load_teacher(run_dir), None
    student = rundir.load_student(run_dir)
    return student, rundir.load_teacher(run_dir)


def _run_sweep(
    name: str,
    env_config: Any,
    sweep: sweep_lib.Sweep,
    cfg: EvaluateConfig,
    roles: list[tuple[str, _Policy, Callable | None]],
    key: jax.Array,
    timer: _Timer,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """One row per value: ``value``, ``success_rate``, ``success_ci95`` (+ the teacher's)."""
    values = sweep.values(cfg.sweep_points)
    for v in values:  # concrete validation first: a traced config is never validated
        sweep.apply(env_config, v).validate()
    rows: list[dict[str, Any]] = [{"value": v} for v in values]
    base = envs.make(name, env_config) if sweep.traced else None
    for role, policy, reference in roles:
        compiled = None
        if base is not None:
            fn = sweep_lib.make_sweep_evaluator(
                base, sweep, policy.factory, cfg.sweep_episodes, policy.init_carry, reference
            )
            compiled = timer.compile(fn, policy.params, key, jp.float32(values[0]))
        for row, v in zip(rows, values, strict=True):
            if compiled is not None:
                res = timer.call(compiled, policy.params, key, jp.float32(v))
            else:
                env = envs.make(name, sweep.apply(env_config, v))
                res = _evaluate(env, policy, cfg.sweep_episodes, key, timer, reference)
            s = eval_lib.summarize(res)
            prefix = "" if role == "policy" else "teacher_"
            row[f"{prefix}success_rate"] = s["success_rate"]
            row[f"{prefix}success_ci95"] = s["success_ci95"]
            say(f"evaluate: {sweep.name}={v} {role} success {s['success_rate']:.3f}")
    return rows


def output_name(cfg: EvaluateConfig) -> str:
    """``<policy>_<randomization>[_<backend>][_<overrides>]``: the result's file name."""
    parts = [cfg.policy, cfg.randomization]
    parts += [] if cfg.backend == "trained" else [cfg.backend]
    parts += [re.sub(r"[^A-Za-z0-9_.=-]+", "", o) for o in cfg.env_overrides]
    return "_".join(parts)


def run(run_dir: str | Path, cfg: EvaluateConfig, verbose: bool = True) -> dict[str, Any]:
    """Evaluates the run directory's ``cfg.policy``; writes and returns the result dict.

    Writes ``DIR/eval/<policy>_<randomization>.json`` and prints its table.
    Raises ``FileNotFoundError`` (naming the command to run first) when the policy is
    missing, ``ValueError`` for an invalid config or a sweep that does not apply to the task.
    """
    t_start = time.perf_counter()
    cfg.validate()
    run_dir = Path(run_dir)
    say = print if verbose else (lambda _: None)
    loaded, teacher = _load(run_dir, cfg.policy)
    name = loaded.env_name
    # tasks with goal levels: the hardest level, curriculum off (envs.curriculum)
    env_config = cur_lib.final_config(loaded.env_config)
    env_config = envs.with_overrides(env_config, config_io.parse_overrides(cfg.env_overrides))
    env_config = cond_lib.eval_env_config(env_config, cfg.randomization)
    env_config = cond_lib.on_backend(env_config, cfg.backend)
    env_config.validate()
    sweeps = sweep_lib.resolve_sweeps(name, env_config, cfg.sweeps)
    policy = _as_policy(loaded, cfg.policy)
    roles: list[tuple[str, _Policy, Callable | None]] = [("policy", policy, None)]
    if teacher is not None:
        roles = [
            ("policy", policy, teacher.policy(deterministic=True)),
            ("teacher", _as_policy(teacher, "teacher"), None),
        ]
    timer = _Timer()
    key = jax.random.PRNGKey(cfg.seed)
    env = envs.make(name, env_config)
    physics = getattr(env, "backend", "none")
    say(
        f"evaluate: {cfg.policy} on {name} ({cfg.randomization}, physics {physics}), "
        f"{cfg.episodes} episodes"
    )
    levels = cur_lib.levels_of(env)
    header = {  # the hardest level, curriculum off (final_config above)
        "task": name,
        "goal_level": levels[env.start_level] if levels else None,
        "randomization": cfg.randomization,
        "physics_backend": physics,
        "episodes": cfg.episodes,
    }
    head = (headline_metric(env), env.dt)
    body = eval_lib.record(_evaluate(env, policy, cfg.episodes, key, timer, roles[0][2]), *head)
    result = rundir.evaluation(body, policy=cfg.policy, **header, seed=cfg.seed)
    if teacher is not None:
        t = eval_lib.record(_evaluate(env, roles[1][1], cfg.episodes, key, timer), *head)
        result["teacher_success_rate"] = t["success_rate"]
        result["teacher_success_ci95"] = t["success_ci95"]
        result["gap"] = t["success_rate"] - result["success_rate"]
        result["headline_gap"] = t["headline"] - result["headline"]
        result["teacher"] = rundir.evaluation(t, policy="teacher", **header)
    if sweeps:
        result["robustness"] = {
            s.name: _run_sweep(name, env_config, s, cfg, roles, key, timer, say) for s in sweeps
        }
        result["sweep_episodes"] = cfg.sweep_episodes
    result["compile_s"] = timer.compile_s
    result["run_s"] = timer.run_s
    result["eval_s"] = time.perf_counter() - t_start
    result["config"] = config_io.to_dict(cfg)
    result["randomization_config"] = config_io.to_dict(env_config.randomization)
    out = rundir.RunDir(run_dir).evaluation(output_name(cfg))
    files.write_json(out, result)
    say(eval_table.format_table(result))
    return result
