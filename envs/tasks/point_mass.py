"""``point_mass``: a tiny task for fast tests, with a hidden physics parameter.

A puck on a plane is pushed by a 2-D force toward a random goal. The force gain
of each axis is randomized per episode (``randomization.physics.actuator_gain``)
and only ``privileged`` reveals it; a student must infer it from its history.
The dynamics are a few lines of pure JAX (explicit Euler with viscous damping),
so a PPO learns the task in seconds on a CPU. The observation dict has the same
keys as the MJX tasks: keypoints are the puck and goal centres, and the point
cloud is sampled on the puck's (spherical) surface and the goal's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.envs.base import ArraySpec, State, spec_of
from dexdistill.envs.common import checks, fastrand
from dexdistill.envs.sim2real import observations as obs_lib, randomize
from dexdistill.envs.sim2real.observations import PointCloudConfig
from dexdistill.envs.sim2real.randomize import PhysicsRandomization, RandomizationConfig
from dexdistill.envs.tasks.mjx_task import privileged_layout


@dataclasses.dataclass(frozen=True)
class PointMassConfig:
    """Config of ``point_mass``."""

    ctrl_dt: float = 0.1
    episode_length: int = 40
    max_force: float = 2.0
    """Force (N) at action 1 and nominal gain."""
    mass: float = 0.5
    damping: float = 1.0
    """Viscous damping (N s/m)."""
    instability: float = 0.0
    """Destabilizing stiffness (1/s^2): an extra acceleration ``instability * (pos - goal)``
    pushes the puck away from the goal. > 0 makes small errors compound (the task built to
    show the drift of behaviour cloning)."""
    arena: float = 1.0
    """The puck stays in [-arena, arena]^2."""
    goal_range: float = 0.8
    radius: float = 0.05
    success_tolerance: float = 0.1
    point_cloud: PointCloudConfig = PointCloudConfig(num_points=16, num_goal_points=8)
    randomization: RandomizationConfig = RandomizationConfig(
        physics=PhysicsRandomization(actuator_gain=(0.4, 1.6), object_mass=(0.7, 1.3))
    )

    def validate(self) -> None:
        checks.check_types(self)
        for name in ("ctrl_dt", "max_force", "mass", "arena", "radius", "success_tolerance"):
            checks.require(name, getattr(self, name), gt=0)
        checks.require("instability", self.instability, ge=0)
        checks.require("episode_length", self.episode_length, ge=1)
        if not 0 < self.goal_range <= self.arena:
            raise ValueError(f"goal_range={self.goal_range}: must be in (0, arena={self.arena}]")
        if self.point_cloud.source == "raycast":
            raise ValueError(
                "point_cloud.source='raycast': point_mass supports 'surface' or 'none'"
            )
        self.point_cloud.validate()
        randomize.validate(self.randomization)


class PointMass:
    """The tiny task; see the module docstring."""

    name = "point_mass"

    def __init__(self, config: PointMassConfig | None = None):
        self.config = config or PointMassConfig()
        self.config.validate()
        self.dims = randomize.ParamDims(n_links=1, n_joints=2, n_actuators=2, n_proprio=2)
        self._shape = obs_lib.ObjectShape(
            types=np.array([2], np.int32),  # mjGEOM_SPHERE
            sizes=np.array([[self.config.radius, 0.0, 0.0]], np.float32),
            pos=np.zeros((1, 3), np.float32),
            mat=np.eye(3, dtype=np.float32)[None],
            weights=np.ones((1,), np.float32),
        )
        pc = self.config.point_cloud  # no bank to draw when no cloud is made
        self._surface = obs_lib.surface_sampler(
            self._shape, pc.surface_bank if pc.source != "none" else 0
        )
        self._obs_spec: dict[str, ArraySpec] | None = None

    @property
    def action_size(self) -> int:
        return 2

    @property
    def dt(self) -> float:
        return self.config.ctrl_dt

    @property
    def episode_length(self) -> int:
        return self.config.episode_length

    @property
    def observation_spec(self) -> dict[str, ArraySpec]:
        if self._obs_spec is None:
            self._obs_spec = spec_of(jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs)
        return self._obs_spec

    def reset(self, rng: jax.Array) -> State:
        cfg = self.config
        rng, k_params, k_pos, k_goal, k_obs = jax.random.split(rng, 5)
        params = randomize.sample_params(k_params, cfg.randomization, self.dims)
        pos = jax.random.uniform(k_pos, (2,), minval=-cfg.goal_range, maxval=cfg.goal_range)
        goal = jax.random.uniform(k_goal, (2,), minval=-cfg.goal_range, maxval=cfg.goal_range)
        k = cfg.randomization.unmodeled.max_action_delay
        data = {"pos": pos, "vel": jp.zeros(2)}
        info: dict[str, Any] = {
            "rng": rng,
            "step": jp.zeros((), jp.int32),
            "params": params,
            "truncation": jp.zeros(()),
            "goal": goal,
            "last_action": jp.zeros(2),
            "action_buffer": jp.zeros((k + 1, 2)),
            "engaged": jp.zeros(2),
            "kp_frozen": jp.zeros((), jp.int32),
            "kp_last": jp.zeros((1, 3)),
            "prev_dist": jp.linalg.norm(pos - goal),
        }
        obs, info = self._observe(data, info, k_obs)
        metrics = {"success": jp.zeros(()), "distance": jp.zeros(()), "unstable": jp.zeros(())}
        return State(
            data=data, obs=obs, reward=jp.zeros(()), done=jp.zeros(()), metrics=metrics, info=info
        )

    def step(self, state: State, action: jax.Array) -> State:
        cfg = self.config
        info = dict(state.info)
        rng, k_act, k_obs = fastrand.split(info["rng"], 3)
        params = info["params"]
        action = jp.clip(action, -1.0, 1.0)
        applied, info = randomize.unmodeled_action(action, info, cfg.randomization.unmodeled, k_act)
        force = cfg.max_force * params["actuator_gain"] * applied
        mass = cfg.mass * params["object_mass"]
        push = cfg.instability * (state.data["pos"] - info["goal"])
        accel = (force - cfg.damping * state.data["vel"]) / mass + push
        vel = state.data["vel"] + cfg.ctrl_dt * accel
        pos = jp.clip(state.data["pos"] + cfg.ctrl_dt * vel, -cfg.arena, cfg.arena)
        vel = jp.where(jp.abs(pos) >= cfg.arena, 0.0, vel)
        data = {"pos": pos, "vel": vel}
        dist = jp.linalg.norm(pos - info["goal"])
        success = (dist < cfg.success_tolerance).astype(jp.float32)
        reward = -dist + 2.0 * (info["prev_dist"] - dist) + 0.5 * success
        info.update(rng=rng, step=info["step"] + 1, last_action=action, prev_dist=dist)
        done = (info["step"] >= cfg.episode_length).astype(jp.float32)
        info["truncation"] = done
        obs, info = self._observe(data, info, k_obs)
        metrics = {"success": success, "distance": dist, "unstable": jp.zeros(())}
        return state.replace(
            data=data, obs=obs, reward=reward, done=done, metrics=metrics, info=info
        )

    def privileged_parts(
        self, data: dict[str, jax.Array], info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        """The named quantities ``obs["privileged"]`` concatenates, in order."""
        return {
            "object_pos": data["pos"],
            "object_vel": data["vel"],
            "goal_pos": info["goal"],
            "to_goal": info["goal"] - data["pos"],
            "last_action": info["last_action"],
            "physics": randomize.physics_vector(info["params"]),
        }

    @property
    def privileged_layout(self) -> dict[str, slice]:
        """Where each named quantity sits in the ``privileged`` vector."""
        return privileged_layout(self)

    def _observe(
        self, data: dict[str, jax.Array], info: dict[str, Any], rng: jax.Array
    ) -> tuple[dict[str, jax.Array], dict[str, Any]]:
        cfg = self.config
        params = info["params"]
        rc = cfg.randomization
        k_prop, k_kp, k_pc, k_noise, k_goal = fastrand.split(rng, 5)
        pos3 = jp.concatenate([data["pos"], jp.zeros(1)])
        goal3 = jp.concatenate([info["goal"], jp.zeros(1)])
        kp, info["kp_frozen"] = obs_lib.track_keypoints(
            k_kp,
            pos3[None],
            info["kp_last"],
            info["kp_frozen"],
            params["keypoint_bias"],
            rc.observation,
            rc.unmodeled,
        )
        info["kp_last"] = kp
        pc = cfg.point_cloud
        n = pc.num_points + pc.num_goal_points
        if pc.source == "none":
            cloud, cloud_mask = jp.zeros((n, 3)), jp.zeros((n,), bool)
        else:
            one = jp.ones(())
            pts = self._surface(k_pc, one, pc.num_points) + pos3
            pts, mask = obs_lib.noisy_points(
                k_noise,
                pts,
                jp.ones(pc.num_points, bool),
                params["point_cloud_bias"],
                rc.observation,
            )
            gpts = self._surface(k_goal, one, pc.num_goal_points) + goal3
            cloud = jp.concatenate([pts, gpts])
            cloud_mask = jp.concatenate([mask, jp.ones(pc.num_goal_points, bool)])
        proprio = obs_lib.noisy_proprio(k_prop, data["pos"], params["proprio_bias"], rc.observation)
        parts = self.privileged_parts(data, info)
        privileged = jp.concatenate([jp.ravel(v) for v in parts.values()])
        obs = {
            "privileged": privileged.astype(jp.float32),
            "proprio": jp.concatenate([proprio, info["last_action"]]).astype(jp.float32),
            "keypoints": jp.concatenate([kp, goal3[None]]).astype(jp.float32),
            "point_cloud": cloud.astype(jp.float32),
            "point_cloud_mask": cloud_mask,
        }
        return obs, info


def default_config() -> PointMassConfig:
    return PointMassConfig()


def expert(env: PointMass, omega: float = 4.0, std: float = 0.1) -> Any:
    """An analytic teacher: a critically damped PD law on the privileged state.

    It reads only ``obs["privileged"]`` (true position, velocity, goal and physics
    parameters) and cancels damping and ``instability`` exactly, so it is a strong
    expert for DAgger tests without PPO training. Returns
    ``policy(obs [B, ...], carry, key) -> (action [B, 2], carry, {"mean", "std"})``.
    """
    cfg, layout = env.config, env.privileged_layout
    offsets = _physics_offsets(env)

    def policy(obs: dict[str, jax.Array], carry: Any, key: jax.Array) -> tuple:
        p = obs["privileged"]
        err, vel = -p[..., layout["to_goal"]], p[..., layout["object_vel"]]
        physics = p[..., layout["physics"]]
        gain = physics[..., offsets["actuator_gain"]]
        mass = cfg.mass * physics[..., offsets["object_mass"]]
        accel = -(omega**2) * err - 2 * omega * vel - cfg.instability * err
        force = mass * accel + cfg.damping * vel
        mean = jp.clip(force / (cfg.max_force * gain), -1.0, 1.0)
        return mean, carry, {"mean": mean, "std": jp.full_like(mean, std)}

    return policy


def _physics_offsets(env: PointMass) -> dict[str, slice]:
    """Where each physics parameter sits in ``randomize.physics_vector``."""
    nominal = randomize.nominal_params(env.dims)
    out, start = {}, 0
    for k in randomize.PHYSICS_KEYS:
        n = int(np.size(nominal[k]))
        out[k] = slice(start, start + n)
        start += n
    return out
