"""The two physics backends (MuJoCo C on the host, MJX) under the same pure env API.

Where the engines legitimately differ, and so what the tolerances allow: MuJoCo C
integrates in float64 (the env rounds its state to float32 between control steps),
contact detection and the constraint solver are separate implementations, and the C
backend's solver warm start between control steps is recovered from velocities. Free
motion agrees to float32 rounding; once fingers touch the object the trajectories
drift apart slowly (about 1e-3 rad after ten valve steps with random actions).
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jp
import numpy as np
import pytest
from conftest import NO_FUSION_EMITTERS

from dexdistill import envs
from dexdistill.envs.physics import backends as physics
from dexdistill.envs.sim2real import randomize
from dexdistill.pipelines import configs

MJX_TASKS = ("dclaw_valve", "trifinger_cube", "hand_cube")


def _make(name: str, backend: str, **overrides):
    cfg = envs.with_overrides(envs.default_config(name), {"backend": backend, **overrides})
    return envs.make(name, cfg)


def test_auto_backend_is_mujoco_c_on_a_cpu():
    assert physics.resolve_backend("auto") == "mujoco"
    env = envs.make("dclaw_valve")
    assert env.backend == "mujoco" and isinstance(env.physics, physics.MujocoPhysics)
    assert physics.resolve_backend("mjx") == "mjx"
    with pytest.raises(ValueError, match=r"backend='bullet': allowed values are"):
        envs.make("dclaw_valve", backend="bullet")


@pytest.mark.parametrize("name", MJX_TASKS)
def test_both_backends_give_identical_observation_keys_shapes_and_dtypes(name):
    c = _make(name, "mujoco")
    m = _make(name, "mjx")
    c_state = jax.jit(c.reset)(jax.random.PRNGKey(0))  # runs MuJoCo C
    m_state = jax.eval_shape(m.reset, jax.random.PRNGKey(0))  # MJX traced only
    a = jp.zeros((c.action_size,))
    c_next = jax.jit(c.step)(c_state, a)
    m_next = jax.eval_shape(m.step, m_state, a)
    for got, want in ((c_state, m_state), (c_next, m_next)):
        assert sorted(got.obs) == sorted(want.obs)
        for k in want.obs:
            assert got.obs[k].shape == want.obs[k].shape, k
            assert got.obs[k].dtype == want.obs[k].dtype, k
        assert sorted(got.metrics) == sorted(want.metrics)
        assert sorted(got.info) == sorted(want.info)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in c_next.obs.values())


@functools.cache
def _jitted(name: str, backend: str):
    """(env, jitted reset, jitted step) without randomization, built once per module."""
    env = _make(name, backend, randomization=randomize.disabled())
    return env, jax.jit(env.reset), jax.jit(env.step)


def _trajectories(name: str, steps: int, params_edit=None):
    """qpos per control step on both backends from one start state and one action sequence."""
    out = {}
    for backend in ("mujoco", "mjx"):
        env, reset, step = _jitted(name, backend)
        state = reset(jax.random.PRNGKey(3))
        if params_edit is not None:
            state = state.replace(info={**state.info, "params": params_edit(state.info["params"])})
        actions = jax.random.uniform(
            jax.random.PRNGKey(4), (steps, env.action_size), minval=-1, maxval=1
        )
        qpos = [np.asarray(state.data.qpos)]
        for a in actions:
            state = step(state, a)
            qpos.append(np.asarray(state.data.qpos))
        out[backend] = (env, np.stack(qpos), state)
    return out


def test_backends_agree_on_joint_and_object_positions_without_randomization():
    """Valve: same start, same actions; finger joints and valve angle agree closely."""
    runs = _trajectories("dclaw_valve", steps=8)
    env, q_c, s_c = runs["mujoco"]
    _, q_m, s_m = runs["mjx"]
    np.testing.assert_array_equal(q_c[0], q_m[0])  # same start state
    np.testing.assert_allclose(q_c[1], q_m[1], atol=2e-4)  # one control step: rounding only
    np.testing.assert_allclose(q_c, q_m, atol=1e-2)  # contacts: the engines drift slowly
    # poses the observations are built from (frame sensors vs MJX kinematics)
    np.testing.assert_allclose(s_c.data.site_xpos, s_m.data.site_xpos, atol=2e-3)
    np.testing.assert_allclose(s_c.obs["keypoints"], s_m.obs["keypoints"], atol=2e-3)
    assert np.abs(q_c[-1] - q_c[0]).max() > 0.05, "the claw did not move"


def test_a_randomized_actuator_gain_reaches_the_mujoco_c_models():
    def stronger(p):
        return {**p, "actuator_gain": p["actuator_gain"] * 2.0}

    base = _trajectories("dclaw_valve", steps=4)
    strong = _trajectories("dclaw_valve", steps=4, params_edit=stronger)
    # the host keeps one model per batch size; a single env's model is the last one written
    env = strong["mujoco"][0]
    host_model = env.physics.host._batches["step", 1].models[0]
    np.testing.assert_allclose(
        host_model.actuator_gainprm[:, 0], 2.0 * env.mj_model.actuator_gainprm[:, 0], rtol=1e-6
    )
    joints = env._qadr
    for backend in ("mujoco", "mjx"):
        # stiffer position servos: the fingers move differently in both engines
        diff = np.abs(base[backend][1][:, joints] - strong[backend][1][:, joints]).max()
        assert diff > 1e-3, backend
    # ... and the same way: the change agrees between backends
    change_c = strong["mujoco"][1] - base["mujoco"][1]
    change_m = strong["mjx"][1] - base["mjx"][1]
    np.testing.assert_allclose(change_c[:, joints], change_m[:, joints], atol=5e-3)


def test_a_heavier_object_changes_the_c_trajectory():
    """TriFinger cube dropped from above: mass changes contacts' response, not free fall."""

    def heavy(p):
        return {**p, "object_mass": jp.asarray(3.0), "friction": jp.asarray(0.3)}

    env = _make("trifinger_cube", "mujoco", randomization=randomize.disabled())
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    a = jp.ones((env.action_size,)) * 0.5
    light, heavy_state = (
        state,
        state.replace(info={**state.info, "params": heavy(state.info["params"])}),
    )
    for _ in range(10):
        light, heavy_state = step(light, a), step(heavy_state, a)
    assert not np.allclose(np.asarray(light.data.qpos), np.asarray(heavy_state.data.qpos))


def test_c_backend_under_vmap_scan_and_two_devices_equals_one_device(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = flags + " --xla_force_host_platform_device_count=2"
        import jax, jax.numpy as jp, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from dexdistill import envs
        from dexdistill.envs import wrappers
        assert len(jax.devices()) == 2
        env = wrappers.wrap_for_training(envs.make("dclaw_valve"), 8)

        def run(state, key):
            def body(s, k):
                a = jax.random.uniform(k, (8, env.action_size), minval=-1, maxval=1)
                s = env.step(s, a)
                return s, s.obs["keypoints"]
            return jax.lax.scan(body, state, jax.random.split(key, 12))

        state = jax.jit(env.reset)(jax.random.PRNGKey(0))
        one, kp_one = jax.jit(run)(state, jax.random.PRNGKey(1))
        mesh = Mesh(np.array(jax.devices()), ("data",))
        batched = NamedSharding(mesh, P("data"))
        sharded_state = jax.tree.map(lambda x: jax.device_put(x, batched), state)
        two, kp_two = jax.jit(run)(sharded_state, jax.random.PRNGKey(1))
        assert len(two.data.qpos.sharding.device_set) == 2
        np.testing.assert_array_equal(np.asarray(one.data.qpos), np.asarray(two.data.qpos))
        np.testing.assert_array_equal(np.asarray(kp_one), np.asarray(kp_two))
        print("OK", float(np.abs(np.asarray(one.data.qpos) - np.asarray(state.data.qpos)).max()))
        """
    )
    # bit-equal under XLA's default CPU codegen, what users run (conftest.NO_FUSION_EMITTERS)
    flags = os.environ.get("XLA_FLAGS", "").replace(NO_FUSION_EMITTERS, "")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK") and float(out.stdout.split()[1]) > 0.01


def test_same_seed_same_trajectory_on_the_c_backend():
    env = envs.make("hand_cube", backend="mujoco")
    reset, step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
    runs = []
    for _ in range(2):
        s = reset(jax.random.split(jax.random.PRNGKey(5), 4))
        for i in range(3):
            a = jax.random.uniform(jax.random.PRNGKey(i), (4, env.action_size), minval=-1, maxval=1)
            s = step(s, a)
        runs.append(jax.device_get(s))
    for x, y in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_evaluate_backend_option_switches_the_simulator_and_names_the_output():
    from dexdistill.envs.sim2real import conditions

    cfg = envs.default_config("dclaw_valve")
    assert conditions.on_backend(cfg, "mjx").backend == "mjx"
    assert conditions.on_backend(cfg, "trained") is cfg
    pm = envs.default_config("point_mass")  # no physics engine: unchanged
    assert conditions.on_backend(pm, "mjx") is pm
    with pytest.raises(ValueError, match=r"backend='bullet': allowed values are"):
        configs.EvaluateConfig(backend="bullet").validate()


def test_raycast_point_cloud_on_the_c_backend_matches_mjx():
    """Ray casting reads the host's geom poses: same hits and points as on MJX's kinematics."""
    clouds = {}
    for backend in ("mujoco", "mjx"):
        env = _make(
            "trifinger_cube",
            backend,
            randomization=randomize.disabled(),
            **{"point_cloud.source": "raycast"},
        )
        state = jax.jit(env.reset)(jax.random.PRNGKey(0))
        clouds[backend] = jax.device_get(state.obs)
    n = env.config.point_cloud.num_points
    c, m = clouds["mujoco"], clouds["mjx"]
    assert c["point_cloud_mask"][:n].sum() > 10  # the camera sees the cube
    np.testing.assert_array_equal(c["point_cloud_mask"], m["point_cloud_mask"])
    np.testing.assert_allclose(c["point_cloud"], m["point_cloud"], atol=1e-4)


def test_an_auto_reset_rewrites_only_the_c_models_of_the_envs_that_reset():
    """Under ``vmap`` a reset computes fresh physics parameters for every env and keeps only
    the done envs'; its forward call must not rewrite the stepping models of the others
    (it did: every step after a reset rewrote every env's model, twice)."""
    from dexdistill.envs import wrappers

    env = wrappers.wrap_for_training(_make("hand_cube", "mujoco"), 4)
    host = env.env.physics.host
    step = jax.jit(env.step)
    s = jax.jit(env.reset)(jax.random.PRNGKey(0))
    a = jp.zeros((4, env.action_size))
    s = step(s, a)  # the first step writes every env's model
    last = env.env.config.episode_length - 1
    s = s.replace(info={**s.info, "step": s.info["step"].at[0].set(last)})
    s = step(s, a)  # env 0's episode ends: it resets, with new parameters
    assert np.asarray(s.done).tolist() == [1.0, 0.0, 0.0, 0.0]
    before = host.model_writes
    jax.block_until_ready(step(s, a))
    assert host.model_writes - before == 1, "only the env that reset gets a new model"


@pytest.mark.parametrize("source", ["surface", "raycast"])
def test_reset_poses_on_the_c_backend_equal_mujoco_forward_on_the_episode_model(source):
    """A reset's forward call writes only the fields poses depend on (``geom_pos``, with
    geom sensors): its poses equal ``mj_forward`` on the fully randomized model."""
    import mujoco

    env = _make("trifinger_cube", "mujoco", **{"point_cloud.source": source})
    s = jax.device_get(jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), 3)))
    host = env.physics.host
    scales = s.info["params"]["object_scale"]
    assert np.ptp(scales) > 1e-3, "the object scale is randomized"
    for i in range(3):
        params = {k: np.asarray(s.info["params"][k][i : i + 1]) for k in host.param_shapes}
        fields = randomize.model_fields(host.nominal, params, host.idx, np)
        m = copy.copy(host.model)
        m.opt.gravity[:] = fields.pop("gravity")[0]
        for name, value in fields.items():
            getattr(m, name)[...] = value[0]
        d = mujoco.MjData(m)
        d.qpos[:] = s.data.qpos[i]
        d.mocap_pos[:], d.mocap_quat[:] = s.data.mocap_pos[i], s.data.mocap_quat[i]
        mujoco.mj_forward(m, d)
        np.testing.assert_allclose(s.data.xpos[i], d.xpos, atol=1e-5)
        np.testing.assert_allclose(s.data.site_xpos[i], d.site_xpos, atol=1e-5)
        if source == "raycast":
            np.testing.assert_allclose(s.data.geom_xpos[i], d.geom_xpos, atol=1e-5)
