"""The copycat check (issue 13, item 8): how much a student leans on the last action."""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np
import optax
import pytest

from dexdistill import envs
from dexdistill.distill import buffer as buffer_lib, diagnostics, fit as fit_lib
from dexdistill.student.networks import StudentConfig, make_networks

M, T = 64, 8


def _copy_data(spec, action_size: int, key: jax.Array) -> dict:
    """Sequences whose teacher label *is* the last action held in proprio (a pure shortcut)."""
    k_obs, k_act = jax.random.split(key)
    obs = {
        k: jax.random.normal(jax.random.fold_in(k_obs, i), (M, T, *spec[k].shape))
        for i, k in enumerate(("keypoints", "proprio"))
    }
    last = jax.random.uniform(k_act, (M, T, action_size), minval=-0.9, maxval=0.9)
    obs["proprio"] = obs["proprio"].at[..., -action_size:].set(last)
    return {
        "obs": obs,
        "is_first": jp.zeros((M, T), bool).at[:, 0].set(True),
        "teacher_mean": last,
        "teacher_std": jp.ones_like(last),
    }


@pytest.mark.parametrize("last_action", ["executed", "none"])
def test_last_action_reliance_detects_a_copycat_student(last_action):
    base = envs.make("point_mass")
    spec, a = base.observation_spec, base.action_size
    cfg = StudentConfig(memory="none", proprio_last_action=last_action)
    nets = make_networks(cfg, spec, a)
    data = _copy_data(spec, a, jax.random.PRNGKey(0))
    data["initial_carry"] = nets.initial_carry(M)
    params = nets.init(jax.random.PRNGKey(1), spec)
    opt = optax.adam(3e-3)
    state = opt.init(params)
    fcfg = fit_lib.FitConfig()

    @jax.jit
    def step(p, s):
        (_, _), g = jax.value_and_grad(fit_lib.sequence_loss, has_aux=True)(p, nets, data, fcfg)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    for _ in range(300):
        params, state = step(params, state)
    buf = buffer_lib.add(buffer_lib.init_buffer(data, M), data, jax.random.PRNGKey(2))
    r = jax.device_get(diagnostics.last_action_reliance(nets, params, buf, jax.random.PRNGKey(3)))
    if last_action == "executed":  # it copies: removing or shuffling the last action hurts
        assert r["action_error"] < 0.1
        assert r["action_error_last_action_zeroed"] > 5 * r["action_error"]
        assert r["action_error_last_action_shuffled"] > 5 * r["action_error"]
    else:  # it cannot see it: the three errors are the same
        np.testing.assert_allclose(
            r["action_error_last_action_zeroed"], r["action_error"], rtol=1e-5
        )
        np.testing.assert_allclose(
            r["action_error_last_action_shuffled"], r["action_error"], rtol=1e-5
        )


def test_bad_last_action_option_is_refused():
    with pytest.raises(ValueError, match=r"student.proprio_last_action='teacher': allowed values"):
        StudentConfig(proprio_last_action="teacher").validate()
