"""Domain randomization: four switchable families, resampled at every reset.

Families (each a frozen config with ``enabled`` and its ranges):

* :class:`PhysicsRandomization` - object size and mass, link masses, friction,
  joint damping, actuator gains, joint limits, gravity direction and magnitude.
* :class:`ObservationNoise` - correlated (once per episode) and uncorrelated
  (every step) noise for proprioception, keypoints and point clouds.
* :class:`UnmodeledEffects` - action delay, action noise, motor backlash, random
  forces on the object, keypoint tracker freezing and dropout.
* :class:`CameraRandomization` - pose jitter of the depth camera.

Everything sampled for an episode lives in one flat dict of arrays, the *episode
parameters*, stored in ``state.info["params"]``. The MJX model of an episode is
built from the nominal model and those parameters inside ``step`` (a handful of
array substitutions), so a batch of environments has a batch of models without
recompiling and with static shapes. A disabled family leaves its parameters at
their nominal values (scale 1, offset 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.envs.common import checks, fastrand
from dexdistill.envs.tasks import geometry

Range = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class PhysicsRandomization:
    """Physics parameters, sampled uniformly per episode (multipliers unless noted)."""

    enabled: bool = True
    object_scale: Range = (0.95, 1.05)
    """Uniform scale of the object's geoms (size, and mass as scale^3)."""
    object_mass: Range = (0.7, 1.3)
    link_mass: Range = (0.8, 1.2)
    """Per robot body."""
    friction: Range = (0.7, 1.3)
    """Sliding friction of all geoms."""
    joint_damping: Range = (0.7, 1.5)
    """Per robot joint."""
    actuator_gain: Range = (0.85, 1.15)
    """Per actuator (position gain kp, or motor gear)."""
    joint_limit: float = 0.03
    """Max offset (rad) added independently to each joint's lower and upper limit."""
    gravity_tilt: float = 0.05
    """Max tilt (rad) of the gravity vector."""
    gravity_scale: Range = (0.97, 1.03)


@dataclasses.dataclass(frozen=True)
class ObservationNoise:
    """Gaussian noise std: ``*_correlated`` once per episode, ``*_uncorrelated`` per step."""

    enabled: bool = True
    proprio_correlated: float = 0.01
    """rad, per joint."""
    proprio_uncorrelated: float = 0.005
    keypoints_correlated: float = 0.005
    """metres, one offset shared by all object keypoints (a tracker bias)."""
    keypoints_uncorrelated: float = 0.002
    point_cloud_correlated: float = 0.003
    point_cloud_uncorrelated: float = 0.002
    point_dropout: float = 0.05
    """Probability that a point is dropped (masked out) at a step."""


@dataclasses.dataclass(frozen=True)
class UnmodeledEffects:
    """Effects a simulator does not model, added on top of the physics."""

    enabled: bool = True
    max_action_delay: int = 1
    """Per-episode delay drawn uniformly from {min_action_delay, ..., max} control steps."""
    min_action_delay: int = 0
    """Smallest per-episode delay; set both to ``d`` to fix the delay at ``d`` steps."""
    action_noise: float = 0.02
    """Per-step Gaussian noise on the normalized action."""
    backlash: float = 0.02
    """Max per-episode dead band (normalized action units) of a play-type backlash."""
    min_backlash: float = 0.0
    """Smallest per-episode dead band; the band is drawn uniformly from [min_backlash, backlash]."""
    object_force: float = 0.5
    """Std of a random force on the object, in units of its weight."""
    object_torque: float = 0.002
    """Std of a random torque on the object (N m)."""
    force_probability: float = 0.1
    """Probability per step that a random wrench acts on the object."""
    keypoint_freeze_probability: float = 0.02
    """Probability per step that the keypoint tracker freezes."""
    keypoint_freeze_steps: int = 5
    """A freeze lasts 1..this many steps (the last reported keypoints are repeated)."""
    keypoint_dropout: float = 0.01
    """Probability per step and keypoint that it is lost (reported as zeros)."""


@dataclasses.dataclass(frozen=True)
class CameraRandomization:
    """Per-episode jitter of the depth camera pose (ray-cast point clouds)."""

    enabled: bool = True
    position: float = 0.01
    """Max offset per axis (m)."""
    rotation: float = 0.03
    """Max rotation angle (rad)."""


@dataclasses.dataclass(frozen=True)
class RandomizationConfig:
    """All four families; switch one off with e.g. ``physics=PhysicsRandomization(enabled=False)``."""

    physics: PhysicsRandomization = PhysicsRandomization()
    observation: ObservationNoise = ObservationNoise()
    unmodeled: UnmodeledEffects = UnmodeledEffects()
    camera: CameraRandomization = CameraRandomization()


def disabled(cfg: RandomizationConfig | None = None) -> RandomizationConfig:
    """Every family switched off: the defaults', or ``cfg``'s with its values kept.

    Keeping the values matters to evaluation (``envs.conditions``, randomization
    ``none``): the report shows what was switched off, not the defaults.
    """
    cfg = cfg if cfg is not None else RandomizationConfig()
    return RandomizationConfig(
        **{
            f.name: dataclasses.replace(getattr(cfg, f.name), enabled=False)
            for f in dataclasses.fields(cfg)
        }
    )


# --------------------------------------------------------------------------- validation


def validate(cfg: RandomizationConfig, prefix: str = "randomization") -> None:
    """Raises a one-line ``ValueError`` naming the first invalid field."""
    for fam in dataclasses.fields(cfg):
        family = getattr(cfg, fam.name)
        for f in dataclasses.fields(family):
            value = getattr(family, f.name)
            name = f"{prefix}.{fam.name}.{f.name}"
            if isinstance(value, bool):
                continue
            if isinstance(value, tuple):
                if len(value) != 2 or not value[0] <= value[1] or value[0] < 0:
                    raise ValueError(
                        f"{name}={value!r}: expected a range (lo, hi) with 0 <= lo <= hi"
                    )
            elif f.name.endswith(("probability", "dropout")):
                checks.require(name, value, ge=0, le=1)
            else:
                checks.require(name, value, ge=0)
    un, pre = cfg.unmodeled, f"{prefix}.unmodeled"
    if un.min_action_delay > un.max_action_delay:
        raise ValueError(
            f"{pre}.min_action_delay={un.min_action_delay}: must be <= "
            f"max_action_delay={un.max_action_delay}"
        )
    if un.min_backlash > un.backlash:
        raise ValueError(f"{pre}.min_backlash={un.min_backlash}: must be <= backlash={un.backlash}")


# --------------------------------------------------------------------------- sampling


@dataclasses.dataclass(frozen=True)
class ParamDims:
    """Sizes the episode parameters depend on."""

    n_links: int
    n_joints: int
    n_actuators: int
    n_proprio: int


def _uniform(rng: jax.Array, rng_range: Range, shape: tuple[int, ...] = ()) -> jax.Array:
    return jax.random.uniform(rng, shape, minval=rng_range[0], maxval=rng_range[1])


def nominal_params(dims: ParamDims) -> dict[str, jax.Array]:
    """Parameters of an un-randomized episode (all multipliers 1, offsets 0)."""
    f32 = jp.float32
    return {
        "object_scale": jp.ones((), f32),
        "object_mass": jp.ones((), f32),
        "link_mass": jp.ones((dims.n_links,), f32),
        "friction": jp.ones((), f32),
        "joint_damping": jp.ones((dims.n_joints,), f32),
        "actuator_gain": jp.ones((dims.n_actuators,), f32),
        "joint_limit_lo": jp.zeros((dims.n_joints,), f32),
        "joint_limit_hi": jp.zeros((dims.n_joints,), f32),
        "gravity": jp.array([0.0, 0.0, -9.81], f32),
        "action_delay": jp.zeros((), jp.int32),
        "backlash": jp.zeros((), f32),
        "proprio_bias": jp.zeros((dims.n_proprio,), f32),
        "keypoint_bias": jp.zeros((3,), f32),
        "point_cloud_bias": jp.zeros((3,), f32),
        "camera_offset": jp.zeros((3,), f32),
        "camera_rotation": jp.eye(3, dtype=f32),
    }


def sample_params(
    rng: jax.Array, cfg: RandomizationConfig, dims: ParamDims
) -> dict[str, jax.Array]:
    """Draws one episode's parameters; disabled families keep nominal values."""
    p = nominal_params(dims)
    keys = iter(jax.random.split(rng, 24))
    ph = cfg.physics
    if ph.enabled:
        p["object_scale"] = _uniform(next(keys), ph.object_scale)
        p["object_mass"] = _uniform(next(keys), ph.object_mass)
        p["link_mass"] = _uniform(next(keys), ph.link_mass, (dims.n_links,))
        p["friction"] = _uniform(next(keys), ph.friction)
        p["joint_damping"] = _uniform(next(keys), ph.joint_damping, (dims.n_joints,))
        p["actuator_gain"] = _uniform(next(keys), ph.actuator_gain, (dims.n_actuators,))
        lim = (-ph.joint_limit, ph.joint_limit)
        p["joint_limit_lo"] = _uniform(next(keys), lim, (dims.n_joints,))
        p["joint_limit_hi"] = _uniform(next(keys), lim, (dims.n_joints,))
        rot = geometry.small_rotation(next(keys), ph.gravity_tilt)
        g = 9.81 * _uniform(next(keys), ph.gravity_scale)
        p["gravity"] = rot @ jp.array([0.0, 0.0, -1.0]) * g
    un = cfg.unmodeled
    if un.enabled:
        delay = (un.min_action_delay, un.max_action_delay + 1)
        p["action_delay"] = jax.random.randint(next(keys), (), *delay)
        p["backlash"] = _uniform(next(keys), (un.min_backlash, un.backlash))
    ob = cfg.observation
    if ob.enabled:
        n = jax.random.normal
        p["proprio_bias"] = ob.proprio_correlated * n(next(keys), (dims.n_proprio,))
        p["keypoint_bias"] = ob.keypoints_correlated * n(next(keys), (3,))
        p["point_cloud_bias"] = ob.point_cloud_correlated * n(next(keys), (3,))
    cam = cfg.camera
    if cam.enabled:
        p["camera_offset"] = _uniform(next(keys), (-cam.position, cam.position), (3,))
        p["camera_rotation"] = geometry.small_rotation(next(keys), cam.rotation)
    return p


MODEL_KEYS: tuple[str, ...] = (
    "object_scale",
    "object_mass",
    "link_mass",
    "friction",
    "joint_damping",
    "actuator_gain",
    "joint_limit_lo",
    "joint_limit_hi",
    "gravity",
)
"""Episode parameters that change the physics model (read by :func:`model_fields`)."""

PHYSICS_KEYS: tuple[str, ...] = (*MODEL_KEYS, "action_delay", "backlash")
"""Episode parameters that describe the world (and so go into ``privileged``)."""


def physics_vector(params: dict[str, jax.Array]) -> jax.Array:
    """Flattens the world-describing parameters into ``[D]`` for ``privileged``."""
    return jp.concatenate([jp.ravel(params[k]).astype(jp.float32) for k in PHYSICS_KEYS])


# --------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class ModelIndex:
    """Indices into an ``mjModel`` that the physics randomization touches (numpy)."""

    object_body: int
    object_geoms: np.ndarray
    link_bodies: np.ndarray
    joint_ids: np.ndarray
    joint_dofs: np.ndarray
    actuator_ids: np.ndarray
    limited: np.ndarray
    """Bool per robot joint: whether its range is enforced."""


MODEL_FIELDS: tuple[str, ...] = (
    "geom_size",
    "geom_pos",
    "geom_rbound",
    "geom_friction",
    "body_mass",
    "body_inertia",
    "dof_damping",
    "actuator_gainprm",
    "actuator_biasprm",
    "jnt_range",
)
"""Model arrays the physics randomization rewrites (plus ``opt.gravity``)."""


def nominal_fields(model: Any) -> dict[str, np.ndarray]:
    """The nominal values of :data:`MODEL_FIELDS` of an ``MjModel`` (numpy copies)."""
    return {k: np.array(getattr(model, k)) for k in MODEL_FIELDS}


def _one_hot(ids: np.ndarray, n: int) -> np.ndarray:
    """``[len(ids), n]`` selection matrix: row i is 1 at column ``ids[i]``."""
    out = np.zeros((len(ids), n), np.float32)
    out[np.arange(len(ids)), ids] = 1.0
    return out


def model_fields(nominal: dict[str, Any], params: dict[str, Any], idx: ModelIndex, xp: Any) -> dict:
    """This episode's values of :data:`MODEL_FIELDS` and ``gravity``.

    Written once for both physics backends: ``xp`` is ``jax.numpy`` (MJX, one env, under
    ``vmap``) or ``numpy`` (MuJoCo C on the host, params with a leading batch axis
    ``[C, ...]`` giving fields ``[C, *field_shape]``). Multipliers are applied with
    ``where`` over static masks, so untouched entries keep their exact nominal value.
    """
    ngeom, nbody = nominal["geom_size"].shape[0], nominal["body_mass"].shape[0]
    nv, njnt = nominal["dof_damping"].shape[0], nominal["jnt_range"].shape[0]
    nu = nominal["actuator_gainprm"].shape[0]
    col = lambda x: x[..., None]  # noqa: E731  [*B] -> [*B, 1]
    s = params["object_scale"]
    geom_mult = xp.where(np.isin(np.arange(ngeom), idx.object_geoms), col(s), 1.0)  # [*B, ngeom]
    fr = params["friction"]
    ones = xp.ones_like(fr)
    fr_mult = xp.stack([fr, ones, ones], axis=-1)[..., None, :]  # [*B, 1, 3]
    obj = np.arange(nbody) == idx.object_body
    links = np.isin(np.arange(nbody), idx.link_bodies)
    link_mult = params["link_mass"] @ _one_hot(idx.link_bodies, nbody)  # [*B, nbody]
    mass_mult = xp.where(obj, col(params["object_mass"] * s**3), xp.where(links, link_mult, 1.0))
    inertia_mult = xp.where(
        obj, col(params["object_mass"] * s**3 * s**2), xp.where(links, link_mult, 1.0)
    )
    dofs = np.isin(np.arange(nv), idx.joint_dofs)
    damp = params["joint_damping"] @ _one_hot(idx.joint_dofs, nv)
    acts = np.isin(np.arange(nu), idx.actuator_ids)
    gain = xp.where(acts, params["actuator_gain"] @ _one_hot(idx.actuator_ids, nu), 1.0)
    gain_cols = lambda c: np.arange(10) == c  # noqa: E731
    gainprm = nominal["actuator_gainprm"] * xp.where(gain_cols(0), gain[..., None], 1.0)
    biasprm = nominal["actuator_biasprm"] * xp.where(gain_cols(1), gain[..., None], 1.0)
    offsets = xp.stack([params["joint_limit_lo"], params["joint_limit_hi"]], axis=-1)
    offsets = xp.where(idx.limited[:, None], offsets, 0.0)  # [*B, n_joints, 2]
    jnt_offsets = _one_hot(idx.joint_ids, njnt).T @ offsets  # [*B, njnt, 2]
    return {
        "geom_size": nominal["geom_size"] * geom_mult[..., None],
        "geom_pos": nominal["geom_pos"] * geom_mult[..., None],
        "geom_rbound": nominal["geom_rbound"] * geom_mult,
        "geom_friction": nominal["geom_friction"] * fr_mult,
        "body_mass": nominal["body_mass"] * mass_mult,
        "body_inertia": nominal["body_inertia"] * inertia_mult[..., None],
        "dof_damping": nominal["dof_damping"] * xp.where(dofs, damp, 1.0),
        "actuator_gainprm": gainprm,
        "actuator_biasprm": biasprm,
        "jnt_range": nominal["jnt_range"] + jnt_offsets,
        "gravity": params["gravity"],
    }


def apply_physics(model: Any, params: dict[str, jax.Array], idx: ModelIndex) -> Any:
    """Returns ``model`` (an ``mjx.Model``) with this episode's physics parameters.

    Shapes are unchanged; under ``vmap`` over ``params`` the result is a batch of
    models. Only float fields that MJX reads as arrays are replaced.
    """
    nominal = {k: getattr(model, k) for k in MODEL_FIELDS}
    fields = model_fields(nominal, params, idx, jp)
    gravity = fields.pop("gravity")
    return model.replace(**fields, opt=model.opt.replace(gravity=gravity))


# --------------------------------------------------------------------------- unmodeled


def delay_action(
    buffer: jax.Array, action: jax.Array, delay: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Pushes ``action [A]`` into ``buffer [k+1, A]``; returns (action ``delay`` steps ago, buffer)."""
    buffer = jp.concatenate([action[None], buffer[:-1]], axis=0)
    return buffer[delay], buffer


def apply_backlash(engaged: jax.Array, command: jax.Array, width: jax.Array) -> jax.Array:
    """Play-type backlash: the output only moves once the command leaves a band of ``width``."""
    return jp.clip(engaged, command - width, command + width)


def object_wrench(rng: jax.Array, cfg: UnmodeledEffects, weight: jax.Array) -> jax.Array:
    """A random ``[6]`` wrench (force, torque) on the object, or zeros (per step)."""
    k_on, k_f, k_t = fastrand.split(rng, 3)
    on = fastrand.bernoulli(k_on, cfg.force_probability)
    force = cfg.object_force * weight * fastrand.normal(k_f, (3,))
    torque = cfg.object_torque * fastrand.normal(k_t, (3,))
    return jp.where(on, jp.concatenate([force, torque]), 0.0)


def unmodeled_action(
    action: jax.Array, info: dict[str, Any], cfg: UnmodeledEffects, rng: jax.Array
) -> tuple[jax.Array, dict[str, Any]]:
    """The action the actuators receive: delayed, noisy, through backlash; ``[A]`` in ``[-1, 1]``.

    Reads ``info["action_buffer"]``, ``info["engaged"]`` and the episode's
    ``action_delay`` / ``backlash``; returns the updated ``info``.
    """
    params = info["params"]
    applied, buffer = delay_action(info["action_buffer"], action, params["action_delay"])
    if cfg.enabled:
        applied = applied + cfg.action_noise * fastrand.normal(rng, applied.shape)
    applied = apply_backlash(info["engaged"], applied, params["backlash"])
    return jp.clip(applied, -1.0, 1.0), {**info, "action_buffer": buffer, "engaged": applied}
