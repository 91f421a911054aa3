"""``hand_cube``: in-hand cube reorientation with a 16-DoF four-finger hand (Dactyl).

A LEAP/Allegro-like hand, palm up, holds a cube; the policy turns it to random
goal orientations. The reward is Dactyl's: ``d_t - d_{t+1}`` (the rotation angle
to the goal before and after the step), ``+5`` on reaching the goal (a new goal
is sampled at once) and ``-20`` when the cube drops (the episode ends). An
episode also ends after ``max_consecutive_successes`` goals, after
``goal_timeout`` steps without reaching a goal, or at ``episode_length``.
``metrics["consecutive_successes"]`` counts goals reached so far in the episode.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jp
import numpy as np
from mujoco import mjx

from envs import geometry
from envs.assets_hand import HAND_DEFAULT_QPOS, HAND_FINGERS, build_hand_mjcf, object_rest_pos
from envs.mjx_task import ManipulationConfig, MjxTask
from envs.observations import PointCloudConfig

CUBE_HALF_SIZE = 0.03


@dataclasses.dataclass(frozen=True)
class HandCubeConfig(ManipulationConfig):
    """Config of ``hand_cube``."""

    ctrl_dt: float = 0.05
    sim_dt: float = 0.005
    episode_length: int = 400
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
    """Steps allowed to reach each goal before the episode ends."""
    action_weight: float = 0.0
    object_shape: str = "cube"
    """``cube``, ``cuboid`` (2:1:1, long along the fingers, same volume and mass) or
    ``sphere`` (radius = the cube's half size); the keypoints are the 8 corners of the
    object's bounding box (robustness evaluation: ``dexdistill evaluate --sweeps object_shape``)."""
    point_cloud: PointCloudConfig = PointCloudConfig(num_points=64, num_goal_points=32)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.success_tolerance < np.pi:
            raise ValueError(f"success_tolerance={self.success_tolerance}: must be in (0, pi)")
        if self.max_consecutive_successes < 1 or self.goal_timeout < 1:
            raise ValueError("max_consecutive_successes and goal_timeout: must be >= 1")
        if self.object_shape not in geometry.OBJECT_SHAPES:
            raise ValueError(
                f"object_shape={self.object_shape!r}: allowed values are "
                f"{list(geometry.OBJECT_SHAPES)}"
            )


class HandCube(MjxTask):
    """The in-hand reorientation task; see the module docstring."""

    name = "hand_cube"
    joint_names = tuple(f"{f}_j{k}" for f in HAND_FINGERS for k in range(4))
    fingertip_sites = tuple(f"{f}_tip" for f in HAND_FINGERS)

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

    def _new_goal(self, rng: jax.Array) -> dict[str, jax.Array]:
        return {
            "goal_pos": jp.asarray(self._rest_pos, jp.float32),
            "goal_quat": geometry.random_quat(rng),
            "goal_vis_pos": jp.asarray(self._goal_vis),
        }

    def sample_start(
        self, rng: jax.Array, params: dict[str, jax.Array]
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
        goal = self._new_goal(k_goal)
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
        new_goal = self._new_goal(rng)
        goal = jax.tree.map(
            lambda n, o: jp.where(reached, n, o),
            new_goal,
            {k: info[k] for k in new_goal},
        )
        next_error = geometry.rotation_angle(quat, goal["goal_quat"])
        steps_since = jp.where(reached, 0, info["steps_since_goal"] + 1)
        terminated = (
            dropped
            | (successes >= cfg.max_consecutive_successes)
            | (steps_since >= cfg.goal_timeout)
        )
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

    def task_privileged(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        _, quat = self.object_pose(data)
        rel = geometry.quat_mul(info["goal_quat"], geometry.quat_conj(quat))
        return jp.concatenate([rel, info["prev_rot_error"][None]])


def default_config() -> HandCubeConfig:
    return HandCubeConfig()
