"""Running mean/std normalization of observations, one statistic per key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jp
from flax import struct

from dexdistill.envs.base import ArraySpec


@struct.dataclass
class RunningStats:
    """Per-key running mean and sum of squared deviations (Chan et al.'s merge)."""

    count: jax.Array
    mean: dict[str, jax.Array]
    m2: dict[str, jax.Array]


def init_stats(obs_spec: Mapping[str, ArraySpec], keys: Sequence[str]) -> RunningStats:
    """Statistics for the float keys among ``keys`` (masks are never normalized)."""
    keys = [k for k in dict.fromkeys(keys) if obs_spec[k].dtype.startswith("float")]
    return RunningStats(
        count=jp.zeros((), jp.float32),
        mean={k: jp.zeros(obs_spec[k].shape, jp.float32) for k in keys},
        m2={k: jp.zeros(obs_spec[k].shape, jp.float32) for k in keys},
    )


def update(stats: RunningStats, obs: Mapping[str, jax.Array]) -> RunningStats:
    """Merges a batch ``obs[k]: [*batch, *shape]`` into the statistics."""
    new_mean, new_m2 = {}, {}
    count = stats.count
    n = None
    for k, mean in stats.mean.items():
        x = obs[k].astype(jp.float32).reshape(-1, *mean.shape)
        n = x.shape[0]
        b_mean = jp.mean(x, axis=0)
        b_m2 = jp.sum((x - b_mean) ** 2, axis=0)
        total = count + n
        delta = b_mean - mean
        new_mean[k] = mean + delta * n / total
        new_m2[k] = stats.m2[k] + b_m2 + delta**2 * count * n / total
    if n is None:
        return stats
    return RunningStats(count=count + n, mean=new_mean, m2=new_m2)


def normalize(
    stats: RunningStats, obs: Mapping[str, jax.Array], clip: float = 5.0
) -> dict[str, jax.Array]:
    """``(x - mean) / std`` clipped to ``[-clip, clip]`` for the tracked keys; others pass."""
    out = dict(obs)
    for k, mean in stats.mean.items():
        var = stats.m2[k] / jp.maximum(stats.count, 1.0)
        # before any data (count 0) the statistics are mean 0, std 1 (as brax starts them),
        # not std 1e-3, which clipped the first rollout's inputs to +-clip
        std = jp.where(stats.count > 0, jp.sqrt(jp.maximum(var, 1e-6)), 1.0)
        out[k] = jp.clip((obs[k] - mean) / std, -clip, clip)
    return out
