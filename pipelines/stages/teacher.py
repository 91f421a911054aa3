"""The teacher stage: PPO training in a run directory, resumable, plus loading.

Run directory layout written here::

    DIR/config.json                 resolved config of every stage run so far, version, git commit
    DIR/teacher/checkpoints/<n>/    orbax: the whole TrainState + JSON metadata, n = iteration
    DIR/teacher/metrics.jsonl       one line per iteration (returns, success, sps, losses, timing)
    DIR/teacher/tb/                 TensorBoard event files
    DIR/teacher/eval.json           final evaluation on fresh randomized episodes

Evaluations run at the task's hardest goal level with the curriculum off
(:func:`envs.curriculum.final_config`); the final one also reports every goal level and
the level the curriculum reached.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.envs.base import headline_metric
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import rundir
from dexdistill.pipelines.configs import TeacherStageConfig
from dexdistill.pipelines.io import files, logs
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.io.logs import MetricsLog
from dexdistill.pipelines.stages import loop as stage_loop
from dexdistill.teacher import ppo
from dexdistill.teacher.networks import TeacherNetworks

FINAL_EVAL_KEY = 123_456
"""Key of the final evaluation (the distill stage evaluates its student on the same episodes)."""


def _collection_seconds(
    env: Any, nets: TeacherNetworks, ts: ppo.TrainState, cfg: ppo.PPOConfig
) -> float:
    """Seconds one rollout of ``unroll_length`` steps takes alone (after compiling)."""
    fn = jax.jit(lambda t, k: ppo.rollout(env, nets, t, k, cfg.unroll_length)[0].reward)
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(fn(ts, key))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(ts, key))
    return time.perf_counter() - t0


def run(run_dir: str | Path, cfg: TeacherStageConfig, force: bool = False) -> dict[str, Any]:
    """Trains (or resumes) the teacher in ``run_dir``; returns the final evaluation."""
    cfg.validate()
    run_dir = Path(run_dir)
    env_cfg = cfg.env_config()
    rundir.write_config(run_dir, "teacher", cfg, env_cfg, force)
    rd = rundir.RunDir(run_dir)
    stage_dir = rd.stage("teacher")
    base = envs.make(cfg.env, env_cfg)
    train_env = wrappers.wrap_for_training(base, cfg.ppo.num_envs)
    nets, iteration_fn = ppo.build(train_env, cfg.ppo)
    mesh = ppo.make_mesh()
    ts = ppo.shard_state(ppo.init_state(train_env, nets, cfg.ppo), mesh, cfg.ppo.num_envs)
    ckpt = Checkpointer(rd.checkpoints("teacher"))
    log = MetricsLog(rd.metrics("teacher"))
    ts, meta, done = stage_loop.resume("teacher", stage_dir, ckpt, log, ts)
    if done is not None:
        return done
    start = int(meta["iteration"]) if meta else 0
    eval_env = _evaluation_env(cfg.env, env_cfg, base)
    evaluator = eval_lib.make_evaluator(
        eval_env, ppo.policy_factory(nets), cfg.eval_episodes, nets.initial_carry
    )
    headline = headline_metric(base)
    has_curriculum = cur_lib.config_of(base) is not None
    collect_s = (
        _collection_seconds(train_env, nets, ts, cfg.ppo) if cfg.timing_breakdown else float("nan")
    )
    last_eval: dict[str, float] = {}

    def step(ts: ppo.TrainState, i: int) -> tuple[ppo.TrainState, dict[str, Any]]:
        ts, metrics = iteration_fn(ts)
        metrics = jax.device_get(metrics)
        if not np.isfinite(metrics["policy_loss"]) or not np.isfinite(metrics["value_loss"]):
            raise FloatingPointError(
                f"teacher stage: non-finite loss at iteration {i + 1}; last good checkpoint "
                f"kept (step {ckpt.latest_step()}); try a lower --ppo.learning-rate"
            )
        return ts, {"env_steps": int(ts.env_steps), **{k: float(v) for k, v in metrics.items()}}

    def observe(ts: ppo.TrainState, i: int, eval_due: bool, record: dict[str, Any]) -> None:
        record.update(collect_s=collect_s, update_s=record["iteration_s"] - collect_s)
        if eval_due:
            res = evaluator((ts.params, ts.normalizer), jax.random.PRNGKey(10_000 + i))
            last_eval.update(
                eval_lib.summarize(jax.device_get(res), headline, base.dt, table=False)
            )
            record.update({f"eval/{k}": v for k, v in last_eval.items()})

    def save(ts: ppo.TrainState, i: int, finished: bool, record: dict[str, Any]) -> None:
        meta = {"iteration": i, "env_steps": int(ts.env_steps), "finished": finished}
        meta = {**meta, "goal_level": int(ts.curriculum.level), "record": logs.clean_record(record)}
        ckpt.save(i, ts, meta)

    def postfix(ts: ppo.TrainState, record: dict[str, Any]) -> dict[str, Any]:
        level = int(ts.curriculum.level) if has_curriculum else None
        return progress_items(record, last_eval, headline, level)

    loop = stage_loop.LoopConfig(
        name="teacher",
        total=cfg.ppo.num_iterations,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        max_minutes=cfg.max_minutes,
        rate_key="env_steps_per_s",
        work_per_iteration=cfg.ppo.steps_per_iteration,
    )
    end = stage_loop.run(loop, ts, start, log, step, save, observe, postfix)
    if not end.finished:
        return {"finished": False, "iteration": end.iteration}
    ts = end.state
    return final_evaluation(run_dir, nets, ts, cfg, evaluator, eval_env, level_reached(base, ts))


def progress_items(
    record: dict[str, Any], last_eval: dict[str, float], headline: str, level: int | None
) -> dict[str, Any]:
    """The progress line's items: steps, throughput, the last evaluation's headline (at the
    hardest goal level) and, with a curriculum, the level and the training success at it
    (the curriculum's window mean), which is what moves while the hardest level reads 0."""
    out = {"steps": record["env_steps"], "sps": record["env_steps_per_s"]}
    out[headline] = last_eval.get("headline", float("nan"))
    if level is not None:
        out["level"] = level
        out["level_success"] = record["curriculum/window_mean"]
    return out


def _evaluation_env(name: str, env_cfg: Any, base: Any) -> Any:
    """The env evaluations run on: ``base`` at its hardest goal level, curriculum off."""
    return base if cur_lib.is_final(env_cfg) else envs.make(name, cur_lib.final_config(env_cfg))


def level_reached(env: Any, ts: ppo.TrainState) -> int:
    """The goal level training ended at: the curriculum's, else the level ``env`` uses."""
    if cur_lib.config_of(env) is not None:
        return int(ts.curriculum.level)
    return int(getattr(getattr(env, "unwrapped", env), "start_level", 0))


def final_evaluation(
    run_dir: Path,
    nets: TeacherNetworks,
    ts: ppo.TrainState,
    cfg: TeacherStageConfig,
    evaluator: Any,
    eval_env: Any,
    reached: int = 0,
) -> dict[str, Any]:
    """Evaluates on ``final_eval_episodes`` fresh randomized episodes; writes ``eval.json``.

    ``evaluator`` runs ``eval_episodes`` episodes of ``eval_env``; it is reused in chunks
    (no extra compile). A task with goal levels is evaluated at each level too (same keys,
    one more compile), under ``levels``, with the level training reached (``curriculum``).
    """
    headline = headline_metric(eval_env)
    params, key = (ts.params, ts.normalizer), jax.random.PRNGKey(FINAL_EVAL_KEY)
    n, chunk = cfg.final_eval_episodes, cfg.eval_episodes
    res = eval_lib.evaluate_chunks(evaluator, params, key, n, chunk)
    names = cur_lib.levels_of(eval_env)
    summary = rundir.evaluation(
        eval_lib.record(res, headline, eval_env.dt),
        policy="teacher",
        task=cfg.env,
        goal_level=names[-1] if names else None,  # the hardest level, curriculum off
        randomization="train",
        physics_backend=getattr(eval_env, "backend", "none"),
        episodes=n,
        finished=True,
    )
    if names:
        summary["curriculum"] = {"level": reached, "level_name": names[reached]}
        hardest = {k: v for k, v in summary.items() if k not in ("finished", "curriculum")}
        summary["levels"] = {  # easiest first; the hardest is the main evaluation above
            name: eval_lib.record(
                eval_lib.evaluate_chunks(evaluator, params, key, n, chunk, level=k),
                headline,
                eval_env.dt,
            )
            for k, name in enumerate(names[:-1])
        }
        summary["levels"][names[-1]] = hardest
    summary["env_steps"] = int(ts.env_steps)
    summary["per_episode"] = {
        k: np.asarray(res[k]).tolist() for k in dict.fromkeys(("success", "return", headline))
    }
    files.write_json(rundir.RunDir(run_dir).final_eval("teacher"), summary)
    return summary
