"""Every task: jit+vmap reset/step, shapes, finiteness, determinism, randomization."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import BATCH, STEPS, TASKS, get_rollout

from dexdistill import envs
from dexdistill.envs.sim2real import randomize


def test_registry_lists_all_tasks():
    assert set(TASKS) <= set(envs.names())


def test_unknown_task_has_one_line_error():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; registered tasks: \["):
        envs.make("nope")


def test_unknown_override_names_field():
    with pytest.raises(ValueError, match="unknown config field 'episode_lenght'"):
        envs.make("point_mass", episode_lenght=3)


def test_bad_value_names_field():
    with pytest.raises(ValueError, match=r"point_cloud.source='lidar'"):
        envs.with_overrides(
            envs.default_config("dclaw_valve"), {"point_cloud.source": "lidar"}
        ).validate()
    with pytest.raises(ValueError, match=r"randomization.physics.friction"):
        envs.with_overrides(
            envs.default_config("dclaw_valve"), {"randomization.physics.friction": (1.5, 0.5)}
        ).validate()


@pytest.mark.parametrize("name", TASKS)
def test_reset_step_shapes_match_spec(name):
    r = get_rollout(name)
    first, last, traj = r.run()
    spec = r.env.observation_spec
    assert set(spec) == set(envs.OBS_KEYS)
    for key, s in spec.items():
        assert first.obs[key].shape == (BATCH, *s.shape), key
        assert last.obs[key].shape == (BATCH, *s.shape), key
        assert str(last.obs[key].dtype) == s.dtype, key
    assert traj["reward"].shape == (STEPS, BATCH)
    assert spec["point_cloud"].shape[0] == spec["point_cloud_mask"].shape[0]
    assert spec["keypoints"].shape[1] == 3 and spec["keypoints"].shape[0] % 2 == 0


@pytest.mark.parametrize("name", TASKS)
def test_no_nan_over_200_random_steps(name):
    _, _, traj = get_rollout(name).run()
    assert traj["finite"].all()
    assert traj["unstable"].sum() == 0


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_trajectory(name):
    r = get_rollout(name)
    a = jax.device_get(r._run(jax.random.PRNGKey(0)))
    b = r.run(0)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    c = r.run(1)
    assert not np.array_equal(c[2]["reward"], b[2]["reward"])


@pytest.mark.parametrize("name", TASKS)
def test_params_differ_in_range_and_in_privileged(name):
    r = get_rollout(name)
    first, _, _ = r.run()
    params = first.info["params"]
    ph = r.env.config.randomization.physics
    for key, rng_range in (
        ("object_mass", ph.object_mass),
        ("actuator_gain", ph.actuator_gain),
        ("friction", ph.friction),
        ("link_mass", ph.link_mass),
    ):
        v = np.asarray(params[key])
        assert np.all(v >= rng_range[0]) and np.all(v <= rng_range[1]), key
        assert np.unique(v.reshape(BATCH, -1)[:, 0]).size == BATCH, f"{key} equal across batch"
    g = np.linalg.norm(params["gravity"], axis=-1)
    assert np.all(g >= 9.81 * ph.gravity_scale[0] - 1e-4) and np.all(
        g <= 9.81 * ph.gravity_scale[1] + 1e-4
    )
    layout = r.env.privileged_layout
    phys = jax.vmap(randomize.physics_vector)(params)
    np.testing.assert_allclose(first.obs["privileged"][:, layout["physics"]], phys, rtol=1e-6)


@pytest.mark.parametrize("name", ["point_mass", "dclaw_valve"])
def test_disabled_families_keep_defaults(name):
    cfg = envs.with_overrides(envs.default_config(name), {"randomization": randomize.disabled()})
    env = envs.make(name, cfg)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), 4))
    nominal = randomize.nominal_params(env.dims)
    for key, value in nominal.items():
        np.testing.assert_array_equal(
            states.info["params"][key], np.broadcast_to(value, (4, *value.shape)), err_msg=key
        )


def test_each_family_switch_only_touches_its_params():
    base = envs.default_config("point_mass")
    dims = envs.make("point_mass").dims
    rng = jax.random.PRNGKey(0)
    nominal = randomize.nominal_params(dims)
    families = {
        "physics": {
            "object_scale",
            "object_mass",
            "link_mass",
            "friction",
            "joint_damping",
            "actuator_gain",
            "joint_limit_lo",
            "joint_limit_hi",
            "gravity",
        },
        "unmodeled": {"action_delay", "backlash"},
        "observation": {"proprio_bias", "keypoint_bias", "point_cloud_bias"},
        "camera": {"camera_offset", "camera_rotation"},
    }
    for fam, keys in families.items():
        only = dataclasses.replace(randomize.disabled(), **{fam: getattr(base.randomization, fam)})
        p = randomize.sample_params(rng, only, dims)
        for key in nominal:
            same = np.array_equal(np.asarray(p[key]), np.asarray(nominal[key]))
            if key in keys and key not in {"action_delay"}:
                assert not same, f"{fam} did not change {key}"
            elif key not in keys:
                assert same, f"{fam} changed {key}"
