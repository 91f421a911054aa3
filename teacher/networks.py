"""Teacher actor and critic, each reading only the observation keys it is given.

``make_networks`` returns the flax modules and the pure functions around them;
``make_policy(params)`` returns ``policy(obs, carry, key) -> (action, carry, extras)``
where ``extras`` holds the distribution's ``mean`` and ``std`` in action space
(DAgger's labels) and the sample's ``log_prob``.

Action distributions:

* ``tanh_normal`` (default): a Gaussian squashed by ``tanh`` into ``[-1, 1]``;
  ``mean``/``std`` are those of the pre-squash Gaussian pushed through ``tanh``:
  ``tanh(mu)`` and, to first order, ``sigma * (1 - tanh(mu)^2)`` (both in action space).
* ``discrete``: per-joint categorical over ``num_bins`` evenly spaced values in
  ``[-1, 1]`` (Dactyl found it better than a Gaussian).

Memory (Dactyl's "LSTM policy / LSTM value" ablation row): ``actor_memory`` and
``critic_memory`` are ``none`` (feed-forward, the default), ``gru`` or ``lstm``.
A recurrent network is ``Dense(hidden[0]) -> cell(memory_size) -> MLP(hidden[1:])``
and keeps a per-env hidden state: the policy's ``carry`` is the actor's
(``initial_carry(batch)``; ``None`` for a feed-forward actor), zeroed at episode
starts with ``reset_carry(carry, done)``. The MLP, the cells, their zero carry and
``reset_carry`` are the student's too (``envs.layers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jp

from dexdistill.envs.base import ArraySpec, check_keys
from dexdistill.envs.common import checks
from dexdistill.envs.common.layers import MLP, memory_cell, reset_carry, zero_carry

Distribution = Literal["tanh_normal", "discrete"]
Memory = Literal["none", "gru", "lstm"]
_HIDDEN_INIT = nn.initializers.lecun_uniform()
"""The teacher's hidden-layer kernels (the student keeps flax's default, lecun-normal):
kept apart so that neither network's initial parameters changed when they started to
share ``envs.layers``."""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Sizes and inputs of the teacher's networks."""

    actor_keys: tuple[str, ...] = ("privileged",)
    """Observation keys the actor reads (concatenated after flattening)."""
    critic_keys: tuple[str, ...] = ("privileged",)
    """Observation keys the critic reads; may include more than the actor's."""
    actor_hidden: tuple[int, ...] = (64, 64)
    """Actor MLP hidden widths (with memory: the first is the layer before the cell)."""
    critic_hidden: tuple[int, ...] = (128, 128)
    """Critic MLP hidden widths (with memory: the first is the layer before the cell)."""
    distribution: Distribution = "tanh_normal"
    """'tanh_normal' (Gaussian squashed into [-1, 1]) or 'discrete' (num_bins values per joint)."""
    num_bins: int = 11
    """Bins per action dimension when 'distribution='discrete''."""
    init_std: float = 0.6
    """Initial std of the pre-squash Gaussian ('tanh_normal' only)."""
    min_std: float = 0.05
    """Lower bound on the pre-squash Gaussian std ('tanh_normal' only)."""
    actor_memory: Memory = "none"
    """'none' (feed-forward), 'gru' or 'lstm': a recurrent actor (Dactyl's LSTM policy)."""
    critic_memory: Memory = "none"
    """'none', 'gru' or 'lstm': a recurrent critic (Dactyl's LSTM value)."""
    memory_size: int = 128
    """Hidden-state size of a recurrent actor or critic."""

    @property
    def recurrent(self) -> bool:
        """Whether the actor or the critic carries a hidden state."""
        return self.actor_memory != "none" or self.critic_memory != "none"

    def validate(self, obs_keys: Sequence[str]) -> None:
        checks.check_types(self, "network.")
        allowed = frozenset(obs_keys)
        check_keys(self.actor_keys, allowed, "network.actor_keys")
        check_keys(self.critic_keys, allowed, "network.critic_keys")
        if not self.actor_keys or not self.critic_keys:
            raise ValueError("network.actor_keys/critic_keys: must name at least one key")
        checks.require("network.num_bins", self.num_bins, ge=2)
        if min(self.actor_hidden + self.critic_hidden, default=1) < 1:
            raise ValueError("network.actor_hidden/critic_hidden: sizes must be >= 1")
        checks.require("network.memory_size", self.memory_size, ge=1)


def select(obs: Mapping[str, jax.Array], keys: Sequence[str], batch_dims: int) -> jax.Array:
    """Flattens and concatenates ``obs[k]`` for ``keys``: ``[*batch, D]``.

    Only the named keys are touched, so a network physically cannot see others.
    """
    parts = []
    for k in keys:
        x = obs[k].astype(jp.float32)
        parts.append(x.reshape(*x.shape[:batch_dims], -1))
    return jp.concatenate(parts, axis=-1)


def _mlp(hidden: tuple[int, ...], out: int, out_scale: float = 1.0) -> MLP:
    """``[..., D] -> [..., out]``: swish hidden layers (lecun-uniform kernels), a linear output."""
    return MLP(hidden, out, out_scale=out_scale, kernel_init=_HIDDEN_INIT)


# --------------------------------------------------------------------------- distributions


def _softplus_std(raw: jax.Array, min_std: float) -> jax.Array:
    return jax.nn.softplus(raw) + min_std


@dataclasses.dataclass(frozen=True)
class TanhNormal:
    """Gaussian in pre-squash space; actions are ``tanh`` of samples."""

    min_std: float
    init_std: float

    def param_size(self, action_size: int) -> int:
        return 2 * action_size

    def split(self, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
        loc, raw = jp.split(logits, 2, axis=-1)
        offset = jp.log(jp.expm1(self.init_std - self.min_std))
        return loc, _softplus_std(raw + offset, self.min_std)

    def sample(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        """A pre-squash sample ``u``; the action is ``tanh(u)``."""
        loc, std = self.split(logits)
        return loc + std * jax.random.normal(key, loc.shape)

    def mode(self, logits: jax.Array) -> jax.Array:
        return self.split(logits)[0]

    def log_prob(self, logits: jax.Array, raw_action: jax.Array) -> jax.Array:
        loc, std = self.split(logits)
        z = (raw_action - loc) / std
        lp = -0.5 * z**2 - jp.log(std) - 0.5 * jp.log(2 * jp.pi)
        lp = lp - 2.0 * (jp.log(2.0) - raw_action - jax.nn.softplus(-2.0 * raw_action))
        return jp.sum(lp, axis=-1)

    def entropy(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        loc, std = self.split(logits)
        ent = jp.sum(0.5 + 0.5 * jp.log(2 * jp.pi) + jp.log(std), axis=-1)
        u = self.sample(logits, key)
        # E[log |d tanh(u)/du|] estimated with one sample, as brax does
        log_det = jp.sum(2.0 * (jp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
        return ent + log_det

    def postprocess(self, raw_action: jax.Array) -> jax.Array:
        return jp.tanh(raw_action)

    def mean_std(self, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and std in action space: ``tanh(mu)`` and, by the delta method,
        ``sigma * (1 - tanh(mu)^2)`` (the pre-squash std pushed through ``tanh``'s slope)."""
        loc, std = self.split(logits)
        mean = jp.tanh(loc)
        return mean, std * (1.0 - mean**2)


@dataclasses.dataclass(frozen=True)
class Discrete:
    """Independent categorical per action dimension over evenly spaced bins."""

    num_bins: int
    action_size: int

    def param_size(self, action_size: int) -> int:
        return action_size * self.num_bins

    def _logits(self, logits: jax.Array) -> jax.Array:
        return logits.reshape(*logits.shape[:-1], self.action_size, self.num_bins)

    @property
    def bins(self) -> jax.Array:
        return jp.linspace(-1.0, 1.0, self.num_bins)

    def sample(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        return jax.random.categorical(key, self._logits(logits)).astype(jp.float32)

    def mode(self, logits: jax.Array) -> jax.Array:
        return jp.argmax(self._logits(logits), axis=-1).astype(jp.float32)

    def log_prob(self, logits: jax.Array, raw_action: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(self._logits(logits))
        idx = raw_action.astype(jp.int32)[..., None]
        return jp.sum(jp.take_along_axis(logp, idx, axis=-1)[..., 0], axis=-1)

    def entropy(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(self._logits(logits))
        return -jp.sum(jp.exp(logp) * logp, axis=(-1, -2))

    def postprocess(self, raw_action: jax.Array) -> jax.Array:
        return self.bins[raw_action.astype(jp.int32)]

    def mean_std(self, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
        p = jax.nn.softmax(self._logits(logits))
        mean = jp.sum(p * self.bins, axis=-1)
        var = jp.sum(p * (self.bins - mean[..., None]) ** 2, axis=-1)
        return mean, jp.sqrt(var + 1e-8)


# --------------------------------------------------------------------------- networks


class RecurrentMLP(nn.Module):
    """``Dense(hidden[0]) -> GRU/LSTM cell -> MLP(hidden[1:], out)`` with a hidden state.

    ``__call__(x [B, D], carry) -> (out [B, out], carry)`` is one step. ``encode`` and
    ``decode`` do not depend on time, so an unroll applies them to the whole ``[T, B]``
    batch at once and scans only ``recur``.
    """

    hidden: tuple[int, ...]
    out: int
    memory: str
    memory_size: int
    out_scale: float = 1.0

    def setup(self) -> None:
        self.encoder = nn.Dense(self.hidden[0], kernel_init=_HIDDEN_INIT) if self.hidden else None
        self.cell = memory_cell(self.memory, self.memory_size)
        self.head = _mlp(self.hidden[1:], self.out, self.out_scale)

    def encode(self, x: jax.Array) -> jax.Array:
        return x if self.encoder is None else nn.swish(self.encoder(x))

    def recur(self, carry: Any, h: jax.Array) -> tuple[Any, jax.Array]:
        return self.cell(carry, h)

    def decode(self, y: jax.Array) -> jax.Array:
        return self.head(y)

    def __call__(self, x: jax.Array, carry: Any) -> tuple[jax.Array, Any]:
        carry, y = self.recur(carry, self.encode(x))
        return self.decode(y), carry

    def zeros(self, batch: int) -> Any:
        """The hidden state of a fresh episode: ``[B, M]`` (GRU) or ``(c, h)`` (LSTM)."""
        return zero_carry(self.memory, batch, self.memory_size)


def _unroll(
    module: RecurrentMLP, params: Any, x: jax.Array, carry: Any, first: jax.Array
) -> tuple[jax.Array, Any]:
    """Runs ``module`` over ``x [T, B, D]`` from ``carry``; zeroes the state where ``first [T, B]``."""
    h = module.apply(params, x, method="encode")

    def step(c: Any, inp: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        h_t, first_t = inp
        return module.apply(params, reset_carry(c, first_t), h_t, method="recur")

    carry, ys = jax.lax.scan(step, carry, (h, first))
    return module.apply(params, ys, method="decode"), carry


@dataclasses.dataclass(frozen=True)
class TeacherNetworks:
    """The teacher's modules and distribution (no parameters inside).

    Feed-forward networks use ``logits``/``value`` on any batch shape. Recurrent ones
    (and, uniformly, feed-forward ones) use ``step_*`` for one step ``[B]`` with a
    carry and ``unroll_*`` for a ``[T, B]`` sequence from an initial carry, with the
    state zeroed where ``first [T, B]`` marks an episode start (a feed-forward network
    ignores and returns the carry it is given).
    """

    config: NetworkConfig
    actor: MLP | RecurrentMLP
    critic: MLP | RecurrentMLP
    dist: TanhNormal | Discrete
    action_size: int

    @property
    def actor_recurrent(self) -> bool:
        return isinstance(self.actor, RecurrentMLP)

    @property
    def critic_recurrent(self) -> bool:
        return isinstance(self.critic, RecurrentMLP)

    def initial_carry(self, batch: int) -> Any:
        """The actor's carry (the policy's) at an episode start; ``None`` if feed-forward."""
        return self.actor.zeros(batch) if self.actor_recurrent else None

    def initial_critic_carry(self, batch: int) -> Any:
        """The critic's carry at an episode start; ``None`` if feed-forward."""
        return self.critic.zeros(batch) if self.critic_recurrent else None

    @staticmethod
    def reset_carry(carry: Any, done: jax.Array) -> Any:
        """Zeroes the carry of the envs whose episode ended (``done [B] > 0``)."""
        return reset_carry(carry, done)

    def init(self, key: jax.Array, obs_spec: Mapping[str, ArraySpec]) -> dict[str, Any]:
        """Initial ``{"actor": ..., "critic": ...}`` parameters, as one compiled program
        (flax's eager init dispatches hundreds of small ones: about 1.4 s on a CPU)."""
        return jax.jit(lambda k: self._init(k, obs_spec))(key)

    def _init(self, key: jax.Array, obs_spec: Mapping[str, ArraySpec]) -> dict[str, Any]:
        k_a, k_c = jax.random.split(key)
        dummy = {k: jp.zeros((1, *s.shape), s.dtype) for k, s in obs_spec.items()}

        def init_one(module: MLP | RecurrentMLP, k: jax.Array, keys: Sequence[str]) -> Any:
            x = select(dummy, keys, 1)
            if isinstance(module, RecurrentMLP):
                return module.init(k, x, module.zeros(1))
            return module.init(k, x)

        return {
            "actor": init_one(self.actor, k_a, self.config.actor_keys),
            "critic": init_one(self.critic, k_c, self.config.critic_keys),
        }

    def _head(self, name: str) -> tuple[nn.Module, tuple[str, ...], bool]:
        """``(module, observation keys, recurrent)`` of the ``actor`` or the ``critic``."""
        if name == "actor":
            return self.actor, self.config.actor_keys, self.actor_recurrent
        return self.critic, self.config.critic_keys, self.critic_recurrent

    def _apply(
        self, name: str, params: dict[str, Any], obs: Mapping[str, jax.Array], batch_dims: int
    ) -> jax.Array:
        module, keys, recurrent = self._head(name)
        if recurrent:
            raise ValueError(
                f"network.{name}_memory is recurrent: use the step_ / unroll_ methods with a carry"
            )
        return module.apply(params[name], select(obs, keys, batch_dims))

    def _step(
        self, name: str, params: dict[str, Any], obs: Mapping[str, jax.Array], carry: Any
    ) -> tuple[jax.Array, Any]:
        module, keys, recurrent = self._head(name)
        if not recurrent:
            return self._apply(name, params, obs, 1), carry
        return module.apply(params[name], select(obs, keys, 1), carry)

    def _unroll(
        self,
        name: str,
        params: dict[str, Any],
        obs: Mapping[str, jax.Array],
        carry: Any,
        first: jax.Array,
    ) -> tuple[jax.Array, Any]:
        module, keys, recurrent = self._head(name)
        if not recurrent:
            return self._apply(name, params, obs, 2), carry
        return _unroll(module, params[name], select(obs, keys, 2), carry, first)

    def logits(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], batch_dims: int = 1
    ) -> jax.Array:
        """Feed-forward actor output on ``[*batch, ...]`` observations."""
        return self._apply("actor", params, obs, batch_dims)

    def value(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], batch_dims: int = 1
    ) -> jax.Array:
        """Feed-forward critic output on ``[*batch, ...]`` observations."""
        return self._apply("critic", params, obs, batch_dims)[..., 0]

    def step_logits(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], carry: Any
    ) -> tuple[jax.Array, Any]:
        """One actor step on ``[B, ...]``: ``(logits, carry)``."""
        return self._step("actor", params, obs, carry)

    def step_value(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], carry: Any
    ) -> tuple[jax.Array, Any]:
        """One critic step on ``[B, ...]``: ``(value [B], carry)``."""
        out, carry = self._step("critic", params, obs, carry)
        return out[..., 0], carry

    def unroll_logits(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], carry: Any, first: jax.Array
    ) -> tuple[jax.Array, Any]:
        """The actor over ``[T, B, ...]`` from ``carry``: ``(logits [T, B, P], final carry)``."""
        return self._unroll("actor", params, obs, carry, first)

    def unroll_value(
        self, params: dict[str, Any], obs: Mapping[str, jax.Array], carry: Any, first: jax.Array
    ) -> tuple[jax.Array, Any]:
        """The critic over ``[T, B, ...]`` from ``carry``: ``(values [T, B], final carry)``."""
        out, carry = self._unroll("critic", params, obs, carry, first)
        return out[..., 0], carry


def _module(
    memory: str, hidden: tuple[int, ...], out: int, memory_size: int, out_scale: float = 1.0
) -> MLP | RecurrentMLP:
    if memory == "none":
        return _mlp(hidden, out, out_scale)
    return RecurrentMLP(hidden, out, memory, memory_size, out_scale=out_scale)


def make_networks(
    config: NetworkConfig, obs_spec: Mapping[str, ArraySpec], action_size: int
) -> TeacherNetworks:
    """Validates ``config`` against ``obs_spec`` and builds the modules."""
    config.validate(list(obs_spec))
    if config.distribution == "tanh_normal":
        dist: TanhNormal | Discrete = TanhNormal(config.min_std, config.init_std)
    else:
        dist = Discrete(config.num_bins, action_size)
    size = config.memory_size
    return TeacherNetworks(
        config=config,
        actor=_module(
            config.actor_memory,
            config.actor_hidden,
            dist.param_size(action_size),
            size,
            out_scale=0.01,
        ),
        critic=_module(config.critic_memory, config.critic_hidden, 1, size),
        dist=dist,
        action_size=action_size,
    )


Policy = Callable[
    [Mapping[str, jax.Array], Any, jax.Array], tuple[jax.Array, Any, dict[str, jax.Array]]
]


def make_policy(
    nets: TeacherNetworks,
    params: dict[str, Any],
    normalize: Callable[[Mapping[str, jax.Array]], Mapping[str, jax.Array]] = lambda o: o,
    deterministic: bool = False,
) -> Policy:
    """``policy(obs [B, ...], carry, key) -> (action [B, A], carry, extras)``.

    ``extras``: ``mean`` and ``std`` (labels for DAgger), ``raw_action`` and
    ``log_prob`` (for PPO). A feed-forward actor passes ``carry`` through; a recurrent
    one reads and returns its hidden state: start from ``nets.initial_carry(B)`` and
    apply ``nets.reset_carry(carry, done)`` where an episode ended.
    """

    def policy(
        obs: Mapping[str, jax.Array], carry: Any, key: jax.Array
    ) -> tuple[jax.Array, Any, dict[str, jax.Array]]:
        logits, carry = nets.step_logits(params, normalize(obs), carry)
        raw = nets.dist.mode(logits) if deterministic else nets.dist.sample(logits, key)
        mean, std = nets.dist.mean_std(logits)
        extras = {
            "mean": mean,
            "std": std,
            "raw_action": raw,
            "log_prob": nets.dist.log_prob(logits, raw),
        }
        return nets.dist.postprocess(raw), carry, extras

    return policy
