"""Shared machinery of the MJX manipulation tasks.

A task module subclasses :class:`MjxTask` and supplies its MJCF, its start-state
and goal sampling and its reward; this base class owns the rest of the step:
per-episode physics randomization, the unmodeled effects on the action, physics
substeps, and the observation dict (privileged, proprio, keypoints, point cloud).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jp
import mujoco
import numpy as np
from mujoco import mjx

from dexdistill.envs.base import ArraySpec, State, spec_of
from dexdistill.envs.common import checks, fastrand
from dexdistill.envs.physics import backends as physics_lib
from dexdistill.envs.sim2real import observations as obs_lib, randomize
from dexdistill.envs.sim2real.observations import PointCloudConfig
from dexdistill.envs.sim2real.randomize import RandomizationConfig
from dexdistill.envs.tasks import curriculum

Impl = Literal["jax", "warp"]
"""MJX implementations: ``jax`` (any device) or ``warp`` (NVIDIA GPUs)."""
ActionMode = Literal["absolute", "residual", "delta"]


@dataclasses.dataclass(frozen=True)
class ManipulationConfig:
    """Fields every MJX manipulation task has (tasks extend this)."""

    ctrl_dt: float = 0.05
    """Control period (s); ``ctrl_dt / sim_dt`` physics substeps per ``step``."""
    sim_dt: float = 0.01
    """Physics timestep (s)."""
    episode_length: int = 100
    """Control steps before an episode is truncated."""
    solver_iterations: int = 3
    ls_iterations: int = 5
    backend: physics_lib.Backend = "auto"
    """Physics: ``mujoco`` (MuJoCo C on the host, one batched call per step: CPUs),
    ``mjx`` (GPU/TPU), or ``auto`` (``mujoco`` when JAX's default backend is the CPU)."""
    impl: Impl = "jax"
    """MJX implementation (``backend=mjx``): ``jax`` (any device) or ``warp`` (NVIDIA GPUs)."""
    point_cloud: PointCloudConfig = PointCloudConfig()
    randomization: RandomizationConfig = RandomizationConfig()
    action_mode: ActionMode = "absolute"
    """How a normalized action in ``[-1, 1]`` becomes actuator targets: ``absolute`` spans
    each actuator's ctrlrange; ``residual`` is the task's default pose plus
    ``action_scale * action``, clipped to the range; ``delta`` moves the current targets by
    ``action_scale * action`` per step, anywhere in the range (the current targets are then
    part of ``proprio``: a robot knows what it commanded)."""
    action_scale: float = 0.6
    """``residual``: actuator units (rad) per unit of action; ``delta``: per unit and step."""

    def validate(self) -> None:
        """Raises a one-line ``ValueError`` naming the first invalid field."""
        checks.check_types(self)  # the Literal fields too (backend, impl, action_mode)
        checks.require("action_scale", self.action_scale, gt=0)
        if self.sim_dt <= 0 or self.ctrl_dt < self.sim_dt:
            raise ValueError(
                f"ctrl_dt={self.ctrl_dt}, sim_dt={self.sim_dt}: need 0 < sim_dt <= ctrl_dt"
            )
        ratio = self.ctrl_dt / self.sim_dt
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"ctrl_dt={self.ctrl_dt}: must be a multiple of sim_dt={self.sim_dt}")
        for name in ("episode_length", "solver_iterations", "ls_iterations"):
            checks.require(name, getattr(self, name), ge=1)
        self.point_cloud.validate()
        randomize.validate(self.randomization)

    @property
    def n_substeps(self) -> int:
        return int(round(self.ctrl_dt / self.sim_dt))


def _ids(m: mujoco.MjModel, kind: mujoco.mjtObj, names: list[str]) -> np.ndarray:
    out = [mujoco.mj_name2id(m, kind, n) for n in names]
    missing = [n for n, i in zip(names, out, strict=True) if i < 0]
    if missing:
        raise ValueError(f"model lacks {kind.name} named {missing}")
    return np.array(out, dtype=np.int32)


class MjxTask:
    """Base class of the MJX tasks; see the module docstring.

    Subclasses define ``joint_names``, ``fingertip_sites`` and implement
    :meth:`build_mjcf`, :meth:`object_keypoints`, :meth:`sample_start` and
    :meth:`compute_reward`.
    """

    name: str = "task"
    headline_metric: str = "success"
    """The per-episode metric (at the episode's end) that evaluation, the success-gated
    beta, teacher-student ratios and ablation tables report: ``success`` (its mean is the
    success rate) or, for hand_cube, ``consecutive_successes``."""
    goal_levels: tuple[str, ...] = ()
    """Goal difficulty levels, easiest first (see :mod:`envs.curriculum`); the last is the
    task's full goal distribution."""
    default_qpos: tuple[float, ...] | None = None
    """The robot's rest pose (one value per actuated joint), if the task has one."""
    joint_names: tuple[str, ...] = ()
    fingertip_sites: tuple[str, ...] = ()
    object_body_name: str = "object"
    object_joint_name: str = "object_joint"

    def __init__(self, config: ManipulationConfig):
        config.validate()
        self.config = config
        self.mj_model = self._compile(config)
        self._index_model()
        self.backend = physics_lib.resolve_backend(config.backend)
        """The physics actually used: ``mjx`` or ``mujoco`` (``auto`` resolved)."""
        raycast = config.point_cloud.source == "raycast"
        if self.backend == "mjx":
            self.physics: Any = physics_lib.MjxPhysics(
                self.mj_model, config.n_substeps, self.index, config.impl
            )
        else:
            shapes = {k: tuple(v.shape) for k, v in randomize.nominal_params(self.dims).items()}
            self.physics = physics_lib.MujocoPhysics(
                self.mj_model, self._xml, config.n_substeps, self.index, shapes, raycast
            )
        # ray casting (mjx.ray) reads the episode's geom sizes from an mjx.Model
        self.mjx_model = (
            self.physics.model
            if self.backend == "mjx"
            else (mjx.put_model(self.mj_model) if raycast else None)
        )
        self._obs_spec: dict[str, ArraySpec] | None = None

    # ----------------------------------------------------------------- to override

    def build_mjcf(self) -> str:
        raise NotImplementedError

    def object_keypoints(self) -> np.ndarray:
        """Keypoints ``[K, 3]`` in the object's body frame at nominal scale."""
        raise NotImplementedError

    def sample_start(
        self, rng: jax.Array, params: dict[str, jax.Array], level: jax.Array
    ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
        """Returns (qpos [nq], goal info with ``goal_pos`` [3] and ``goal_quat`` [4], extra info).

        ``level`` (int32 []) indexes :attr:`goal_levels` (0 for a task without levels)."""
        raise NotImplementedError

    def compute_reward(
        self, data: mjx.Data, info: dict[str, Any], rng: jax.Array
    ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array], dict[str, Any]]:
        """Returns (reward, terminated, metrics, updated info) after a step."""
        raise NotImplementedError

    def task_privileged(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        """Task-specific privileged extras ``[E]`` (default: none)."""
        return jp.zeros((0,))

    def task_truncated(self, info: dict[str, Any]) -> jax.Array:
        """True when the task ends the episode as a time limit (bool []; default: never).

        A truncation is not a failure: PPO bootstraps the value there instead of zero."""
        return jp.zeros((), bool)

    # ----------------------------------------------------------------- setup

    def _compile(self, config: ManipulationConfig) -> mujoco.MjModel:
        self._xml = self.build_mjcf()
        m = mujoco.MjModel.from_xml_string(self._xml)
        m.opt.timestep = config.sim_dt
        m.opt.iterations = config.solver_iterations
        m.opt.ls_iterations = config.ls_iterations
        return m

    def _index_model(self) -> None:
        m = self.mj_model
        J = mujoco.mjtObj
        self._joint_ids = _ids(m, J.mjOBJ_JOINT, list(self.joint_names))
        self._qadr = m.jnt_qposadr[self._joint_ids]
        self._dadr = m.jnt_dofadr[self._joint_ids]
        self._act_ids = np.arange(m.nu, dtype=np.int32)
        self._ctrl_lo = m.actuator_ctrlrange[:, 0].astype(np.float32)
        self._ctrl_hi = m.actuator_ctrlrange[:, 1].astype(np.float32)
        self._tip_ids = _ids(m, J.mjOBJ_SITE, list(self.fingertip_sites))
        self._obj_body = int(_ids(m, J.mjOBJ_BODY, [self.object_body_name])[0])
        obj_joint = int(_ids(m, J.mjOBJ_JOINT, [self.object_joint_name])[0])
        self._obj_qadr = int(m.jnt_qposadr[obj_joint])
        self._obj_dadr = int(m.jnt_dofadr[obj_joint])
        self._obj_nv = 6 if m.jnt_type[obj_joint] == mujoco.mjtJoint.mjJNT_FREE else 1
        obj_geoms = np.nonzero(m.geom_bodyid == self._obj_body)[0].astype(np.int32)
        self._obj_geom_mask = np.zeros(m.ngeom, bool)
        self._obj_geom_mask[obj_geoms] = True
        robot_bodies = sorted({int(m.jnt_bodyid[j]) for j in self._joint_ids})
        self.index = randomize.ModelIndex(
            object_body=self._obj_body,
            object_geoms=obj_geoms,
            link_bodies=np.array(robot_bodies, np.int32),
            joint_ids=self._joint_ids,
            joint_dofs=self._dadr.astype(np.int32),
            actuator_ids=self._act_ids,
            limited=m.jnt_limited[self._joint_ids].astype(bool),
        )
        self.dims = randomize.ParamDims(
            n_links=len(robot_bodies),
            n_joints=len(self._joint_ids),
            n_actuators=m.nu,
            n_proprio=len(self._joint_ids),
        )
        self._shape = obs_lib.ObjectShape.from_model(m, obj_geoms)
        pc = self.config.point_cloud  # no bank to draw when no cloud is made
        self._surface = obs_lib.surface_sampler(
            self._shape, pc.surface_bank if pc.source != "none" else 0
        )
        self._kp_local = jp.asarray(self.object_keypoints(), jp.float32)
        goal_id = mujoco.mj_name2id(m, J.mjOBJ_BODY, "goal")
        self._goal_mocap = int(m.body_mocapid[goal_id]) if goal_id >= 0 else -1
        pc = self.config.point_cloud
        self._camera = obs_lib.DepthCamera.from_model(m, pc) if pc.source == "raycast" else None
        self._weight = float(m.body_mass[self._obj_body] * 9.81)

    # ----------------------------------------------------------------- properties

    @property
    def action_size(self) -> int:
        return int(self.mj_model.nu)

    @property
    def dt(self) -> float:
        return self.config.ctrl_dt

    @property
    def episode_length(self) -> int:
        return self.config.episode_length

    @property
    def observation_spec(self) -> dict[str, ArraySpec]:
        if self._obs_spec is None:
            state = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
            self._obs_spec = spec_of(state.obs)
        return self._obs_spec

    def model_for(self, params: dict[str, jax.Array]) -> mjx.Model:
        """This episode's ``mjx.Model`` (nominal model + randomized physics; ray casting)."""
        if self.mjx_model is None:
            raise ValueError(f"{self.name}: no mjx.Model on the {self.backend} backend")
        return randomize.apply_physics(self.mjx_model, params, self.index)

    def object_pose(self, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
        return data.xpos[self._obj_body], data.xquat[self._obj_body]

    def joint_qpos(self, data: mjx.Data) -> jax.Array:
        return data.qpos[self._qadr]

    # ----------------------------------------------------------------- reset / step

    @property
    def start_level(self) -> int:
        """The goal level :meth:`reset` uses: 0 while a curriculum runs, else ``goal_level``."""
        if not self.goal_levels:
            return 0
        cur = getattr(self.config, "curriculum", None)
        if cur is not None and cur.enabled:
            return 0
        return curriculum.resolve_level(self.config.goal_level, len(self.goal_levels))

    def reset(self, rng: jax.Array) -> State:
        """Samples episode parameters, a start state and a goal; ``rng``: PRNGKey."""
        return self.reset_at_level(rng, jp.asarray(self.start_level, jp.int32))

    def reset_at_level(self, rng: jax.Array, level: jax.Array) -> State:
        """:meth:`reset` with the goal drawn at ``level`` (int32 [], see :mod:`envs.curriculum`)."""
        rng, k_params, k_start, k_obs = jax.random.split(rng, 4)
        params = randomize.sample_params(k_params, self.config.randomization, self.dims)
        level = jp.asarray(level, jp.int32)
        qpos, goal, extra = self.sample_start(k_start, params, level)
        data = self.physics.init(qpos, self._ctrl_from_qpos(qpos))
        data = self._place_goal(data, goal)
        data = self.physics.forward(data, params)
        k = self.config.randomization.unmodeled.max_action_delay
        action0 = self._action_from_ctrl(data.ctrl)
        info: dict[str, Any] = {
            "rng": rng,
            "step": jp.zeros((), jp.int32),
            "params": params,
            "truncation": jp.zeros(()),
            "last_action": action0,
            "action_buffer": jp.tile(action0[None], (k + 1, 1)),
            "engaged": action0,
            "kp_frozen": jp.zeros((), jp.int32),
            "kp_last": jp.zeros((self._kp_local.shape[0], 3)),
            "goal_level": level,
            "start_level": level,
            **goal,
            **extra,
        }
        _, _, metrics, _ = self.compute_reward(data, info, k_obs)
        metrics = self._with_start_level(metrics, info)
        obs, info = self._observe(data, info, k_obs)
        return State(
            data=data,
            obs=obs,
            reward=jp.zeros(()),
            done=jp.zeros(()),
            metrics={**{k: jp.zeros_like(v) for k, v in metrics.items()}, "unstable": jp.zeros(())},
            info=info,
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Advances one control step; ``action [A]`` in ``[-1, 1]``."""
        info = dict(state.info)
        rng, k_act, k_force, k_rew, k_obs = fastrand.split(info["rng"], 5)
        params = info["params"]
        action = jp.clip(action, -1.0, 1.0)
        applied, info = randomize.unmodeled_action(
            action, info, self.config.randomization.unmodeled, k_act
        )
        data = state.data.replace(ctrl=self._ctrl_from_action(applied, state.data.ctrl))
        data = self._apply_wrench(data, k_force, params, self.wrench_scale(info))
        data = self._place_goal(data, info)
        data = self.physics.step(data, params)
        info["rng"] = rng
        info["step"] = info["step"] + 1
        info["last_action"] = action
        reward, terminated, metrics, info = self.compute_reward(data, info, k_rew)
        unstable = ~jp.all(jp.isfinite(data.qpos)) | ~jp.all(jp.isfinite(data.qvel))
        data = jax.tree.map(lambda x, y: jp.where(unstable, x, y), state.data, data)
        terminated = terminated | unstable
        time_up = (info["step"] >= self.config.episode_length) | self.task_truncated(info)
        truncated = time_up & ~terminated
        info["truncation"] = truncated.astype(jp.float32)
        metrics["unstable"] = unstable.astype(jp.float32)
        metrics = self._with_start_level(metrics, info)
        obs, info = self._observe(data, info, k_obs)
        done = (terminated | truncated).astype(jp.float32)
        reward = jp.where(unstable, 0.0, reward)
        return state.replace(
            data=data, obs=obs, reward=reward, done=done, metrics=metrics, info=info
        )

    def _with_start_level(self, metrics: dict[str, jax.Array], info: dict) -> dict:
        """Tasks with goal levels report the level each episode started at (``start_level``):
        the curriculum counts only episodes that started at its current level."""
        if not self.goal_levels:
            return metrics
        return {**metrics, "start_level": info["start_level"].astype(jp.float32)}

    # ----------------------------------------------------------------- actions

    @property
    def default_joint_pos(self) -> np.ndarray:
        """float32 [nu]: the pose ``residual`` actions are relative to: the task's
        :attr:`default_qpos` within the control ranges, else the middle of each range."""
        if self.default_qpos is None:
            return 0.5 * (self._ctrl_lo + self._ctrl_hi)
        return np.clip(np.asarray(self.default_qpos, np.float32), self._ctrl_lo, self._ctrl_hi)

    def _ctrl_from_action(self, action: jax.Array, ctrl: jax.Array | None = None) -> jax.Array:
        """Normalized ``[-1, 1]`` action ``[nu]`` -> actuator controls (``action_mode``);
        ``ctrl [nu]``: the current controls, which ``delta`` moves (default: the default pose)."""
        lo, hi = jp.asarray(self._ctrl_lo), jp.asarray(self._ctrl_hi)
        if self.config.action_mode == "delta":
            now = jp.asarray(self.default_joint_pos, jp.float32) if ctrl is None else ctrl
            return jp.clip(now + self.config.action_scale * action, lo, hi)
        if self.config.action_mode == "residual":
            centre = jp.asarray(self.default_joint_pos, jp.float32)
            return jp.clip(centre + self.config.action_scale * action, lo, hi)
        return lo + 0.5 * (action + 1.0) * (hi - lo)

    def _action_from_ctrl(self, ctrl: jax.Array) -> jax.Array:
        """The action that commands ``ctrl [nu]`` (clipped to ``[-1, 1]``; ``delta``: holds it)."""
        lo, hi = jp.asarray(self._ctrl_lo), jp.asarray(self._ctrl_hi)
        if self.config.action_mode == "delta":
            return jp.zeros_like(ctrl)
        if self.config.action_mode == "residual":
            centre = jp.asarray(self.default_joint_pos, jp.float32)
            return jp.clip((ctrl - centre) / self.config.action_scale, -1.0, 1.0)
        return jp.clip(2.0 * (ctrl - lo) / (hi - lo) - 1.0, -1.0, 1.0)

    def _ctrl_from_qpos(self, qpos: jax.Array) -> jax.Array:
        """Controls that hold the start pose (position actuators) or zero torque."""
        m = self.mj_model
        if np.all(m.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE):
            q = qpos[self._qadr]
            return jp.clip(q, jp.asarray(self._ctrl_lo), jp.asarray(self._ctrl_hi))
        return jp.zeros((m.nu,))

    def wrench_scale(self, info: dict[str, Any]) -> jax.Array:
        """Scale [] of this step's random object wrench (tasks may ramp it, e.g. by level)."""
        return jp.ones(())

    def _apply_wrench(
        self, data: mjx.Data, rng: jax.Array, params: dict[str, jax.Array], scale: jax.Array
    ) -> mjx.Data:
        cfg = self.config.randomization.unmodeled
        if not cfg.enabled or cfg.force_probability == 0:
            return data
        weight = self._weight * params["object_mass"] * params["object_scale"] ** 3
        wrench = scale * randomize.object_wrench(rng, cfg, weight)
        return data.replace(xfrc_applied=data.xfrc_applied.at[self._obj_body].set(wrench))

    def _place_goal(self, data: mjx.Data, info: dict[str, Any]) -> mjx.Data:
        if self._goal_mocap < 0:
            return data
        return data.replace(
            mocap_pos=data.mocap_pos.at[self._goal_mocap].set(info["goal_vis_pos"]),
            mocap_quat=data.mocap_quat.at[self._goal_mocap].set(info["goal_quat"]),
        )

    # ----------------------------------------------------------------- observations

    def _observe(
        self, data: mjx.Data, info: dict[str, Any], rng: jax.Array
    ) -> tuple[dict[str, jax.Array], dict[str, Any]]:
        params = info["params"]
        rcfg = self.config.randomization
        k_prop, k_kp, k_pc, k_noise, k_goal = fastrand.split(rng, 5)
        scale = params["object_scale"]
        obj_pos, obj_quat = self.object_pose(data)
        kp_true = obs_lib.keypoints_world(obj_pos, obj_quat, self._kp_local, scale)
        # the goal is described at the object's *nominal* size: its true (randomized)
        # scale is a privileged physics parameter a real robot's goal spec does not know
        kp_goal = obs_lib.keypoints_world(info["goal_pos"], info["goal_quat"], self._kp_local, 1.0)
        kp_obs, info["kp_frozen"] = obs_lib.track_keypoints(
            k_kp,
            kp_true,
            info["kp_last"],
            info["kp_frozen"],
            params["keypoint_bias"],
            rcfg.observation,
            rcfg.unmodeled,
        )
        info["kp_last"] = kp_obs
        qpos = self.joint_qpos(data)
        proprio = [
            obs_lib.noisy_proprio(k_prop, qpos, params["proprio_bias"], rcfg.observation),
            info["last_action"],
        ]
        if self.config.action_mode == "delta":  # the commanded targets, in [-1, 1]
            lo, hi = jp.asarray(self._ctrl_lo), jp.asarray(self._ctrl_hi)
            proprio.append(2.0 * (data.ctrl - lo) / (hi - lo) - 1.0)
        proprio = jp.concatenate(proprio)
        cloud, mask = self._point_cloud(data, info, k_pc, k_noise, k_goal)
        parts = self.privileged_parts(data, info)
        privileged = jp.concatenate([jp.ravel(v) for v in parts.values()])
        obs = {
            "privileged": privileged.astype(jp.float32),
            "proprio": proprio.astype(jp.float32),
            "keypoints": jp.concatenate([kp_obs, kp_goal]).astype(jp.float32),
            "point_cloud": cloud.astype(jp.float32),
            "point_cloud_mask": mask,
        }
        return obs, info

    def privileged_parts(self, data: mjx.Data, info: dict[str, Any]) -> dict[str, jax.Array]:
        """The named quantities ``obs["privileged"]`` concatenates, in order: a pure
        function of an env state's ``data`` and ``info`` (see :func:`privileged_layout`)."""
        obj_pos, obj_quat = self.object_pose(data)
        scale = info["params"]["object_scale"]
        kp_true = obs_lib.keypoints_world(obj_pos, obj_quat, self._kp_local, scale)
        kp_goal = obs_lib.keypoints_world(info["goal_pos"], info["goal_quat"], self._kp_local, 1.0)
        qpos = self.joint_qpos(data)
        targets = {"joint_target": data.ctrl} if self.config.action_mode == "delta" else {}
        return {
            **targets,
            "object_pos": obj_pos,
            "object_quat": obj_quat,
            "object_vel": data.qvel[self._obj_dadr : self._obj_dadr + self._obj_nv],
            "goal_pos": info["goal_pos"],
            "goal_quat": info["goal_quat"],
            "keypoint_to_goal": kp_goal - kp_true,
            "fingertips": data.site_xpos[self._tip_ids],
            "joint_pos": qpos,
            "joint_vel": data.qvel[self._dadr],
            "last_action": info["last_action"],
            "physics": randomize.physics_vector(info["params"]),
            "task": self.task_privileged(data, info),
        }

    @property
    def privileged_layout(self) -> dict[str, slice]:
        """Where each named quantity sits in the ``privileged`` vector."""
        return privileged_layout(self)

    def _point_cloud(
        self,
        data: mjx.Data,
        info: dict[str, Any],
        k_pc: jax.Array,
        k_noise: jax.Array,
        k_goal: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        pc = self.config.point_cloud
        params = info["params"]
        if pc.source == "none":
            n = pc.num_points + pc.num_goal_points
            return jp.zeros((n, 3)), jp.zeros((n,), bool)
        scale = params["object_scale"]
        obj_pos, obj_quat = self.object_pose(data)
        if pc.source == "surface":
            local = self._surface(k_pc, scale, pc.num_points)
            points = obs_lib.keypoints_world(obj_pos, obj_quat, local, 1.0)
            mask = jp.ones((pc.num_points,), bool)
        else:
            cam = self._camera
            assert cam is not None
            cam_pos, cam_mat = obs_lib.camera_pose(
                cam, params["camera_offset"], params["camera_rotation"]
            )
            raw, hit = obs_lib.raycast_object(
                self.model_for(params),
                data,
                cam_pos,
                cam_mat,
                jp.asarray(cam.rays),
                self._obj_geom_mask,
                pc.max_depth,
            )
            points, mask = obs_lib.compact(raw, hit, pc.num_points)
        points, mask = obs_lib.noisy_points(
            k_noise, points, mask, params["point_cloud_bias"], self.config.randomization.observation
        )
        if pc.num_goal_points:
            g_local = self._surface(k_goal, 1.0, pc.num_goal_points)
            g_points = obs_lib.keypoints_world(info["goal_pos"], info["goal_quat"], g_local, 1.0)
            points = jp.concatenate([points, g_points])
            mask = jp.concatenate([mask, jp.ones((pc.num_goal_points,), bool)])
        return points, mask


def privileged_layout(env: Any) -> dict[str, slice]:
    """Name -> slice of ``obs["privileged"]`` for an env with ``privileged_parts``."""

    names: list[str] = []

    def parts(rng: jax.Array) -> tuple[jax.Array, ...]:
        state = env.reset(rng)
        named = env.privileged_parts(state.data, state.info)
        names[:] = list(named)  # a tuple out: pytrees would sort a dict's keys
        return tuple(named.values())

    shapes = [x.shape for x in jax.eval_shape(parts, jax.random.PRNGKey(0))]
    layout, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape))
        layout[name] = slice(start, start + size)
        start += size
    return layout
