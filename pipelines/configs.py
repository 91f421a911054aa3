"""Every stage's config, and ``RunConfig`` that composes them: frozen, documented
dataclasses with one-line validation errors, and no I/O (presets and notebooks import
this without the stages' machinery)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from dexdistill import envs
from dexdistill.distill.dagger import DAggerConfig
from dexdistill.envs.common import checks
from dexdistill.envs.evaluation import sweeps as sweep_lib
from dexdistill.envs.sim2real import conditions as cond_lib
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.pipelines import config_io
from dexdistill.student.networks import StudentConfig
from dexdistill.teacher.ppo import PPOConfig


@dataclasses.dataclass(frozen=True)
class TeacherStageConfig:
    """Options of 'dexdistill teacher'."""

    env: str = "dclaw_valve"
    """Task name ('dexdistill envs' lists them)."""
    env_overrides: tuple[str, ...] = ()
    """Env config overrides as 'KEY=VALUE' (dotted keys), e.g. 'randomization.physics.enabled=False'."""
    ppo: PPOConfig = PPOConfig()
    eval_every: int = 50
    """Iterations between evaluations (0: only at the end)."""
    eval_episodes: int = 64
    """Episodes per periodic evaluation (also the final evaluation's batch size)."""
    final_eval_episodes: int = 256
    """Fresh episodes of the final evaluation (written to eval.json), at each goal level."""
    checkpoint_every: int = 50
    """Iterations between checkpoints (a checkpoint is also written at the end)."""
    max_minutes: float = 0.0
    """Stop (and checkpoint) after this much wall-clock; 0: no limit. Rerun to continue."""
    skip_unread_point_cloud: bool = True
    """Set 'point_cloud.source=none' when neither actor nor critic reads the point cloud
    (the teacher's default): saves the sampling / ray casting work during training."""
    timing_breakdown: bool = True
    """Time one rollout alone once, to split iteration time into collection and update."""

    def validate(self) -> None:
        checks.check_types(self)
        if self.env not in envs.names():
            raise ValueError(f"env={self.env!r}: unknown task; registered tasks: {envs.names()}")
        for name in ("eval_every", "checkpoint_every"):
            checks.require(name, getattr(self, name), ge=0)
        for name in ("eval_episodes", "final_eval_episodes"):
            checks.require(name, getattr(self, name), ge=1)
        self.ppo.validate()
        self.env_config().validate()

    def env_config(self) -> Any:
        """The task config: defaults, then 'env_overrides', then skipped observations."""
        config = envs.with_overrides(
            envs.default_config(self.env), config_io.parse_overrides(self.env_overrides)
        )
        config.validate()
        reads = set(self.ppo.network.actor_keys) | set(self.ppo.network.critic_keys)
        if self.skip_unread_point_cloud and not reads & {"point_cloud", "point_cloud_mask"}:
            config = envs.with_overrides(config, {"point_cloud.source": "none"})
        return config


StudentKind = Literal["keypoints", "pointcloud"]
"""What the student sees of the object (the CLI's names of the student modalities)."""
STUDENTS = {"keypoints": "keypoints", "pointcloud": "point_cloud"}


@dataclasses.dataclass(frozen=True)
class DistillStageConfig:
    """Options of 'dexdistill distill'."""

    student: StudentKind = "keypoints"
    """What the student sees of the object (sets 'dagger.student.modality')."""
    dagger: DAggerConfig = DAggerConfig()
    env_overrides: tuple[str, ...] = ()
    """Env overrides on top of the teacher's env config, 'KEY=VALUE' (dotted keys), e.g.
    'point_cloud.source=raycast' for a depth-camera point cloud."""
    eval_every: int = 1
    """Iterations between student evaluations (0: only at the end). The 'success_gated'
    beta schedule uses the latest evaluation."""
    eval_episodes: int = 64
    """Episodes per periodic student and teacher evaluation (also the final one's batch size)."""
    final_eval_episodes: int = 256
    """Fresh episodes on which student and teacher are compared at the end (eval.json)."""
    checkpoint_every: int = 1
    """Iterations between checkpoints (also written at the end). Each waits for the dataset."""
    write_dataset: bool = True
    """Write the aggregated data to 'DIR/dataset/' (TFDS, array_record, RLDS layout)."""
    max_minutes: float = 0.0
    """Stop (and checkpoint) after this much wall-clock; 0: no limit. Rerun to continue."""
    goal_level: int | None = None
    """Goal level the student is trained and evaluated at, for a task with goal levels
    ('envs.curriculum'; -1: the hardest). None: the level the teacher's training reached."""

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

    def env_config(self, teacher_cfg: TeacherStageConfig, teacher_level: int = -1) -> Any:
        """The teacher's task config (with observations the student needs), curriculum off at
        'goal_level' (default: 'teacher_level', the teacher's level reached), overrides."""
        full = dataclasses.replace(teacher_cfg, skip_unread_point_cloud=False).env_config()
        level = teacher_level if self.goal_level is None else self.goal_level
        full = cur_lib.final_config(full, level)
        config = envs.with_overrides(full, config_io.parse_overrides(self.env_overrides))
        if self.student == "keypoints":
            config = envs.with_overrides(config, {"point_cloud.source": "none"})
        config.validate()
        return config


Policy = Literal["teacher", "student"]
Condition = Literal["none", "heldout", "reality", "sim2sim"]
"""A condition of 'dexdistill run''s comparisons (see 'RunConfig.conditions')."""


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Options of 'dexdistill evaluate'."""

    policy: Policy = "student"
    """Which policy of the run directory to evaluate. A student is also compared with its
    teacher on the same episodes (success gap, action error on the student's states)."""
    episodes: int = 256
    """Fresh episodes of the main evaluation."""
    randomization: cond_lib.Randomization = "train"
    """'train': as in training; 'none': all randomization off; 'heldout': ranges
    widened beyond training; 'reality': held-out plus a perturbed simulator
    ('envs.conditions')."""
    sweeps: tuple[str, ...] = ()
    """Robustness sweeps to run ('all': every sweep valid for the task), e.g.
    'object_mass friction'; 'envs.sweeps.list_sweeps(task)' lists them."""
    sweep_points: int = 5
    """Values per continuous sweep, from inside to well outside the training range
    ('action_delay' uses the distinct integers among them; 'object_shape' its 3 shapes)."""
    sweep_episodes: int = 64
    """Episodes per sweep value."""
    seed: int = 0
    """Seed of the evaluation episodes (the same episodes for the student and its teacher)."""
    env_overrides: tuple[str, ...] = ()
    """Task config changes for this evaluation as 'KEY=VALUE' (dotted keys), applied to the
    trained config, e.g. 'goal_mode='full'' to score a yaw-trained hand on SO(3) goals.
    The result file name ends in '_' + the overrides."""
    backend: cond_lib.Backend = "trained"
    """Physics to evaluate on: 'trained' (the run's own 'backend'), or the other
    simulator for a sim-to-sim check: 'mujoco' (MuJoCo C) or 'mjx'. The result is
    written to 'eval/<policy>_<randomization>_<backend>.json'."""

    def validate(self) -> None:
        """Raises a one-line 'ValueError' naming the first invalid field."""
        checks.check_types(self)
        for name, least in (("episodes", 1), ("sweep_points", 2), ("sweep_episodes", 1)):
            checks.require(name, getattr(self, name), ge=least)
        checks.require("seed", self.seed, ge=0)
        if not isinstance(self.sweeps, tuple) or not all(isinstance(s, str) for s in self.sweeps):
            raise ValueError(f"sweeps={self.sweeps!r}: expected a tuple of sweep names")
        known = [*sweep_lib.SWEEPS, "all"]
        for name in self.sweeps:
            if name not in known:
                raise ValueError(f"sweeps: unknown sweep {name!r}; known sweeps: {known}")
            if self.sweeps.count(name) > 1:
                raise ValueError(f"sweeps={self.sweeps!r}: {name!r} is given twice")
        if "all" in self.sweeps and len(self.sweeps) > 1:
            raise ValueError(f"sweeps={self.sweeps!r}: 'all' must be given alone")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Options of 'dexdistill run': one section per stage ('--teacher.ppo.num-timesteps'...)."""

    teacher: TeacherStageConfig = TeacherStageConfig()
    distill: DistillStageConfig = DistillStageConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    """Settings of the comparisons below (episodes, seed); 'policy', 'randomization'
    and 'backend' are set per condition."""
    conditions: tuple[Condition, ...] = ("heldout", "reality", "sim2sim")
    """What the student is compared with its teacher under, on the same fresh episodes,
    after training (the training randomization is the distill stage's final evaluation):
    'heldout' (ranges wider than training), 'reality' (the reality proxy: held-out ranges on a
    perturbed simulator), 'none' (no randomization), 'sim2sim' (the physics engine the
    policies were not trained on; skipped for tasks without one)."""
    video: bool = True
    """Render a student episode into the report (needs OpenGL: 'MUJOCO_GL=egl')."""

    def validate(self) -> None:
        checks.check_types(self)
        self.teacher.validate()
        self.distill.validate()
        self.evaluate.validate()
