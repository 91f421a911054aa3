"""Task-specific reward logic, checked on hand-made states (no rollout needed)."""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np
import pytest
from conftest import get_rollout

from dexdistill.envs.tasks import geometry


@pytest.fixture(scope="module")
def hand():
    r = get_rollout("hand_cube")
    first, _, _ = r.run()
    one = jax.tree.map(lambda x: jp.asarray(x[0]), first)
    return r.env, one


def _with_object(env, state, pos=None, quat=None):
    data = state.data
    if pos is not None:
        data = data.replace(xpos=data.xpos.at[env._obj_body].set(pos))
    if quat is not None:
        data = data.replace(xquat=data.xquat.at[env._obj_body].set(quat))
    return data


def test_hand_reward_is_dactyls_angle_difference(hand):
    env, state = hand
    info = dict(state.info)
    goal = info["goal_quat"]
    # a pose 1.0 rad away from the goal, previous error 1.2 rad: reward = 0.2
    off = geometry.quat_mul(
        geometry.axis_angle_quat(jp.array([0.0, 0.0, 1.0]), jp.asarray(1.0)), goal
    )
    info["prev_rot_error"] = jp.asarray(1.2)
    r, term, m, new = env.compute_reward(
        _with_object(env, state, quat=off), info, jax.random.PRNGKey(0)
    )
    np.testing.assert_allclose(float(r), 0.2, atol=1e-4)
    assert not bool(term) and float(m["success"]) == 0.0
    np.testing.assert_array_equal(new["goal_quat"], goal)


def test_hand_goal_reached_gives_bonus_and_new_goal(hand):
    env, state = hand
    info = {
        **state.info,
        "prev_rot_error": jp.asarray(0.5),
        "consecutive_successes": jp.asarray(3.0),
    }
    r, term, m, new = env.compute_reward(
        _with_object(env, state, quat=info["goal_quat"]), info, jax.random.PRNGKey(1)
    )
    np.testing.assert_allclose(float(r), 0.5 + 5.0, atol=1e-3)
    assert float(m["consecutive_successes"]) == 4.0 and float(m["success"]) == 1.0
    assert not np.allclose(new["goal_quat"], info["goal_quat"])
    assert int(new["steps_since_goal"]) == 0
    info["consecutive_successes"] = jp.asarray(49.0)
    _, term, _, new = env.compute_reward(
        _with_object(env, state, quat=info["goal_quat"]), info, jax.random.PRNGKey(1)
    )
    # the episode ends at 50 consecutive successes, as a time limit (not a failure)
    assert not bool(term) and bool(env.task_truncated(new))


def test_hand_drop_is_penalized_and_ends_episode(hand):
    env, state = hand
    pos = state.data.xpos[env._obj_body] - jp.array([0.0, 0.0, 0.1])
    info = {**state.info}
    r, term, m, _ = env.compute_reward(
        _with_object(env, state, pos=pos), info, jax.random.PRNGKey(2)
    )
    assert bool(term) and float(m["dropped"]) == 1.0
    assert float(r) < -19.0


def test_valve_success_and_progress():
    r = get_rollout("dclaw_valve")
    first, _, _ = r.run()
    env = r.env
    state = jax.tree.map(lambda x: jp.asarray(x[0]), first)
    target = state.info["target_angle"]
    qpos = state.data.qpos.at[env._obj_qadr].set(target - 0.1)
    info = {**state.info, "prev_error": jp.asarray(0.5)}
    reward, _, m, new = env.compute_reward(
        state.data.replace(qpos=qpos), info, jax.random.PRNGKey(0)
    )
    assert float(m["success"]) == 1.0
    np.testing.assert_allclose(float(m["angle_error"]), 0.1, atol=1e-5)
    assert float(reward) > 0 and float(new["prev_error"]) == pytest.approx(0.1, abs=1e-5)
    # the default target is +180 degrees from the start angle
    start = float(first.data.qpos[0, env._obj_qadr])
    np.testing.assert_allclose(float(target) - start, np.pi, atol=1e-5)


def test_trifinger_success_is_mean_keypoint_distance():
    r = get_rollout("trifinger_cube")
    first, _, _ = r.run()
    env = r.env
    state = jax.tree.map(lambda x: jp.asarray(x[0]), first)
    data = _with_object(env, state, pos=state.info["goal_pos"], quat=state.info["goal_quat"])
    _, _, m, _ = env.compute_reward(data, dict(state.info), jax.random.PRNGKey(0))
    assert float(m["success"]) == 1.0 and float(m["keypoint_distance"]) < 1e-5
    shifted = _with_object(
        env,
        state,
        pos=state.info["goal_pos"] + jp.array([0.05, 0.0, 0.0]),
        quat=state.info["goal_quat"],
    )
    _, _, m, _ = env.compute_reward(shifted, dict(state.info), jax.random.PRNGKey(0))
    assert float(m["success"]) == 0.0
    np.testing.assert_allclose(float(m["keypoint_distance"]), 0.05, atol=1e-5)


def test_trifinger_grasp_terms_pay_for_touching_and_lifting():
    """``reach`` is 1 with every fingertip on a face, falls with the gap; ``lift`` is the
    fraction of the goal's height gained, and 0 for goals on the floor."""
    from dexdistill.envs.tasks.assets_trifinger import CUBE_HALF_SIZE, TIP_RADIUS

    env = get_rollout("trifinger_cube").env
    one = jp.asarray(1.0)
    touching = jp.full((3,), CUBE_HALF_SIZE + TIP_RADIUS)
    rest = jp.array([0.0, 0.0, CUBE_HALF_SIZE])
    goal_up = jp.array([0.0, 0.0, CUBE_HALF_SIZE + 0.06])
    reach, lift = env._grasp_terms(touching, rest, goal_up, one)
    assert float(reach) == pytest.approx(1.0) and float(lift) == 0.0
    away = touching.at[0].add(0.01)  # one fingertip 1 cm off its face
    reach, _ = env._grasp_terms(away, rest, goal_up, one)
    assert float(reach) == pytest.approx((2 + np.exp(-0.01 / env.config.reach_length)) / 3)
    _, lift = env._grasp_terms(touching, rest + jp.array([0.0, 0.0, 0.03]), goal_up, one)
    assert float(lift) == pytest.approx(0.5, abs=1e-5)
    _, lift = env._grasp_terms(touching, goal_up + 0.05, goal_up, one)
    assert float(lift) == pytest.approx(1.0)
    _, lift = env._grasp_terms(touching, rest + jp.array([0.0, 0.0, 0.03]), rest, one)
    assert float(lift) == 0.0  # a floor goal: tipping the cube up earns nothing
    # the terms reach the reward metrics of a real step, computed from its tip distances
    state = jax.tree.map(lambda x: jp.asarray(x[0]), get_rollout("trifinger_cube").run()[0])
    _, _, m, _ = env.compute_reward(state.data, dict(state.info), jax.random.PRNGKey(0))
    pos, _ = env.object_pose(state.data)
    scale = state.info["params"]["object_scale"]
    want = env._grasp_terms(env._tip_distances(state.data), pos, state.info["goal_pos"], scale)
    np.testing.assert_allclose([m["reach"], m["lift"]], want, atol=1e-6)
    assert 0.0 <= float(m["reach"]) <= 1.0 and 0.0 <= float(m["lift"]) <= 1.0


def test_residual_actions_are_offsets_from_the_default_grasp():
    """hand_cube's ``residual`` actions: 0 holds the default grasp, +-1 moves by action_scale."""
    from dexdistill import envs

    hand = envs.make("hand_cube")
    assert hand.config.action_mode == "residual"
    centre = np.asarray(hand.default_joint_pos)
    lo, hi = hand._ctrl_lo, hand._ctrl_hi
    np.testing.assert_allclose(hand._ctrl_from_action(jp.zeros(16)), centre, atol=1e-6)
    up = np.asarray(hand._ctrl_from_action(jp.ones(16)))
    np.testing.assert_allclose(up, np.minimum(centre + hand.config.action_scale, hi), atol=1e-6)
    action = jp.linspace(-0.5, 0.5, 16)
    ctrl = hand._ctrl_from_action(action)
    assert np.all((np.asarray(ctrl) >= lo - 1e-6) & (np.asarray(ctrl) <= hi + 1e-6))
    np.testing.assert_allclose(hand._action_from_ctrl(ctrl), action, atol=1e-5)


def test_absolute_actions_span_the_control_range():
    from dexdistill import envs

    env = envs.make("dclaw_valve")
    assert env.config.action_mode == "absolute"
    np.testing.assert_allclose(env._ctrl_from_action(-jp.ones(9)), env._ctrl_lo, atol=1e-6)
    np.testing.assert_allclose(env._ctrl_from_action(jp.ones(9)), env._ctrl_hi, atol=1e-6)
    with pytest.raises(ValueError, match="action_mode='velocity': allowed values are"):
        envs.make("dclaw_valve", action_mode="velocity")


def test_delta_actions_move_the_observed_targets_within_the_range():
    from dexdistill import envs
    from dexdistill.envs.sim2real import randomize

    off = randomize.disabled()  # no action delay or backlash: the first step moves the targets
    env = envs.make("dclaw_valve", action_mode="delta", action_scale=0.1, randomization=off)
    lo, hi = env._ctrl_lo, env._ctrl_hi
    ctrl = jp.asarray(0.5 * (lo + hi))
    moved = env._ctrl_from_action(jp.full(9, 0.5), ctrl)
    np.testing.assert_allclose(moved, ctrl + 0.05, atol=1e-6)
    np.testing.assert_allclose(env._ctrl_from_action(jp.ones(9), jp.asarray(hi)), hi, atol=1e-6)
    np.testing.assert_allclose(env._action_from_ctrl(ctrl), 0.0)  # the start holds its pose
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    layout = env.privileged_layout
    np.testing.assert_allclose(state.obs["privileged"][layout["joint_target"]], state.data.ctrl)
    nxt = jax.jit(env.step)(state, jp.ones(9))
    unit = 2.0 * (np.asarray(nxt.data.ctrl) - lo) / (hi - lo) - 1.0
    np.testing.assert_allclose(nxt.obs["proprio"][-9:], unit, atol=1e-6)
    step = np.minimum(np.asarray(state.data.ctrl) + 0.1, hi)
    np.testing.assert_allclose(nxt.data.ctrl, step, atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "yaw"])
def test_hand_goals_are_never_drawn_within_the_success_tolerance(mode):
    """A goal drawn already reached would be a free success (about 13% of yaw goals and
    0.3% of SO(3) goals at the last level before the fix)."""
    from dexdistill import envs

    env = envs.make("hand_cube", goal_mode=mode)
    tol = env.config.success_tolerance
    quat = geometry.quat_from_uniforms(jnp_uniform(3))
    draw = jax.jit(
        jax.vmap(lambda k, lv: env._new_goal(k, quat, lv)["goal_quat"], in_axes=(0, None))
    )
    keys = jax.random.split(jax.random.PRNGKey(7), 8192)
    for level in range(env.config.num_goal_levels):
        goals = draw(keys, level)
        angles = np.asarray(jax.vmap(lambda g: geometry.rotation_angle(g, quat))(goals))
        assert angles.min() > tol, (mode, level, angles.min())
        assert angles.max() <= env.config.goal_rotation_levels[level] + 1e-4


def jnp_uniform(n: int) -> jax.Array:
    return jax.random.uniform(jax.random.PRNGKey(3), (n,))


def test_hand_trials_have_no_fixed_length():
    """Trials end at the goal count, a drop or a goal timeout: the episode length can never
    cut one short, and the evaluator runs a long horizon only until every trial has ended."""
    from dexdistill import envs
    from dexdistill.envs.evaluation import evaluate as eval_lib

    with pytest.raises(ValueError, match="episode_length=400: must be >= max_consecutive"):
        envs.make("hand_cube", episode_length=400)
    env = envs.make("hand_cube", goal_timeout=20, max_consecutive_successes=50, episode_length=1000)
    assert env.episode_length == 1000
    still = lambda params: (
        lambda obs, carry, key: (  # noqa: E731  holds the default grasp
            jp.zeros((obs["proprio"].shape[0], env.action_size)),
            carry,
            {},
        )
    )
    res = jax.device_get(eval_lib.make_evaluator(env, still, 8)(None, jax.random.PRNGKey(0)))
    length, goals = np.asarray(res["length"]), np.asarray(res["consecutive_successes"])
    dropped = np.asarray(res["dropped"]) > 0
    # each trial ended by a drop or at its goal's timeout, never at 1000 steps
    assert np.all(length < 1000) and np.all(dropped | (length <= 20 * (goals + 1)))
    idle = ~dropped & (goals == 0)
    assert idle.any() and np.all(length[idle] == 20), (length, goals, dropped)


def _trifinger_goals(level: int, shape: str = "cube", n: int = 4096):
    """``n`` goals at ``level`` with random object scales (up to the held-out 1.25)."""
    from dexdistill import envs
    from dexdistill.envs.tasks import trifinger_cube as tc

    env = envs.make("trifinger_cube", object_shape=shape)
    keys = jax.random.split(jax.random.PRNGKey(level), n)
    scales = jax.random.uniform(jax.random.PRNGKey(9), (n,), minval=0.8, maxval=1.25)

    def one(key, scale):
        params = {"object_scale": scale}
        _, goal, _ = env.sample_start(key, params, jp.asarray(level, jp.int32))
        return goal["goal_pos"], goal["goal_quat"]

    pos, quat = jax.jit(jax.vmap(one))(keys, scales)
    half = geometry.object_half_extents(shape, tc.CUBE_HALF_SIZE)
    return env, np.asarray(pos), np.asarray(quat), np.asarray(scales), np.asarray(half)


def test_no_lifted_goal_is_reached_by_a_cube_resting_on_the_floor():
    env, pos, _, scale, half = _trifinger_goals(level=1)
    resting_z = half[2] * scale  # a resting cube's centre, anywhere on the floor
    gap = pos[:, 2] - resting_z  # its smallest distance to the goal
    assert gap.min() > env.config.success_threshold + 0.5 * env.config.lift_margin
    assert pos[:, 2].max() <= env.config.goal_height_max + 1e-6


@pytest.mark.parametrize("shape", ["cube", "cuboid"])
def test_no_pose_goal_intersects_the_floor(shape):
    env, pos, quat, scale, half = _trifinger_goals(level=2, shape=shape)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    corners = signs * half  # [8, 3] at nominal size
    rot = np.asarray(jax.vmap(geometry.quat_to_mat)(jp.asarray(quat)))
    lowest = pos[:, 2] + np.min(np.einsum("nij,kj->nki", rot, corners)[..., 2], axis=1) * scale
    assert lowest.min() > 0.0, lowest.min()
    assert np.any(np.abs(quat[:, 0]) < 0.9), "pose goals are turned"


def test_fingertip_contacts_carry_the_models_torsional_friction():
    """A pinch between two fingertips must not pivot freely: where a fingertip geom has
    torsional friction, its contacts use it (condim >= 4)."""
    import mujoco

    from dexdistill import envs

    for task, names in (
        ("trifinger_cube", [f"fingertip{i}_geom" for i in range(3)]),
        ("hand_cube", [f"{f}_tip_geom" for f in ("index", "middle", "ring", "thumb")]),
    ):
        m = envs.make(task).mj_model
        for name in names:
            gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)
            assert gid >= 0, name
            if m.geom_friction[gid, 1] > 0:
                assert m.geom_condim[gid] >= 4, (task, name, m.geom_condim[gid])
