"""The functional environment interface shared by every dexdistill task.

An environment is a pair of pure functions over a pytree::

    state = env.reset(rng)            # rng: PRNGKey -> State
    state = env.step(state, action)   # action: [A] in [-1, 1]

Both are written for a *single* environment; batch them with ``jax.vmap`` (see
:mod:`envs.wrappers`). All randomness lives in ``state.info["rng"]``, so the same
key always gives the same trajectory.

Observations are a dict with the same keys for every task:

``privileged``          [P]     everything the simulator knows (incl. randomized physics)
``proprio``             [Q]     noisy joint positions + last action
``keypoints``           [2K, 3] object keypoints then goal keypoints (world frame)
``point_cloud``         [N, 3]  object points then goal points (world frame)
``point_cloud_mask``    [N]     True where the point is valid
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jp
import numpy as np
from flax import struct

OBS_KEYS: tuple[str, ...] = (
    "privileged",
    "proprio",
    "keypoints",
    "point_cloud",
    "point_cloud_mask",
)
"""Observation keys every task returns, in a fixed order."""

STUDENT_KEYS: frozenset[str] = frozenset(OBS_KEYS) - {"privileged"}
"""Keys a deployable (student) policy may read: everything but ``privileged``."""


@struct.dataclass
class State:
    """One environment's state; a pytree, so it can be vmapped, scanned and saved.

    Attributes:
      data: the physics state (``mjx.Data`` for MJX tasks, a small pytree otherwise).
      obs: observation dict, keys :data:`OBS_KEYS`.
      reward: scalar reward of the last transition.
      done: 1.0 when the episode ended at this step (termination or timeout).
      metrics: scalars worth logging (success, distances, consecutive successes...).
      info: bookkeeping that must be carried between steps: ``rng``, ``step``,
        ``params`` (this episode's randomized parameters), ``truncation``, ...
    """

    data: Any
    obs: dict[str, jax.Array]
    reward: jax.Array
    done: jax.Array
    metrics: dict[str, jax.Array] = struct.field(default_factory=dict)
    info: dict[str, Any] = struct.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype of one observation entry (for a single environment)."""

    shape: tuple[int, ...]
    dtype: str

    def zeros(self) -> np.ndarray:
        return np.zeros(self.shape, dtype=self.dtype)


ObservationSpec = Mapping[str, ArraySpec]


@runtime_checkable
class Env(Protocol):
    """What every task provides. All arrays are for one environment."""

    @property
    def action_size(self) -> int: ...

    @property
    def observation_spec(self) -> ObservationSpec: ...

    @property
    def dt(self) -> float:
        """Control period in seconds (one ``step``)."""
        ...

    @property
    def episode_length(self) -> int:
        """Maximum number of control steps before the episode is truncated."""
        ...

    def reset(self, rng: jax.Array) -> State: ...

    def step(self, state: State, action: jax.Array) -> State: ...


def spec_of(obs: Mapping[str, jax.Array]) -> dict[str, ArraySpec]:
    """Builds an observation spec from an (unbatched) observation dict."""
    return {k: ArraySpec(tuple(v.shape), str(v.dtype)) for k, v in obs.items()}


def check_keys(requested: tuple[str, ...] | list[str], allowed: frozenset[str], who: str) -> None:
    """Raises a one-line ``ValueError`` if ``requested`` names a key outside ``allowed``.

    This is how privileged information is kept away from students: a network is
    built with the keys it may read, and this check runs when it is built.
    """
    bad = [k for k in requested if k not in allowed]
    if bad:
        raise ValueError(f"{who} may not read observation key(s) {bad}; allowed: {sorted(allowed)}")


def headline_metric(env: Any) -> str:
    """The metric ``env`` is judged by (at each episode's end): ``success`` unless the task
    declares another (hand_cube: ``consecutive_successes``)."""
    return getattr(getattr(env, "unwrapped", env), "headline_metric", "success")


def zeros_like_metrics(metrics: Mapping[str, Any]) -> dict[str, jax.Array]:
    return {k: jp.zeros_like(v) for k, v in metrics.items()}


def with_randomization(env: Any, randomization: Any) -> Any:
    """``env`` (a task, not a wrapper) with another randomization config.

    The contract that makes this cheap and sound: a task reads ``config.randomization``
    only while its ``reset`` / ``step`` are traced; its model, observation layout and
    sizes come from the other fields (the one exception, ``max_action_delay``, sizes
    the action buffer and must stay a Python int). So the returned task shares the
    built model, and the numeric fields of ``randomization`` may be JAX arrays: a
    robustness sweep passes its value as an argument of one compiled evaluator
    (:func:`envs.sweeps.make_sweep_evaluator`), as brax's ``randomization_fn(sys, rng)``
    returns a modified system instead of rebuilding the env.
    """
    if hasattr(env, "unwrapped") or not hasattr(getattr(env, "config", None), "randomization"):
        raise TypeError(f"with_randomization: {type(env).__name__} is not a randomized task")
    task = copy.copy(env)
    task.config = dataclasses.replace(env.config, randomization=randomization)
    return task
