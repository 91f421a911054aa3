"""``trifinger_cube``: three 3-DoF fingers move a cube to a random 6-DoF goal pose.

Follows Remote Sim2Real (Allshire et al., 2021): the object and goal poses are
described by the cube's 8 corner keypoints, and the reward is a logistic kernel
on keypoint distances (they found keypoints beat position + quaternion, in the
observation and in the reward), plus a shaping term that rewards fingertips for
moving toward the cube. Success: mean corner distance below ``success_threshold``.
Torque or position control (``control``).

Goal levels (the curriculum of :mod:`envs.curriculum`, as Remote Sim2Real / IsaacGymEnvs'
difficulties), each meaning what it says:

- ``floor``: a position on the floor (the cube resting there);
- ``lifted``: a position in the air that a cube resting on the floor cannot reach: the
  goal centre is at least ``success_threshold + lift_margin`` above the resting centre
  (of this episode's cube size), so success there means the cube is carried, at least
  ``lift_margin`` off the floor;
- ``pose``: a 6-D pose in the air (orientation from ``goal_orientation``) whose goal cube
  never intersects the floor: its centre is at least the rotated cube's half height
  (lowest corner, at this episode's size) plus ``lift_margin`` above the floor.

Heights are drawn uniformly between each level's lowest allowed height and
``goal_height_max`` (IsaacGymEnvs draws its pose goals from 5.63 cm, the cube's
half-diagonal, for the same reason).
At the position levels the reward's task term is the kernel on the position distance and
``success`` is ``position_success`` (cube centre within ``success_threshold``); at
``pose`` they are the keypoint kernel and ``pose_success`` (mean corner distance).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jp
import numpy as np
from mujoco import mjx

from dexdistill.envs.common import checks
from dexdistill.envs.sim2real.observations import PointCloudConfig
from dexdistill.envs.tasks import curriculum, geometry
from dexdistill.envs.tasks.assets_trifinger import (
    ARENA_RADIUS,
    CUBE_HALF_SIZE,
    TIP_RADIUS,
    TRIFINGER_DEFAULT_QPOS,
    Control,
    build_trifinger_mjcf,
)
from dexdistill.envs.tasks.mjx_task import ManipulationConfig, MjxTask

RewardRepresentation = Literal["keypoints", "pose"]
GoalOrientation = Literal["full", "yaw", "none"]
GOAL_LEVELS = ("floor", "lifted", "pose")
POSE_LEVEL = GOAL_LEVELS.index("pose")


@dataclasses.dataclass(frozen=True)
class TriFingerCubeConfig(ManipulationConfig):
    """Config of ``trifinger_cube``."""

    ctrl_dt: float = 0.02
    sim_dt: float = 0.01
    """Physics timestep: 2 substeps per control step (0.005 was 1.5x slower for a drift
    below a 10% friction change's; benchmarks/model_speed.py)."""
    episode_length: int = 750
    """15 s at 50 Hz, as Remote Sim2Real and IsaacGymEnvs (it was 4 s)."""
    solver_iterations: int = 4
    ls_iterations: int = 6
    control: Control = "position"
    """``position`` (joint targets) or ``torque`` (normalized motor torques)."""
    goal_orientation: GoalOrientation = "full"
    """``full``: uniformly random 3-D orientation; ``yaw``: about z only; ``none``."""
    goal_radius: float = 0.1
    """Goal and start positions are drawn within this radius of the arena centre."""
    goal_height_max: float = 0.1
    """Highest goal centre (m) of the ``lifted`` and ``pose`` levels."""
    lift_margin: float = 0.01
    """Clearance (m) a lifted goal demands beyond the success distance, and a pose goal's
    lowest corner above the floor."""
    reward_representation: RewardRepresentation = "keypoints"
    """``keypoints`` (Remote Sim2Real) or ``pose`` (position + rotation angle)."""
    keypoint_weight: float = 2.0
    fingertip_weight: float = 30.0
    """Weight of the fingertips' progress toward the cube (m per step; IsaacGymEnvs'
    ``finger_reach_object_rate``). It sums to the distance covered, so it stops paying
    once the fingers have arrived."""
    reach_weight: float = 0.0
    """Weight of a dense term that pays every step a fingertip is on the cube:
    ``mean_i exp(-gap_i / reach_length)``, ``gap_i`` the distance of fingertip i beyond
    touching the cube's face (a grasp's precondition; 0: off)."""
    reach_length: float = 0.01
    """Length scale (m) of ``reach_weight``'s kernel."""
    lift_weight: float = 0.0
    """Weight of the fraction of the goal's height above the resting cube that the cube
    has gained, in [0, 1], at goals more than 1 cm above the floor (0: off)."""
    action_weight: float = 0.005
    lgsk_scale: float = 30.0
    lgsk_offset: float = 2.0
    success_threshold: float = 0.02
    """Distance (m) counted as success: the cube centre's at the position levels (2 cm, as
    IsaacGymEnvs), the mean corner distance at ``pose``."""
    object_shape: geometry.ObjectShapeName = "cube"
    """``cube``, ``cuboid`` (2:1:1, same volume and mass) or ``sphere`` (radius = the cube's
    half size); the keypoints are the 8 corners of the object's bounding box (robustness
    evaluation: ``dexdistill evaluate --sweeps object_shape``)."""
    point_cloud: PointCloudConfig = PointCloudConfig(num_points=64, num_goal_points=32)
    goal_level: int = -1
    """Goal level (``floor``, ``lifted``, ``pose``) every episode uses when the curriculum
    is off (-1: ``pose``)."""
    curriculum: curriculum.CurriculumConfig = curriculum.CurriculumConfig(threshold=0.6)
    """Threshold in training success rate."""

    @property
    def num_goal_levels(self) -> int:
        return len(GOAL_LEVELS)

    def validate(self) -> None:
        super().validate()  # also checks the Literal fields (control, object_shape, ...)
        curriculum.resolve_level(self.goal_level, len(GOAL_LEVELS))
        self.curriculum.validate()
        checks.require("goal_radius", self.goal_radius, gt=0, lt=ARENA_RADIUS)
        for name in ("reach_weight", "lift_weight"):
            checks.require(name, getattr(self, name), ge=0)
        checks.require("reach_length", self.reach_length, gt=0)
        checks.require("lift_margin", self.lift_margin, ge=0)
        lowest = np.sqrt(3.0) * CUBE_HALF_SIZE * 1.25 + self.lift_margin  # any turn, +25% size
        checks.require("goal_height_max", self.goal_height_max, gt=lowest)


def lgsk(x: jax.Array, scale: float, offset: float) -> jax.Array:
    """Logistic kernel ``1 / (exp(a x) + b + exp(-a x))``, peaked at x = 0."""
    return 1.0 / (jp.exp(scale * x) + offset + jp.exp(-scale * x))


class TriFingerCube(MjxTask):
    """The cube reposing task; see the module docstring."""

    name = "trifinger_cube"
    goal_levels = GOAL_LEVELS
    joint_names = tuple(f"finger{i}_j{j}" for i in range(3) for j in range(3))
    fingertip_sites = ("fingertip0", "fingertip1", "fingertip2")

    def __init__(self, config: TriFingerCubeConfig | None = None):
        super().__init__(config or TriFingerCubeConfig())
        self.config: TriFingerCubeConfig

    default_qpos = TRIFINGER_DEFAULT_QPOS

    def build_mjcf(self) -> str:
        return build_trifinger_mjcf(self.config.control, self.config.object_shape)

    def object_keypoints(self) -> np.ndarray:
        return geometry.object_corners(self.config.object_shape, CUBE_HALF_SIZE)

    @property
    def object_half_height(self) -> float:
        """Half height of the object resting on the floor at nominal scale (m)."""
        return geometry.object_half_extents(self.config.object_shape, CUBE_HALF_SIZE)[2]

    def _random_xy(self, rng: jax.Array) -> jax.Array:
        k_r, k_t = jax.random.split(rng)
        r = self.config.goal_radius * jp.sqrt(jax.random.uniform(k_r))
        t = jax.random.uniform(k_t, maxval=2 * jp.pi)
        return jp.array([r * jp.cos(t), r * jp.sin(t)])

    def _goal_quat(self, rng: jax.Array) -> jax.Array:
        mode = self.config.goal_orientation
        if mode == "full":
            return geometry.random_quat(rng)
        if mode == "yaw":
            return geometry.yaw_quat(jax.random.uniform(rng, maxval=2 * jp.pi))
        return jp.array([1.0, 0.0, 0.0, 0.0])

    def sample_start(
        self, rng: jax.Array, params: dict[str, jax.Array], level: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
        k_xy, k_yaw, k_q, k_gxy, k_gz, k_gq = jax.random.split(rng, 6)
        scale = params["object_scale"]
        half = self.object_half_height * scale
        cube_pos = jp.concatenate([self._random_xy(k_xy), half[None]])
        cube_quat = geometry.yaw_quat(jax.random.uniform(k_yaw, maxval=2 * jp.pi))
        q_fingers = jp.asarray(TRIFINGER_DEFAULT_QPOS) + 0.05 * jax.random.normal(k_q, (9,))
        qpos = jp.asarray(self.mj_model.qpos0, jp.float32)
        qpos = qpos.at[self._qadr].set(q_fingers)
        qpos = qpos.at[self._obj_qadr : self._obj_qadr + 7].set(
            jp.concatenate([cube_pos, cube_quat])
        )
        # position levels: the goal keeps the start orientation (it is not scored)
        goal_quat = jp.where(level >= POSE_LEVEL, self._goal_quat(k_gq), cube_quat)
        gz = self._goal_height(k_gz, level, goal_quat, scale)
        goal_pos = jp.concatenate([self._random_xy(k_gxy), gz[None]])
        goal = {"goal_pos": goal_pos, "goal_quat": goal_quat, "goal_vis_pos": goal_pos}
        extra = {"prev_tip_dist": jp.zeros((3,))}
        return qpos, goal, extra

    def lowest_goal_height(self, level: jax.Array, quat: jax.Array, scale: jax.Array) -> jax.Array:
        """The lowest goal centre height (m) allowed at ``level`` for a goal at orientation
        ``quat [4]`` and object ``scale`` (see the module docstring; the floor level: the
        resting height)."""
        cfg = self.config
        half = geometry.object_half_extents(cfg.object_shape, CUBE_HALF_SIZE)
        resting = half[2] * scale
        lifted = resting + cfg.success_threshold + cfg.lift_margin
        rot = geometry.quat_to_mat(quat)
        below = jp.sum(jp.abs(rot[2]) * jp.asarray(half)) * scale  # the lowest corner's depth
        posed = jp.maximum(lifted, below + cfg.lift_margin)
        return jp.where(level == 0, resting, jp.where(level >= POSE_LEVEL, posed, lifted))

    def _goal_height(
        self, rng: jax.Array, level: jax.Array, quat: jax.Array, scale: jax.Array
    ) -> jax.Array:
        lo = self.lowest_goal_height(level, quat, scale)
        drawn = jax.random.uniform(rng, minval=lo, maxval=self.config.goal_height_max)
        return jp.where(level == 0, lo, jp.maximum(drawn, lo))  # lo wins for a huge object

    def _tip_distances(self, data: mjx.Data) -> jax.Array:
        pos, _ = self.object_pose(data)
        return jp.linalg.norm(data.site_xpos[self._tip_ids] - pos, axis=-1)

    def compute_reward(
        self, data: mjx.Data, info: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array], dict[str, Any]]:
        cfg = self.config
        scale = info["params"]["object_scale"]
        pos, quat = self.object_pose(data)
        local = self._kp_local * scale
        kp = geometry.transform_points(pos, quat, local)
        kp_goal = geometry.transform_points(info["goal_pos"], info["goal_quat"], local)
        kp_dist = jp.linalg.norm(kp - kp_goal, axis=-1)
        pos_dist = jp.linalg.norm(pos - info["goal_pos"])
        rot_dist = geometry.rotation_angle(quat, info["goal_quat"])
        pos_r = lgsk(pos_dist, cfg.lgsk_scale, cfg.lgsk_offset)
        if cfg.reward_representation == "keypoints":
            pose_r = jp.mean(lgsk(kp_dist, cfg.lgsk_scale, cfg.lgsk_offset))
        else:
            # position + orientation baseline, both terms in [0, 0.25] like the kernel
            pose_r = pos_r + 0.25 * (1.0 - rot_dist / jp.pi)
        at_pose = info["goal_level"] >= POSE_LEVEL
        task_r = jp.where(at_pose, pose_r, pos_r)
        tip_dist = self._tip_distances(data)
        first = info["step"] <= 1
        tip_progress = jp.where(first, 0.0, jp.sum(info["prev_tip_dist"] - tip_dist))
        action_cost = jp.sum(info["last_action"] ** 2)
        reach_r, lift_r = self._grasp_terms(tip_dist, pos, info["goal_pos"], scale)
        reward = (
            cfg.keypoint_weight * task_r
            + cfg.fingertip_weight * tip_progress
            + cfg.reach_weight * reach_r
            + cfg.lift_weight * lift_r
            - cfg.action_weight * action_cost
        )
        mean_kp = jp.mean(kp_dist)
        pose_success = (mean_kp < cfg.success_threshold).astype(jp.float32)
        position_success = (pos_dist < cfg.success_threshold).astype(jp.float32)
        info = {**info, "prev_tip_dist": tip_dist}
        metrics = {
            "success": jp.where(at_pose, pose_success, position_success),
            "position_success": position_success,
            "pose_success": pose_success,
            "keypoint_distance": mean_kp,
            "position_error": pos_dist,
            "rotation_error": rot_dist,
            "fingertip_distance": jp.mean(tip_dist),
            "reach": reach_r,
            "lift": lift_r,
        }
        return reward, jp.zeros((), bool), metrics, info

    def _grasp_terms(
        self, tip_dist: jax.Array, pos: jax.Array, goal_pos: jax.Array, scale: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Shaping toward a grasp and a lift: (reach in [0, 1], lift in [0, 1]).

        tip_dist: [3] fingertip-to-cube-centre distances; pos, goal_pos: [3]; scale: [].
        A fingertip touching a face's centre sideways sits at the half size plus the tip
        sphere's radius from the centre: there its gap is 0.
        """
        half = self.object_half_height * scale
        gap = jp.maximum(tip_dist - (half + TIP_RADIUS), 0.0)
        reach = jp.mean(jp.exp(-gap / self.config.reach_length))
        needed = goal_pos[2] - half
        gained = jp.clip((pos[2] - half) / jp.maximum(needed, 1e-6), 0.0, 1.0)
        lift = jp.where(needed > 0.01, gained, 0.0)
        return reach, lift

    def task_privileged(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        return self._tip_distances(data)


def default_config() -> TriFingerCubeConfig:
    return TriFingerCubeConfig()
