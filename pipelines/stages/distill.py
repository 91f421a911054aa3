"""The distillation stage: DAgger from the run directory's teacher, resumable, plus loading.

Run directory layout written here (next to the teacher's)::

    DIR/student/checkpoints/<n>/   orbax: the whole DistillState + JSON metadata (iteration,
                                   beta, dataset cursor, last success), n = iteration
    DIR/student/metrics.jsonl      one line per DAgger iteration
    DIR/student/tb/                TensorBoard event files
    DIR/student/eval.json          final evaluation: student vs teacher on the same episodes
    DIR/dataset/                   TFDS array_record dataset, RLDS layout (pipelines/dataset.py)
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.distill import dagger as dagger_lib, diagnostics
from dexdistill.distill.schedules import next_beta
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import config_io, rundir
from dexdistill.pipelines.configs import DistillStageConfig
from dexdistill.pipelines.io import (
    dataset as dataset_lib,
    distributed,
    episodes as episode_files,
    files,
    logs,
)
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.io.logs import MetricsLog
from dexdistill.pipelines.stages import loop as stage_loop, teacher as teacher_stage
from dexdistill.pipelines.stages.distill_setup import (
    Setup,
    build,
    policy_spec,
    resolved_config,
    shard,
)
from dexdistill.student.networks import make_policy
from dexdistill.teacher import ppo


def _evaluators(setup: Setup, episodes: int) -> tuple[Any, Any]:
    nets, teacher = setup.nets, setup.teacher.policy(deterministic=True)
    student_eval = eval_lib.make_evaluator(
        setup.base,
        lambda p: make_policy(nets, p, deterministic=True),
        episodes,
        nets.initial_carry,
        reference=teacher,
        # records one episode per evaluation: the report renders the final one (no compile)
        record=functools.partial(episode_files.physics_fields, setup.base),
    )
    # the teacher's parameters are arguments (not constants), as in the teacher stage: the
    # program is then the teacher stage's evaluator and comes from the compilation cache
    t = setup.teacher
    factory = ppo.policy_factory(t.nets)
    t_eval = eval_lib.make_evaluator(setup.base, factory, episodes, t.nets.initial_carry)
    return student_eval, lambda _, key, *level: t_eval((t.params, t.normalizer), key, *level)


def _teacher_reference(
    stage_dir: Path,
    setup: Setup,
    cfg: DistillStageConfig,
    teacher_eval: Any,
    name: str,
    key: jax.Array,
    episodes: int,
) -> dict:
    """Teacher results on the student's evaluation episodes (cached in ``stage_dir``).

    The final student evaluation uses the teacher stage's final-evaluation key and chunking,
    so when the env config and episode counts match, the teacher's own final evaluation
    (``teacher/eval.json``, per episode) *is* its result on the same episodes: reused
    rather than recomputed. Otherwise (and always for the per-iteration evaluations, which
    have their own seed) the teacher is evaluated here.
    """
    path = rundir.RunDir(stage_dir.parent).teacher_reference(name)
    if path.exists():
        return json.loads(path.read_text())
    reusable = name == "final"  # only the final evaluation uses the teacher stage's episodes
    res = _teacher_final_episodes(stage_dir.parent, setup, cfg, episodes) if reusable else None
    if res is None:
        res = eval_lib.evaluate_chunks(teacher_eval, None, key, episodes, cfg.eval_episodes)
    summary = rundir.evaluation(
        eval_lib.record(res, *setup.headline), **_header(setup, "teacher", episodes)
    )
    files.write_json(path, summary)
    return summary


def _header(setup: Setup, policy: str, episodes: int) -> dict[str, Any]:
    """The evaluation header (``rundir.evaluation``) of the distill stage's evaluations."""
    levels = cur_lib.levels_of(setup.base)
    return {
        "policy": policy,
        "task": setup.teacher.env_name,
        "goal_level": levels[setup.base.start_level] if levels else None,
        "randomization": "train",
        "physics_backend": getattr(setup.base, "backend", "none"),
        "episodes": episodes,
    }


def _teacher_final_episodes(
    run_dir: Path, setup: Setup, cfg: DistillStageConfig, episodes: int
) -> dict[str, np.ndarray] | None:
    """The first ``episodes`` of the teacher's final evaluation, if they are the same episodes
    (same env config, same episode count and chunking, hence the same keys)."""
    path = rundir.RunDir(run_dir).final_eval("teacher")
    data = json.loads(path.read_text()) if path.exists() else {}
    tcfg = setup.teacher.stage_config
    teacher_eval_cfg = cur_lib.final_config(setup.teacher.env_config)  # the teacher stage's
    same_env = config_io.to_dict(teacher_eval_cfg) == config_io.to_dict(setup.base.config)
    same_chunks = (tcfg.eval_episodes, tcfg.final_eval_episodes) == (
        cfg.eval_episodes,
        cfg.final_eval_episodes,
    )
    per = data.get("per_episode")
    if not (per and same_env and same_chunks):
        return None
    return {k: np.asarray(v[:episodes]) for k, v in per.items()}


FINAL_KEY = teacher_stage.FINAL_EVAL_KEY
ITERATION_EVAL_KEY = FINAL_KEY + 1
"""Seed of the per-iteration student evaluations (and the success-gated beta): other
episodes than the final evaluation's, so that no test episode is reused for decisions."""


def run(run_dir: str | Path, cfg: DistillStageConfig, force: bool = False) -> dict[str, Any]:
    """Runs (or resumes) DAgger in ``run_dir`` against its teacher; returns the final evaluation."""
    cfg.validate()
    run_dir = Path(run_dir)
    setup = build(run_dir, cfg)
    resolved = resolved_config(cfg, setup)
    rundir.write_config(run_dir, "distill", resolved, setup.base.config, force)
    rd = rundir.RunDir(run_dir)
    stage_dir = rd.stage("student")
    stage_dir.mkdir(parents=True, exist_ok=True)
    dcfg = setup.cfg
    mesh = ppo.make_mesh()
    ds = shard(
        dagger_lib.init_state(setup.env, setup.nets, setup.rollout, dcfg), mesh, dcfg.num_envs
    )
    ckpt = Checkpointer(rd.checkpoints("student"))
    log = MetricsLog(rd.metrics("student"))
    ds, meta, done = stage_loop.resume("distill", stage_dir, ckpt, log, ds)
    if done is not None:
        return done
    meta = meta or {"iteration": 0, "beta": 1.0, "student_success": 0.0}
    start = int(meta["iteration"])
    cursor = dataset_lib.Cursor.from_json(meta.get("dataset"))
    writer = _writer(run_dir, cfg, setup, ds, cursor)
    student_eval, teacher_eval = _evaluators(setup, cfg.eval_episodes)
    key = jax.random.PRNGKey(ITERATION_EVAL_KEY)
    teacher_ref = _teacher_reference(
        stage_dir, setup, cfg, teacher_eval, "eval", key, cfg.eval_episodes
    )
    provenance = _provenance(setup, run_dir)
    spec = policy_spec(setup)  # checkpoint metadata: what load() builds the networks from
    # the schedule's inputs: the last beta and the student's last evaluation (checkpointed)
    sched = {"beta": float(meta["beta"]), "success": float(meta["student_success"])}

    def step(ds: dagger_lib.DistillState, i: int) -> tuple[Any, dict[str, Any]]:
        beta = next_beta(
            dcfg.beta, i, sched["beta"], sched["success"], eval_lib.headline(teacher_ref)
        )
        sched["beta"] = beta
        ds, seq, metrics = setup.iteration(ds, jp.asarray(beta, jp.float32))
        if cfg.write_dataset:
            episodes = {k: v for k, v in seq.items() if not k.startswith("prefix_")}
            if jax.process_count() > 1:  # the primary writes every host's episodes
                episodes = distributed.to_host(episodes)
            if writer is not None:
                meta_i = {**provenance, "iteration": i, "beta": beta, "student_step": i}
                writer.submit(episodes, meta_i)
        metrics = jax.device_get(metrics)
        _check_finite(metrics, i + 1, ckpt)
        record = {"beta": beta, "labelled_samples": (i + 1) * samples}
        return ds, {**record, **{k: float(v) for k, v in metrics.items() if k != "beta"}}

    def observe(ds: Any, i: int, eval_due: bool, record: dict[str, Any]) -> None:
        if not eval_due:
            return
        t1 = time.perf_counter()
        res = eval_lib.summarize(
            jax.device_get(student_eval(ds.params, key)), *setup.headline, table=False
        )
        sched["success"] = res["headline"]
        record.update({f"eval/{k}": v for k, v in res.items() if k != "headline_metric"})
        record["eval_s"] = time.perf_counter() - t1
        record["teacher/success_rate"] = teacher_ref["success_rate"]
        record["teacher/headline"] = eval_lib.headline(teacher_ref)
        record["gap"] = eval_lib.headline(teacher_ref) - res["headline"]

    def save(ds: Any, i: int, finished: bool, record: dict[str, Any]) -> None:
        nonlocal cursor
        cursor = writer.wait() if writer is not None else cursor
        record["dataset/episodes"] = cursor.episodes
        meta = {
            "iteration": i,
            "beta": sched["beta"],
            "student_success": sched["success"],
            "dataset": cursor.to_json(),
            "finished": finished,
            "policy": spec,
            "record": logs.clean_record(record),  # the log line, should a kill come first
        }
        ckpt.save(i, ds, meta, policy={"params": ds.params})

    def postfix(ds: Any, record: dict[str, Any]) -> dict[str, Any]:
        out = {"beta": record["beta"], "samples_per_s": record["samples_per_s"]}
        return {**out, setup.headline[0]: sched["success"]}

    samples = dcfg.num_envs * dcfg.unroll_length
    loop = stage_loop.LoopConfig(
        name="distill",
        total=dcfg.iterations,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        max_minutes=cfg.max_minutes,
        rate_key="samples_per_s",
        work_per_iteration=samples,
    )
    end = stage_loop.run(loop, ds, start, log, step, save, observe, postfix)
    if writer is not None:
        writer.close()
    if not end.finished:
        return {"finished": False, "iteration": end.iteration}
    ds = end.state
    return final_evaluation(stage_dir, setup, ds, cfg, (student_eval, teacher_eval))


def _check_finite(metrics: dict[str, Any], i: int, ckpt: Checkpointer) -> None:
    if not np.isfinite(metrics["fit/loss"]):
        raise FloatingPointError(
            f"distill stage: non-finite loss at iteration {i}; last good checkpoint kept "
            f"(step {ckpt.latest_step()}); try a lower --dagger.fit.learning-rate"
        )


def _provenance(setup: Setup, run_dir: Path) -> dict[str, Any]:
    ckpt = Checkpointer(rundir.RunDir(run_dir).checkpoints("teacher"))
    return {
        "task": setup.teacher.env_name,
        "mixing": setup.cfg.mixing,
        "randomization": json.dumps(config_io.to_dict(setup.base.config.randomization)),
        "teacher_step": int(ckpt.latest_step() or 0),
        "seed": setup.cfg.seed,
    }


def _writer(
    run_dir: Path,
    cfg: DistillStageConfig,
    setup: Setup,
    ds: dagger_lib.DistillState,
    cursor: dataset_lib.Cursor,
) -> dataset_lib.DatasetWriter | None:
    if not cfg.write_dataset or not distributed.is_primary():
        return None
    example = jax.eval_shape(
        lambda: dagger_lib.sequence_major(
            setup.rollout(ds.params, ds.carry, jp.ones(()), jax.random.PRNGKey(0))[1]
        )
    )
    description = (
        f"DAgger data for {setup.teacher.env_name}: student observations, teacher labels "
        f"(mean, std), executed actions and provenance per episode. Written by dexdistill."
    )
    return dataset_lib.DatasetWriter(rundir.RunDir(run_dir).dataset, example, cursor, description)


def final_evaluation(
    stage_dir: Path,
    setup: Setup,
    ds: dagger_lib.DistillState,
    cfg: DistillStageConfig,
    evaluators: tuple[Any, Any],
) -> dict[str, Any]:
    """Student and teacher on the same ``final_eval_episodes`` fresh episodes; writes eval.json
    and the first episode's physics (``RunDir.episode``, rendered by the report).

    ``evaluators`` run ``eval_episodes`` each (reused in chunks: no extra compile).
    """
    student_eval, teacher_eval = evaluators
    key = jax.random.PRNGKey(FINAL_KEY)
    n, chunk = cfg.final_eval_episodes, cfg.eval_episodes
    teacher = _teacher_reference(stage_dir, setup, cfg, teacher_eval, "final", key, n)
    res = eval_lib.evaluate_chunks(student_eval, ds.params, key, n, chunk)
    frames = res.pop("frames")
    episode_files.save_episode(
        rundir.RunDir(stage_dir.parent).episode, frames, setup.teacher.env_name, setup.base.config
    )
    summary = rundir.evaluation(
        eval_lib.record(res, *setup.headline),  # has the action error on the student's states
        **_header(setup, "student", n),
        finished=True,
        teacher=teacher,
    )
    # gap and ratio compare the task's headline metric (hand_cube: consecutive successes)
    summary["gap"] = eval_lib.headline(teacher) - summary["headline"]
    summary["ratio"] = headline_ratio(summary["headline"], eval_lib.headline(teacher))
    summary.update(_at_hardest_level(setup, ds, cfg, evaluators, key))
    if "proprio" in setup.nets.config.input_keys:
        reliance = jax.jit(lambda p, b, k: diagnostics.last_action_reliance(setup.nets, p, b, k))
        copycat = jax.device_get(reliance(ds.params, ds.buffer, jax.random.PRNGKey(FINAL_KEY)))
        summary["copycat"] = {k: float(v) for k, v in copycat.items()}
    files.write_json(rundir.RunDir(stage_dir.parent).final_eval("student"), summary)
    return summary


def headline_ratio(student: float, teacher: float) -> float | None:
    """Student over teacher headline on the same episodes; ``None`` (JSON null) when the
    teacher scored 0 there, where a ratio means nothing (it printed 1.6e7 for a student at
    0.016 against a teacher at 0 on trifinger's pose goals)."""
    return student / teacher if teacher > 0 else None


def _at_hardest_level(
    setup: Setup,
    ds: dagger_lib.DistillState,
    cfg: DistillStageConfig,
    evaluators: tuple[Any, Any],
    key: jax.Array,
) -> dict[str, Any]:
    """``goal_level`` (the level trained and evaluated at) and, when that is not the task's
    hardest, ``hardest_level``: student and teacher on the same episodes at the hardest."""
    levels = cur_lib.levels_of(setup.base)
    if not levels:
        return {}
    out: dict[str, Any] = {"goal_level": levels[setup.base.start_level]}
    if setup.base.start_level == len(levels) - 1:
        return out
    n, chunk, hard = cfg.final_eval_episodes, cfg.eval_episodes, len(levels) - 1
    head = setup.headline
    student = eval_lib.evaluate_chunks(evaluators[0], ds.params, key, n, chunk, level=hard)
    student.pop("frames", None)
    teacher = eval_lib.evaluate_chunks(evaluators[1], None, key, n, chunk, level=hard)
    s, t = eval_lib.record(student, *head), eval_lib.record(teacher, *head)
    out["hardest_level"] = {
        "level": levels[hard],
        "student": s,
        "teacher": t,
        "ratio": headline_ratio(s["headline"], t["headline"]),
    }
    return out
