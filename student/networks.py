"""Student policies: an encoder per observation, memory, and a Gaussian action head.

The student reads ``proprio`` and one of ``keypoints`` / ``point_cloud`` (never
``privileged``: asking for it raises). Observations are encoded, concatenated,
passed through a memory, then a head outputs the mean and std of a Gaussian
over the (``[-1, 1]``) action space, matching the teacher's labels.

Memory (``memory``):

* ``gru`` / ``lstm``: a recurrent cell; the carry is its hidden state.
* ``stack``: the encodings of the last ``history`` steps, concatenated; the carry
  is that window.
* ``none``: feed-forward.

``policy(obs [B, ...], carry, key) -> (action [B, A], carry, extras)`` as for the
teacher; ``initial_carry(batch)`` gives the carry of a fresh episode and
``reset_carry(carry, done [B])`` zeroes finished envs' memory. The MLPs, the cells
(``gru``: ``GRUCell``, ``lstm``: ``OptimizedLSTMCell``), their zero carry and
``reset_carry`` are the teacher's too (``envs.layers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jp

from dexdistill.envs.base import STUDENT_KEYS, ArraySpec, check_keys
from dexdistill.envs.common import checks
from dexdistill.envs.common.layers import CELLS, memory_cell, mlp, reset_carry, zero_carry

Memory = Literal["gru", "lstm", "stack", "none"]
Modality = Literal["keypoints", "point_cloud"]
LastAction = Literal["executed", "none"]
MEMORIES: tuple[str, ...] = checks.choices(Memory)
MODALITIES: tuple[str, ...] = checks.choices(Modality)


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Architecture of a student policy."""

    modality: Modality = "keypoints"
    """'keypoints' or 'point_cloud' (the object observation it reads)."""
    extra_keys: tuple[str, ...] = ("proprio",)
    """Other observation keys it reads (never 'privileged')."""
    encoder_hidden: tuple[int, ...] = (64, 64)
    """Keypoint MLP ('modality='keypoints'')."""
    pointnet_hidden: tuple[int, ...] = (64, 128, 256)
    """Shared per-point MLP of the PointNet encoder ('modality='point_cloud''); the
    pooled feature is twice the last width (max + mean). (64, 64) left the valve
    point-cloud student at 0.80 of its teacher; (64, 128, 256) reached 1.12."""
    proprio_hidden: tuple[int, ...] = (64,)
    """MLP over the extra_keys observations (proprio), concatenated with the object encoding."""
    memory: Memory = "gru"
    """'gru'/'lstm' (a recurrent cell), 'stack' (the last history encodings) or 'none'."""
    memory_size: int = 128
    """Hidden-state size of the 'gru' or 'lstm' cell."""
    history: int = 4
    """Window length for 'memory='stack''."""
    head_hidden: tuple[int, ...] = (128,)
    """MLP between the memory and the action mean / std (and auxiliary) outputs."""
    min_std: float = 0.05
    """Lower bound on the action std the head outputs (softplus + min_std)."""
    aux_outputs: int = 0
    """Size of an auxiliary head (e.g. object keypoints/pose prediction); 0: none."""
    proprio_last_action: LastAction = "executed"
    """'proprio' ends with the last executed action; on teacher-acted DAgger steps that
    action was chosen with privileged information (a copycat shortcut). 'none' zeroes
    that part before the student sees it."""
    num_goal_points: int = 0
    """The point cloud's last 'num_goal_points' points are the goal's (the env's
    'point_cloud.num_goal_points'): they get an indicator channel so that the pooled
    features tell object from goal. 0: no indicator."""

    def validate(self, obs_keys: frozenset[str] | None = None) -> None:
        checks.check_types(self, "student.")
        check_keys(self.input_keys, STUDENT_KEYS, "student")
        if obs_keys is not None:
            check_keys(self.input_keys, obs_keys, "student (keys missing from the env)")
        for name in ("memory_size", "history"):
            checks.require(f"student.{name}", getattr(self, name), ge=1)

    @property
    def input_keys(self) -> tuple[str, ...]:
        keys = (self.modality, *self.extra_keys)
        if self.modality == "point_cloud":
            keys = (*keys, "point_cloud_mask")
        return keys


def without_last_action(proprio: jax.Array, action_size: int) -> jax.Array:
    """``proprio [..., Q]`` with its last ``action_size`` entries (the last action) zeroed."""
    keep = jp.arange(proprio.shape[-1]) < proprio.shape[-1] - action_size
    return jp.where(keep, proprio, 0.0)


class PointNetEncoder(nn.Module):
    """Shared per-point MLP + masked max and mean pooling: ``[B, N, 3], [B, N] -> [B, 2H]``.

    Permutation invariant (within the object's and within the goal's points); padded
    (masked-out) points never influence the output. With ``num_goal`` > 0 the last
    ``num_goal`` points carry a 4th input channel equal to 1 (goal), the others 0.
    """

    hidden: tuple[int, ...]
    num_goal: int = 0

    @nn.compact
    def __call__(self, points: jax.Array, mask: jax.Array) -> jax.Array:
        if self.num_goal:
            flag = jp.zeros((*points.shape[:-1], 1), points.dtype)
            points = jp.concatenate([points, flag.at[..., -self.num_goal :, :].set(1.0)], -1)
        feats = mlp(points, self.hidden)  # [B, N, H]
        m = mask[..., None]
        neg = jp.finfo(feats.dtype).min
        max_pool = jp.max(jp.where(m, feats, neg), axis=-2)
        any_valid = jp.any(mask, axis=-1, keepdims=True)
        max_pool = jp.where(any_valid, max_pool, 0.0)
        count = jp.maximum(jp.sum(m, axis=-2), 1.0)
        mean_pool = jp.sum(jp.where(m, feats, 0.0), axis=-2) / count
        return jp.concatenate([max_pool, mean_pool], axis=-1)


class ObservationEncoder(nn.Module):
    """Object encoder (keypoint MLP or PointNet) + proprio MLP: ``obs -> [B, E]``."""

    config: StudentConfig

    @nn.compact
    def __call__(self, obs: Mapping[str, jax.Array]) -> jax.Array:
        cfg = self.config
        if cfg.modality == "point_cloud":
            encoder = PointNetEncoder(cfg.pointnet_hidden, cfg.num_goal_points)
            obj = encoder(obs["point_cloud"], obs["point_cloud_mask"])
        else:
            kp = obs["keypoints"]
            obj = mlp(kp.reshape(*kp.shape[:-2], -1), cfg.encoder_hidden)
        extra = jp.concatenate(
            [obs[k].reshape(obs[k].shape[0], -1) for k in cfg.extra_keys], axis=-1
        )
        return jp.concatenate([obj, mlp(extra, cfg.proprio_hidden)], axis=-1)


class StudentModule(nn.Module):
    """One step: ``(obs [B, ...], carry) -> (carry, (mean [B, A], std [B, A], aux [B, X]))``."""

    config: StudentConfig
    action_size: int

    @nn.compact
    def __call__(
        self, obs: Mapping[str, jax.Array], carry: Any
    ) -> tuple[Any, tuple[jax.Array, ...]]:
        cfg = self.config
        if cfg.proprio_last_action == "none" and "proprio" in obs:
            obs = {**obs, "proprio": without_last_action(obs["proprio"], self.action_size)}
        x = ObservationEncoder(cfg)(obs)
        if cfg.memory in CELLS:
            carry, x = memory_cell(cfg.memory, cfg.memory_size)(carry, x)
        elif cfg.memory == "stack":
            carry = jp.concatenate([carry[:, 1:], x[:, None]], axis=1)
            x = carry.reshape(carry.shape[0], -1)
        h = mlp(x, cfg.head_hidden)
        init = nn.initializers.variance_scaling(0.01, "fan_in", "uniform")
        loc = nn.Dense(self.action_size, kernel_init=init)(h)
        std = jax.nn.softplus(nn.Dense(self.action_size)(h)) + cfg.min_std
        aux = nn.Dense(cfg.aux_outputs)(h) if cfg.aux_outputs else jp.zeros((x.shape[0], 0))
        return carry, (jp.tanh(loc), std, aux)


@dataclasses.dataclass(frozen=True)
class StudentNetworks:
    """The student's module plus carry helpers (no parameters inside)."""

    config: StudentConfig
    module: StudentModule
    action_size: int
    encoding_size: int

    def initial_carry(self, batch: int) -> Any:
        cfg = self.config
        if cfg.memory in CELLS:
            return zero_carry(cfg.memory, batch, cfg.memory_size)
        if cfg.memory == "stack":
            return jp.zeros((batch, cfg.history, self.encoding_size))
        return jp.zeros((batch, 0))

    @staticmethod
    def reset_carry(carry: Any, done: jax.Array) -> Any:
        """Zeroes the memory of envs whose episode ended (``done [B]``)."""
        return reset_carry(carry, done)

    def init(self, key: jax.Array, obs_spec: Mapping[str, ArraySpec]) -> Any:
        """Initial parameters, as one compiled program (not flax's eager dispatch)."""

        def init(k: jax.Array) -> Any:
            dummy = {
                n: jp.zeros((1, *obs_spec[n].shape), obs_spec[n].dtype)
                for n in self.config.input_keys
            }
            return self.module.init(k, dummy, self.initial_carry(1))

        return jax.jit(init)(key)

    def apply(
        self, params: Any, obs: Mapping[str, jax.Array], carry: Any
    ) -> tuple[Any, tuple[jax.Array, ...]]:
        """One step for a batch; reads only ``config.input_keys`` of ``obs``."""
        return self.module.apply(params, {k: obs[k] for k in self.config.input_keys}, carry)


def make_networks(
    config: StudentConfig, obs_spec: Mapping[str, ArraySpec], action_size: int
) -> StudentNetworks:
    """Validates ``config`` (no ``privileged``!) against ``obs_spec`` and builds the student."""
    config.validate(frozenset(obs_spec))
    module = StudentModule(config, action_size)
    dummy = {k: jp.zeros((1, *obs_spec[k].shape), obs_spec[k].dtype) for k in config.input_keys}
    encoder = ObservationEncoder(config)
    enc = jax.eval_shape(lambda o: encoder.init_with_output(jax.random.PRNGKey(0), o)[0], dummy)
    return StudentNetworks(config, module, action_size, int(enc.shape[-1]))


def make_policy(
    nets: StudentNetworks,
    params: Any,
    deterministic: bool = False,
    fixed_std: float | None = None,
) -> Any:
    """``policy(obs [B, ...], carry, key) -> (action [B, A], carry, extras)``; extras: mean, std.

    The action is the mean (``deterministic``), ``clip(mean + fixed_std * N(0, 1))`` when
    ``fixed_std`` is given, else a sample with the student's own (learned) std.
    """

    def policy(
        obs: Mapping[str, jax.Array], carry: Any, key: jax.Array
    ) -> tuple[jax.Array, Any, dict]:
        carry, (mean, std, aux) = nets.apply(params, obs, carry)
        if deterministic:
            action = mean
        else:
            scale = std if fixed_std is None else fixed_std
            action = jp.clip(mean + scale * jax.random.normal(key, mean.shape), -1.0, 1.0)
        return action, carry, {"mean": mean, "std": std, "aux": aux}

    return policy
