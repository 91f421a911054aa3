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

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jp
import numpy as np
from dexdistill import envs
from dexdistill.distill import dagger as dagger_lib
from dexdistill.distill import diagnostics
from dexdistill.distill.schedules import next_beta
from dexdistill.envs import wrappers
from dexdistill.envs.base import ArraySpec, headline_metric
from dexdistill.envs.common import checks
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import rundir as run_files
from dexdistill.pipelines.io import config_io, distributed, logs
from dexdistill.pipelines.io import dataset as dataset_lib
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.io.logs import MetricsLog
from dexdistill.pipelines.outputs import render
from dexdistill.pipelines.stages import loop as stage_loop
from dexdistill.pipelines.stages import teacher as teacher_stage
from dexdistill.student.networks import StudentConfig, StudentNetworks, make_networks, make_policy
from dexdistill.teacher import ppo
from jax.sharding import Mesh, NamedSharding, PartitionSpec

StudentKind = Literal["keypoints", "pointcloud"]
"""What the student sees of the object (the CLI's names of the student modalities)."""
STUDENTS = {"keypoints": "keypoints", "pointcloud": "point_cloud"}
AUX_PARTS = ("object_pos", "object_quat")
EPISODE_FILE = "episode.npz"
"""The first episode of the student's final evaluation (physics per step), under ``student/``."""


@dataclasses.dataclass(frozen=True)
class DistillStageConfig:
    """Options of ``dexdistill distill``."""

    student: StudentKind = "keypoints"
    """What the student sees of the object (sets ``dagger.student.modality``)."""
    dagger: dagger_lib.DAggerConfig = dagger_lib.DAggerConfig()
    env_overrides: tuple[str, ...] = ()
    """Env overrides on top of the teacher's env config, ``KEY=VALUE`` (dotted keys), e.g.
    ``point_cloud.source=raycast`` for a depth-camera point cloud."""
    eval_every: int = 1
    """Iterations between student evaluations (0: only at the end). The ``success_gated``
    beta schedule uses the latest evaluation."""
    eval_episodes: int = 64
    final_eval_episodes: int = 256
    checkpoint_every: int = 1
    """Iterations between checkpoints (also written at the end). Each waits for the dataset."""
    write_dataset: bool = True
    """Write the aggregated data to ``DIR/dataset/`` (TFDS, array_record, RLDS layout)."""
    max_minutes: float = 0.0
    """Stop (and checkpoint) after this much wall-clock; 0: no limit. Rerun to continue."""
    goal_level: int | None = None
    """Goal level the student is trained and evaluated at, for a task with goal levels
    (``envs.curriculum``; -1: the hardest). None: the level the teacher's training reached."""

    def validate(self) -> None:
        checks.check_types(self)
        for name in ("eval_every", "checkpoint_every"):
            checks.require(name, getattr(self, name), ge=0)
        for name in ("eval_episodes", "final_eval_episodes"):
            checks.require(name, getattr(self, name), ge=1)
        if self.dagger.beta.kind == "success_gated" and self.eval_every != 1:
            raise ValueError("eval_every: must be 1 with dagger.beta.kind='success_gated'")
        self.dagger.validate()

    def student_config(self, aux_size: int, num_goal_points: int = 0) -> StudentConfig:
        """The student architecture with modality, auxiliary head and goal points resolved."""
        aux = aux_size if self.dagger.fit.aux_weight > 0 else self.dagger.student.aux_outputs
        modality = STUDENTS[self.student]
        return dataclasses.replace(
            self.dagger.student,
            modality=modality,
            aux_outputs=aux,
            num_goal_points=num_goal_points if modality == "point_cloud" else 0,
        )

    def env_config(
        self, teacher_cfg: teacher_stage.TeacherStageConfig, teacher_level: int = -1
    ) -> Any:
        """The teacher's task config (with observations the student needs), curriculum off at
        ``goal_level`` (default: ``teacher_level``, the teacher's level reached), overrides."""
        full = dataclasses.replace(teacher_cfg, skip_unread_point_cloud=False).env_config()
        level = teacher_level if self.goal_level is None else self.goal_level
        full = cur_lib.final_config(full, level)
        config = envs.with_overrides(full, config_io.parse_overrides(self.env_overrides))
        if self.student == "keypoints":
            config = envs.with_overrides(config, {"point_cloud.source": "none"})
        config.validate()
        return config


def aux_target_fn(env: Any) -> tuple[Any, int]:
    """(``obs -> [B, K]`` object pose from the privileged vector, ``K``): the aux head's target."""
    layout = env.privileged_layout
    parts = [layout[k] for k in AUX_PARTS if k in layout]

    def target(obs: dict[str, jax.Array]) -> jax.Array:
        return jp.concatenate([obs["privileged"][..., s] for s in parts], axis=-1)

    return target, sum(s.stop - s.start for s in parts)


def shard(ds: dagger_lib.DistillState, mesh: Mesh, num_envs: int) -> dagger_lib.DistillState:
    """Splits the env batch of the rollout carry across devices; replicates the rest."""
    if num_envs % mesh.size:
        raise ValueError(
            f"dagger.num_envs={num_envs}: must be a multiple of the device count {mesh.size}"
        )
    batched = NamedSharding(mesh, PartitionSpec("data"))
    replicated = NamedSharding(mesh, PartitionSpec())
    carry = jax.tree.map(
        lambda x: jax.device_put(x, batched if x.ndim and x.shape[0] == num_envs else replicated),
        ds.carry,
    )
    rest = jax.tree.map(lambda x: jax.device_put(x, replicated), ds.replace(carry=None))
    return rest.replace(carry=carry)


@dataclasses.dataclass
class Setup:
    """Everything the stage builds from the run directory and config."""

    teacher: teacher_stage.LoadedTeacher
    base: Any
    env: Any
    nets: StudentNetworks
    cfg: dagger_lib.DAggerConfig
    rollout: Any
    iteration: Any
    aux_size: int

    @property
    def headline(self) -> tuple[str, float]:
        """``(headline metric name, control period dt)``: the arguments of ``summarize``."""
        return headline_metric(self.base), self.base.dt


def build(run_dir: Path, cfg: DistillStageConfig) -> Setup:
    teacher = teacher_stage.load(run_dir)
    if teacher.nets.actor_recurrent:
        raise ValueError(
            "teacher ppo.network.actor_memory: distilling a recurrent teacher is not supported "
            "yet (its labels need its own memory); train a feed-forward teacher"
        )
    env_cfg = cfg.env_config(teacher.stage_config, teacher.level_reached)
    base = envs.make(teacher.env_name, env_cfg)
    aux_fn, aux_size = aux_target_fn(base)
    goal_points = env_cfg.point_cloud.num_goal_points
    dcfg = dataclasses.replace(cfg.dagger, student=cfg.student_config(aux_size, goal_points))
    dcfg.student.validate(frozenset(base.observation_spec))
    env = wrappers.wrap_for_training(base, dcfg.num_envs)
    nets = make_networks(dcfg.student, base.observation_spec, base.action_size)
    rollout, iteration = dagger_lib.make_iteration(
        env, teacher.policy(deterministic=True), nets, dcfg, aux_target=aux_fn
    )
    return Setup(teacher, base, env, nets, dcfg, rollout, iteration, aux_size)


def _resolved(cfg: DistillStageConfig, setup: Setup) -> DistillStageConfig:
    return dataclasses.replace(cfg, dagger=setup.cfg)


def _evaluators(setup: Setup, episodes: int) -> tuple[Any, Any]:
    nets, teacher = setup.nets, setup.teacher.policy(deterministic=True)
    student_eval = eval_lib.make_evaluator(
        setup.base,
        lambda p: make_policy(nets, p, deterministic=True),
        episodes,
        nets.initial_carry,
        reference=teacher,
        # records one episode per evaluation: the report renders the final one (no compile)
        record=functools.partial(render.physics_fields, setup.base),
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
    path = stage_dir / f"teacher_{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    reusable = name == "final"  # only the final evaluation uses the teacher stage's episodes
    res = _teacher_final_episodes(stage_dir.parent, setup, cfg, episodes) if reusable else None
    if res is None:
        res = eval_lib.evaluate_chunks(teacher_eval, None, key, episodes, cfg.eval_episodes)
    summary = eval_lib.summarize(res, *setup.headline)
    run_files.write_json(path, summary)
    return summary


def _teacher_final_episodes(
    run_dir: Path, setup: Setup, cfg: DistillStageConfig, episodes: int
) -> dict[str, np.ndarray] | None:
    """The first ``episodes`` of the teacher's final evaluation, if they are the same episodes
    (same env config, same episode count and chunking, hence the same keys)."""
    path = run_dir / "teacher" / "eval.json"
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
    resolved = _resolved(cfg, setup)
    run_files.write_config(run_dir, "distill", resolved, setup.base.config, force)
    stage_dir = run_dir / "student"
    stage_dir.mkdir(parents=True, exist_ok=True)
    dcfg = setup.cfg
    mesh = ppo.make_mesh()
    ds = shard(
        dagger_lib.init_state(setup.env, setup.nets, setup.rollout, dcfg), mesh, dcfg.num_envs
    )
    ckpt = Checkpointer(stage_dir / "checkpoints")
    log = MetricsLog(stage_dir / "metrics.jsonl")
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
    ckpt = Checkpointer(run_dir / "teacher" / "checkpoints")
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
    return dataset_lib.DatasetWriter(run_dir / "dataset", example, cursor, description)


def final_evaluation(
    stage_dir: Path,
    setup: Setup,
    ds: dagger_lib.DistillState,
    cfg: DistillStageConfig,
    evaluators: tuple[Any, Any],
) -> dict[str, Any]:
    """Student and teacher on the same ``final_eval_episodes`` fresh episodes; writes eval.json
    and the first episode's physics (``EPISODE_FILE``, rendered by the report).

    ``evaluators`` run ``eval_episodes`` each (reused in chunks: no extra compile).
    """
    student_eval, teacher_eval = evaluators
    key = jax.random.PRNGKey(FINAL_KEY)
    n, chunk = cfg.final_eval_episodes, cfg.eval_episodes
    teacher = _teacher_reference(stage_dir, setup, cfg, teacher_eval, "final", key, n)
    res = eval_lib.evaluate_chunks(student_eval, ds.params, key, n, chunk)
    frames = res.pop("frames")
    render.save_episode(stage_dir / EPISODE_FILE, frames, setup.teacher.env_name, setup.base.config)
    summary: dict[str, Any] = {
        "finished": True,
        "episodes": cfg.final_eval_episodes,
        **eval_lib.summarize(res, *setup.headline),
        "action_error": float(np.mean(res["action_error"])),
        "teacher": teacher,
    }
    # gap and ratio compare the task's headline metric (hand_cube: consecutive successes)
    summary["gap"] = eval_lib.headline(teacher) - summary["headline"]
    summary["ratio"] = headline_ratio(summary["headline"], eval_lib.headline(teacher))
    summary.update(_at_hardest_level(setup, ds, cfg, evaluators, key))
    if "proprio" in setup.nets.config.input_keys:
        reliance = jax.jit(lambda p, b, k: diagnostics.last_action_reliance(setup.nets, p, b, k))
        copycat = jax.device_get(reliance(ds.params, ds.buffer, jax.random.PRNGKey(FINAL_KEY)))
        summary["copycat"] = {k: float(v) for k, v in copycat.items()}
    run_files.write_json(stage_dir / "eval.json", summary)
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
    s, t = eval_lib.summarize(student, *head), eval_lib.summarize(teacher, *head)
    out["hardest_level"] = {
        "level": levels[hard],
        "student": s,
        "teacher": t,
        "ratio": headline_ratio(s["headline"], t["headline"]),
    }
    return out


@dataclasses.dataclass
class LoadedStudent:
    """A student rebuilt from a run directory."""

    env_name: str
    env_config: Any
    stage_config: DistillStageConfig
    nets: StudentNetworks
    params: Any

    def policy(self, deterministic: bool = True) -> Any:
        """Pure ``policy(obs [B, ...], carry, key) -> (action, carry, extras)``; extras: mean, std."""
        return make_policy(self.nets, self.params, deterministic)

    def initial_carry(self, batch: int) -> Any:
        return self.nets.initial_carry(batch)


def policy_spec(setup: Setup) -> dict[str, Any]:
    """What the student's networks are built from besides its config (checkpoint metadata):
    the shapes and dtypes of the observations it reads, and the action size."""
    spec = setup.base.observation_spec
    keys = sorted(setup.nets.config.input_keys)
    return {
        "obs_spec": {k: {"shape": list(spec[k].shape), "dtype": str(spec[k].dtype)} for k in keys},
        "action_size": int(setup.base.action_size),
    }


def load(run_dir: str | Path) -> LoadedStudent:
    """The student policy of ``run_dir`` (config.json + the latest checkpoint's ``policy``
    item): no simulator is built and no teacher loaded. Checkpoints written before the
    ``policy`` item existed are read through the whole DAgger state (:func:`load_full`)."""
    run_dir = Path(run_dir)
    data, cfg = _distill_section(run_dir)
    ckpt = Checkpointer(run_dir / "student" / "checkpoints")
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no student checkpoint in {run_dir / 'student' / 'checkpoints'}")
    spec = ckpt.restore_meta().get("policy")
    if spec is None or not ckpt.has_item("policy"):
        return load_full(run_dir)
    env_name = data["teacher"]["config"]["env"]
    env_cfg = config_io.from_dict(
        type(envs.default_config(env_name)), data["distill"]["env_config"]
    )
    obs_spec = {k: ArraySpec(tuple(v["shape"]), v["dtype"]) for k, v in spec["obs_spec"].items()}
    nets = make_networks(cfg.dagger.student, obs_spec, spec["action_size"])
    template = jax.eval_shape(lambda: nets.init(jax.random.PRNGKey(0), obs_spec))
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template)
    params = ckpt.restore_item("policy", {"params": template})["params"]
    return LoadedStudent(env_name, env_cfg, cfg, nets, params)


def _distill_section(run_dir: Path) -> tuple[dict[str, Any], DistillStageConfig]:
    path = run_dir / "config.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if "distill" not in data:
        raise FileNotFoundError(
            f"no student in {run_dir}: run `dexdistill distill --run-dir {run_dir}` first"
        )
    return data, config_io.from_dict(DistillStageConfig, data["distill"]["config"])


def load_full(run_dir: str | Path) -> LoadedStudent:
    """The student through the whole DAgger state: rebuilds the stage's setup (env, teacher,
    rollout) for the template. Slow; for checkpoints without a ``policy`` item."""
    run_dir = Path(run_dir)
    _, cfg = _distill_section(run_dir)
    setup = build(run_dir, cfg)
    ckpt = Checkpointer(run_dir / "student" / "checkpoints")
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no student checkpoint in {run_dir / 'student' / 'checkpoints'}")
    template = jax.eval_shape(
        lambda: dagger_lib.init_state(setup.env, setup.nets, setup.rollout, setup.cfg)
    )
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template)
    state, _ = ckpt.restore(template)
    return LoadedStudent(setup.teacher.env_name, setup.base.config, cfg, setup.nets, state.params)
