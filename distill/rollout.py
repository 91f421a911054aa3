"""Mixed teacher/student rollouts with teacher labels, in one ``lax.scan``.

At every step and for every env the teacher acts with probability beta, else the
student (``mixing='step'``), or one of them acts for a whole episode
(``mixing='episode'``). The teacher labels **every** visited state with its mean
action and std, whoever acted. The student's recurrent carry at the start of the
rollout is returned too, so recurrent students can be trained on these
sequences with truncated back-propagation through time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jp
from flax import struct

from dexdistill.envs.base import Env, State
from dexdistill.envs.common import checks

Mixing = Literal["step", "episode"]
MIXING: tuple[str, ...] = checks.choices(Mixing)


@struct.dataclass
class RolloutCarry:
    """What a rollout continues from: env states, student memory, per-episode actor."""

    env_state: State
    student_carry: Any
    teacher_episode: jax.Array
    """[B] bool, who acts this episode under ``mixing='episode'``."""
    actor_pending: jax.Array
    """[B] bool, the current episode's actor is still to be drawn from beta (the first
    episodes, whose start preceded any beta)."""
    prefix: Any = None
    """The previous rollout's student observations and episode starts (``obs``,
    ``is_first``, ``valid``; leaves ``[B, T, ...]``), stored with the next sequences so that
    the fit can recompute their initial memory with the current weights; ``None`` when
    the student has no memory."""


@struct.dataclass
class Labelled:
    """One rollout, leaves ``[T, B, ...]`` (``initial_carry``: ``[B, ...]``)."""

    obs: dict[str, jax.Array]
    """Student-readable observations only."""
    teacher_mean: jax.Array
    teacher_std: jax.Array
    student_mean: jax.Array
    action: jax.Array
    """The action executed."""
    teacher_acted: jax.Array
    is_first: jax.Array
    """The step starts an episode (the student's memory was reset before it)."""
    is_last: jax.Array
    """The episode ended with this step."""
    is_terminal: jax.Array
    """The episode ended in a terminal state (not a time-limit truncation)."""
    reward: jax.Array
    success: jax.Array
    aux_target: jax.Array
    """``[T, B, K]`` target of the student's auxiliary head (``K = 0``: none)."""
    initial_carry: Any
    """The student's memory when the rollout started (from the weights that acted)."""
    prefix: Any = None
    """The rollout before this one, ``[B, T, ...]`` (see :attr:`RolloutCarry.prefix`), or ``None``."""


def empty_prefix(obs_spec: dict[str, Any], keys: tuple[str, ...], unroll: int, batch: int) -> dict:
    """A prefix of ``unroll`` invalid steps (what precedes the first rollout), ``[B, T, ...]``."""
    return {
        "obs": {k: jp.zeros((batch, unroll, *obs_spec[k].shape), obs_spec[k].dtype) for k in keys},
        "is_first": jp.zeros((batch, unroll), bool),
        "valid": jp.zeros((batch, unroll), bool),
    }


def make_rollout(
    env: Env,
    teacher: Callable,
    student: Callable[[Any], Callable],
    reset_carry: Callable[[Any, jax.Array], Any],
    student_keys: tuple[str, ...],
    unroll_length: int,
    mixing: str = "step",
    teacher_deterministic: bool = True,
    aux_target: Callable[[dict[str, jax.Array]], jax.Array] | None = None,
) -> Callable[[Any, RolloutCarry, jax.Array, jax.Array], tuple[RolloutCarry, Labelled]]:
    """Returns ``rollout(student_params, carry, beta, key) -> (carry, labelled)`` (not jitted).

    ``env`` is batched with auto-reset; ``teacher(obs, carry, key)`` is the frozen
    teacher policy; ``student(params)`` builds the student policy;
    ``aux_target(obs) -> [B, K]`` (e.g. the privileged object pose) is stored for the
    student's auxiliary head.
    """
    checks.require("mixing", mixing, allowed=MIXING)

    def rollout(
        params: Any, carry: RolloutCarry, beta: jax.Array, key: jax.Array
    ) -> tuple[RolloutCarry, Labelled]:
        policy = student(params)

        def step(c: tuple, k: jax.Array) -> tuple[tuple, dict[str, jax.Array]]:
            state, s_carry, t_episode, first = c
            k_t, k_s, k_mix, k_ep = jax.random.split(k, 4)
            t_action, _, t_extras = teacher(state.obs, None, k_t)
            if teacher_deterministic:
                t_action = t_extras["mean"]
            s_action, s_carry, s_extras = policy(state.obs, s_carry, k_s)
            batch = t_action.shape[0]
            if mixing == "step":
                use_teacher = jax.random.uniform(k_mix, (batch,)) < beta
            else:
                use_teacher = t_episode
            action = jp.where(use_teacher[:, None], t_action, s_action)
            nxt = env.step(state, action)
            done = nxt.done > 0
            s_carry = reset_carry(s_carry, done)
            new_ep = jax.random.uniform(k_ep, (batch,)) < beta
            t_episode = jp.where(done, new_ep, t_episode)
            out = {
                "obs": {k2: state.obs[k2] for k2 in student_keys},
                "teacher_mean": t_extras["mean"],
                "teacher_std": t_extras["std"],
                "student_mean": s_extras["mean"],
                "action": action,
                "teacher_acted": use_teacher,
                "is_first": first,
                "is_last": done,
                "is_terminal": done & (nxt.info.get("truncation", jp.zeros_like(nxt.done)) == 0),
                "reward": nxt.reward,
                "success": nxt.metrics["success"],
                "aux_target": jp.zeros((batch, 0)) if aux_target is None else aux_target(state.obs),
            }
            return (nxt, s_carry, t_episode, done), out

        first = carry.env_state.info["step"] == 0
        key, k_first = jax.random.split(key)
        drawn = jax.random.uniform(k_first, carry.teacher_episode.shape) < beta
        t_episode = jp.where(carry.actor_pending, drawn, carry.teacher_episode)
        init = (carry.env_state, carry.student_carry, t_episode, first)
        (state, s_carry, t_episode, _), traj = jax.lax.scan(
            step, init, jax.random.split(key, unroll_length)
        )
        labelled = Labelled(initial_carry=carry.student_carry, prefix=carry.prefix, **traj)
        pending = jp.zeros_like(carry.actor_pending)
        prefix = None
        if carry.prefix is not None:
            swap = lambda x: jp.swapaxes(x, 0, 1)  # noqa: E731  [T, B] -> [B, T]
            prefix = {
                "obs": jax.tree.map(swap, traj["obs"]),
                "is_first": swap(traj["is_first"]),
                "valid": jp.ones_like(swap(traj["is_first"])),
            }
        return RolloutCarry(state, s_carry, t_episode, pending, prefix), labelled

    return rollout
