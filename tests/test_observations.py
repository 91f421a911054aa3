"""Observation models: surface points, ray-cast occlusion, keypoints, key checks."""

from __future__ import annotations

import types

import jax
import jax.numpy as jp
import mujoco
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.envs.sim2real import observations as obs_lib, randomize
from dexdistill.envs.tasks import geometry
from dexdistill.envs.tasks.assets_trifinger import CUBE_HALF_SIZE, TRIFINGER_DEFAULT_QPOS


def _box_surface_distance(points_local: np.ndarray, half: float) -> np.ndarray:
    """|signed distance| of points (box frame) to an axis-aligned box's surface, for points near it."""
    return np.abs(np.max(np.abs(points_local) - half, axis=-1))


@pytest.fixture(scope="module")
def clean_trifinger():
    cfg = envs.default_config("trifinger_cube")
    rnd = randomize.disabled()
    rnd = randomize.RandomizationConfig(
        physics=randomize.PhysicsRandomization(),  # keep object scale random
        observation=rnd.observation,
        unmodeled=rnd.unmodeled,
        camera=rnd.camera,
    )
    env = envs.make("trifinger_cube", envs.with_overrides(cfg, {"randomization": rnd}))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 4))
    return env, jax.device_get(states)


def test_surface_points_lie_on_the_box(clean_trifinger):
    env, states = clean_trifinger
    n = env.config.point_cloud.num_points
    for b in range(4):
        scale = float(states.info["params"]["object_scale"][b])
        pos = states.data.xpos[b, env._obj_body]
        rot = np.asarray(geometry.quat_to_mat(states.data.xquat[b, env._obj_body]))
        local = (states.obs["point_cloud"][b, :n] - pos) @ rot
        assert _box_surface_distance(local, CUBE_HALF_SIZE * scale).max() < 1e-3
        goal_rot = np.asarray(geometry.quat_to_mat(states.info["goal_quat"][b]))
        g_local = (states.obs["point_cloud"][b, n:] - states.info["goal_pos"][b]) @ goal_rot
        # the goal is shown at the object's nominal size (its true scale is privileged)
        assert _box_surface_distance(g_local, CUBE_HALF_SIZE).max() < 1e-3
        assert states.obs["point_cloud_mask"][b].all()


def test_surface_points_cover_all_faces():
    shape = obs_lib.ObjectShape(
        types=np.array([6], np.int32),
        sizes=np.array([[0.1, 0.2, 0.3]], np.float32),
        pos=np.zeros((1, 3), np.float32),
        mat=np.eye(3, dtype=np.float32)[None],
        weights=np.ones(1, np.float32),
    )
    pts = np.asarray(obs_lib.sample_surface(jax.random.PRNGKey(0), shape, jp.ones(()), 4000))
    faces = np.argmax(np.abs(pts) / np.array([0.1, 0.2, 0.3]), axis=-1) * 2 + (
        pts[np.arange(len(pts)), np.argmax(np.abs(pts) / np.array([0.1, 0.2, 0.3]), axis=-1)] > 0
    )
    counts = np.bincount(faces, minlength=6) / len(pts)
    area = np.array([0.2 * 0.3, 0.2 * 0.3, 0.1 * 0.3, 0.1 * 0.3, 0.1 * 0.2, 0.1 * 0.2])
    np.testing.assert_allclose(counts, area / area.sum(), atol=0.03)


def test_surface_bank_covers_every_face_and_scales_with_the_object():
    """The precomputed bank (``point_cloud.surface_bank``) is spread over the faces by area,
    and a draw at scale 1.1 lies on the box scaled by 1.1."""
    half = np.array([0.1, 0.2, 0.3])
    shape = obs_lib.ObjectShape(
        types=np.array([6], np.int32),
        sizes=half[None].astype(np.float32),
        pos=np.zeros((1, 3), np.float32),
        mat=np.eye(3, dtype=np.float32)[None],
        weights=np.ones(1, np.float32),
    )
    bank = obs_lib.surface_bank(shape, 16384)
    assert bank.shape == (16384, 3) and bank.dtype == np.float32
    face = np.argmax(np.abs(bank) / half, axis=-1)
    counts = np.bincount(face, minlength=3) / len(bank)
    area = np.array([0.2 * 0.3, 0.1 * 0.3, 0.1 * 0.2])
    np.testing.assert_allclose(counts, area / area.sum(), atol=0.02)
    pts = np.asarray(obs_lib.sample_bank(jax.random.PRNGKey(0), bank, jp.asarray(1.1), 500))
    assert _box_surface_distance(pts, 1.1 * half).max() < 1e-6
    assert len(np.unique(pts, axis=0)) > 490  # random picks, not the bank's first rows
    again = obs_lib.sample_bank(jax.random.PRNGKey(1), bank, jp.asarray(1.1), 500)
    assert not np.array_equal(pts, np.asarray(again))


def test_surface_sampling_skips_absent_geom_types_without_changing_the_points():
    """One box geom takes the fast path (no geom choice, no sphere/capsule formulas); the
    same box listed with a second, never-drawn geom takes the general path."""
    rot = np.asarray(geometry.quat_to_mat(jp.array([0.9, 0.1, -0.3, 0.2]) / 0.9899495))
    one = obs_lib.ObjectShape(
        types=np.array([6], np.int32),
        sizes=np.array([[0.1, 0.2, 0.3]], np.float32),
        pos=np.array([[0.01, -0.02, 0.03]], np.float32),
        mat=rot.astype(np.float32)[None],
        weights=np.ones(1, np.float32),
    )
    two = obs_lib.ObjectShape(
        types=np.array([6, 3], np.int32),
        sizes=np.array([[0.1, 0.2, 0.3], [0.05, 0.1, 0.0]], np.float32),
        pos=np.concatenate([one.pos, np.zeros((1, 3), np.float32)]),
        mat=np.concatenate([one.mat, np.eye(3, dtype=np.float32)[None]]),
        weights=np.array([1.0, 0.0], np.float32),
    )
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    scales = jp.linspace(0.9, 1.1, 8)

    def sample(shape: obs_lib.ObjectShape) -> np.ndarray:
        fn = jax.jit(jax.vmap(lambda k, s: obs_lib.sample_surface(k, shape, s, 500)))
        return np.asarray(fn(keys, scales))

    fast, general = sample(one), sample(two)
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-7)


def test_keypoints_are_cube_corners(clean_trifinger):
    env, states = clean_trifinger
    for b in range(4):
        scale = float(states.info["params"]["object_scale"][b])
        # object keypoints at its true size, goal keypoints at the nominal size
        for part, s in (
            (states.obs["keypoints"][b, :8], scale),
            (states.obs["keypoints"][b, 8:], 1),
        ):
            d = np.linalg.norm(part[:, None] - part[None], axis=-1)
            np.testing.assert_allclose(d.max(), 2 * CUBE_HALF_SIZE * s * np.sqrt(3), rtol=1e-4)
        np.testing.assert_allclose(
            states.obs["keypoints"][b, :8].mean(0), states.data.xpos[b, env._obj_body], atol=1e-5
        )


def test_raycast_points_are_occluded_by_a_finger():
    cfg = envs.with_overrides(
        envs.default_config("trifinger_cube"),
        {
            "point_cloud.source": "raycast",
            "point_cloud.resolution": (48, 48),
            "point_cloud.fovy": 30.0,
        },
    )
    env = envs.make("trifinger_cube", cfg)
    m = env.mj_model
    d = mujoco.MjData(m)
    d.qpos[env._qadr] = TRIFINGER_DEFAULT_QPOS
    mujoco.mj_forward(m, d)
    cam = env._camera
    tip_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "fingertip0_geom")
    tip = d.geom_xpos[tip_geom].copy()  # centre of the fingertip sphere
    tip_radius = float(m.geom_size[tip_geom, 0])
    u = (tip - cam.pos) / np.linalg.norm(tip - cam.pos)
    cube = tip + 0.07 * u
    # aim the camera at the cube so the ray grid is centred on it
    cam_mat = jp.asarray(geometry.look_at(cam.pos, cube))

    def hits(finger_qpos):
        qpos = m.qpos0.copy()
        qpos[env._qadr] = finger_qpos
        qpos[env._obj_qadr : env._obj_qadr + 7] = np.concatenate([cube, [1, 0, 0, 0]])
        # poses from MuJoCo C (as the C backend returns them); only mjx.ray is traced
        d.qpos[:] = qpos
        mujoco.mj_forward(m, d)
        data = types.SimpleNamespace(
            geom_xpos=jp.asarray(d.geom_xpos), geom_xmat=jp.asarray(d.geom_xmat.reshape(-1, 3, 3))
        )
        pts, hit = obs_lib.raycast_object(
            env.mjx_model,
            data,
            jp.asarray(cam.pos),
            cam_mat,
            jp.asarray(cam.rays),
            env._obj_geom_mask,
            2.0,
        )
        return np.asarray(pts), np.asarray(hit)

    away = np.array(TRIFINGER_DEFAULT_QPOS)
    away[0:3] = [0.6, -1.3, 0.0]  # swing finger 0 out of the line of sight
    pts_occ, hit_occ = hits(np.array(TRIFINGER_DEFAULT_QPOS))
    pts_clear, hit_clear = hits(away)
    assert hit_clear.sum() > 50
    assert hit_occ.sum() < hit_clear.sum() - 3
    # no visible cube point lies right behind the fingertip
    rays = pts_occ[hit_occ] - cam.pos
    cosang = (rays / np.linalg.norm(rays, axis=-1, keepdims=True)) @ u
    assert np.all(cosang < np.cos(np.arcsin(tip_radius / np.linalg.norm(tip - cam.pos))))
    # every hit is on the cube's surface
    local = pts_clear[hit_clear] - cube
    assert _box_surface_distance(local, CUBE_HALF_SIZE).max() < 1e-3


def test_raycast_env_observation_is_masked_and_compacted():
    cfg = envs.with_overrides(
        envs.default_config("dclaw_valve"),
        {"point_cloud.source": "raycast", "randomization.observation.enabled": False},
    )
    env = envs.make("dclaw_valve", cfg)
    s = jax.jit(env.reset)(jax.random.PRNGKey(0))
    n = env.config.point_cloud.num_points
    mask = np.asarray(s.obs["point_cloud_mask"][:n])
    assert mask.sum() > 5
    assert np.all(np.diff(mask.astype(int)) <= 0)  # valid points first, then padding
    pts = np.asarray(s.obs["point_cloud"][:n])
    assert np.all(pts[~mask] == 0)


def test_student_cannot_read_privileged():
    envs.check_keys(["proprio", "keypoints"], envs.STUDENT_KEYS, "student")
    with pytest.raises(
        ValueError, match=r"student may not read observation key\(s\) \['privileged'\]"
    ):
        envs.check_keys(["proprio", "privileged"], envs.STUDENT_KEYS, "student")
