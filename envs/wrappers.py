"""Wrappers: batching, auto-reset with fresh randomization, episode statistics, history.

Unlike brax's ``AutoResetWrapper`` (which returns a finished env to its *first*
start state), :class:`AutoReset` draws a fresh start state **and fresh episode
parameters** from the env's own RNG, so a batch of B envs sees new randomized
physics every episode rather than B fixed ones.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jp

from dexdistill.envs.base import ArraySpec, Env, State
from dexdistill.envs.common import checks, fastrand


def _select(done: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where ``done`` else ``b``, leafwise; ``done`` ``[*B]`` is broadcast over each
    leaf's trailing axes (``B`` = () for one env, ``(num_envs,)`` for a batch)."""

    def pick(x: jax.Array, y: jax.Array) -> jax.Array:
        return jp.where(done.reshape(done.shape + (1,) * (x.ndim - done.ndim)), x, y)

    return jax.tree.map(pick, a, b)


def _count_episode(state: State, nxt: State) -> State:
    """``nxt`` with the running ``episode_return`` / ``episode_length`` in info and metrics."""
    totals = {
        "episode_return": state.info["episode_return"] + nxt.reward,
        "episode_length": state.info["episode_length"] + 1.0,
    }
    return nxt.replace(info={**nxt.info, **totals}, metrics={**nxt.metrics, **totals})


def _start_new_episodes(done: jax.Array, fresh: State, nxt: State) -> State:
    """``nxt`` whose finished envs continue from ``fresh`` (data, obs, info), keeping the
    finishing step's reward, done, metrics and truncation flag."""
    info = _select(done, fresh.info, nxt.info)
    info["truncation"] = nxt.info["truncation"]
    return nxt.replace(
        data=_select(done, fresh.data, nxt.data), obs=_select(done, fresh.obs, nxt.obs), info=info
    )


def _fresh_key(rng: jax.Array) -> jax.Array:
    """The key of the episode that follows one whose env key is now ``rng`` (a stream
    apart from the env's own; no threefry call, see :mod:`envs.fastrand`)."""
    return fastrand.split(rng, 2)[1]


def _fresh_episode(env: Env, key: jax.Array, info: dict[str, Any]) -> State:
    """A new episode of ``env`` at the goal level of the one ``info`` belongs to (tasks
    with a curriculum carry ``info["goal_level"]``; see :mod:`envs.curriculum`)."""
    if "goal_level" in info:
        return env.reset_at_level(key, info["goal_level"])
    return env.reset(key)


class Wrapper:
    """Forwards everything to ``env``."""

    def __init__(self, env: Env):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Env:
        return getattr(self.env, "unwrapped", self.env)

    def reset(self, rng: jax.Array) -> State:
        return self.env.reset(rng)

    def reset_at_level(self, rng: jax.Array, level: jax.Array) -> State:
        return self.env.reset_at_level(rng, level)

    def step(self, state: State, action: jax.Array) -> State:
        return self.env.step(state, action)


class AutoReset(Wrapper):
    """Resets an env as soon as its episode ends, with a fresh start and parameters.

    The returned state of a finishing step carries that step's ``reward``,
    ``done`` and ``metrics`` (so success at the end of an episode is visible),
    and the *new* episode's ``data``, ``obs`` and ``info``. It also tracks
    ``metrics["episode_return"]`` and ``metrics["episode_length"]``: the running
    totals, which on a ``done`` step are those of the finished episode.
    """

    def reset(self, rng: jax.Array) -> State:
        return self._with_totals(self.env.reset(rng))

    def reset_at_level(self, rng: jax.Array, level: jax.Array) -> State:
        return self._with_totals(self.env.reset_at_level(rng, level))

    @staticmethod
    def _with_totals(state: State) -> State:
        info = {**state.info, "episode_return": jp.zeros(()), "episode_length": jp.zeros(())}
        metrics = {**state.metrics, "episode_return": jp.zeros(()), "episode_length": jp.zeros(())}
        return state.replace(info=info, metrics=metrics)

    def step(self, state: State, action: jax.Array) -> State:
        nxt = _count_episode(state, self.env.step(state, action))
        fresh = _fresh_episode(self, _fresh_key(nxt.info["rng"]), nxt.info)
        return _start_new_episodes(nxt.done > 0, fresh, nxt)


class ObservationHistory(Wrapper):
    """Stacks the last ``length`` observations of ``keys``: ``[...] -> [length, ...]``.

    The newest observation is last. At a reset (and after an auto-reset) the
    history is filled with the first observation. Wrap *outside* :class:`AutoReset`.
    """

    def __init__(self, env: Env, keys: tuple[str, ...], length: int):
        super().__init__(env)
        checks.require("history length", length, ge=1)
        missing = [k for k in keys if k not in env.observation_spec]
        if missing:
            raise ValueError(
                f"history keys {missing} are not observations; have {list(env.observation_spec)}"
            )
        self.keys = tuple(keys)
        self.length = length

    @property
    def observation_spec(self) -> dict[str, ArraySpec]:
        spec = dict(self.env.observation_spec)
        for k in self.keys:
            spec[k] = ArraySpec((self.length, *spec[k].shape), spec[k].dtype)
        return spec

    def _fill(self, obs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        out = dict(obs)
        for k in self.keys:
            out[k] = jp.repeat(obs[k][None], self.length, axis=0)
        return out

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        return state.replace(obs=self._fill(state.obs))

    def reset_at_level(self, rng: jax.Array, level: jax.Array) -> State:
        state = self.env.reset_at_level(rng, level)
        return state.replace(obs=self._fill(state.obs))

    def step(self, state: State, action: jax.Array) -> State:
        inner = state.replace(obs={**state.obs, **{k: state.obs[k][-1] for k in self.keys}})
        nxt = self.env.step(inner, action)
        rolled = dict(nxt.obs)
        for k in self.keys:
            rolled[k] = jp.concatenate([state.obs[k][1:], nxt.obs[k][None]], axis=0)
        obs = _select(nxt.done > 0, self._fill(nxt.obs), rolled)
        return nxt.replace(obs=obs)


class Batched(Wrapper):
    """Vmaps ``reset``/``step`` over ``num_envs`` environments.

    ``reset(rng)`` takes one key and splits it; ``step`` takes ``action [B, A]``.
    """

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        checks.require("num_envs", num_envs, ge=1)
        self.num_envs = num_envs

    def reset(self, rng: jax.Array) -> State:
        return jax.vmap(self.env.reset)(jax.random.split(rng, self.num_envs))

    def step(self, state: State, action: jax.Array) -> State:
        return jax.vmap(self.env.step)(state, action)


class BatchedAutoReset(Wrapper):
    """Batch of ``num_envs`` envs with auto-reset decided at the batch level.

    Same semantics as ``Batched(AutoReset(env))``, but the fresh start states are
    only computed (for the whole batch, under one ``lax.cond``) on steps where
    some episode ended, instead of on every step: with fixed-length episodes
    that is one step in ``episode_length``.
    """

    def __init__(self, env: Env, num_envs: int):
        super().__init__(AutoReset(env))
        checks.require("num_envs", num_envs, ge=1)
        self.num_envs = num_envs
        self._inner = env

    def reset(self, rng: jax.Array) -> State:
        return jax.vmap(self.env.reset)(jax.random.split(rng, self.num_envs))

    def step(self, state: State, action: jax.Array) -> State:
        nxt = _count_episode(state, jax.vmap(self._inner.step)(state, action))
        done = nxt.done > 0

        def with_resets(s: State) -> State:
            keys = jax.vmap(_fresh_key)(s.info["rng"])
            fresh = jax.vmap(lambda k, i: _fresh_episode(self.env, k, i))(keys, s.info)
            return _start_new_episodes(done, fresh, s)

        return jax.lax.cond(jp.any(done), with_resets, lambda s: s, nxt)


def wrap_for_training(
    env: Env,
    num_envs: int,
    history: tuple[tuple[str, ...], int] | None = None,
) -> Env:
    """The usual stack: a batch of ``num_envs`` with auto-reset (+ optional history)."""
    if history is None:
        return BatchedAutoReset(env, num_envs)
    return Batched(ObservationHistory(AutoReset(env), *history), num_envs)
