"""DAgger: roll out a teacher/student mixture, label with the teacher, aggregate, fit.

One jitted call of :func:`make_iteration` is one DAgger iteration: a mixed
rollout (``lax.scan``), insertion of its sequences into the aggregated buffer,
and ``fit.num_updates`` supervised steps (``lax.scan``). Data from every
iteration stays in the buffer (up to its capacity), which is what makes it
DAgger rather than on-policy distillation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jp
from flax import struct

from dexdistill.distill import buffer as buffer_lib, fit as fit_lib
from dexdistill.distill.rollout import Labelled, Mixing, RolloutCarry, empty_prefix, make_rollout
from dexdistill.distill.schedules import BetaSchedule
from dexdistill.envs.base import Env
from dexdistill.envs.common import checks
from dexdistill.student.networks import StudentConfig, StudentNetworks, make_policy

RolloutNoise = Literal["none", "fixed", "learned"]


def student_rollout_policy(nets: StudentNetworks, cfg: DAggerConfig) -> Callable[[Any], Callable]:
    """``params -> policy`` the student collects data with (``cfg.rollout_noise``)."""
    if cfg.rollout_noise == "none":
        return lambda p: make_policy(nets, p, deterministic=True)
    if cfg.rollout_noise == "fixed":
        return lambda p: make_policy(nets, p, fixed_std=cfg.rollout_noise_std)
    return lambda p: make_policy(nets, p)


@dataclasses.dataclass(frozen=True)
class DAggerConfig:
    """DAgger settings."""

    iterations: int = 20
    """DAgger iterations, each one mixed rollout then fit.num_updates gradient steps."""
    num_envs: int = 64
    """Parallel environments per rollout; each adds num_envs sequences to the dataset."""
    unroll_length: int = 40
    """Steps per rollout; also the sequence length for truncated BPTT."""
    mixing: Mixing = "step"
    """'step': teacher acts per step with prob. beta; 'episode': per episode."""
    beta: BetaSchedule = BetaSchedule()
    capacity: int = 4096
    """Sequences kept in the aggregated in-memory dataset."""
    dataset_policy: buffer_lib.Policy = "fifo"
    """'fifo' or 'reservoir' once the capacity is reached."""
    rollout_noise: RolloutNoise = "none"
    """How the student acts while collecting data: 'none' (its mean action, as it is
    deployed and evaluated), 'fixed' (mean + 'rollout_noise_std' Gaussian noise, DART
    style) or 'learned' (a sample with its own std head, which the 'mse'/'huber'
    losses never train: it stays at its initialization, ~0.7)."""
    rollout_noise_std: float = 0.1
    """Std of the 'fixed' exploration noise (normalized action units)."""
    fit: fit_lib.FitConfig = fit_lib.FitConfig()
    student: StudentConfig = StudentConfig()
    seed: int = 0
    """Random seed for the student's initialization, environment resets and rollout sampling."""

    def validate(self) -> None:
        checks.check_types(self, "dagger.")
        for name in ("iterations", "num_envs", "unroll_length", "capacity"):
            checks.require(f"dagger.{name}", getattr(self, name), ge=1)
        if self.capacity < self.num_envs:
            raise ValueError(
                f"dagger.capacity={self.capacity}: must be >= dagger.num_envs={self.num_envs} "
                "(one rollout adds num_envs sequences)"
            )
        checks.require("dagger.rollout_noise_std", self.rollout_noise_std, ge=0)
        self.beta.validate()
        self.fit.validate()


@struct.dataclass
class DistillState:
    """The whole distillation state (one orbax call saves it)."""

    params: Any
    opt_state: Any
    buffer: buffer_lib.Buffer
    carry: RolloutCarry
    rng: jax.Array
    iteration: jax.Array


def sequence_major(labelled: Labelled) -> dict[str, Any]:
    """``[T, B, ...]`` rollout -> ``[B, T, ...]`` sequences (+ their initial carries).

    With a memory-refreshing student the previous rollout comes along as ``prefix_obs``,
    ``prefix_first`` and ``prefix_valid`` (``[B, T, ...]``).
    """
    fields = {f.name: getattr(labelled, f.name) for f in dataclasses.fields(labelled)}
    carry = fields.pop("initial_carry")
    prefix = fields.pop("prefix")
    seq = jax.tree.map(lambda x: jp.swapaxes(x, 0, 1), fields)
    seq["initial_carry"] = carry
    if prefix is not None:  # already [B, T, ...]
        seq["prefix_obs"] = prefix["obs"]
        seq["prefix_first"] = prefix["is_first"]
        seq["prefix_valid"] = prefix["valid"]
    return seq


def refreshes_memory(nets: StudentNetworks, cfg: DAggerConfig) -> bool:
    """Whether stored sequences carry the prefix their initial memory is recomputed from."""
    return cfg.fit.memory_start == "refresh" and nets.config.memory != "none"


def init_state(
    env: Env, nets: StudentNetworks, rollout: Callable, cfg: DAggerConfig
) -> DistillState:
    """Fresh student parameters, optimizer, empty buffer and envs from ``cfg.seed``."""
    rng = jax.random.PRNGKey(cfg.seed)
    rng, k_params, k_env, k_probe = jax.random.split(rng, 4)
    spec = env.observation_spec
    params = nets.init(k_params, spec)  # compiled: flax's eager init was ~5 s of dispatch
    carry = RolloutCarry(
        env_state=jax.jit(env.reset)(k_env),
        student_carry=nets.initial_carry(cfg.num_envs),
        teacher_episode=jp.zeros((cfg.num_envs,), bool),
        actor_pending=jp.ones((cfg.num_envs,), bool),
        prefix=(
            empty_prefix(spec, nets.config.input_keys, cfg.unroll_length, cfg.num_envs)
            if refreshes_memory(nets, cfg)
            else None
        ),
    )
    example = jax.eval_shape(
        lambda: sequence_major(rollout(params, carry, jp.ones(()), k_probe)[1])
    )
    buf = buffer_lib.init_buffer(example, cfg.capacity)
    return DistillState(
        params=params,
        opt_state=fit_lib.make_optimizer(cfg.fit).init(params),
        buffer=buf,
        carry=carry,
        rng=rng,
        iteration=jp.zeros((), jp.int32),
    )


def make_rollout_fn(
    env: Env,
    teacher: Callable,
    nets: StudentNetworks,
    cfg: DAggerConfig,
    aux_target: Callable | None = None,
) -> Callable:
    return make_rollout(
        env,
        teacher,
        student_rollout_policy(nets, cfg),
        nets.reset_carry,
        nets.config.input_keys,
        cfg.unroll_length,
        cfg.mixing,
        aux_target=aux_target,
    )


def make_iteration(
    env: Env,
    teacher: Callable,
    nets: StudentNetworks,
    cfg: DAggerConfig,
    aux_target: Callable | None = None,
) -> tuple[Callable, Callable]:
    """Returns (rollout fn, jitted ``iteration(ds, beta) -> (ds, sequences, metrics)``).

    ``aux_target(obs) -> [B, K]`` gives the auxiliary head's target (see ``make_rollout``).
    """
    # jitted once and shared: tracing it for ``init_state``'s buffer shapes is then reused when
    # the iteration is traced (an MJX rollout takes seconds to trace on a CPU)
    rollout = jax.jit(make_rollout_fn(env, teacher, nets, cfg, aux_target))
    update = fit_lib.make_update(nets, cfg.fit)

    def iteration(ds: DistillState, beta: jax.Array) -> tuple[DistillState, dict[str, Any], dict]:
        rng, k_roll, k_add, k_fit = jax.random.split(ds.rng, 4)
        carry, labelled = rollout(ds.params, ds.carry, beta, k_roll)
        seq = sequence_major(labelled)
        buf = buffer_lib.add(ds.buffer, seq, k_add, cfg.dataset_policy)
        params, opt_state, fit_metrics = update(ds.params, ds.opt_state, buf, k_fit)
        student_acted = 1.0 - labelled.teacher_acted
        err = jp.sum((labelled.student_mean - labelled.teacher_mean) ** 2, axis=-1)
        metrics = {
            **{f"fit/{k}": v for k, v in fit_metrics.items()},
            "rollout/action_error": jp.mean(err),
            "rollout/action_error_student_states": jp.sum(err * student_acted)
            / jp.maximum(jp.sum(student_acted), 1.0),
            "rollout/teacher_fraction": jp.mean(labelled.teacher_acted),
            "rollout/reward": jp.mean(labelled.reward),
            "dataset/sequences": buf.size,
            "beta": beta,
        }
        new = DistillState(params, opt_state, buf, carry, rng, ds.iteration + 1)
        return new, seq, metrics

    return rollout, jax.jit(iteration, donate_argnums=0)
