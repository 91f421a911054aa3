"""Physics backends under the pure env API: MJX for GPU/TPU, MuJoCo C for CPUs.

A task's ``reset``/``step`` are pure JAX functions whatever the backend; only the
three physics calls below differ:

``init(qpos, ctrl) -> data``           a physics state at rest (no kinematics yet)
``forward(data, params) -> data``      positions-dependent quantities (poses) for ``data``
``step(data, params) -> data``         ``n_substeps`` physics steps with ``data.ctrl`` held

``params`` are the episode parameters of :mod:`envs.randomize`; both backends build
the episode's model from the nominal one with :func:`envs.randomize.model_fields`.

* :class:`MjxPhysics` runs ``mjx.step`` (``impl`` jax or warp); ``data`` is ``mjx.Data``.
* :class:`MujocoPhysics` runs the whole batch in **one host call** per control step:
  an XLA custom call (:mod:`envs.host_call`, like ``jax.pure_callback`` with
  ``vmap_method="broadcast_all"``, but cacheable) hands every env's state to
  :class:`HostSim`, which steps them with ``mujoco.rollout`` on a persistent thread
  pool, one ``MjModel`` per env carrying that env's randomized physics (rewritten
  only when its parameters change, i.e. at resets). ``data`` is :class:`HostData`, a
  small pytree with the ``mjx.Data`` field names the tasks read. Poses come back
  through frame sensors added to a copy of the model, so no kinematics runs in JAX
  and no MJX program is traced.

What the two share exactly: after ``step`` the poses (``xpos``, ``site_xpos`` ...) are
those of the state *before* the last substep, as ``mjx.Data`` after ``mjx.step`` and
``mjData`` after ``mj_step`` hold them. Where they legitimately differ: contact
detection and the solver are separate implementations, MuJoCo C integrates in float64
(the state is rounded to float32 between control steps), and the solver warm start
carried between control steps is the last substep's acceleration recovered from the
velocities (exact for Euler without implicit damping, an estimate otherwise), because
``mujoco.rollout`` does not return ``qacc_warmstart``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import time
from typing import Any, Literal

import jax
import jax.numpy as jp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx, rollout as mj_rollout

from dexdistill.envs.common import checks
from dexdistill.envs.physics import host_call
from dexdistill.envs.sim2real import randomize
from dexdistill.envs.tasks import geometry

Backend = Literal["auto", "mjx", "mujoco"]
"""``physics.backend`` values: ``auto`` picks ``mujoco`` on a CPU and ``mjx`` elsewhere."""
BACKENDS: tuple[str, ...] = checks.choices(Backend)


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``mujoco`` when JAX's default backend is the CPU, else ``mjx``."""
    checks.require("backend", backend, allowed=BACKENDS)
    if backend != "auto":
        return backend
    return "mujoco" if jax.default_backend() == "cpu" else "mjx"


def default_threads() -> int:
    """Threads of the MuJoCo C pool: ``$DEXDISTILL_PHYSICS_THREADS`` or the usable cores."""
    env = os.environ.get("DEXDISTILL_PHYSICS_THREADS")
    if env:
        return max(1, int(env))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


# --------------------------------------------------------------------------- MJX


class MjxPhysics:
    """MJX physics (any JAX device; ``impl="warp"`` on NVIDIA GPUs)."""

    name = "mjx"

    def __init__(
        self, mj_model: mujoco.MjModel, n_substeps: int, idx: randomize.ModelIndex, impl: str
    ):
        from mujoco import mjx

        self._mjx = mjx
        self.model = mjx.put_model(mj_model, impl=impl)
        self._data0 = mjx.make_data(self.model, impl=impl)
        self.n_substeps = n_substeps
        self.idx = idx

    def model_for(self, params: dict[str, jax.Array]) -> Any:
        return randomize.apply_physics(self.model, params, self.idx)

    def init(self, qpos: jax.Array, ctrl: jax.Array) -> Any:
        return self._data0.replace(qpos=qpos, ctrl=ctrl)

    def forward(self, data: Any, params: dict[str, jax.Array]) -> Any:
        return mjx.forward(self.model_for(params), data)

    def step(self, data: Any, params: dict[str, jax.Array]) -> Any:
        model = self.model_for(params)
        return jax.lax.fori_loop(0, self.n_substeps, lambda _, d: mjx.step(model, d), data)


# --------------------------------------------------------------------------- MuJoCo C


@struct.dataclass
class HostData:
    """One env's MuJoCo C physics state and poses (float32; field names as ``mjx.Data``).

    Carried between steps: ``time [], qpos [nq], qvel [nv], act [na], qacc_warmstart [nv]``;
    inputs of a step: ``ctrl [nu], mocap_pos [nmocap, 3], mocap_quat [nmocap, 4],
    xfrc_applied [nbody, 6]``; outputs (poses): ``xpos [nbody, 3], xquat [nbody, 4],
    site_xpos [nsite, 3]``, and ``geom_xpos [G, 3], geom_xmat [G, 3, 3]`` (G = ngeom
    when the task ray-casts, else 0).
    """

    time: jax.Array
    qpos: jax.Array
    qvel: jax.Array
    act: jax.Array
    qacc_warmstart: jax.Array
    ctrl: jax.Array
    mocap_pos: jax.Array
    mocap_quat: jax.Array
    xfrc_applied: jax.Array
    xpos: jax.Array
    xquat: jax.Array
    site_xpos: jax.Array
    geom_xpos: jax.Array
    geom_xmat: jax.Array


def with_pose_sensors(model: mujoco.MjModel, xml: str, geoms: bool) -> mujoco.MjModel:
    """``model`` recompiled from ``xml`` with frame sensors reading every pose the env uses.

    Sensors, in this order: position of every body but the world (``[nbody-1, 3]``), their
    orientations (``[nbody-1, 4]``), every site position (``[nsite, 3]``) and, with
    ``geoms``, every geom position and orientation. They add no physics.

    Textures are dropped (this model only steps; renderers use the task's ``mj_model``):
    a 256 x 256 checker is 190 KB of a 233 KB model, and with one model copy per env
    those bytes spread the parts the physics reads over more memory (bare
    ``mujoco.rollout`` with one model per env: trifinger_cube 7% faster without).
    """
    spec = mujoco.MjSpec.from_string(xml)
    for mat in spec.materials:
        mat.textures = [""] * len(mat.textures)
    for tex in list(spec.textures):
        spec.delete(tex)
    obj = mujoco.mjtObj
    sens = mujoco.mjtSensor
    bodies = list(spec.bodies)[1:]
    for i, b in enumerate(bodies):
        b.name = b.name or f"_dexdistill_body{i}"
    sites = list(spec.sites)
    for i, s in enumerate(sites):
        s.name = s.name or f"_dexdistill_site{i}"
    plan = [(sens.mjSENS_FRAMEPOS, obj.mjOBJ_XBODY, b.name) for b in bodies]
    plan += [(sens.mjSENS_FRAMEQUAT, obj.mjOBJ_XBODY, b.name) for b in bodies]
    plan += [(sens.mjSENS_FRAMEPOS, obj.mjOBJ_SITE, s.name) for s in sites]
    if geoms:
        gs = list(spec.geoms)
        for i, g in enumerate(gs):
            g.name = g.name or f"_dexdistill_geom{i}"
        plan += [(sens.mjSENS_FRAMEPOS, obj.mjOBJ_GEOM, g.name) for g in gs]
        plan += [(sens.mjSENS_FRAMEQUAT, obj.mjOBJ_GEOM, g.name) for g in gs]
    for kind, objtype, name in plan:
        spec.add_sensor(type=kind, objtype=objtype, objname=name)
    out = spec.compile()
    for attr in ("timestep", "iterations", "ls_iterations"):  # set after compiling the xml
        setattr(out.opt, attr, getattr(model.opt, attr))
    sizes = ("nq", "nv", "nu", "na", "nbody", "ngeom", "nsite", "nmocap")
    if any(getattr(out, k) != getattr(model, k) for k in sizes):
        raise RuntimeError("adding pose sensors changed the model's sizes")
    return out


STEP_FIELDS: tuple[str, ...] = (*randomize.MODEL_FIELDS, "gravity")
"""Every randomized field a stepping model carries (``gravity`` is ``opt.gravity``)."""


class _Batch:
    """Per-batch-size buffers and one ``MjModel`` per env (host side)."""

    def __init__(self, sim: HostSim, size: int):
        m = sim.model
        self.models = [copy.copy(m) for _ in range(size)]
        self.params = np.full((size, sim.nparams), np.nan, np.float32)
        n = sim.n_substeps
        self.state0 = np.zeros((size, sim.nstate))
        self.warm0 = np.zeros((size, m.nv))
        self.control = {k: np.zeros((size, k, sim.ncontrol)) for k in {1, n}}
        self.state = {k: np.zeros((size, k, sim.nstate)) for k in {1, n}}
        self.sensors = {k: np.zeros((size, k, m.nsensordata)) for k in {1, n}}


class HostSim:
    """MuJoCo C stepping of a batch of envs (numpy in, numpy out; runs on the host).

    Called through a custom call (:mod:`envs.host_call`) with one packed float32 row per env (see
    :meth:`layout`) and leading batch axes ``[*B]`` (flattened here). Deterministic: an
    env's result depends only on its row, not on the thread that stepped it.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        n_substeps: int,
        idx: randomize.ModelIndex,
        param_sizes: dict[str, tuple[int, ...]],
        nthread: int,
        pose_fields: tuple[str, ...] = (),
    ):
        """``pose_fields``: the randomized model fields (of :func:`randomize.model_fields`)
        that the pose sensors depend on, the only ones :meth:`forward` writes: ``geom_pos``
        with geom sensors; none otherwise (body and site poses depend on ``qpos`` and on
        fields no randomization touches)."""
        S = mujoco.mjtState
        self.model = model
        self.n_substeps = n_substeps
        self.idx = idx
        self.param_shapes = {k: param_sizes[k] for k in randomize.MODEL_KEYS}
        self.nparams = sum(int(np.prod(v)) for v in self.param_shapes.values())
        self.nstate = mujoco.mj_stateSize(model, S.mjSTATE_FULLPHYSICS)
        if self.nstate != 1 + model.nq + model.nv + model.na:
            raise ValueError("MuJoCo C backend: models with plugins or history are not supported")
        self.control_spec = int(
            S.mjSTATE_CTRL | S.mjSTATE_XFRC_APPLIED | S.mjSTATE_MOCAP_POS | S.mjSTATE_MOCAP_QUAT
        )
        self.ncontrol = mujoco.mj_stateSize(model, self.control_spec)
        self.nominal = randomize.nominal_fields(model)
        self.nthread = nthread
        self._pool = mj_rollout.Rollout(nthread=nthread)
        self._datas = [mujoco.MjData(model) for _ in range(max(1, nthread))]
        self.pose_fields = pose_fields
        self._batches: dict[tuple[str, int], _Batch] = {}
        """``(kind, size) -> _Batch``: ``step`` and ``forward`` keep their own models, so a
        reset's forward, which sees every env's fresh parameters under ``vmap`` and
        ``where``, does not rewrite the models of the envs that did not reset."""
        self.model_writes = 0
        """Env models rewritten so far by :meth:`step` (for tests and profiling)."""
        self._lock = threading.Lock()
        self.calls = 0
        self.busy_s = 0.0
        """Seconds spent inside :meth:`step` and :meth:`forward` (host side), for profiling."""
        self.rollout_s = 0.0
        """Of which inside ``mujoco.rollout``."""

    @property
    def in_width(self) -> int:
        """Row of a call: ``[params | time qpos qvel act | qacc_warmstart | ctrl xfrc mocap]``."""
        return self.nparams + self.nstate + self.model.nv + self.ncontrol

    @property
    def out_width(self) -> int:
        """Row of a step's result: ``[time qpos qvel act | qacc_warmstart | pose sensors]``."""
        return self.nstate + self.model.nv + self.model.nsensordata

    # ------------------------------------------------------------------ helpers

    def _update_models(self, batch: _Batch, flat: np.ndarray, names: tuple[str, ...]) -> int:
        """Writes the fields ``names`` (of :data:`STEP_FIELDS`) into the models of envs whose
        physics parameters ``flat [B, P]`` changed; returns how many envs' models it wrote."""
        if not names:
            return 0
        changed = np.nonzero(np.any(flat != batch.params, axis=1))[0]
        if changed.size == 0:
            return 0
        rows, o = {}, 0
        for k, shape in self.param_shapes.items():
            n = int(np.prod(shape))
            rows[k] = flat[changed, o : o + n].reshape(len(changed), *shape)
            o += n
        fields = randomize.model_fields(self.nominal, rows, self.idx, np)
        for j, r in enumerate(changed):
            m = batch.models[r]
            for name in names:
                target = m.opt.gravity if name == "gravity" else getattr(m, name)
                target[...] = fields[name][j]
        batch.params[changed] = flat[changed]
        return int(changed.size)

    def _prepare(self, rows: np.ndarray, nstep: int, kind: str) -> tuple[_Batch, tuple[int, ...]]:
        lead = rows.shape[:-1]
        x = rows.reshape(-1, rows.shape[-1])
        if x.shape[1] != self.in_width:
            raise ValueError(f"host physics: row width {x.shape[1]}, expected {self.in_width}")
        size = x.shape[0]
        if (kind, size) not in self._batches:
            self._batches[kind, size] = _Batch(self, size)
        batch = self._batches[kind, size]
        p, ns, nv = self.nparams, self.nstate, self.model.nv
        if kind == "step":
            self.model_writes += self._update_models(batch, x[:, :p], STEP_FIELDS)
        else:
            self._update_models(batch, x[:, :p], self.pose_fields)
        batch.state0[:] = x[:, p : p + ns]
        batch.warm0[:] = x[:, p + ns : p + ns + nv]
        batch.control[nstep][:] = x[:, None, p + ns + nv :]
        return batch, lead

    def _run(self, batch: _Batch, nstep: int) -> tuple[np.ndarray, np.ndarray]:
        state, sensors = batch.state[nstep], batch.sensors[nstep]
        t0 = time.perf_counter()
        self._pool.rollout(
            batch.models,
            self._datas,
            batch.state0,
            batch.control[nstep],
            control_spec=self.control_spec,
            skip_checks=True,
            nstep=nstep,
            initial_warmstart=batch.warm0,
            state=state,
            sensordata=sensors,
        )
        self.rollout_s += time.perf_counter() - t0
        self.calls += 1
        return state, sensors

    # ------------------------------------------------------------------ entry points

    def step(self, rows: np.ndarray) -> np.ndarray:
        """``n_substeps`` steps of every env: ``[*B, in_width] -> [*B, out_width]``."""
        m, n = self.model, self.n_substeps
        qv = slice(1 + m.nq, 1 + m.nq + m.nv)
        t0 = time.perf_counter()
        with self._lock:
            batch, lead = self._prepare(np.asarray(rows), n, "step")
            state, sensors = self._run(batch, n)
            final = state[:, -1]
            prev_qvel = state[:, -2, qv] if n > 1 else batch.state0[:, qv]
            dt = m.opt.timestep
            warm = (final[:, qv] - prev_qvel) / dt
            out = np.concatenate([final, warm, sensors[:, -1]], axis=1).astype(np.float32)
            # a diverging env is reset to qpos0 by MuJoCo (time back to 0): report NaN
            bad = np.abs(final[:, 0] - (batch.state0[:, 0] + n * dt)) > 0.5 * dt
            out[bad, 1 : 1 + m.nq] = np.nan
            self.busy_s += time.perf_counter() - t0
        return out.reshape(lead + out.shape[1:])

    def forward(self, rows: np.ndarray) -> np.ndarray:
        """The pose sensors of every env's current state: ``[*B, in_width] -> [*B, S]``."""
        t0 = time.perf_counter()
        with self._lock:
            batch, lead = self._prepare(np.asarray(rows), 1, "forward")
            _, sensors = self._run(batch, 1)
            out = sensors[:, 0].astype(np.float32)
            self.busy_s += time.perf_counter() - t0
        return out.reshape(lead + out.shape[1:])


_HOSTS: dict[str, HostSim] = {}
"""The host simulator of each :func:`host_key` in this process (the custom calls' targets)."""


def host_key(model: mujoco.MjModel, n_substeps: int, param_shapes: dict[str, Any]) -> str:
    """A name for the host simulator of ``model``: equal in every process for an equal
    model, substeps and parameter layout (compiled programs refer to it; see
    :mod:`envs.host_call`)."""
    buffer = np.zeros(mujoco.mj_sizeModel(model), np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    digest = hashlib.sha1(buffer.tobytes())
    layout = sorted((k, tuple(int(d) for d in v)) for k, v in param_shapes.items())
    digest.update(repr((n_substeps, layout)).encode())
    return digest.hexdigest()[:20]


class MujocoPhysics:
    """MuJoCo C physics through one host call per batch and control step (CPUs)."""

    name = "mujoco"

    def __init__(
        self,
        mj_model: mujoco.MjModel,
        xml: str,
        n_substeps: int,
        idx: randomize.ModelIndex,
        param_shapes: dict[str, tuple[int, ...]],
        raycast: bool,
        nthread: int | None = None,
    ):
        self.mj_model = mj_model
        self.sensor_model = with_pose_sensors(mj_model, xml, geoms=raycast)
        self.key = host_key(self.sensor_model, n_substeps, param_shapes)
        if self.key in _HOSTS:  # an equal model in this process: share its host simulator
            self.host = _HOSTS[self.key]
        else:
            self.host = HostSim(
                self.sensor_model,
                n_substeps,
                idx,
                param_shapes,
                nthread or default_threads(),
                pose_fields=("geom_pos",) if raycast else (),
            )
            _HOSTS[self.key] = self.host
            host_call.register(f"{self.key}.step", self.host.step)
            host_call.register(f"{self.key}.forward", self.host.forward)
        self.n_substeps = n_substeps
        self.raycast = raycast
        m = mj_model
        self._sizes = (m.nbody, m.nsite, m.ngeom if raycast else 0)
        mocap_bodies = np.nonzero(m.body_mocapid >= 0)[0]
        mocap_bodies = mocap_bodies[np.argsort(m.body_mocapid[mocap_bodies])]
        self._mocap0 = (
            np.asarray(m.body_pos[mocap_bodies], np.float32),
            np.asarray(m.body_quat[mocap_bodies], np.float32),
        )

    def init(self, qpos: jax.Array, ctrl: jax.Array) -> HostData:
        m = self.mj_model
        nbody, nsite, ng = self._sizes
        z = lambda *s: jp.zeros(s, jp.float32)  # noqa: E731
        return HostData(
            time=z(),
            qpos=qpos.astype(jp.float32),
            qvel=z(m.nv),
            act=z(m.na),
            qacc_warmstart=z(m.nv),
            ctrl=ctrl.astype(jp.float32),
            mocap_pos=jp.asarray(self._mocap0[0]),
            mocap_quat=jp.asarray(self._mocap0[1]),
            xfrc_applied=z(nbody, 6),
            xpos=z(nbody, 3),
            xquat=jp.tile(jp.array([1.0, 0, 0, 0]), (nbody, 1)),
            site_xpos=z(nsite, 3),
            geom_xpos=z(ng, 3),
            geom_xmat=jp.tile(jp.eye(3), (ng, 1, 1)),
        )

    @staticmethod
    def _row(data: HostData, params: dict[str, jax.Array]) -> jax.Array:
        """One env's packed call row (see :attr:`HostSim.in_width`)."""
        parts = [params[k] for k in randomize.MODEL_KEYS]
        parts += [data.time, data.qpos, data.qvel, data.act, data.qacc_warmstart]
        parts += [data.ctrl, data.xfrc_applied, data.mocap_pos, data.mocap_quat]
        return jp.concatenate([jp.ravel(x).astype(jp.float32) for x in parts])

    def _with_poses(self, data: HostData, sensors: jax.Array) -> HostData:
        """Unpacks the pose sensors ``[S]`` into ``xpos``, ``xquat``, ``site_xpos``, geoms."""
        nbody, nsite, ng = self._sizes
        nb = nbody - 1
        cuts = np.cumsum([3 * nb, 4 * nb, 3 * nsite, 3 * ng])
        pos, quat, site, gpos, gquat = jp.split(sensors, cuts)
        xpos = jp.concatenate([jp.zeros((1, 3)), pos.reshape(nb, 3)])
        xquat = jp.concatenate([jp.array([[1.0, 0, 0, 0]]), quat.reshape(nb, 4)])
        data = data.replace(xpos=xpos, xquat=xquat, site_xpos=site.reshape(nsite, 3))
        if ng:
            gmat = geometry.quat_to_mat(gquat.reshape(ng, 4))  # batched: [ng, 3, 3]
            data = data.replace(geom_xpos=gpos.reshape(ng, 3), geom_xmat=gmat)
        return data

    def forward(self, data: HostData, params: dict[str, jax.Array]) -> HostData:
        ns = self.sensor_model.nsensordata
        sensors = host_call.call(f"{self.key}.forward", self._row(data, params), ns)
        return self._with_poses(data, sensors)

    def step(self, data: HostData, params: dict[str, jax.Array]) -> HostData:
        m = self.mj_model
        out = host_call.call(f"{self.key}.step", self._row(data, params), self.host.out_width)
        cuts = np.cumsum([1, m.nq, m.nv, m.na, m.nv])
        t, qpos, qvel, act, warm, sensors = jp.split(out, cuts)
        data = data.replace(time=t[0], qpos=qpos, qvel=qvel, act=act, qacc_warmstart=warm)
        return self._with_poses(data, sensors)
