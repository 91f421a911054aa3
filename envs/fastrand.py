"""A counter-based hash generator for bulk observation noise (point clouds).

``jax.random`` (threefry) costs about 20 ns per number on a CPU, which made sampling
and perturbing point clouds the most expensive part of an env step once the physics
ran in MuJoCo C. Here one threefry call draws a 64-bit seed from the env's key and a
murmur3-style mixer turns ``(seed, counter)`` into the numbers, ~25x faster. The
streams are keyed like ``jax.random`` (same key, same numbers; split keys,
independent-looking streams) and pass as sensor noise; keep ``jax.random`` for
anything that needs a cryptographic-strength generator.
"""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np


def _fmix(x: jax.Array) -> jax.Array:
    """murmur3's 32-bit finalizer (a bijection with full avalanche)."""
    x = (x ^ (x >> 16)) * jp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 random bits of ``shape`` from ``key``."""
    seed = jax.random.bits(key, (2,), jp.uint32)
    n = int(np.prod(shape, dtype=np.int64))
    i = jp.arange(n, dtype=jp.uint32)
    x = _fmix(i * jp.uint32(0x9E3779B9) ^ seed[0])
    x = _fmix(x + seed[1])
    return x.reshape(shape)


def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 uniform in the open interval (0, 1), ``shape``."""
    return ((bits(key, shape) >> 8).astype(jp.float32) + 0.5) * (1.0 / (1 << 24))


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 standard normal of ``shape`` (Box-Muller)."""
    n = int(np.prod(shape, dtype=np.int64))
    half = (n + 1) // 2
    u = uniform(key, (2, half))
    r = jp.sqrt(-2.0 * jp.log(u[0]))
    theta = 2.0 * jp.pi * u[1]
    z = jp.concatenate([r * jp.cos(theta), r * jp.sin(theta)])
    return z[:n].reshape(shape)
