"""Procedural MJCF for a TriFinger-like platform (Remote Sim2Real style).

Three identical 3-DoF fingers hang from a frame above a round arena
(radius ~0.195 m), 120 degrees apart about the vertical axis. Each finger has

* ``finger{i}_j0``: abduction, rotation about the finger's radial axis
  (swings the finger sideways),
* ``finger{i}_j1``: shoulder flexion about the tangential axis,
* ``finger{i}_j2``: knee flexion about the tangential axis,

with a 0.16 m upper link and a 0.16 m lower link ending in a spherical
fingertip. Positive ``j1`` tilts the finger towards the arena centre; positive
``j2`` bends the knee outwards-up. A 6.5 cm cube with a free joint rests at the
arena centre, and a mocap ``goal`` box (no collisions) marks the target pose.

Everything is built from primitive geoms (capsules, spheres, boxes) so the
model works with ``mujoco.mjx`` (collisions and ``mjx.ray``). Collisions are
restricted to keep MJX fast: only the fingertip spheres and distal capsules
touch the cube, and the cube touches the floor (7 geom pairs in total).

``qpos`` layout: the 9 finger joints (finger-major) first, then the cube's
free joint (3 position + 4 quaternion). The model has a keyframe ``home``
with :data:`TRIFINGER_DEFAULT_QPOS` and the cube resting at the centre.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from dexdistill.envs.common import checks
from dexdistill.envs.tasks.geometry import OBJECT_SHAPES, object_half_extents

Control = Literal["position", "torque"]
"""``position`` (joint targets) or ``torque`` (normalized motor torques)."""
CONTROLS: tuple[str, ...] = checks.choices(Control)

# --- Dimensions (metres, kilograms) ----------------------------------------
ARENA_RADIUS = 0.195
CUBE_HALF_SIZE = 0.0325
CUBE_MASS = 0.08
MAX_TORQUE = 0.36  # N*m, the real robot's motor limit

MOUNT_RADIUS = 0.09  # horizontal distance of the finger mounts from the centre
MOUNT_HEIGHT = 0.36  # height of the abduction joint (j0)
BRACKET_LENGTH = 0.02  # j0 -> j1 drop
UPPER_LENGTH = 0.16  # j1 -> j2
LOWER_LENGTH = 0.16  # j2 -> fingertip sphere centre
TIP_RADIUS = 0.0095
LINK_RADIUS = 0.012
FINGER_ANGLES = (0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0)

JOINT_RANGES: tuple[tuple[float, float], ...] = (
    (-0.6, 0.6),  # j0: abduction
    (-1.3, 1.0),  # j1: shoulder
    (0.0, 2.4),  # j2: knee
)
"""Per-finger joint ranges (rad), identical for the three fingers."""

TRIFINGER_DEFAULT_QPOS: tuple[float, ...] = (0.0, -0.63, 1.19) * 3
"""Neutral finger joint angles (9 floats, finger-major): knees bent outwards,
fingertip spheres centred ~7.5 cm above the floor, ~0.10 m from the centre (just
outside the cube)."""

KP = 4.0  # position-actuator stiffness, N*m/rad
JOINT_DAMPING = 0.1
JOINT_ARMATURE = 0.005

# contype/conaffinity bits: a pair collides iff (ct1 & ca2) | (ct2 & ca1).
# floor(ct=1) x object(ca=3) and finger(ct=2) x object(ca=3) only.
_FLOOR_BITS = 'contype="1" conaffinity="0"'
_FINGER_BITS = 'contype="2" conaffinity="0"'
_OBJECT_BITS = 'contype="0" conaffinity="3"'


def _fmt(*values: float) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _look_at_xyaxes(pos: tuple[float, float, float], target: tuple[float, float, float]) -> str:
    """MJCF ``xyaxes`` of a camera at ``pos`` looking at ``target`` (world z up)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    x = np.cross(forward, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    return _fmt(*x, *y)


def _polar(radius: float, angle: float, z: float) -> tuple[float, float, float]:
    return radius * math.cos(angle), radius * math.sin(angle), z


def _finger_xml(i: int, angle: float) -> str:
    """One finger; its local +x points radially outward, +y tangentially."""
    (r0, r1), (s0, s1), (k0, k1) = JOINT_RANGES
    tip_z = -LOWER_LENGTH  # the tip sphere's centre (the reach terms measure from it)
    mount = _fmt(*_polar(MOUNT_RADIUS, angle, MOUNT_HEIGHT))
    return f"""
    <body name="finger{i}_base" pos="{mount}" euler="0 0 {angle:.6g}">
      <geom name="finger{i}_motor" class="frame" type="box" size="0.025 0.02 0.02" pos="0 0 0.025"/>
      <body name="finger{i}_upper">
        <joint name="finger{i}_j0" axis="1 0 0" range="{_fmt(r0, r1)}"/>
        <geom name="finger{i}_bracket" class="link" type="box" size="0.018 0.018 0.015"
              pos="0 0 -0.005" mass="0.05"/>
        <body name="finger{i}_middle" pos="0 0 {-BRACKET_LENGTH:.6g}">
          <joint name="finger{i}_j1" axis="0 1 0" range="{_fmt(s0, s1)}"/>
          <geom name="finger{i}_upper_link" class="link" type="capsule"
                fromto="0 0 0 0 0 {-UPPER_LENGTH:.6g}" mass="0.06"/>
          <body name="finger{i}_lower" pos="0 0 {-UPPER_LENGTH:.6g}">
            <joint name="finger{i}_j2" axis="0 1 0" range="{_fmt(k0, k1)}"/>
            <geom name="finger{i}_distal" class="link_collision" type="capsule"
                  size="{0.8 * LINK_RADIUS:.6g}" mass="0.03"
                  fromto="0 0 0 0 0 {-LOWER_LENGTH + TIP_RADIUS:.6g}"/>
            <geom name="fingertip{i}_geom" class="link_collision" type="sphere" material="tip"
                  size="{TIP_RADIUS:.6g}" pos="0 0 {-LOWER_LENGTH:.6g}" mass="0.01"/>
            <site name="fingertip{i}" pos="0 0 {tip_z:.6g}" size="0.004"/>
          </body>
        </body>
      </body>
    </body>"""


def _frame_capsule(name: str, start: tuple[float, ...], end: tuple[float, ...]) -> str:
    return f'<geom name="{name}" class="frame" type="capsule" fromto="{_fmt(*start, *end)}"/>'


def _frame_xml() -> str:
    """Visual-only stand: three posts between the fingers, a top triangle and
    short arms out to the finger mounts. No collisions."""
    top = MOUNT_HEIGHT + 0.05
    post_angles = [a + math.pi / 3.0 for a in FINGER_ANGLES]
    posts = [_polar(0.30, a, top) for a in post_angles]
    geoms = []
    for j, (x, y, z) in enumerate(posts):
        geoms.append(_frame_capsule(f"frame_post{j}", (x, y, 0.0), (x, y, z)))
        geoms.append(_frame_capsule(f"frame_beam{j}", (x, y, z), posts[(j + 1) % 3]))
    for i, a in enumerate(FINGER_ANGLES):
        # The beam opposite post i+2 passes over finger i at radius 0.15.
        inner = _polar(MOUNT_RADIUS, a, top)
        outer = _polar(0.30 * math.cos(math.pi / 3.0), a, top)
        geoms.append(_frame_capsule(f"frame_arm{i}", inner, outer))
    return "\n    ".join(geoms)


def _arena_walls_xml(segments: int = 12) -> str:
    """Low, visual-only boxes marking the arena boundary."""
    half_len = ARENA_RADIUS * math.tan(math.pi / segments)
    walls = []
    for j in range(segments):
        a = 2.0 * math.pi * j / segments
        x, y, _ = _polar(ARENA_RADIUS + 0.005, a, 0.0)
        walls.append(
            f'<geom name="arena_wall{j}" class="frame" type="box" size="0.005 {half_len:.6g} 0.01"'
            f' pos="{_fmt(x, y, 0.01)}" euler="0 0 {a:.6g}" material="wall"/>'
        )
    return "\n    ".join(walls)


def _actuators_xml(control: str) -> str:
    lines = []
    for i in range(len(FINGER_ANGLES)):
        for k, (lo, hi) in enumerate(JOINT_RANGES):
            name = f"finger{i}_j{k}"
            if control == "position":
                lines.append(
                    f'<position name="{name}" joint="{name}" kp="{KP:.6g}"'
                    f' ctrlrange="{_fmt(lo, hi)}" forcelimited="true"'
                    f' forcerange="{_fmt(-MAX_TORQUE, MAX_TORQUE)}"/>'
                )
            else:
                lines.append(
                    f'<motor name="{name}" joint="{name}" ctrlrange="-1 1"'
                    f' gear="{MAX_TORQUE:.6g}"/>'
                )
    return "\n    ".join(lines)


def _object_geom(object_shape: str) -> str:
    """MJCF ``type`` and ``size`` of the object (and goal) geom for ``object_shape``."""
    if object_shape == "sphere":
        return f'type="sphere" size="{CUBE_HALF_SIZE:.6g}"'
    return f'type="box" size="{_fmt(*object_half_extents(object_shape, CUBE_HALF_SIZE))}"'


def _keyframe_xml(rest_z: float) -> str:
    qpos = (*TRIFINGER_DEFAULT_QPOS, 0.0, 0.0, rest_z, 1.0, 0.0, 0.0, 0.0)
    mpos = _fmt(0.0, 0.0, rest_z)
    return f'<key name="home" qpos="{_fmt(*qpos)}" mpos="{mpos}" mquat="1 0 0 0"/>'


def build_trifinger_mjcf(control: str = "position", object_shape: str = "cube") -> str:
    """Returns the MJCF XML string of a TriFinger-like platform with a cube.

    Args:
      control: ``"position"`` for joint position servos (``ctrl`` in joint-angle
        units, ctrlrange = joint range, kp = 4 N*m/rad, torque clipped to
        +-0.36 N*m) or ``"torque"`` for motors (``ctrl`` in [-1, 1] scaled by
        the 0.36 N*m max torque).
      object_shape: ``"cube"`` (default), ``"cuboid"`` (2:1:1, long along x, the cube's
        volume and mass) or ``"sphere"`` (radius = the cube's half size); see
        :func:`envs.geometry.object_half_extents`. The object rests on the floor.

    Returns:
      The MJCF string; load it with ``mujoco.MjModel.from_xml_string``.
    """
    checks.require("control", control, allowed=CONTROLS)
    checks.require("object_shape", object_shape, allowed=OBJECT_SHAPES)
    h = object_half_extents(object_shape, CUBE_HALF_SIZE)[2]
    geom = _object_geom(object_shape)
    fingers = "".join(_finger_xml(i, a) for i, a in enumerate(FINGER_ANGLES))
    depth_pos, track_pos = (0.0, -0.35, 0.45), (0.55, -0.55, 0.5)
    depth_axes = _look_at_xyaxes(depth_pos, (0.0, 0.0, 0.0))
    track_axes = _look_at_xyaxes(track_pos, (0.0, 0.0, 0.08))
    return f"""<mujoco model="trifinger">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.004" integrator="Euler" iterations="4" ls_iterations="6" cone="pyramidal"/>
  <visual>
    <global offwidth="640" offheight="480"/>
  </visual>

  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.25 0.35 0.45"
             width="256" height="256"/>
    <material name="floor" texture="grid" texrepeat="8 8" reflectance="0.1"/>
    <material name="frame" rgba="0.35 0.35 0.38 1"/>
    <material name="wall" rgba="0.55 0.5 0.45 1"/>
    <material name="link" rgba="0.8 0.8 0.82 1"/>
    <material name="tip" rgba="0.85 0.3 0.2 1"/>
    <material name="object" rgba="0.9 0.75 0.2 1"/>
    <material name="goal" rgba="0.2 0.9 0.3 0.3"/>
  </asset>

  <default>
    <geom material="link" contype="0" conaffinity="0" friction="1 0.005 0.0001" solref="0.02 1"/>
    <joint type="hinge" damping="{JOINT_DAMPING:.6g}" armature="{JOINT_ARMATURE:.6g}"/>
    <site group="4" rgba="1 0 0 1"/>
    <default class="frame">
      <geom material="frame" group="2" size="0.012" mass="0"/>
    </default>
    <default class="link">
      <geom group="1" size="{LINK_RADIUS:.6g}"/>
    </default>
    <default class="link_collision">
      <geom group="1" condim="4" {_FINGER_BITS}/>
    </default>
  </default>

  <worldbody>
    <light name="top" pos="0 0 1.5" dir="0 0 -1" directional="true" diffuse="0.7 0.7 0.7"/>
    <geom name="floor" type="plane" size="0.5 0.5 0.05" material="floor" group="0" {_FLOOR_BITS}/>
    <camera name="depth" pos="{_fmt(*depth_pos)}" xyaxes="{depth_axes}" fovy="45"/>
    <camera name="track" pos="{_fmt(*track_pos)}" xyaxes="{track_axes}" fovy="45"/>
    {_frame_xml()}
    {_arena_walls_xml()}
{fingers}

    <body name="object" pos="0 0 {h:.6g}">
      <freejoint name="object_joint"/>
      <geom name="object_geom" {geom} mass="{CUBE_MASS:.6g}"
            material="object" group="0" {_OBJECT_BITS}/>
    </body>

    <body name="goal" mocap="true" pos="0 0 {h:.6g}">
      <geom name="goal_geom" {geom} material="goal"
            rgba="0.2 0.9 0.3 0.3" contype="0" conaffinity="0" group="4" mass="0.001"/>
    </body>
  </worldbody>

  <actuator>
    {_actuators_xml(control)}
  </actuator>

  <keyframe>
    {_keyframe_xml(h)}
  </keyframe>
</mujoco>
"""
