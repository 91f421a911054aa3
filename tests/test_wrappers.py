"""Auto-reset draws fresh randomization; history stacks observations."""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np

from dexdistill import envs
from dexdistill.envs import wrappers


def _env():
    return envs.make("point_mass", episode_length=5)


def test_autoreset_draws_fresh_parameters_every_episode():
    env = wrappers.wrap_for_training(_env(), 4)

    def run(rng):
        s = env.reset(rng)

        def body(s, _):
            s = env.step(s, jp.zeros((4, 2)))
            return s, (s.done, s.info["params"]["actuator_gain"], s.metrics["episode_length"])

        return jax.lax.scan(body, s, None, 15)

    _, (done, gains, lengths) = jax.jit(run)(jax.random.PRNGKey(0))
    done, gains = np.asarray(done), np.asarray(gains)
    assert done.sum() == 4 * 3  # episodes of 5 steps, 15 steps
    np.testing.assert_array_equal(np.asarray(lengths)[done > 0], 5.0)
    episodes = {tuple(np.round(gains[t, b], 6)) for t in (0, 5, 10) for b in range(4)}
    assert len(episodes) == 12  # every env, every episode: new physics


def test_history_stacks_newest_last_and_refills_on_reset():
    inner = wrappers.AutoReset(_env())
    hist = wrappers.ObservationHistory(inner, ("proprio",), 3)
    assert hist.observation_spec["proprio"].shape == (3, 4)
    s = jax.jit(hist.reset)(jax.random.PRNGKey(0))
    assert s.obs["proprio"].shape == (3, 4)
    np.testing.assert_array_equal(s.obs["proprio"][0], s.obs["proprio"][2])
    step = jax.jit(hist.step)
    frames = [s.obs["proprio"][-1]]
    for _ in range(4):
        s = step(s, jp.ones(2))
        frames.append(s.obs["proprio"][-1])
    np.testing.assert_array_equal(s.obs["proprio"], np.stack(frames[-3:]))
    s = step(s, jp.ones(2))  # step 5: episode ends, history refilled with the new first obs
    assert float(s.done) == 1.0
    np.testing.assert_array_equal(s.obs["proprio"][0], s.obs["proprio"][2])


def test_batch_level_autoreset_equals_per_env_autoreset():
    """``BatchedAutoReset`` (resets under one batch-level cond) is ``Batched(AutoReset)``:
    the same episode ends and resets, and the same numbers to float32 rounding (the two are
    different programs; without XLA's CPU fusion emitters, as the tests compile, they may
    differ in the last bit)."""
    base = envs.make("point_mass", episode_length=5)
    fast = wrappers.BatchedAutoReset(base, 3)
    plain = wrappers.Batched(wrappers.AutoReset(base), 3)

    def run(env, rng):
        def body(s, k):
            a = jax.random.uniform(k, (3, 2), minval=-1.0, maxval=1.0)
            s = env.step(s, a)
            return s, (s.done, s.reward, s.obs, s.metrics["episode_return"])

        return jax.lax.scan(body, env.reset(rng), jax.random.split(rng, 12))

    (s1, out1), (s2, out2) = (
        jax.jit(lambda r, e=e: run(e, r))(jax.random.PRNGKey(4)) for e in (fast, plain)
    )
    for a, b in zip(jax.tree.leaves((s1, out1)), jax.tree.leaves((s2, out2)), strict=True):
        if jp.issubdtype(a.dtype, jp.floating):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        else:  # done flags, step counters, keys
            np.testing.assert_array_equal(a, b)
    assert np.asarray(out1[0]).sum() > 0
