"""Student networks: key isolation, PointNet invariances, memory variants."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.student.networks import StudentConfig, make_networks, make_policy


@pytest.fixture(scope="module")
def env_and_obs():
    env = envs.make("point_mass")
    obs = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 4)).obs
    return env, obs


def test_student_asking_for_privileged_is_an_error(env_and_obs):
    env, _ = env_and_obs
    with pytest.raises(
        ValueError, match=r"student may not read observation key\(s\) \['privileged'\]"
    ):
        make_networks(StudentConfig(extra_keys=("proprio", "privileged")), env.observation_spec, 2)
    with pytest.raises(ValueError, match=r"student.memory='transformer'"):
        make_networks(StudentConfig(memory="transformer"), env.observation_spec, 2)


@pytest.mark.parametrize("memory", ["gru", "lstm", "stack", "none"])
@pytest.mark.parametrize("modality", ["keypoints", "point_cloud"])
def test_every_student_variant_steps_with_right_shapes(env_and_obs, memory, modality):
    env, obs = env_and_obs
    nets = make_networks(StudentConfig(modality=modality, memory=memory), env.observation_spec, 2)
    params = nets.init(jax.random.PRNGKey(0), env.observation_spec)
    policy = make_policy(nets, params)
    carry = nets.initial_carry(4)
    action, carry2, extras = jax.jit(policy)(obs, carry, jax.random.PRNGKey(1))
    assert (
        action.shape == (4, 2) and extras["mean"].shape == (4, 2) and extras["std"].shape == (4, 2)
    )
    assert np.all(np.abs(action) <= 1.0) and np.all(extras["std"] > 0)
    assert jax.tree.structure(carry) == jax.tree.structure(carry2)
    # the student never touches privileged data
    poisoned = {**obs, "privileged": obs["privileged"] + 1e3}
    a2, _, _ = jax.jit(policy)(poisoned, carry, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(action, a2)


def test_pointnet_is_permutation_invariant_and_ignores_padding(env_and_obs):
    env, obs = env_and_obs
    nets = make_networks(
        StudentConfig(modality="point_cloud", memory="none"), env.observation_spec, 2
    )
    params = nets.init(jax.random.PRNGKey(0), env.observation_spec)
    carry = nets.initial_carry(4)
    _, (mean, _, _) = nets.apply(params, obs, carry)
    perm = jax.random.permutation(jax.random.PRNGKey(3), obs["point_cloud"].shape[1])
    shuffled = {
        **obs,
        "point_cloud": obs["point_cloud"][:, perm],
        "point_cloud_mask": obs["point_cloud_mask"][:, perm],
    }
    _, (mean_p, _, _) = nets.apply(params, shuffled, carry)
    np.testing.assert_allclose(mean, mean_p, atol=1e-6)
    mask = obs["point_cloud_mask"].at[:, :3].set(False)
    garbage = {
        **obs,
        "point_cloud": obs["point_cloud"].at[:, :3].set(99.0),
        "point_cloud_mask": mask,
    }
    clean = {**obs, "point_cloud_mask": mask}
    _, (m1, _, _) = nets.apply(params, garbage, carry)
    _, (m2, _, _) = nets.apply(params, clean, carry)
    np.testing.assert_allclose(m1, m2, atol=1e-6)


@pytest.mark.parametrize("memory", ["gru", "lstm", "stack"])
def test_memory_carries_the_past_and_resets(env_and_obs, memory):
    env, obs = env_and_obs
    nets = make_networks(StudentConfig(memory=memory), env.observation_spec, 2)
    params = nets.init(jax.random.PRNGKey(0), env.observation_spec)
    carry0 = nets.initial_carry(4)
    other = {**obs, "proprio": obs["proprio"] + 1.0}
    carry_a, _ = nets.apply(params, obs, carry0)
    carry_b, _ = nets.apply(params, other, carry0)
    _, (ma, _, _) = nets.apply(params, obs, carry_a)
    _, (mb, _, _) = nets.apply(params, obs, carry_b)
    assert not np.allclose(ma, mb), "same input, different past -> different action"
    reset = nets.reset_carry(carry_a, jp.array([1.0, 0.0, 0.0, 0.0]))
    for r, c0, ca in zip(
        jax.tree.leaves(reset), jax.tree.leaves(carry0), jax.tree.leaves(carry_a), strict=True
    ):
        np.testing.assert_array_equal(r[0], c0[0])
        np.testing.assert_array_equal(r[1:], ca[1:])


@pytest.mark.parametrize("memory", ["gru", "lstm"])
def test_teacher_and_student_share_one_cell_and_carry(env_and_obs, memory):
    # envs/layers.py: one cell type per memory, one zero carry, one reset_carry for both
    from dexdistill.teacher import networks as teacher_networks

    env, _ = env_and_obs
    size = 8
    student = make_networks(StudentConfig(memory=memory, memory_size=size), env.observation_spec, 2)
    cfg = teacher_networks.NetworkConfig(actor_memory=memory, memory_size=size)
    teacher = teacher_networks.make_networks(cfg, env.observation_spec, 2)
    s_params = student.init(jax.random.PRNGKey(0), env.observation_spec)["params"]
    t_params = teacher.init(jax.random.PRNGKey(0), env.observation_spec)["actor"]["params"]
    s_cell = s_params["GRUCell_0" if memory == "gru" else "OptimizedLSTMCell_0"]
    shapes = lambda tree: jax.tree.map(lambda x: x.shape[1:], tree)  # names, unit counts
    assert shapes(s_cell) == shapes(t_params["cell"])
    s_carry, t_carry = student.initial_carry(3), teacher.initial_carry(3)
    assert jax.tree.structure(s_carry) == jax.tree.structure(t_carry)
    full = jax.tree.map(jp.ones_like, s_carry)
    done = jp.array([0.0, 1.0, 0.0])
    np.testing.assert_array_equal(
        jax.tree.leaves(student.reset_carry(full, done)),
        jax.tree.leaves(teacher.reset_carry(full, done)),
    )
    assert teacher.reset_carry(None, done) is None


def test_feedforward_student_has_no_memory(env_and_obs):
    env, obs = env_and_obs
    cfg = dataclasses.replace(StudentConfig(), memory="none")
    nets = make_networks(cfg, env.observation_spec, 2)
    params = nets.init(jax.random.PRNGKey(0), env.observation_spec)
    c0 = nets.initial_carry(4)
    c1, (m0, _, _) = nets.apply(params, obs, c0)
    _, (m1, _, _) = nets.apply(params, obs, c1)
    np.testing.assert_array_equal(m0, m1)
