"""Procedural MJCF of a 16-DoF, four-finger, palm-up dexterous hand with a cube.

The hand is LEAP/Allegro-like and is built only from primitive geoms (boxes,
capsules, spheres). It is fixed in the world with the palm facing up (+z);
fingers point along +x, the index finger is on the +y side, next to the thumb.

Kinematic conventions (relied upon by the environments):

* ``qpos[:16]`` / ``qvel[:16]`` are the hand joints in actuator order
  ``index_j0..3, middle_j0..3, ring_j0..3, thumb_j0..3``;
  ``qpos[16:23]`` is the cube free joint (``object_joint``: xyz + wxyz quat).
* Index/middle/ring: ``j0`` MCP abduction (+ swings towards +y), ``j1`` MCP,
  ``j2`` PIP and ``j3`` DIP flexion (+ curls the finger up, over the palm).
* Thumb: ``j0`` CMC rotation about the palm's long axis (opposition; + turns
  the thumb's flexion plane towards the fingers), ``j1`` abduction (at high
  ``j0`` + lifts the thumb off the palm plane), ``j2``/``j3`` flexion.
* The ``{finger}_tip`` sites sit at the centre of the fingertip's hemispherical
  cap, so a fingertip touches the cube when the site is one capsule radius
  (1 cm) from the cube surface.
* Only the cube collides: with the palm, the floor and the two distal-most
  geoms of every finger (``{finger}_middle_geom``, ``{finger}_tip_geom``),
  i.e. 10 candidate collision pairs in total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dexdistill.envs.common import checks
from dexdistill.envs.tasks.geometry import OBJECT_SHAPES, object_half_extents

Vec3 = tuple[float, float, float]
Range = tuple[float, float]

HAND_FINGERS: tuple[str, ...] = ("index", "middle", "ring", "thumb")

# --- geometry (metres) -------------------------------------------------------
_PALM_POS: Vec3 = (0.0, 0.0, 0.2)
_PALM_HALF: Vec3 = (0.05, 0.045, 0.01)
_RADIUS = 0.01  # capsule radius of every phalanx
_KNUCKLE = 0.016  # distance from the abduction to the MCP flexion axis
_FINGER_LINKS: Vec3 = (0.054, 0.038, 0.044)  # proximal, middle, distal (+cap)
_FINGER_Y = {"index": 0.03, "middle": 0.0, "ring": -0.03}
_THUMB_BASE: Vec3 = (-0.025, 0.06, 0.0)  # in the palm frame
_THUMB_LINKS: Vec3 = (0.05, 0.045, 0.044)
_CUBE_HALF = 0.03
_CUBE_MASS = 0.09
_GOAL_OFFSET_Y = -0.15  # goal marker beside the hand, on the ring side

_PALM_TOP = _PALM_POS[2] + _PALM_HALF[2]
PALM_CUBE_POS: Vec3 = (0.015, 0.0, round(_PALM_TOP + _CUBE_HALF + 0.002, 4))


def object_rest_pos(object_shape: str = "cube") -> Vec3:
    """Where the object of ``object_shape`` rests on the palm (just above it); the cube's is
    :data:`PALM_CUBE_POS`."""
    if object_shape == "cube":
        return PALM_CUBE_POS
    half_z = object_half_extents(object_shape, _CUBE_HALF)[2]
    return (PALM_CUBE_POS[0], PALM_CUBE_POS[1], round(_PALM_TOP + half_z + 0.002, 4))


def _object_geom(object_shape: str) -> str:
    """MJCF ``type`` and ``size`` of the object (and goal) geom for ``object_shape``."""
    if object_shape == "sphere":
        return f'type="sphere" size="{_CUBE_HALF:.6g}"'
    return f'type="box" size="{_fmt(object_half_extents(object_shape, _CUBE_HALF))}"'


# --- joints and actuators ------------------------------------------------------
_FINGER_RANGES: tuple[Range, ...] = ((-0.47, 0.47), (-0.2, 1.6), (-0.2, 1.7), (-0.2, 1.6))
_THUMB_RANGES: tuple[Range, ...] = ((0.0, 1.6), (-0.3, 1.2), (-0.2, 1.7), (-0.2, 1.8))
_KP = 2.0
_FORCE_LIMIT = 0.7

_FINGER_DEFAULT: tuple[float, ...] = (0.0, 0.9, 1.0, 0.45)
_THUMB_DEFAULT: tuple[float, ...] = (1.4, 0.4, 0.3, 0.3)
HAND_DEFAULT_QPOS: tuple[float, ...] = 3 * _FINGER_DEFAULT + _THUMB_DEFAULT

# --- contacts: the cube is the only geom with a contype bit, so every contact
# pair involves it. Collidable geoms (floor, palm, class "contact") only set
# conaffinity; class "visual" sets neither.
_CUBE_BITS = 'contype="1" conaffinity="1"'


def _fmt(values: Sequence[float]) -> str:
    """Formats numbers as a compact, space-separated MJCF attribute."""
    return " ".join(f"{v:.6g}" for v in values)


def _look_at(pos: Vec3, target: Vec3) -> str:
    """Returns the ``xyaxes`` of a camera at ``pos`` looking at ``target``."""
    fwd = [t - p for p, t in zip(pos, target, strict=True)]
    norm = math.sqrt(sum(f * f for f in fwd))
    fwd = [f / norm for f in fwd]
    right = [fwd[1], -fwd[0], 0.0]  # fwd x world-up
    rnorm = math.sqrt(right[0] ** 2 + right[1] ** 2)
    right = [r / rnorm for r in right]
    up = [
        right[1] * fwd[2] - right[2] * fwd[1],
        right[2] * fwd[0] - right[0] * fwd[2],
        right[0] * fwd[1] - right[1] * fwd[0],
    ]
    return _fmt(right + up)


def _joint(name: str, axis: Vec3, rng: Range) -> str:
    return f'<joint name="{name}" axis="{_fmt(axis)}" range="{_fmt(rng)}"/>'


def _capsule(length: float, cls: str, name: str = "") -> str:
    """A capsule along local +x whose rounded end reaches ``length``."""
    name_attr = f'name="{name}" ' if name else ""
    end = max(length - _RADIUS, 1e-3)
    return (
        f'<geom {name_attr}class="{cls}" type="capsule" '
        f'fromto="0 0 0 {end:.6g} 0 0" size="{_RADIUS}"/>'
    )


def _phalanx_chain(
    finger: str, links: Vec3, axes: Sequence[Vec3], ranges: Sequence[Range], start: float = 0.0
) -> str:
    """Three nested phalanx bodies (joints ``j1..j3``) along local +x.

    The proximal body starts ``start`` ahead of its parent's origin; the
    middle and distal phalanges are the cube-collidable ones.
    """
    names = ("proximal", "middle", "distal")
    opened: list[str] = []
    offset = start
    for i, (link, body) in enumerate(zip(links, names, strict=True)):
        if body == "distal":
            tip_site = f'<site name="{finger}_tip" pos="{link - _RADIUS:.6g} 0 0"/>'
            geom = _capsule(link, "contact", f"{finger}_tip_geom") + tip_site
        elif body == "middle":
            geom = _capsule(link, "contact", f"{finger}_middle_geom")
        else:
            geom = _capsule(link, "visual", f"{finger}_proximal_geom")
        opened.append(
            f'<body name="{finger}_{body}" pos="{offset:.6g} 0 0">'
            + _joint(f"{finger}_j{i + 1}", axes[i], ranges[i])
            + geom
        )
        offset = link
    return "".join(opened) + "</body>" * len(opened)


def _finger(finger: str) -> str:
    """Index/middle/ring: abduction knuckle + three flexing phalanges."""
    base = (_PALM_HALF[0] - 0.002, _FINGER_Y[finger], 0.0)
    flex: Vec3 = (0.0, -1.0, 0.0)  # + curls the finger up (towards +z)
    chain = _phalanx_chain(
        finger, _FINGER_LINKS, (flex, flex, flex), _FINGER_RANGES[1:], start=_KNUCKLE
    )
    return (
        f'<body name="{finger}_base" pos="{_fmt(base)}">'
        + _joint(f"{finger}_j0", (0.0, 0.0, 1.0), _FINGER_RANGES[0])
        + f'<geom class="visual" type="sphere" size="{_RADIUS * 1.1:.6g}"/>'
        + f'<geom class="visual" type="capsule" fromto="0 0 0 {_KNUCKLE} 0 0" '
        f'size="{_RADIUS}"/>' + chain + "</body>"
    )


def _thumb() -> str:
    """Thumb: CMC rotation about the palm axis, abduction, two flexions.

    At ``thumb_j0 = 0`` the thumb lies in the palm plane beside the index
    finger and flexes upwards; rotating ``thumb_j0`` towards pi/2 turns its
    flexion plane so that it curls across the palm towards the fingers, while
    ``thumb_j1`` lifts it above the palm.
    """
    flex: Vec3 = (0.0, -1.0, 0.0)
    chain = _phalanx_chain("thumb", _THUMB_LINKS, ((0.0, 0.0, 1.0), flex, flex), _THUMB_RANGES[1:])
    return (
        f'<body name="thumb_base" pos="{_fmt(_THUMB_BASE)}">'
        + _joint("thumb_j0", (1.0, 0.0, 0.0), _THUMB_RANGES[0])
        + f'<geom class="visual" type="sphere" size="{_RADIUS * 1.2:.6g}"/>'
        + chain
        + "</body>"
    )


def _assets() -> str:
    return """
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256"
             rgb1="0.25 0.3 0.35" rgb2="0.18 0.22 0.26"/>
    <material name="floor_mat" texture="grid" texrepeat="8 8" reflectance="0.1"/>
    <material name="palm_mat" rgba="0.2 0.2 0.22 1"/>
    <material name="link_mat" rgba="0.15 0.15 0.17 1"/>
    <material name="contact_mat" rgba="0.85 0.85 0.8 1"/>
    <material name="cube_mat" rgba="0.9 0.45 0.1 1"/>
    <material name="goal_mat" rgba="0.1 0.8 0.2 0.35"/>
  </asset>"""


def _defaults() -> str:
    return f"""
  <default>
    <joint type="hinge" damping="0.1" armature="0.002" frictionloss="0"/>
    <geom contype="0" conaffinity="0" friction="1 0.005 0.0001"
          material="link_mat" group="1"/>
    <site size="0.004" rgba="1 0.2 0.2 1" group="3"/>
    <position kp="{_KP}" forcerange="-{_FORCE_LIMIT} {_FORCE_LIMIT}"
              forcelimited="true"/>
    <default class="visual">
      <geom contype="0" conaffinity="0" density="800"/>
    </default>
    <default class="contact">
      <geom contype="0" conaffinity="1" material="contact_mat" density="800"
            condim="4" group="0"/>
    </default>
  </default>"""


def _world(object_shape: str) -> str:
    rest = object_rest_pos(object_shape)
    geom = _object_geom(object_shape)
    cube_pos = _fmt(rest)
    goal_pos = _fmt((rest[0], _GOAL_OFFSET_Y, rest[2]))
    target = (0.03, 0.0, PALM_CUBE_POS[2])
    depth_pos = (-0.12, 0.0, 0.5)
    track_pos = (0.3, -0.26, 0.4)
    hand = "".join(_finger(f) for f in HAND_FINGERS[:3]) + _thumb()
    return f"""
  <worldbody>
    <light name="top" pos="0 0 1.2" dir="0 0 -1" directional="true"
           diffuse="0.8 0.8 0.8" specular="0.2 0.2 0.2"/>
    <geom name="floor" type="plane" size="1 1 0.05" material="floor_mat"
          contype="0" conaffinity="1" group="0"/>
    <camera name="depth" pos="{_fmt(depth_pos)}"
            xyaxes="{_look_at(depth_pos, target)}" fovy="60"/>
    <camera name="track" pos="{_fmt(track_pos)}"
            xyaxes="{_look_at(track_pos, target)}" fovy="45"/>
    <body name="palm" pos="{_fmt(_PALM_POS)}">
      <geom name="palm_geom" type="box" size="{_fmt(_PALM_HALF)}"
            material="palm_mat" contype="0" conaffinity="1" group="0"/>
      {hand}
    </body>
    <body name="object" pos="{cube_pos}">
      <freejoint name="object_joint"/>
      <geom name="object_geom" {geom}
            mass="{_CUBE_MASS}" material="cube_mat" {_CUBE_BITS} group="0"/>
    </body>
    <body name="goal" mocap="true" pos="{goal_pos}">
      <geom name="goal_geom" {geom}
            material="goal_mat" contype="0" conaffinity="0" group="4"
            mass="0.001"/>
    </body>
  </worldbody>"""


def _actuators() -> str:
    lines = []
    for finger in HAND_FINGERS:
        ranges = _THUMB_RANGES if finger == "thumb" else _FINGER_RANGES
        for k, rng in enumerate(ranges):
            name = f"{finger}_j{k}"
            lines.append(f'    <position name="{name}" joint="{name}" ctrlrange="{_fmt(rng)}"/>')
    return "\n  <actuator>\n" + "\n".join(lines) + "\n  </actuator>"


def _keyframe(object_shape: str) -> str:
    qpos = HAND_DEFAULT_QPOS + object_rest_pos(object_shape) + (1.0, 0.0, 0.0, 0.0)
    return (
        f'\n  <keyframe>\n    <key name="home" qpos="{_fmt(qpos)}" '
        f'ctrl="{_fmt(HAND_DEFAULT_QPOS)}"/>\n  </keyframe>'
    )


def build_hand_mjcf(object_shape: str = "cube") -> str:
    """Returns the MJCF XML string of a 16-DoF four-finger hand, palm up, with a cube.

    The hand (index, middle, ring, opposable thumb; 4 hinges each) is fixed
    with its palm ~0.2 m above a ``floor`` plane; a 6 cm free cube
    (``object``) rests on the palm at ``PALM_CUBE_POS`` and a translucent
    mocap ``goal`` cube stands 0.15 m beside the hand. The 16 ``position``
    actuators share the joints' names and order. The keyframe ``home`` holds
    ``HAND_DEFAULT_QPOS`` with the cube at rest (the model's ``qpos0`` has all
    hand joints at zero).

    ``object_shape`` ``"cuboid"`` (2:1:1, long along the fingers, the cube's volume and
    mass) or ``"sphere"`` (radius = the cube's half size) replaces the cube; see
    :func:`envs.geometry.object_half_extents` and :func:`object_rest_pos`.
    """
    checks.require("object_shape", object_shape, allowed=OBJECT_SHAPES)
    return (
        '<mujoco model="dexdistill_hand">\n'
        '  <compiler angle="radian" autolimits="true"/>\n'
        '  <option timestep="0.005" integrator="Euler" iterations="4" '
        'ls_iterations="6"/>'
        + _assets()
        + _defaults()
        + _world(object_shape)
        + _actuators()
        + _keyframe(object_shape)
        + "\n</mujoco>\n"
    )
