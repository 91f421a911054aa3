"""The one owner of a run directory: every path in it, its ``config.json``, and loading the
teacher or the student it holds.

A run directory (``--run-dir DIR``)::

    DIR/config.json                  each stage's config + resolved env config, provenance
    DIR/pipeline.json                ``dexdistill run``: each stage's wall-clock
    DIR/teacher/                     checkpoints/, metrics.jsonl (+ tb/), eval.json
    DIR/student/                     checkpoints/, metrics.jsonl (+ tb/), eval.json, episode.npz,
                                     teacher_<name>.json (the teacher on its episodes)
    DIR/dataset/                     the aggregated DAgger data (TFDS, array_record)
    DIR/eval/<name>.json             ``dexdistill evaluate`` results
    DIR/report/                      report.md, its plots and the episode video
    DIR/export/                      ``dexdistill export``: the numpy student

No other module spells one of these paths: they ask a :class:`RunDir`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.envs.base import ArraySpec
from dexdistill.envs.physics import backends as physics_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import config_io
from dexdistill.pipelines.configs import DistillStageConfig, TeacherStageConfig
from dexdistill.pipelines.io import files, logs
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.student.networks import (
    StudentNetworks,
    make_networks as make_student_networks,
    make_policy,
)
from dexdistill.teacher import normalize as norm_lib, ppo
from dexdistill.teacher.networks import TeacherNetworks, make_networks as make_teacher_networks

TEACHER_PLOT = "teacher_curve.png"
DAGGER_PLOT = "dagger_curves.png"
ROBUSTNESS_PLOT = "robustness.png"
VIDEO_NAME = "episode.mp4"
"""File names in ``DIR/report/`` beside ``report.md``."""

Stage = Literal["teacher", "student"]
"""The training stages' folders: ``teacher`` (PPO) and ``student`` (DAgger)."""


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The paths of run directory ``root`` (nothing is created by asking for a path)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def pipeline_log(self) -> Path:
        return self.root / "pipeline.json"

    def stage(self, stage: Stage) -> Path:
        return self.root / stage

    def checkpoints(self, stage: Stage) -> Path:
        return self.stage(stage) / "checkpoints"

    def metrics(self, stage: Stage) -> Path:
        return self.stage(stage) / "metrics.jsonl"

    def final_eval(self, stage: Stage) -> Path:
        """The stage's final evaluation (the student's holds its teacher on the same episodes)."""
        return self.stage(stage) / "eval.json"

    def teacher_reference(self, name: str) -> Path:
        """The teacher's results on the student's ``name`` evaluation episodes (a cache)."""
        return self.stage("student") / f"teacher_{name}.json"

    @property
    def episode(self) -> Path:
        """The first episode of the student's final evaluation (physics per step)."""
        return self.stage("student") / "episode.npz"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def evaluation(self, name: str) -> Path:
        """``dexdistill evaluate``'s result ``name`` (``<policy>_<randomization>...``)."""
        return self.eval_dir / f"{name}.json"

    def evaluations(self) -> list[Path]:
        """Every ``dexdistill evaluate`` result, sorted by name."""
        return sorted(self.eval_dir.glob("*.json")) if self.eval_dir.is_dir() else []

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def report(self) -> Path:
        return self.report_dir / "report.md"

    def report_file(self, name: str) -> Path:
        """A file beside ``report.md`` (``TEACHER_PLOT``, ``VIDEO_NAME``, ...)."""
        return self.report_dir / name

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (``{}`` when absent); a one-line error names a broken file."""
        if not self.config.exists():
            return {}
        try:
            data = json.loads(self.config.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.config}: not valid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.config}: expected a JSON object, got {type(data).__name__}")
        return data


EVALUATION_HEADER = ("policy", "task", "goal_level", "randomization", "physics_backend", "episodes")
"""What every evaluation file of a run directory says it measured, before its numbers."""


def evaluation(
    body: dict[str, Any],
    *,
    policy: str,
    task: str,
    goal_level: str | None,
    randomization: str,
    physics_backend: str,
    episodes: int,
    **extra: Any,
) -> dict[str, Any]:
    """One evaluation as every stage writes it and the report, ablations and benchmarks read
    it (``teacher/eval.json``, ``student/eval.json``, ``eval/<name>.json``): the header
    (:data:`EVALUATION_HEADER`: which policy, task, goal level — None for a task without
    levels —, randomization, physics engine and how many episodes), then ``body``
    (:func:`dexdistill.envs.evaluation.evaluate.record`), then stage-specific ``extra``
    (a student's ``teacher``: the same schema on the same episodes; ``levels``; sweeps)."""
    header = {
        "policy": policy,
        "task": task,
        "goal_level": goal_level,
        "randomization": randomization,
        "physics_backend": physics_backend,
        "episodes": int(episodes),
    }
    return {**header, **body, **extra}


def check_run_dir(run_dir: str | Path, must_exist: bool) -> RunDir:
    """``--run-dir`` checked before anything is written: never a file; an existing folder
    when ``must_exist`` (reading commands: nothing is created where the user mistyped)."""
    if not str(run_dir):
        raise ValueError("--run-dir: required (a directory for config, checkpoints and results)")
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--run-dir {path}: is a file; expected a run directory")
    if must_exist and not path.is_dir():
        raise FileNotFoundError(f"--run-dir {path}: no such run directory")
    if must_exist and not RunDir(path).config.exists():
        raise FileNotFoundError(f"--run-dir {path}: not a run directory (no config.json)")
    return RunDir(path)


def write_config(run_dir: Path, section: str, cfg: Any, resolved_env: Any, force: bool) -> None:
    """Records ``cfg`` under ``section`` of ``config.json`` with the resolved env config, the
    physics backend, the version and the commit; refuses a different ``cfg`` unless ``force``."""
    rd = RunDir(run_dir)
    data = rd.read_config()
    new = {"config": config_io.to_dict(cfg), "env_config": config_io.to_dict(resolved_env)}
    old = data.get(section)
    if old is not None and old != json.loads(json.dumps(new)) and not force:
        raise ValueError(
            f"{rd.config} was created with a different {section} config; use a new --run-dir or pass --force"
        )
    data[section] = new
    backend = getattr(resolved_env, "backend", None)
    if backend is not None:  # "auto" is resolved where the stage runs (CPU: MuJoCo C)
        data.setdefault("physics_backend", {})[section] = physics_lib.resolve_backend(backend)
    data["package_version"] = files.VERSION
    data["git_commit"] = files.git_commit()
    files.write_json(rd.config, data)


# --------------------------------------------------------------------------- the teacher


@dataclasses.dataclass
class LoadedTeacher:
    """A teacher rebuilt from a run directory."""

    env_name: str
    env_config: Any
    stage_config: TeacherStageConfig
    nets: TeacherNetworks
    params: Any
    normalizer: norm_lib.RunningStats
    level_reached: int = 0
    """The goal level its training ended at (tasks with goal levels; see envs.curriculum)."""

    def policy(self, deterministic: bool = False) -> Any:
        """Pure ``policy(obs [B, ...], carry, key) -> (action, carry, extras)``; extras has mean/std."""
        return ppo.policy_factory(self.nets, deterministic)((self.params, self.normalizer))

    def initial_carry(self, batch: int) -> Any:
        """The policy's carry at an episode start (``None`` for a feed-forward actor)."""
        return self.nets.initial_carry(batch)


def saved_level(env: Any, meta: dict[str, Any], metrics: Path) -> int:
    """The level a saved teacher reached: its checkpoint's ``goal_level``, or for checkpoints
    written before it was saved, the last ``curriculum/level`` in ``metrics.jsonl``."""
    if cur_lib.config_of(env) is None:
        return int(getattr(env, "start_level", 0))
    if "goal_level" in meta:
        return int(meta["goal_level"])
    levels = [r["curriculum/level"] for r in logs.read_records(metrics) if "curriculum/level" in r]
    return int(levels[-1]) if levels else 0


def _latest(ckpt: Checkpointer, path: Path, what: str) -> None:
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no {what} checkpoint in {path}")


def load_teacher(run_dir: str | Path) -> LoadedTeacher:
    """Rebuilds the teacher policy from ``run_dir`` alone (config.json + latest checkpoint)."""
    rd = RunDir(run_dir)
    section = rd.read_config().get("teacher")
    if section is None:
        raise FileNotFoundError(
            f"no teacher in {rd.root}: run `dexdistill teacher --run-dir {rd.root}` first"
        )
    cfg = config_io.from_dict(TeacherStageConfig, section["config"])
    env_cfg = config_io.from_dict(type(envs.default_config(cfg.env)), section["env_config"])
    base = envs.make(cfg.env, env_cfg)
    nets = make_teacher_networks(cfg.ppo.network, base.observation_spec, base.action_size)
    ckpt = Checkpointer(rd.checkpoints("teacher"))
    _latest(ckpt, rd.checkpoints("teacher"), "teacher")
    train_env = wrappers.wrap_for_training(base, cfg.ppo.num_envs)
    template = jax.eval_shape(lambda: ppo.init_state(train_env, nets, cfg.ppo))
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template)
    head = (template.params, template.opt_state, template.normalizer)
    params, _, normalizer = ckpt.restore_leading(head)  # the policy alone, not the env state
    reached = saved_level(base, ckpt.restore_meta(), rd.metrics("teacher"))
    return LoadedTeacher(cfg.env, env_cfg, cfg, nets, params, normalizer, reached)


# --------------------------------------------------------------------------- the student


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


def distill_section(run_dir: str | Path) -> tuple[dict[str, Any], DistillStageConfig]:
    """``config.json`` and its distill stage's config; a one-line error if there is none."""
    rd = RunDir(run_dir)
    data = rd.read_config()
    if "distill" not in data:
        raise FileNotFoundError(
            f"no student in {rd.root}: run `dexdistill distill --run-dir {rd.root}` first"
        )
    return data, config_io.from_dict(DistillStageConfig, data["distill"]["config"])


def load_student(run_dir: str | Path) -> LoadedStudent:
    """The student policy of ``run_dir`` (config.json + the latest checkpoint's ``policy``
    item): no simulator is built and no teacher loaded. Checkpoints written before the
    ``policy`` item existed are read through the whole DAgger state
    (:func:`dexdistill.pipelines.stages.distill_setup.load_full`)."""
    rd = RunDir(run_dir)
    data, cfg = distill_section(rd.root)
    ckpt = Checkpointer(rd.checkpoints("student"))
    _latest(ckpt, rd.checkpoints("student"), "student")
    spec = ckpt.restore_meta().get("policy")
    if spec is None or not ckpt.has_item("policy"):
        from dexdistill.pipelines.stages import distill_setup  # old checkpoints only

        return distill_setup.load_full(rd.root)
    env_name = data["teacher"]["config"]["env"]
    env_cfg = config_io.from_dict(
        type(envs.default_config(env_name)), data["distill"]["env_config"]
    )
    obs_spec = {k: ArraySpec(tuple(v["shape"]), v["dtype"]) for k, v in spec["obs_spec"].items()}
    nets = make_student_networks(cfg.dagger.student, obs_spec, spec["action_size"])
    template = jax.eval_shape(lambda: nets.init(jax.random.PRNGKey(0), obs_spec))
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template)
    params = ckpt.restore_item("policy", {"params": template})["params"]
    return LoadedStudent(env_name, env_cfg, cfg, nets, params)
