"""The env step's random numbers: distributions of :mod:`envs.fastrand`, and no threefry
call left in any task's step (each cost 30-80 us under ``vmap`` on a CPU)."""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.envs.common import fastrand

KEYS = jax.random.split(jax.random.PRNGKey(3), 512)


def _draw(fn, *shape_args):
    """``fn(key, ...)`` for 512 keys, flattened to numpy."""
    return np.asarray(jax.jit(jax.vmap(lambda k: fn(k, *shape_args)))(KEYS)).ravel()


def test_normal_has_the_moments_of_a_standard_normal():
    z = _draw(fastrand.normal, (257,))  # odd: the last Box-Muller pair is cut
    assert z.dtype == np.float32 and z.size == 512 * 257
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1.0) < 0.01
    kurtosis = np.mean((z - z.mean()) ** 4) / z.var() ** 2
    assert abs(kurtosis - 3.0) < 0.05
    # tails as a normal's: P(|z| > 3) = 0.0027
    assert 0.0020 < np.mean(np.abs(z) > 3) < 0.0034
    # quantiles of the standard normal
    for q, expected in ((0.1, -1.2816), (0.25, -0.6745), (0.5, 0.0), (0.9, 1.2816)):
        assert abs(np.quantile(z, q) - expected) < 0.02


def test_sincos_polynomials_match_the_functions_on_the_half_circle():
    x = jp.linspace(-jp.pi / 2, jp.pi / 2, 10001)
    s, c = fastrand._sincos(x)
    np.testing.assert_allclose(s, np.sin(np.asarray(x, np.float64)), atol=3e-7)
    np.testing.assert_allclose(c, np.cos(np.asarray(x, np.float64)), atol=3e-7)


def test_uniform_randint_and_bernoulli_cover_their_ranges_evenly():
    u = _draw(fastrand.uniform, (64,))
    assert u.min() > 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts / u.size - 0.1) < 0.005)
    v = _draw(lambda k: fastrand.uniform(k, (8,), minval=-2.0, maxval=3.0))
    assert v.min() > -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.05
    i = _draw(lambda k: fastrand.randint(k, (32,), 1, 6))
    assert i.dtype == np.int32
    assert set(np.unique(i)) == {1, 2, 3, 4, 5}
    assert np.all(np.abs(np.bincount(i)[1:] / i.size - 0.2) < 0.01)
    b = _draw(lambda k: fastrand.bernoulli(k, 0.1, (64,)))
    assert b.dtype == bool and abs(b.mean() - 0.1) < 0.005


def test_split_keys_are_distinct_and_streams_uncorrelated():
    keys = np.asarray(jax.vmap(lambda k: fastrand.split(k, 8))(KEYS)).reshape(-1, 2)
    assert len({tuple(k) for k in keys}) == keys.shape[0]  # 4096 distinct children
    a, b = fastrand.split(jax.random.PRNGKey(0))
    x, y = fastrand.normal(a, (20000,)), fastrand.normal(b, (20000,))
    assert abs(float(jp.corrcoef(x, y)[0, 1])) < 0.03
    # consecutive numbers of one stream are uncorrelated too
    assert abs(float(jp.corrcoef(x[:-1], x[1:])[0, 1])) < 0.03


def test_same_key_same_numbers_and_typed_keys_accepted():
    key = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(fastrand.normal(key, (5,)), fastrand.normal(key, (5,)))
    typed = jax.random.wrap_key_data(key)
    np.testing.assert_array_equal(fastrand.bits(typed, (5,)), fastrand.bits(key, (5,)))
    # a key made here also feeds jax.random
    assert jax.random.normal(fastrand.split(key)[0], (3,)).shape == (3,)
    with pytest.raises(ValueError, match="fastrand: a key is uint32"):
        fastrand.bits(jp.zeros((3,), jp.uint32), (2,))


def _random_primitives(fn, *args) -> dict[str, int]:
    text = str(jax.make_jaxpr(fn)(*args))
    return dict(collections.Counter(re.findall(r"(random_\w+|threefry2x32)\[", text)))


@pytest.mark.parametrize("task", ["point_mass", "dclaw_valve", "trifinger_cube", "hand_cube"])
def test_an_env_step_calls_no_threefry(task):
    """Under ``vmap`` on a CPU every threefry call is a loop of its own: a trifinger step made
    17 of them (hand_cube 21), about a fifth of its time beside the MuJoCo C physics."""
    cfg = envs.default_config(task)
    if hasattr(cfg, "backend"):
        cfg = envs.with_overrides(cfg, {"backend": "mujoco"})
    env = wrappers.wrap_for_training(envs.make(task, cfg), 4)
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    action = jax.ShapeDtypeStruct((4, env.action_size), jp.float32)
    # the batch step, auto-reset included (its fresh episodes' reset draws with jax.random)
    step_only = wrappers.Batched(env.unwrapped, 4)
    assert _random_primitives(step_only.step, state, action) == {}
    assert "random_bits" in _random_primitives(env.step, state, action)  # the reset branch
