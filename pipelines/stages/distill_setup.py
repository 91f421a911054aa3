"""The distill stage's setup: its teacher, env, student networks and rollout, built from
a run directory; sharding over devices; the student rebuilt from a whole DAgger state."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dexdistill import envs
from dexdistill.distill import dagger as dagger_lib
from dexdistill.envs import wrappers
from dexdistill.envs.base import headline_metric
from dexdistill.pipelines import rundir
from dexdistill.pipelines.configs import DistillStageConfig
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.student.networks import StudentNetworks, make_networks

AUX_PARTS = ("object_pos", "object_quat")
"""The first episode of the student's final evaluation (physics per step), under ``student/``."""


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

    teacher: rundir.LoadedTeacher
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
    teacher = rundir.load_teacher(run_dir)
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


def resolved_config(cfg: DistillStageConfig, setup: Setup) -> DistillStageConfig:
    return dataclasses.replace(cfg, dagger=setup.cfg)


def policy_spec(setup: Setup) -> dict[str, Any]:
    """What the student's networks are built from besides its config (checkpoint metadata):
    the shapes and dtypes of the observations it reads, and the action size."""
    spec = setup.base.observation_spec
    keys = sorted(setup.nets.config.input_keys)
    return {
        "obs_spec": {k: {"shape": list(spec[k].shape), "dtype": str(spec[k].dtype)} for k in keys},
        "action_size": int(setup.base.action_size),
    }


def load_full(run_dir: str | Path) -> rundir.LoadedStudent:
    """The student through the whole DAgger state: rebuilds the stage's setup (env, teacher,
    rollout) for the template. Slow; for checkpoints without a ``policy`` item."""
    run_dir = Path(run_dir)
    _, cfg = rundir.distill_section(run_dir)
    setup = build(run_dir, cfg)
    ckpt = Checkpointer(rundir.RunDir(run_dir).checkpoints("student"))
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no student checkpoint in {run_dir / 'student' / 'checkpoints'}")
    template = jax.eval_shape(
        lambda: dagger_lib.init_state(setup.env, setup.nets, setup.rollout, setup.cfg)
    )
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template)
    state, _ = ckpt.restore(template)
    return rundir.LoadedStudent(
        setup.teacher.env_name, setup.base.config, cfg, setup.nets, state.params
    )
