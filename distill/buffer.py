"""The aggregated DAgger dataset in memory: fixed-capacity sequences, FIFO or reservoir.

Every rollout adds ``B`` sequences of ``T`` steps (with the student's initial
carry). When full, ``fifo`` overwrites the oldest sequences and ``reservoir``
keeps a uniform sample of everything ever added. All functions are pure and
jittable; the buffer is a pytree with static shapes.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jp
from flax import struct

from dexdistill.envs.common import checks

Policy = Literal["fifo", "reservoir"]
POLICIES: tuple[str, ...] = checks.choices(Policy)


@struct.dataclass
class Buffer:
    """``data`` leaves are ``[capacity, T, ...]`` (``initial_carry``: ``[capacity, ...]``)."""

    data: Any
    size: jax.Array
    """Valid sequences stored."""
    added: jax.Array
    """Sequences ever offered (the reservoir's stream position)."""


def init_buffer(example: Any, capacity: int) -> Buffer:
    """An empty buffer shaped like ``example`` (one rollout, leaves ``[B, T, ...]`` or ``[B, ...]``)."""
    data = jax.tree.map(lambda x: jp.zeros((capacity, *x.shape[1:]), x.dtype), example)
    return Buffer(data=data, size=jp.zeros((), jp.int32), added=jp.zeros((), jp.int32))


def add(buffer: Buffer, batch: Any, key: jax.Array, policy: str = "fifo") -> Buffer:
    """Inserts ``batch`` (leaves ``[B, ...]``, sequence-major) into ``buffer``."""
    checks.require("dataset.policy", policy, allowed=POLICIES)
    capacity = jax.tree.leaves(buffer.data)[0].shape[0]
    n = jax.tree.leaves(batch)[0].shape[0]
    stream = buffer.added + jp.arange(n)
    if policy == "fifo":
        slots = stream % capacity
    else:
        # Algorithm R: item j (0-based) replaces a random slot with probability capacity/(j+1)
        draw = jax.vmap(lambda k, j: jax.random.randint(k, (), 0, j + 1))(
            jax.random.split(key, n), stream
        )
        slots = jp.where(stream < capacity, stream, jp.where(draw < capacity, draw, capacity))
        # several items of one batch may draw the same slot: as in the sequential algorithm,
        # the last of them keeps it (a scatter with duplicate indices has no defined winner)
        later = jp.triu(jp.ones((n, n), bool), k=1)
        overwritten = jp.any(later & (slots[:, None] == slots[None, :]), axis=1)
        slots = jp.where(overwritten, capacity, slots)
    data = jax.tree.map(lambda d, b: d.at[slots].set(b, mode="drop"), buffer.data, batch)
    return Buffer(data=data, size=jp.minimum(buffer.size + n, capacity), added=buffer.added + n)


def sample(buffer: Buffer, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` sequences drawn uniformly (with replacement) from the valid ones."""
    idx = jax.random.randint(key, (batch_size,), 0, jp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
