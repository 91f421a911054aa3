"""Observation models: keypoints, point clouds (surface-sampled or ray-cast), noise.

Pure functions over arrays; the task modules decide what to feed them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jp
import mujoco
import numpy as np
from mujoco import mjx

from dexdistill.envs.common import checks, fastrand
from dexdistill.envs.sim2real.randomize import ObservationNoise, UnmodeledEffects
from dexdistill.envs.tasks import geometry

PointCloudSource = Literal["surface", "raycast", "none"]


@dataclasses.dataclass(frozen=True)
class PointCloudConfig:
    """How the ``point_cloud`` observation is made.

    The cloud holds ``num_points`` object points followed by ``num_goal_points``
    points of the object at its goal pose (the goal is a command, so those are
    noise-free); ``point_cloud_mask`` marks valid points.
    """

    source: PointCloudSource = "surface"
    """``surface``: points sampled on the object's geoms, moved by its pose.
    ``raycast``: a simulated depth camera (``mjx.ray``); fingers occlude the object.
    ``none``: all points zero and masked out (skips the work when no policy reads it)."""
    num_points: int = 64
    num_goal_points: int = 32
    camera: str = "depth"
    """MJCF camera used for ray casting."""
    resolution: tuple[int, int] = (16, 16)
    """Rays (height, width) of the depth camera; the hits on the object are
    compacted into the first ``num_points`` slots."""
    fovy: float = 40.0
    """Vertical field of view in degrees."""
    max_depth: float = 2.0
    surface_bank: int = 16384
    """Points drawn once on the object's surface (nominal size, seeded) from which every
    step's ``surface`` cloud, and the goal points of either source, pick theirs at random,
    scaled by the episode's object scale: on a CPU about 6x cheaper than sampling the
    surface afresh, and 16384 points lie about 1 mm apart on the 6.5 cm cube, below the
    per-point noise. 0: sample the surface afresh at every step."""

    def validate(self, prefix: str = "observation.point_cloud") -> None:
        checks.check_types(self, f"{prefix}.")
        checks.require(f"{prefix}.num_points", self.num_points, ge=1)
        checks.require(f"{prefix}.surface_bank", self.surface_bank, ge=0)
        checks.require(f"{prefix}.num_goal_points", self.num_goal_points, ge=0)
        if min(self.resolution) < 1 or not 0 < self.fovy < 180:
            raise ValueError(f"{prefix}.resolution/fovy: need positive resolution, 0 < fovy < 180")


# --------------------------------------------------------------------------- surface


@dataclasses.dataclass(frozen=True)
class ObjectShape:
    """The object's primitive geoms in its body frame (nominal scale), numpy.

    Attributes:
      types: [G] ``mjtGeom`` of each geom (box, sphere, capsule supported).
      sizes: [G, 3] MuJoCo geom sizes.
      pos: [G, 3] geom positions in the body frame.
      mat: [G, 3, 3] geom orientations in the body frame.
      weights: [G] sampling probability, proportional to surface area.
    """

    types: np.ndarray
    sizes: np.ndarray
    pos: np.ndarray
    mat: np.ndarray
    weights: np.ndarray

    @staticmethod
    def from_model(m: mujoco.MjModel, geom_ids: np.ndarray) -> ObjectShape:
        types = m.geom_type[geom_ids].astype(np.int32)
        sizes = m.geom_size[geom_ids].astype(np.float32)
        mats = []
        for g in geom_ids:
            mat = np.zeros(9)
            mujoco.mju_quat2Mat(mat, m.geom_quat[g])
            mats.append(mat.reshape(3, 3))
        areas = np.array([_area(t, s) for t, s in zip(types, sizes, strict=True)])
        return ObjectShape(
            types=types,
            sizes=sizes,
            pos=m.geom_pos[geom_ids].astype(np.float32),
            mat=np.stack(mats).astype(np.float32),
            weights=(areas / areas.sum()).astype(np.float32),
        )


def _area(geom_type: int, size: np.ndarray) -> float:
    if geom_type == mujoco.mjtGeom.mjGEOM_BOX:
        x, y, z = 2 * size
        return float(2 * (x * y + y * z + x * z))
    if geom_type == mujoco.mjtGeom.mjGEOM_SPHERE:
        return float(4 * np.pi * size[0] ** 2)
    if geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE:
        r, h = size[0], size[1]
        return float(4 * np.pi * r**2 + 4 * np.pi * r * h)
    raise ValueError(
        f"surface sampling supports box, sphere and capsule geoms, got type {geom_type}"
    )


def _pick(u: jax.Array, weights: jax.Array, xp: Any = jp) -> jax.Array:
    """Index drawn with probability ``weights [..., K]`` (unnormalized) from ``u [...]`` ~ U(0, 1)."""
    cdf = xp.cumsum(weights, axis=-1)
    return xp.sum(u[..., None] * cdf[..., -1:] >= cdf[..., :-1], axis=-1)


def _sample_box(u: jax.Array, size: jax.Array, xp: Any = jp) -> jax.Array:
    """Uniform points ``[n, 3]`` on boxes with half-sizes ``size [n, 3]``; ``u [n, 5]`` ~ U(0, 1)."""
    x, y, z = size[:, 0], size[:, 1], size[:, 2]
    axis = _pick(u[:, 0], xp.stack([y * z, x * z, x * y], axis=-1), xp)
    uv = 2.0 * u[:, 1:4] - 1.0
    sign = xp.where(u[:, 4] < 0.5, 1.0, -1.0)
    unit = xp.where(xp.arange(3) == axis[:, None], sign[:, None], uv)
    return unit * size


def _sphere_dirs(u: jax.Array, xp: Any = jp) -> jax.Array:
    """Uniform unit vectors ``[n, 3]`` from ``u [n, 2]`` ~ U(0, 1) (Archimedes: z ~ U(-1, 1))."""
    z = 2.0 * u[:, 0] - 1.0
    phi = 2.0 * np.pi * u[:, 1]
    rho = xp.sqrt(xp.maximum(1.0 - z * z, 0.0))
    return xp.stack([rho * xp.cos(phi), rho * xp.sin(phi), z], axis=-1)


def _sample_capsule(u: jax.Array, sphere: jax.Array, size: jax.Array, xp: Any = jp) -> jax.Array:
    """Uniform points ``[n, 3]`` on capsules (radius ``size[:, 0]``, half-length ``size[:, 1]``
    along z); ``u [n, 3]`` ~ U(0, 1), ``sphere [n, 3]`` uniform unit vectors."""
    r, h = size[:, 0], size[:, 1]
    p_side = (4 * np.pi * r * h) / (4 * np.pi * r * h + 4 * np.pi * r**2)
    theta = 2 * np.pi * u[:, 1]
    side = xp.stack([r * xp.cos(theta), r * xp.sin(theta), h * (2.0 * u[:, 2] - 1.0)], axis=-1)
    cap = r[:, None] * sphere
    cap = cap + xp.stack([0.0 * h, 0.0 * h, xp.sign(cap[:, 2]) * h], axis=-1)
    return xp.where((u[:, 0] < p_side)[:, None], side, cap)


def _surface_points(u: jax.Array, shape: ObjectShape, scale: Any, xp: Any = jp) -> jax.Array:
    """Points ``[n, 3]`` on the object's surface (body frame) from uniforms ``u [n, 11]``.

    ``xp`` is ``jax.numpy`` or ``numpy``. Only the geom types the object has are computed
    (a cube skips the sphere and capsule formulas and the choice of geom); the points do
    not depend on that.
    """
    G = mujoco.mjtGeom
    n = u.shape[0]
    present = sorted({int(t) for t in shape.types})
    gid = (
        xp.zeros((n,), np.int32)
        if len(shape.types) == 1
        else _pick(u[:, 0], xp.asarray(shape.weights), xp)
    )
    sizes = xp.asarray(shape.sizes)[gid] * scale
    types = xp.asarray(shape.types)[gid]
    round_types = {int(G.mjGEOM_SPHERE), int(G.mjGEOM_CAPSULE)}
    dirs = _sphere_dirs(u[:, 9:11], xp) if round_types & set(present) else None
    formulas = {
        int(G.mjGEOM_BOX): lambda: _sample_box(u[:, 1:6], sizes, xp),
        int(G.mjGEOM_SPHERE): lambda: sizes[:, :1] * dirs,
        int(G.mjGEOM_CAPSULE): lambda: _sample_capsule(u[:, 6:9], dirs, sizes, xp),
    }
    local = formulas[present[0]]()
    for t in present[1:]:
        local = xp.where((types == t)[:, None], formulas[t](), local)
    if len(shape.types) == 1:
        rotated = xp.einsum("ij,nj->ni", xp.asarray(shape.mat[0]), local)
        return rotated + xp.asarray(shape.pos[0]) * scale
    rotated = xp.einsum("nij,nj->ni", xp.asarray(shape.mat)[gid], local)
    return rotated + xp.asarray(shape.pos)[gid] * scale


def sample_surface(rng: jax.Array, shape: ObjectShape, scale: jax.Array, n: int) -> jax.Array:
    """``n`` points ``[n, 3]`` uniformly on the object's surface, in its body frame.

    ``scale`` is the episode's object scale (geom sizes and offsets both scale). All the
    randomness is one call of :mod:`envs.fastrand` (``[n, 11]`` uniforms): the
    generator, not the geometry, dominated the cost of a point cloud on a CPU.
    """
    return _surface_points(fastrand.uniform(rng, (n, 11)), shape, scale)


def surface_bank(shape: ObjectShape, size: int, seed: int = 0) -> np.ndarray:
    """``size`` points ``[size, 3]`` (float32, numpy) uniformly on the object's surface at
    nominal scale, body frame: drawn once, seeded, for :func:`sample_bank`."""
    u = np.random.default_rng(seed).random((size, 11))
    return _surface_points(u, shape, 1.0, np).astype(np.float32)


def sample_bank(rng: jax.Array, bank: np.ndarray, scale: jax.Array, n: int) -> jax.Array:
    """``n`` points ``[n, 3]`` picked at random from ``bank [M, 3]`` (:func:`surface_bank`)
    and scaled by the episode's object scale.

    Every geom's size and offset scale together, so a point on the object at scale 1 times
    ``scale`` is a point on the object at ``scale``. One random integer and one gather per
    point instead of :func:`sample_surface`'s eleven uniforms and the geometry.
    """
    idx = fastrand.bits(rng, (n,)) % jp.uint32(bank.shape[0])
    return jp.asarray(bank)[idx] * scale


def surface_sampler(shape: ObjectShape, bank: int) -> Callable[[jax.Array, Any, int], jax.Array]:
    """``sample(rng, scale, n) -> [n, 3]``: points on the object's surface at ``scale``, body
    frame; picked from ``bank`` points drawn once (:func:`surface_bank`), or sampled afresh
    when ``bank`` is 0 (``point_cloud.surface_bank``)."""
    if not bank:
        return lambda rng, scale, n: sample_surface(rng, shape, scale, n)
    points = surface_bank(shape, bank)
    return lambda rng, scale, n: sample_bank(rng, points, scale, n)


# --------------------------------------------------------------------------- ray casting


@dataclasses.dataclass(frozen=True)
class DepthCamera:
    """A static pinhole depth camera (numpy): pose and unit ray directions in its frame."""

    pos: np.ndarray
    """[3] world position."""
    mat: np.ndarray
    """[3, 3] world orientation (columns: right, up, backward; looks along -z)."""
    rays: np.ndarray
    """[R, 3] unit directions in the camera frame."""

    @staticmethod
    def from_model(m: mujoco.MjModel, cfg: PointCloudConfig) -> DepthCamera:
        cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, cfg.camera)
        if cid < 0:
            raise ValueError(
                f"observation.point_cloud.camera={cfg.camera!r}: no such camera in the model"
            )
        d = mujoco.MjData(m)
        mujoco.mj_forward(m, d)
        h, w = cfg.resolution
        half = np.tan(np.deg2rad(cfg.fovy) / 2)
        ys = np.linspace(half, -half, h)
        xs = np.linspace(-half, half, w) * (w / h)
        gx, gy = np.meshgrid(xs, ys)
        dirs = np.stack([gx, gy, -np.ones_like(gx)], axis=-1).reshape(-1, 3)
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        return DepthCamera(
            pos=d.cam_xpos[cid].astype(np.float32).copy(),
            mat=d.cam_xmat[cid].reshape(3, 3).astype(np.float32).copy(),
            rays=dirs.astype(np.float32),
        )


def raycast_object(
    model: mjx.Model,
    data: mjx.Data,
    cam_pos: jax.Array,
    cam_mat: jax.Array,
    rays: jax.Array,
    object_geom_mask: np.ndarray,
    max_depth: float,
    geomgroup: tuple[int, ...] = (1, 1, 1, 1, 0, 0),
) -> tuple[jax.Array, jax.Array]:
    """Casts ``rays [R, 3]`` (camera frame) and keeps the hits on the object.

    Returns (points ``[R, 3]`` world frame, hit ``[R]`` bool). A ray that first hits
    a finger (or anything else) is not a hit: fingers occlude the object.
    """
    dirs = geometry.rotate_points(cam_mat, rays)

    def cast(v: jax.Array) -> tuple[jax.Array, jax.Array]:
        return mjx.ray(model, data, cam_pos, v, geomgroup=geomgroup)

    dist, gid = jax.vmap(cast)(dirs)
    on_object = jp.asarray(object_geom_mask)[jp.maximum(gid, 0)]
    hit = (gid >= 0) & on_object & (dist > 0) & (dist < max_depth)
    points = cam_pos + dist[:, None] * dirs
    return jp.where(hit[:, None], points, 0.0), hit


def compact(points: jax.Array, valid: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """Moves valid points ``[R, 3]`` to the front and pads/truncates to ``[n, 3]`` + mask ``[n]``."""
    order = jp.argsort(~valid, stable=True)
    if points.shape[0] < n:
        pad = n - points.shape[0]
        points = jp.concatenate([points, jp.zeros((pad, 3), points.dtype)])
        valid = jp.concatenate([valid, jp.zeros((pad,), bool)])
        order = jp.concatenate([order, jp.arange(order.shape[0], n)])
    idx = order[:n]
    return jp.where(valid[idx][:, None], points[idx], 0.0), valid[idx]


# --------------------------------------------------------------------------- noise


def noisy_points(
    rng: jax.Array,
    points: jax.Array,
    mask: jax.Array,
    bias: jax.Array,
    cfg: ObservationNoise,
) -> tuple[jax.Array, jax.Array]:
    """Adds per-episode ``bias [3]``, per-point noise and dropout to ``points [N, 3]``."""
    if not cfg.enabled:
        return points, mask
    k_noise, k_drop = fastrand.split(rng)
    noise = cfg.point_cloud_uncorrelated * fastrand.normal(k_noise, points.shape)
    keep = fastrand.uniform(k_drop, mask.shape) >= cfg.point_dropout
    mask = mask & keep
    return jp.where(mask[:, None], points + bias + noise, 0.0), mask


def track_keypoints(
    rng: jax.Array,
    true_kp: jax.Array,
    last_kp: jax.Array,
    frozen_steps: jax.Array,
    bias: jax.Array,
    noise: ObservationNoise,
    effects: UnmodeledEffects,
) -> tuple[jax.Array, jax.Array]:
    """A noisy keypoint tracker that sometimes freezes and drops keypoints.

    Args:
      true_kp: [K, 3] object keypoints this step.
      last_kp: [K, 3] what the tracker reported last step.
      frozen_steps: [] int, steps the tracker stays frozen (0: tracking).
      bias: [3] per-episode tracker offset.
    Returns:
      (reported keypoints [K, 3], frozen_steps for the next step).
    """
    k_noise, k_freeze, k_len, k_drop = fastrand.split(rng, 4)
    kp = true_kp
    if noise.enabled:
        kp = kp + bias + noise.keypoints_uncorrelated * fastrand.normal(k_noise, kp.shape)
    if not effects.enabled:
        return kp, frozen_steps
    frozen = frozen_steps > 0
    kp = jp.where(frozen, last_kp, kp)
    start = fastrand.bernoulli(k_freeze, effects.keypoint_freeze_probability)
    length = fastrand.randint(k_len, (), 1, effects.keypoint_freeze_steps + 1)
    frozen_steps = jp.where(frozen, frozen_steps - 1, jp.where(start, length, 0))
    dropped = fastrand.bernoulli(k_drop, effects.keypoint_dropout, kp.shape[:1])
    kp = jp.where(dropped[:, None], 0.0, kp)
    return kp, frozen_steps


def noisy_proprio(
    rng: jax.Array, qpos: jax.Array, bias: jax.Array, cfg: ObservationNoise
) -> jax.Array:
    """Joint positions ``[J]`` with per-episode bias and per-step noise."""
    if not cfg.enabled:
        return qpos
    return qpos + bias + cfg.proprio_uncorrelated * fastrand.normal(rng, qpos.shape)


def camera_pose(
    cam: DepthCamera, offset: jax.Array, rotation: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Jittered camera pose: position ``[3]`` and orientation ``[3, 3]``."""
    return jp.asarray(cam.pos) + offset, rotation @ jp.asarray(cam.mat)


def keypoints_world(
    pos: jax.Array, quat: jax.Array, local: jax.Array, scale: jax.Array
) -> jax.Array:
    """Body-frame keypoints ``[K, 3]`` scaled by ``scale`` and placed at pose (pos, quat)."""
    return geometry.transform_points(pos, quat, local * scale)
