"""Supervised fitting of the student to teacher labels.

Losses (``FitConfig.loss``), per step and summed over action dimensions:

* ``mse``: ``|mu_s - mu_t|^2``;
* ``huber``: Huber on ``mu_s - mu_t``;
* ``nll``: Gaussian negative log-likelihood of ``mu_t`` under the student;
* ``kl``: ``KL(teacher || student)`` between the two diagonal Gaussians;
* ``std_mse``: ``|mu_s - mu_t|^2 / sigma_t^2`` (confident teacher dims weigh more).

Recurrent students are unrolled over each stored sequence from its stored
initial carry (truncated BPTT over the sequence length), resetting memory at
episode starts. One :func:`make_update` call = ``num_updates`` minibatch steps,
jitted as one ``lax.scan``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jp
import optax

from dexdistill.distill import buffer as buffer_lib
from dexdistill.envs.common import checks
from dexdistill.student.networks import StudentNetworks

Loss = Literal["mse", "huber", "nll", "kl", "std_mse"]
MemoryStart = Literal["refresh", "stored"]
LOSSES: tuple[str, ...] = checks.choices(Loss)


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Supervised update settings (per DAgger iteration)."""

    loss: Loss = "mse"
    """'mse'/'huber' fit the mean action; 'nll'/'kl' the std too; 'std_mse' is mse / teacher var."""
    learning_rate: float = 1e-3
    """Adam step size."""
    num_updates: int = 32
    """Gradient steps per DAgger iteration."""
    batch_size: int = 32
    """Sequences per minibatch."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm before each Adam step."""
    aux_weight: float = 0.0
    """Weight of the auxiliary prediction loss (needs 'aux_outputs' in the student)."""
    memory_start: MemoryStart = "refresh"
    """Initial memory of a stored sequence: 'refresh' recomputes it with the current
    weights by running the memory over the rollout that preceded the sequence (from zero,
    resetting at episode starts, no gradient; exact when the episode began within it, a
    burn-in otherwise); 'stored' replays the memory the student had when the data was
    collected, made by older weights."""

    def validate(self) -> None:
        checks.check_types(self, "fit.")
        for name in ("num_updates", "batch_size"):
            checks.require(f"fit.{name}", getattr(self, name), ge=1)
        checks.require("fit.learning_rate", self.learning_rate, gt=0)


def action_loss(
    kind: str, s_mean: jax.Array, s_std: jax.Array, t_mean: jax.Array, t_std: jax.Array
) -> jax.Array:
    """Per-sample loss ``[...]`` from ``[..., A]`` student/teacher means and stds."""
    checks.require("fit.loss", kind, allowed=LOSSES)
    diff = s_mean - t_mean
    if kind == "mse":
        per = diff**2
    elif kind == "huber":
        per = optax.huber_loss(s_mean, t_mean, delta=0.1) / 0.1
    elif kind == "nll":
        per = 0.5 * (diff / s_std) ** 2 + jp.log(s_std)
    elif kind == "kl":
        t_std = jp.maximum(t_std, 1e-3)  # a saturated teacher dim has std ~ 0 in action space
        per = jp.log(s_std / t_std) + (t_std**2 + diff**2) / (2 * s_std**2) - 0.5
    else:  # std_mse
        per = diff**2 / jp.maximum(t_std, 0.05) ** 2
    return jp.sum(per, axis=-1)


def refreshed_carry(nets: StudentNetworks, params: Any, seq: dict[str, Any]) -> Any:
    """The sequences' initial memory recomputed with ``params`` over their prefix.

    Runs the memory from zero over ``prefix_obs`` (``[M, P, ...]``), zeroing it at each
    ``prefix_first`` step and wherever the prefix is not valid; no gradient flows into it.
    """
    obs_t = jax.tree.map(lambda x: jp.swapaxes(x, 0, 1), seq["prefix_obs"])
    first_t = jp.swapaxes(seq["prefix_first"], 0, 1)
    valid_t = jp.swapaxes(seq["prefix_valid"], 0, 1)
    zero = jax.tree.map(jp.zeros_like, seq["initial_carry"])

    def step(carry: Any, x: tuple) -> tuple[Any, None]:
        obs, first, valid = x
        carry = nets.reset_carry(carry, first | ~valid)
        carry, _ = nets.apply(params, obs, carry)
        return nets.reset_carry(carry, ~valid), None

    carry, _ = jax.lax.scan(step, zero, (obs_t, first_t, valid_t))
    return jax.lax.stop_gradient(carry)


def unroll(
    nets: StudentNetworks, params: Any, seq: dict[str, Any]
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Student outputs over sequences: obs leaves ``[M, T, ...]`` -> (mean, std, aux) ``[T, M, ...]``.

    The memory starts from :func:`refreshed_carry` when the sequences carry a prefix,
    else from their stored ``initial_carry``.
    """
    obs_t = jax.tree.map(lambda x: jp.swapaxes(x, 0, 1), seq["obs"])
    first_t = jp.swapaxes(seq["is_first"], 0, 1)
    start = refreshed_carry(nets, params, seq) if "prefix_obs" in seq else seq["initial_carry"]

    def step(carry: Any, x: tuple) -> tuple[Any, tuple]:
        obs, first = x
        carry = nets.reset_carry(carry, first)
        carry, out = nets.apply(params, obs, carry)
        return carry, out

    _, (mean, std, aux) = jax.lax.scan(step, start, (obs_t, first_t))
    return mean, std, aux


def sequence_loss(
    params: Any, nets: StudentNetworks, seq: dict[str, Any], cfg: FitConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    mean, std, aux = unroll(nets, params, seq)
    t_mean = jp.swapaxes(seq["teacher_mean"], 0, 1)
    t_std = jp.swapaxes(seq["teacher_std"], 0, 1)
    loss = jp.mean(action_loss(cfg.loss, mean, std, t_mean, t_std))
    metrics = {"loss": loss, "action_mse": jp.mean(jp.sum((mean - t_mean) ** 2, axis=-1))}
    if cfg.aux_weight > 0 and "aux_target" in seq:
        target = jp.swapaxes(seq["aux_target"], 0, 1)
        aux_loss = jp.mean(jp.sum((aux - target) ** 2, axis=-1))
        loss = loss + cfg.aux_weight * aux_loss
        metrics["aux_loss"] = aux_loss
    return loss, metrics


def make_optimizer(cfg: FitConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))


def make_update(
    nets: StudentNetworks, cfg: FitConfig
) -> Callable[[Any, Any, buffer_lib.Buffer, jax.Array], tuple[Any, Any, dict[str, jax.Array]]]:
    """Returns ``update(params, opt_state, buffer, key) -> (params, opt_state, metrics)`` (not jitted)."""
    optimizer = make_optimizer(cfg)
    grad_fn = jax.value_and_grad(sequence_loss, has_aux=True)

    def update(
        params: Any, opt_state: Any, buf: buffer_lib.Buffer, key: jax.Array
    ) -> tuple[Any, Any, dict]:
        def body(carry: tuple, k: jax.Array) -> tuple[tuple, dict]:
            p, o = carry
            seq = buffer_lib.sample(buf, k, cfg.batch_size)
            (_, metrics), grads = grad_fn(p, nets, seq, cfg)
            updates, o = optimizer.update(grads, o, p)
            return (optax.apply_updates(p, updates), o), metrics

        (params, opt_state), metrics = jax.lax.scan(
            body, (params, opt_state), jax.random.split(key, cfg.num_updates)
        )
        return params, opt_state, jax.tree.map(jp.mean, metrics)

    return update
