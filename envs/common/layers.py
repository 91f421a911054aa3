"""Network building blocks shared by the teacher and the student.

They live in ``envs/``, the core's lowest layer, because it is the one package that both
``teacher/`` and ``student/`` may import (see docs/architecture.md); nothing in ``envs/``
uses them.

* :func:`mlp` / :class:`MLP`: Dense layers with an activation (swish), then an optional
  output layer. :func:`mlp` creates its layers in the calling module's scope (named
  ``Dense_<n>`` there); :class:`MLP` is the same stack as a module of its own.
* :func:`memory_cell`, :func:`zero_carry`, :func:`reset_carry`: the recurrent memory
  (``gru``: ``flax.linen.GRUCell``, carry ``[B, M]``; ``lstm``:
  ``flax.linen.OptimizedLSTMCell``, carry ``(c, h)``), its carry at an episode start,
  and the zeroing of finished envs' carries.

The LSTM is ``OptimizedLSTMCell``: the same cell and parameter names as ``LSTMCell``,
with the gates' matmuls concatenated (faster at these sizes), and the form that the
numpy inference of exported students (``student/inference.py``) reproduces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jp

from dexdistill.envs.common import checks

Cell = Literal["gru", "lstm"]
CELLS: tuple[str, ...] = checks.choices(Cell)

Initializer = Callable[..., jax.Array]
DEFAULT_INIT = nn.initializers.lecun_normal()
"""Hidden-layer kernels unless told otherwise: flax's ``Dense`` default."""


def mlp(
    x: jax.Array,
    hidden: Sequence[int],
    out: int | None = None,
    *,
    activation: Callable[[jax.Array], jax.Array] = nn.swish,
    kernel_init: Initializer = DEFAULT_INIT,
    out_scale: float = 1.0,
) -> jax.Array:
    """``activation(Dense(h))`` for each ``h`` of ``hidden``, then ``Dense(out)`` unless
    ``out`` is None (its kernel: ``variance_scaling(out_scale, fan_in, uniform)``).

    Call it inside a compact module: the layers are that module's ``Dense_<n>``.
    """
    for h in hidden:
        x = activation(nn.Dense(h, kernel_init=kernel_init)(x))
    if out is None:
        return x
    init = nn.initializers.variance_scaling(out_scale, "fan_in", "uniform")
    return nn.Dense(out, kernel_init=init)(x)


class MLP(nn.Module):
    """:func:`mlp` as a module: ``[..., D] -> [..., out]`` (``[..., hidden[-1]]`` without ``out``)."""

    hidden: tuple[int, ...]
    out: int | None = None
    out_scale: float = 1.0
    kernel_init: Initializer = DEFAULT_INIT
    activation: Callable[[jax.Array], jax.Array] = nn.swish

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return mlp(
            x,
            self.hidden,
            self.out,
            activation=self.activation,
            kernel_init=self.kernel_init,
            out_scale=self.out_scale,
        )


def memory_cell(kind: str, size: int, **kwargs: Any) -> nn.RNNCellBase:
    """A ``gru`` or ``lstm`` cell of ``size`` units: ``cell(carry, x) -> (carry, y [B, size])``."""
    checks.require("memory", kind, allowed=CELLS)
    if kind == "gru":
        return nn.GRUCell(size, **kwargs)
    return nn.OptimizedLSTMCell(size, **kwargs)


def zero_carry(kind: str, batch: int, size: int) -> Any:
    """The carry of a fresh episode: ``[B, size]`` (``gru``) or ``(c, h)`` (``lstm``), zeros."""
    checks.require("memory", kind, allowed=CELLS)
    zeros = lambda: jp.zeros((batch, size), jp.float32)
    return zeros() if kind == "gru" else (zeros(), zeros())


def reset_carry(carry: Any, done: jax.Array) -> Any:
    """Zeroes every leaf's rows of the envs whose ``done [B] > 0``; ``None`` passes through.

    Works for any carry whose leaves lead with the batch: ``[B, M]``, ``(c, h)``, ``[B, T, E]``.
    """
    return jax.tree.map(
        lambda c: jp.where(done.reshape(-1, *([1] * (c.ndim - 1))) > 0, jp.zeros_like(c), c),
        carry,
    )
