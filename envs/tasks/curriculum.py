"""Goal curricula: a difficulty level that advances when training succeeds often enough.

A task with a curriculum declares ``goal_levels`` (names, easiest first, the last one the
task's full goal distribution) and samples its goals with
``reset_at_level(rng, level)``; each episode carries its level in ``info["goal_level"]``
and the auto-reset wrappers start new episodes at the level of the episode that ended.

During training a :class:`CurriculumState` (part of the stage's state pytree, so a resumed
run continues at the same level) keeps a window of the last ``window`` iterations'
episode-end headline metric (success, or consecutive successes for the hand); when the
window's mean passes ``threshold`` the level goes up by one and the window is cleared.
Without a curriculum, every episode uses the config's ``goal_level`` (default: the last).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jp
from flax import struct

from dexdistill.envs.common import checks


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """Automatic goal curriculum of a task (``goal_levels``: easiest first)."""

    enabled: bool = False
    """Start training at level 0 and advance automatically; off: every episode at
    ``goal_level``. Evaluation always runs with the curriculum off."""
    threshold: float = 0.6
    """Advance when the window's mean episode-end headline metric (success rate; mean
    consecutive successes for hand_cube) reaches this."""
    window: int = 10
    """Training iterations in the window."""
    min_episodes: int = 64
    """Episodes the window must hold before the level may advance."""

    def validate(self, prefix: str = "curriculum") -> None:
        checks.check_types(self, f"{prefix}.")
        checks.require(f"{prefix}.threshold", self.threshold, gt=0)
        for name in ("window", "min_episodes"):
            checks.require(f"{prefix}.{name}", getattr(self, name), ge=1)


@struct.dataclass
class CurriculumState:
    """Level and success window of a running curriculum (scalars and ``[window]`` arrays)."""

    level: jax.Array
    """int32 []: the level new episodes start at."""
    sums: jax.Array
    """float32 [window]: per iteration, the sum of the headline metric over ended episodes."""
    counts: jax.Array
    """float32 [window]: per iteration, the number of episodes that ended."""
    cursor: jax.Array
    """int32 []: the window slot the next iteration writes."""


def levels_of(env: Any) -> tuple[str, ...]:
    """The goal level names of ``env`` (unwrapped), or ``()`` for a task without levels."""
    env = getattr(env, "unwrapped", env)
    return tuple(getattr(env, "goal_levels", ()))


def config_of(env: Any) -> CurriculumConfig | None:
    """The curriculum config of ``env`` when it is enabled, else ``None``."""
    env = getattr(env, "unwrapped", env)
    cfg = getattr(getattr(env, "config", None), "curriculum", None)
    return cfg if cfg is not None and cfg.enabled and levels_of(env) else None


def resolve_level(level: int, num_levels: int) -> int:
    """``level`` as an index in ``[0, num_levels)`` (negative counts from the hardest)."""
    checks.require("goal_level", level, ge=-num_levels, lt=num_levels)
    return level % num_levels


def init(cfg: CurriculumConfig | None) -> CurriculumState:
    """A curriculum at level 0 with an empty window (a 1-slot dummy when ``cfg`` is None)."""
    window = cfg.window if cfg is not None else 1
    return CurriculumState(
        level=jp.zeros((), jp.int32),
        sums=jp.zeros((window,), jp.float32),
        counts=jp.zeros((window,), jp.float32),
        cursor=jp.zeros((), jp.int32),
    )


def window_mean(cs: CurriculumState) -> jax.Array:
    """Mean headline metric over the window's episodes; NaN when it holds none (logged as
    ``null``: trifinger's 200-step episodes end together every 12.5 iterations of 16 steps,
    so a 10-iteration window is empty at times, and a 0 there would read as a collapse)."""
    n = jp.sum(cs.counts)
    return jp.where(n > 0, jp.sum(cs.sums) / jp.maximum(n, 1.0), jp.nan)


def update(
    cfg: CurriculumConfig, cs: CurriculumState, total: jax.Array, count: jax.Array, num_levels: int
) -> CurriculumState:
    """Adds one iteration (``total`` of the metric over ``count`` ended episodes) to the
    window and advances the level when the window passes the threshold."""
    sums = cs.sums.at[cs.cursor].set(total)
    counts = cs.counts.at[cs.cursor].set(count)
    filled = CurriculumState(cs.level, sums, counts, (cs.cursor + 1) % cfg.window)
    ready = (jp.sum(counts) >= cfg.min_episodes) & (window_mean(filled) >= cfg.threshold)
    advance = ready & (cs.level < num_levels - 1)
    return CurriculumState(
        level=cs.level + advance.astype(jp.int32),
        sums=jp.where(advance, 0.0, sums),
        counts=jp.where(advance, 0.0, counts),
        cursor=jp.where(advance, 0, filled.cursor),
    )


def set_level(state: Any, level: jax.Array) -> Any:
    """A (batched) env ``State`` whose episodes carry ``level``: running episodes keep
    their goals, new goals and new episodes are drawn at ``level``."""
    info = dict(state.info)  # ``start_level`` stays: the level each episode began at
    info["goal_level"] = jp.full_like(info["goal_level"], level)
    return state.replace(info=info)


def is_final(env_config: Any) -> bool:
    """Whether ``env_config`` already is its own :func:`final_config` (curriculum off, every
    episode at the hardest level), so an evaluation can reuse the training env."""
    cur = getattr(env_config, "curriculum", None)
    if cur is None:
        return True
    hardest = env_config.num_goal_levels - 1
    level = resolve_level(env_config.goal_level, env_config.num_goal_levels)
    return not cur.enabled and level == hardest


def final_config(env_config: Any, level: int = -1) -> Any:
    """``env_config`` for evaluation: curriculum off, every episode at ``level`` (default:
    the hardest; stored resolved, so equal levels give equal configs). Configs without a
    curriculum are returned unchanged."""
    cur = getattr(env_config, "curriculum", None)
    if cur is None:
        return env_config
    return dataclasses.replace(
        env_config,
        curriculum=dataclasses.replace(cur, enabled=False),
        goal_level=resolve_level(level, env_config.num_goal_levels),
    )
