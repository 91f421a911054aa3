"""A counter-based hash generator for the randomness of an env step.

On a CPU, XLA runs each ``jax.random`` (threefry) call as a small loop of its own:
under ``vmap`` over 256 envs one call costs 30-80 us however few numbers it draws, and
an env step made 17-23 of them (key splits, action noise, object wrenches, keypoint
noise, freezes and dropouts, proprioceptive noise, point clouds, new goals). Here
nothing calls threefry: a key's two uint32 words are mixed with murmur3's finalizer
and a counter, so a split, a draw of ``n`` numbers or a new key is a few fused integer
operations. The env's own key chain (``state.info["rng"]``) is advanced by
:func:`split` as well, so an env step calls threefry nowhere.

Keys are ordinary raw ``jax.random`` keys (``uint32 [2]``), so a key made here can also
be handed to ``jax.random``, and ``jax.random`` keys (raw or typed) are accepted. Same
key, same numbers; split keys give independent-looking streams; :func:`split` maps a
key to each child bijectively, so a chain of keys does not collapse. The numbers pass
as sensor noise, actuator noise and sampling of start states and goals; keep
``jax.random`` for anything that needs a cryptographic-strength generator.
"""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np

_GOLDEN = 0x9E3779B9
_SALT = 0x7F4A7C15


def _fmix(x: jax.Array) -> jax.Array:
    """murmur3's 32-bit finalizer (a bijection with full avalanche)."""
    x = (x ^ (x >> 16)) * jp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _words(key: jax.Array) -> jax.Array:
    """The two uint32 words ``[2]`` of a raw or typed ``jax.random`` key."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,):
        raise ValueError(f"fastrand: a key is uint32 [2], got {key.dtype}{list(key.shape)}")
    return key.astype(jp.uint32)


def split(key: jax.Array, num: int = 2) -> jax.Array:
    """``num`` new keys ``uint32 [num, 2]`` from ``key`` (like ``jax.random.split``).

    Unlike ``jax.random.split``, child ``i`` depends on ``key`` and ``i`` only, not on
    ``num`` (``split(k, 2)[1] == split(k, 5)[1]``): split a key once, as the env step does.
    """
    k = _words(key)
    i = jp.arange(num, dtype=jp.uint32)
    a = _fmix(k[0] ^ _fmix(i * jp.uint32(_GOLDEN) + jp.uint32(_SALT)))
    b = _fmix(k[1] + a)
    return jp.stack([a, b], axis=-1)


def bits(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """uint32 random bits of ``shape`` from ``key``."""
    k = _words(key)
    n = int(np.prod(shape, dtype=np.int64))
    i = jp.arange(n, dtype=jp.uint32)
    x = _fmix(i * jp.uint32(_GOLDEN) ^ k[0])
    x = _fmix(x + k[1])
    return x.reshape(shape)


def uniform(
    key: jax.Array,
    shape: tuple[int, ...] = (),
    minval: float | jax.Array = 0.0,
    maxval: float | jax.Array = 1.0,
) -> jax.Array:
    """float32 uniform in the open interval ``(minval, maxval)``, ``shape``."""
    u = ((bits(key, shape) >> 8).astype(jp.float32) + 0.5) * (1.0 / (1 << 24))
    return minval + u * (maxval - minval)


def _sincos(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(sin x, cos x)`` for ``x`` in ``[-pi/2, pi/2]`` by their Taylor polynomials to
    x^11 / x^12 (error below 2e-7): XLA's CPU ``sin``/``cos`` made Box-Muller 3x dearer."""
    x2 = x * x
    s = 1.0 + x2 * (-1 / 6 + x2 * (1 / 120 + x2 * (-1 / 5040 + x2 * (1 / 362880 - x2 / 39916800))))
    c = -1 / 720 + x2 * (1 / 40320 + x2 * (-1 / 3628800 + x2 / 479001600))
    c = 1.0 + x2 * (-1 / 2 + x2 * (1 / 24 + x2 * c))
    return x * s, c


def normal(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 standard normal of ``shape`` (Box-Muller).

    The angle ``theta`` is uniform in ``(-pi, pi)``; its cosine and sine come from the half
    angle's, ``cos theta = c^2 - s^2`` and ``sin theta = 2 s c``, which polynomials give
    accurately on ``(-pi/2, pi/2)``."""
    n = int(np.prod(shape, dtype=np.int64))
    half = (n + 1) // 2
    u = uniform(key, (2, half))
    r = jp.sqrt(-2.0 * jp.log(u[0]))
    s, c = _sincos(jp.pi * (u[1] - 0.5))
    z = jp.concatenate([r * (c * c - s * s), r * (2.0 * s * c)])
    return z[:n].reshape(shape)


def randint(
    key: jax.Array, shape: tuple[int, ...], minval: int | jax.Array, maxval: int | jax.Array
) -> jax.Array:
    """int32 uniform in ``[minval, maxval)``, ``shape`` (bias below 2^-24 per value)."""
    lo = jp.asarray(minval, jp.int32)
    span = (jp.asarray(maxval, jp.int32) - lo).astype(jp.float32)
    idx = jp.floor(uniform(key, shape) * span).astype(jp.int32)
    return lo + jp.minimum(idx, (span - 1).astype(jp.int32))


def bernoulli(key: jax.Array, p: float | jax.Array = 0.5, shape: tuple[int, ...] = ()) -> jax.Array:
    """bool ``shape``, True with probability ``p``."""
    return uniform(key, shape) < p
