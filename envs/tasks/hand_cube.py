"""``hand_cube``: in-hand cube reorientation with a 16-DoF four-finger hand (Dactyl).

A LEAP/Allegro-like hand, palm up, holds a cube; the policy turns it to random
goal orientations. The reward is Dactyl's: ``d_t - d_{t+1}`` (the rotation angle
to the goal before and after the step), ``+5`` on reaching the goal (a new goal
is sampled at once) and ``-20`` when the cube drops (the episode ends). A
trial (episode) ends as Dactyl's do: after ``max_consecutive_successes`` goals, at a drop,
or after ``goal_timeout`` steps without reaching a goal; never at a fixed length
(``episode_length`` is at least the longest possible trial). Only a drop is a termination,
the other two are time limits (truncations: the critic bootstraps).

The headline metric is ``consecutive_successes`` (goals reached in the episode), reported
as in Dactyl's tables (mean, median, sorted trials) with goals per minute.

Goals: ``goal_mode=full`` draws orientations from all of SO(3), ``yaw`` only rotations
about the palm normal (world z) of the cube's current orientation (MuJoCo Playground's
rotate-z, mjlab's LEAP cube). ``goal_rotation_levels`` is the curriculum
(:mod:`envs.curriculum`): level ``k`` draws each new goal as a rotation of the cube's
*current* orientation by an angle in ``[success_tolerance, goal_rotation_levels[k]]``; a
last level of pi means the full distribution (uniform on SO(3), or uniform yaw).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jp
import numpy as np
from mujoco import mjx

from dexdistill.envs.common import checks, fastrand
from dexdistill.envs.sim2real.observations import PointCloudConfig
from dexdistill.envs.tasks import curriculum, geometry
from dexdistill.envs.tasks.assets_hand import (
    HAND_DEFAULT_QPOS,
    HAND_FINGERS,
    build_hand_mjcf,
    object_rest_pos,
)
from dexdistill.envs.tasks.mjx_task import ActionMode, ManipulationConfig, MjxTask

CUBE_HALF_SIZE = 0.03
GoalMode = Literal["full", "yaw"]


@dataclasses.dataclass(frozen=True)
class HandCubeConfig(ManipulationConfig):
    """Config of ``hand_cube``."""

    ctrl_dt: float = 0.05
    sim_dt: float = 0.01
    """Physics timestep: 5 substeps per control step, as MuJoCo Playground's LEAP hand
    (0.005 was 2.5x slower for a drift below a 10% friction change's;
    benchmarks/model_speed.py)."""
    episode_length: int = 10_000
    """No fixed cap, as in Dactyl: a trial ends at ``max_consecutive_successes``, a drop,
    or a goal not reached within ``goal_timeout``; the longest possible trial is
    ``max_consecutive_successes * goal_timeout`` steps (50 x 200 = 10,000 = 500 s), and
    ``validate`` requires at least that."""
    action_mode: ActionMode = "residual"
    """Joint targets around the default grasp (``action_scale`` rad per unit action), as
    Playground's LEAP hand (``absolute``: targets across the whole joint ranges; the
    comparison is in docs/history/benchmarks-log-2026-12-01-to-07.md)."""
    solver_iterations: int = 4
    ls_iterations: int = 6
    success_tolerance: float = 0.4
    """Rotation angle (rad) to the goal that counts as reaching it (Dactyl: 0.4)."""
    success_bonus: float = 5.0
    drop_penalty: float = -20.0
    drop_height: float = 0.05
    """The cube counts as dropped when it falls this far below its rest height."""
    max_consecutive_successes: int = 50
    goal_timeout: int = 200
    """Steps allowed to reach each goal before the trial ends: 200 x 0.05 s = 10 s per goal,
    a little above IsaacGymEnvs' 8 s; long enough for a multi-step 3-D reorientation, short
    enough that a stuck cube ends the trial (docs/tasks.md compares the protocols)."""
    action_weight: float = 0.0
    object_shape: geometry.ObjectShapeName = "cube"
    """``cube``, ``cuboid`` (2:1:1, long along the fingers, same volume and mass) or
    ``sphere`` (radius = the cube's half size); the keypoints are the 8 corners of the
    object's bounding box (robustness evaluation: ``dexdistill evaluate --sweeps object_shape``)."""
    point_cloud: PointCloudConfig = PointCloudConfig(num_points=64, num_goal_points=32)
    goal_mode: GoalMode = "full"
    """``full`` (any orientation, Dactyl) or ``yaw`` (about the palm normal only)."""
    goal_rotation_levels: tuple[float, ...] = (1.0, 2.0, float(np.pi))
    """Curriculum levels: the largest rotation (rad) from the cube's current orientation
    to a new goal; increasing, the last = pi (the full distribution)."""
    goal_level: int = -1
    """Level every episode uses when the curriculum is off (-1: the last)."""
    curriculum: curriculum.CurriculumConfig = curriculum.CurriculumConfig(threshold=4.0)
    """Threshold in mean consecutive successes per training episode."""
    ramp_kicks: bool = True
    """Random object kicks (``randomization.unmodeled.object_force``) scale with the goal
    level, ``level / (levels - 1)``: none at the easiest level, in full at the last (the
    one evaluation uses), as a randomization schedule rather than a wall from step one."""

    @property
    def num_goal_levels(self) -> int:
        return len(self.goal_rotation_levels)

    def validate(self) -> None:
        super().validate()  # also checks the Literal fields (goal_mode, object_shape)
        lv = self.goal_rotation_levels
        if (
            not lv
            or any(b <= a for a, b in zip(lv, lv[1:], strict=False))
            or lv[0] <= self.success_tolerance
            or abs(lv[-1] - np.pi) > 1e-6
        ):
            raise ValueError(
                f"goal_rotation_levels={lv}: must increase from above success_tolerance="
                f"{self.success_tolerance} to pi"
            )
        curriculum.resolve_level(self.goal_level, len(lv))
        self.curriculum.validate()
        checks.require("success_tolerance", self.success_tolerance, gt=0, lt=np.pi)
        for name in ("max_consecutive_successes", "goal_timeout"):
            checks.require(name, getattr(self, name), ge=1)
        longest = self.max_consecutive_successes * self.goal_timeout
        if self.episode_length < longest:
            raise ValueError(
                f"episode_length={self.episode_length}: must be >= max_consecutive_successes"
                f" x goal_timeout = {longest} (trials end only at the goal count, a drop or"
                " a goal timeout, never at a fixed length)"
            )


class HandCube(MjxTask):
    """The in-hand reorientation task; see the module docstring."""

    name = "hand_cube"
    headline_metric = "consecutive_successes"
    joint_names = tuple(f"{f}_j{k}" for f in HAND_FINGERS for k in range(4))
    fingertip_sites = tuple(f"{f}_tip" for f in HAND_FINGERS)
    default_qpos = HAND_DEFAULT_QPOS

    def __init__(self, config: HandCubeConfig | None = None):
        super().__init__(config or HandCubeConfig())
        self.config: HandCubeConfig
        self._rest_pos = object_rest_pos(self.config.object_shape)
        goal_body = self.mj_model.body("goal")
        self._goal_vis = np.asarray(goal_body.pos, np.float32).copy()

    def build_mjcf(self) -> str:
        return build_hand_mjcf(self.config.object_shape)

    def object_keypoints(self) -> np.ndarray:
        return geometry.object_corners(self.config.object_shape, CUBE_HALF_SIZE)

    @property
    def object_half_height(self) -> float:
        """Half height of the object resting on the palm at nominal scale (m)."""
        return geometry.object_half_extents(self.config.object_shape, CUBE_HALF_SIZE)[2]

    @property
    def goal_levels(self) -> tuple[str, ...]:  # type: ignore[override]
        """One level per ``goal_rotation_levels`` entry, named by its angle."""
        return tuple(f"{a:.2f}rad" for a in self.config.goal_rotation_levels)

    def _new_goal(self, rng: jax.Array, quat: jax.Array, level: jax.Array) -> dict[str, jax.Array]:
        """A goal for the cube at orientation ``quat [4]``, drawn at curriculum ``level``.

        Never within ``success_tolerance`` of ``quat`` (a goal drawn already reached would
        count as a free success): below the last level the rotation angle is drawn from
        ``[success_tolerance, goal_rotation_levels[level]]``; at the last level the goal is
        uniform on SO(3) (``full``) or in yaw (``yaw``) *conditioned* on being farther than
        the tolerance (:func:`_far_rotation`).
        """
        cfg = self.config
        # drawn with fastrand: this runs at every step (a goal in case this one is reached)
        k_axis, k_angle, k_sign, k_full = fastrand.split(rng, 4)
        tol = cfg.success_tolerance
        if cfg.goal_mode == "yaw":
            axis = jp.array([0.0, 0.0, 1.0])
            yaw = fastrand.uniform(k_full, minval=tol, maxval=2 * jp.pi - tol)
            full = geometry.quat_mul(geometry.yaw_quat(yaw), quat)
        else:
            axis = fastrand.normal(k_axis, (3,))
            axis = axis / (jp.linalg.norm(axis) + 1e-9)
            full = geometry.quat_mul(_far_rotation(k_full, tol), quat)
        top = jp.asarray(cfg.goal_rotation_levels, jp.float32)[level]
        angle = fastrand.uniform(k_angle, minval=tol, maxval=top)
        angle = jp.where(fastrand.bernoulli(k_sign), angle, -angle)
        near = geometry.quat_mul(geometry.axis_angle_quat(axis, angle), quat)
        last = level >= len(cfg.goal_rotation_levels) - 1
        return {
            "goal_pos": jp.asarray(self._rest_pos, jp.float32),
            "goal_quat": jp.where(last, full, near),
            "goal_vis_pos": jp.asarray(self._goal_vis),
        }

    def sample_start(
        self, rng: jax.Array, params: dict[str, jax.Array], level: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
        k_q, k_yaw, k_xy, k_goal = jax.random.split(rng, 4)
        scale = params["object_scale"]
        q_hand = jp.asarray(HAND_DEFAULT_QPOS) + 0.03 * jax.random.normal(k_q, (16,))
        pos = jp.asarray(self._rest_pos, jp.float32)
        pos = pos + jp.concatenate(
            [0.005 * jax.random.normal(k_xy, (2,)), (self.object_half_height * (scale - 1.0))[None]]
        )
        quat = geometry.yaw_quat(jax.random.uniform(k_yaw, maxval=2 * jp.pi))
        qpos = jp.asarray(self.mj_model.qpos0, jp.float32)
        qpos = qpos.at[self._qadr].set(q_hand)
        qpos = qpos.at[self._obj_qadr : self._obj_qadr + 7].set(jp.concatenate([pos, quat]))
        goal = self._new_goal(k_goal, quat, level)
        extra = {
            "prev_rot_error": geometry.rotation_angle(quat, goal["goal_quat"]),
            "consecutive_successes": jp.zeros(()),
            "steps_since_goal": jp.zeros((), jp.int32),
        }
        return qpos, goal, extra

    def compute_reward(
        self, data: mjx.Data, info: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array], dict[str, Any]]:
        cfg = self.config
        pos, quat = self.object_pose(data)
        rot_error = geometry.rotation_angle(quat, info["goal_quat"])
        reached = rot_error < cfg.success_tolerance
        rest_z = self._rest_pos[2]
        dropped = pos[2] < rest_z - cfg.drop_height
        reward = (
            info["prev_rot_error"]
            - rot_error
            + cfg.success_bonus * reached
            + jp.where(dropped, cfg.drop_penalty, 0.0)
            - cfg.action_weight * jp.sum(info["last_action"] ** 2)
        )
        successes = info["consecutive_successes"] + reached
        new_goal = self._new_goal(rng, quat, info["goal_level"])
        goal = jax.tree.map(
            lambda n, o: jp.where(reached, n, o),
            new_goal,
            {k: info[k] for k in new_goal},
        )
        next_error = geometry.rotation_angle(quat, goal["goal_quat"])
        steps_since = jp.where(reached, 0, info["steps_since_goal"] + 1)
        terminated = dropped  # the goal limits are truncations (task_truncated)
        info = {
            **info,
            **goal,
            "prev_rot_error": next_error,
            "consecutive_successes": successes,
            "steps_since_goal": steps_since,
        }
        metrics = {
            "success": reached.astype(jp.float32),
            "consecutive_successes": successes,
            "rotation_error": rot_error,
            "dropped": dropped.astype(jp.float32),
        }
        return reward, terminated, metrics, info

    def task_truncated(self, info: dict[str, Any]) -> jax.Array:
        """The episode ends as a time limit after the last goal or a goal's timeout."""
        cfg = self.config
        return (info["consecutive_successes"] >= cfg.max_consecutive_successes) | (
            info["steps_since_goal"] >= cfg.goal_timeout
        )

    def wrench_scale(self, info: dict[str, Any]) -> jax.Array:
        """Kicks grow with the episode's goal level when ``ramp_kicks`` (see the config)."""
        if not self.config.ramp_kicks or self.config.num_goal_levels == 1:
            return jp.ones(())
        return info["goal_level"].astype(jp.float32) / (self.config.num_goal_levels - 1)

    def task_privileged(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        _, quat = self.object_pose(data)
        rel = geometry.quat_mul(info["goal_quat"], geometry.quat_conj(quat))
        return jp.concatenate([rel, info["prev_rot_error"][None]])


def _far_rotation(rng: jax.Array, tolerance: float, tries: int = 4) -> jax.Array:
    """A rotation ``[4]`` uniform on SO(3) conditioned on its angle exceeding ``tolerance``.

    Rejection sampling with ``tries`` candidates: the first one farther than the tolerance
    is kept. A uniform rotation lies within 0.4 rad with probability
    ``(0.4 - sin 0.4) / pi`` = 0.0034, so all four fail about once in 10^10 draws; then the
    last candidate's axis turned by pi is used, which is also never within the tolerance.
    """
    keys = fastrand.split(rng, tries)
    cands = jp.stack([geometry.quat_from_uniforms(fastrand.uniform(k, (3,))) for k in keys])
    angles = 2.0 * jp.arccos(jp.clip(jp.abs(cands[:, 0]), 0.0, 1.0))
    far = angles > tolerance
    first = jp.argmax(far)
    axis = cands[-1, 1:] / (jp.linalg.norm(cands[-1, 1:]) + 1e-9)
    axis = jp.where(jp.linalg.norm(cands[-1, 1:]) > 1e-6, axis, jp.array([1.0, 0.0, 0.0]))
    fallback = jp.concatenate([jp.zeros((1,)), axis])
    return jp.where(jp.any(far), cands[first], fallback)


def default_config() -> HandCubeConfig:
    return HandCubeConfig()
