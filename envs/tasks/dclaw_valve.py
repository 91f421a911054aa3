"""``dclaw_valve``: a 3-finger, 9-DoF claw turns a 3-spoke valve (BAIR's D'Claw task).

The claw hangs above a valve on a vertical hinge. Each finger has a sideways
(abduction) joint and two flexion joints driven by position actuators. Only the
three distal capsules touch the three spokes, which keeps MJX fast. One spoke is
longer, so the valve's orientation is unambiguous to a point cloud.

Goal: turn the valve by ``target_offset`` radians (default +pi, BAIR's 180 deg)
from where it starts, or to a random offset in ``random_target_range``.
Reward: ``-|error|`` plus progress shaping and a bonus within ``success_tolerance``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jp
import numpy as np
from mujoco import mjx

from dexdistill.envs.common import checks
from dexdistill.envs.tasks import geometry
from dexdistill.envs.tasks.mjx_task import ManipulationConfig, MjxTask

FINGER_ANGLES_DEG = (0.0, 120.0, 240.0)
SPOKE_LENGTHS = (0.085, 0.065, 0.065)
SPOKE_RADIUS = 0.011
VALVE_HEIGHT = 0.045
MOUNT_HEIGHT = 0.29
MOUNT_RADIUS = 0.075
LINKS = (0.06, 0.09, 0.095)


@dataclasses.dataclass(frozen=True)
class DClawValveConfig(ManipulationConfig):
    """Config of ``dclaw_valve``."""

    ctrl_dt: float = 0.05
    sim_dt: float = 0.01
    episode_length: int = 80
    solver_iterations: int = 3
    ls_iterations: int = 5
    target_offset: float = float(np.pi)
    """Target angle relative to the start angle (rad); used when ``random_target`` is off."""
    random_target: bool = False
    random_target_range: tuple[float, float] = (-np.pi, np.pi)
    start_angle_range: tuple[float, float] = (-np.pi / 3, np.pi / 3)
    success_tolerance: float = 0.25
    """|angle error| (rad) that counts as success."""
    dist_weight: float = 1.0
    progress_weight: float = 5.0
    success_bonus: float = 1.0
    action_weight: float = 0.01

    def validate(self) -> None:
        super().validate()
        checks.require("success_tolerance", self.success_tolerance, gt=0)


def _finger_xml(i: int, angle_deg: float) -> str:
    a = np.deg2rad(angle_deg)
    x, y = MOUNT_RADIUS * np.cos(a), MOUNT_RADIUS * np.sin(a)
    l0, l1, l2 = LINKS
    return f"""
    <body name="finger{i}_base" pos="{x:.4f} {y:.4f} {MOUNT_HEIGHT}" euler="0 0 {a:.5f}">
      <geom type="box" size="0.018 0.018 0.012" material="frame" contype="0" conaffinity="0"/>
      <body name="finger{i}_l0" pos="0 0 -0.015">
        <joint name="finger{i}_j0" axis="1 0 0" range="-0.7 0.7"/>
        <geom type="capsule" fromto="0 0 0 0 0 -{l0}" size="0.013" material="link"/>
        <body name="finger{i}_l1" pos="0 0 -{l0}">
          <joint name="finger{i}_j1" axis="0 1 0" range="-0.6 1.4"/>
          <geom type="capsule" fromto="0 0 0 0 0 -{l1}" size="0.012" material="link"/>
          <body name="finger{i}_l2" pos="0 0 -{l1}">
            <joint name="finger{i}_j2" axis="0 1 0" range="-0.6 1.6"/>
            <geom name="finger{i}_distal" type="capsule" fromto="0 0 0 0 0 -{l2}" size="0.011"
                  material="tip" contype="1" conaffinity="0"/>
            <site name="fingertip{i}" pos="0 0 -{l2 + 0.011}" size="0.005"/>
          </body>
        </body>
      </body>
    </body>"""


def _spoke_xml(k: int, length: float, name_prefix: str, extra: str) -> str:
    a = 2 * np.pi * k / 3
    x, y = length * np.cos(a), length * np.sin(a)
    return (
        f'<geom name="{name_prefix}_spoke{k}" type="capsule" fromto="0 0 0 {x:.4f} {y:.4f} 0" '
        f'size="{SPOKE_RADIUS}" {extra}/>'
    )


def build_mjcf() -> str:
    """The claw-and-valve MJCF (primitive geoms only)."""
    fingers = "".join(_finger_xml(i, a) for i, a in enumerate(FINGER_ANGLES_DEG))
    spokes = "\n      ".join(
        _spoke_xml(k, ln, "object", 'material="valve" contype="0" conaffinity="1"')
        for k, ln in enumerate(SPOKE_LENGTHS)
    )
    goal_spokes = "\n      ".join(
        _spoke_xml(k, ln, "goal", 'material="goal" contype="0" conaffinity="0" group="4"')
        for k, ln in enumerate(SPOKE_LENGTHS)
    )
    actuators = "\n    ".join(
        f'<position name="finger{i}_j{j}" joint="finger{i}_j{j}" kp="2.5" '
        f'ctrlrange="{lo} {hi}" forcerange="-1.5 1.5"/>'
        for i in range(3)
        for j, (lo, hi) in enumerate(((-0.7, 0.7), (-0.6, 1.4), (-0.6, 1.6)))
    )
    return f"""
<mujoco model="dclaw_valve">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.01" integrator="Euler" iterations="3" ls_iterations="5">
    <flag eulerdamp="disable"/>
  </option>
  <default>
    <joint damping="0.1" armature="0.005"/>
    <geom contype="0" conaffinity="0" friction="1 0.005 0.0001" density="600"/>
  </default>
  <asset>
    <material name="floor" rgba="0.85 0.85 0.82 1"/>
    <material name="frame" rgba="0.25 0.25 0.28 1"/>
    <material name="link" rgba="0.35 0.45 0.6 1"/>
    <material name="tip" rgba="0.9 0.5 0.2 1"/>
    <material name="valve" rgba="0.8 0.2 0.2 1"/>
    <material name="goal" rgba="0.2 0.8 0.3 0.3"/>
  </asset>
  <worldbody>
    <light pos="0 -0.3 0.8" dir="0 0.3 -1"/>
    <geom name="floor" type="plane" size="0.4 0.4 0.01" material="floor"/>
    <camera name="depth" pos="0 -0.42 0.34" xyaxes="1 0 0 0 0.55 0.83"/>
    <camera name="track" pos="0.35 -0.35 0.42" xyaxes="0.707 0.707 0 -0.4 0.4 0.82"/>
    {fingers}
    <body name="object" pos="0 0 {VALVE_HEIGHT}">
      <joint name="object_joint" type="hinge" axis="0 0 1" damping="0.05" armature="0.001"/>
      <geom name="object_hub" type="sphere" size="0.02" material="valve"/>
      {spokes}
    </body>
    <body name="goal" mocap="true" pos="0 0 {VALVE_HEIGHT + 0.002}">
      {goal_spokes}
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""


class DClawValve(MjxTask):
    """The valve-turning task; see the module docstring."""

    name = "dclaw_valve"
    joint_names = tuple(f"finger{i}_j{j}" for i in range(3) for j in range(3))
    fingertip_sites = ("fingertip0", "fingertip1", "fingertip2")

    def __init__(self, config: DClawValveConfig | None = None):
        super().__init__(config or DClawValveConfig())
        self.config: DClawValveConfig

    def build_mjcf(self) -> str:
        return build_mjcf()

    def object_keypoints(self) -> np.ndarray:
        """The three spoke tips and the hub centre ``[4, 3]`` (valve frame)."""
        tips = [
            [ln * np.cos(2 * np.pi * k / 3), ln * np.sin(2 * np.pi * k / 3), 0.0]
            for k, ln in enumerate(SPOKE_LENGTHS)
        ]
        return np.array(tips + [[0.0, 0.0, 0.0]], np.float32)

    def sample_start(
        self, rng: jax.Array, params: dict[str, jax.Array], level: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
        cfg = self.config
        k_angle, k_target, k_q = jax.random.split(rng, 3)
        angle = jax.random.uniform(
            k_angle, (), minval=cfg.start_angle_range[0], maxval=cfg.start_angle_range[1]
        )
        if cfg.random_target:
            lo, hi = cfg.random_target_range
            offset = jax.random.uniform(k_target, (), minval=lo, maxval=hi)
        else:
            offset = jp.asarray(cfg.target_offset, jp.float32)
        target = angle + offset
        qpos = jp.asarray(self.mj_model.qpos0, jp.float32)
        qpos = qpos.at[self._qadr].set(0.05 * jax.random.normal(k_q, (len(self._qadr),)))
        qpos = qpos.at[self._obj_qadr].set(angle)
        pos = jp.array([0.0, 0.0, VALVE_HEIGHT])
        goal_quat = geometry.yaw_quat(target)
        goal = {
            "goal_pos": pos,
            "goal_quat": goal_quat,
            "goal_vis_pos": pos + jp.array([0, 0, 0.002]),
        }
        extra = {"target_angle": target, "prev_error": jp.abs(offset)}
        return qpos, goal, extra

    def valve_angle(self, data: mjx.Data) -> jax.Array:
        return data.qpos[self._obj_qadr]

    def compute_reward(
        self, data: mjx.Data, info: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array], dict[str, Any]]:
        cfg = self.config
        error = jp.abs(info["target_angle"] - self.valve_angle(data))
        success = (error < cfg.success_tolerance).astype(jp.float32)
        progress = info["prev_error"] - error
        action_cost = jp.sum(info["last_action"] ** 2)
        reward = (
            -cfg.dist_weight * error
            + cfg.progress_weight * progress
            + cfg.success_bonus * success
            - cfg.action_weight * action_cost
        )
        info = {**info, "prev_error": error}
        metrics = {"success": success, "angle_error": error}
        return reward, jp.zeros((), bool), metrics, info

    def task_privileged(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        angle = self.valve_angle(data)
        err = info["target_angle"] - angle
        return jp.stack([jp.sin(angle), jp.cos(angle), err])


def default_config() -> DClawValveConfig:
    return DClawValveConfig()
