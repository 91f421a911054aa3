"""Offscreen video of one episode: a policy in an unbatched env, rendered to MP4 or GIF.

MJX tasks are drawn by MuJoCo's offscreen renderer, which needs an OpenGL
context. On a machine without a display choose the backend *before* Python
imports ``mujoco`` (MuJoCo reads the variable once, at import)::

    MUJOCO_GL=egl dexdistill ...      # GPU drivers or Mesa's EGL (works on CPU-only Linux too)
    MUJOCO_GL=osmesa dexdistill ...   # pure software; needs libOSMesa + PyOpenGL

``point_mass`` has no MuJoCo model and is drawn top-down with matplotlib, so it
needs no OpenGL at all. Videos are MP4 when ``ffmpeg`` is on ``PATH`` (mediapy
calls it) and GIF otherwise. Every frame carries a small step/time label.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.envs.base import Env
from dexdistill.envs.common import checks
from dexdistill.pipelines.io import episodes

Frame = dict[str, Any]
"""Host data of one rendered step: ``step``, ``reward``, ``done``, ``metrics`` and the
physics fields (``qpos``, ``qvel``, ``mocap_pos``, ``mocap_quat`` for MJX tasks;
``pos``, ``vel``, ``goal`` for ``point_mass``)."""

Policy = Callable[[Any, Any, jax.Array], tuple[jax.Array, Any, Any]]

NO_GL_MESSAGE = (
    "cannot render MuJoCo frames: no OpenGL context could be created (MUJOCO_GL={gl!r}: {err}); "
    "set MUJOCO_GL=egl (or MUJOCO_GL=osmesa where libOSMesa is installed) before Python starts"
)
GOAL_GROUP = 4
"""Geom group of the goal markers; hidden by MuJoCo's default scene options."""


def _is_mjx(env: Env) -> bool:
    return getattr(env, "mj_model", None) is not None


def _make_rollout(env: Env, policy: Policy, initial_carry: Callable[[int], Any], steps: int):
    """Jitted ``rollout(key) -> (first fields, per-step fields [T], alive [T])``."""

    def rollout(key: jax.Array) -> tuple[Frame, Frame, jax.Array]:
        k_reset, k_act = jax.random.split(key)
        state0 = env.reset(k_reset)

        def body(carry: tuple, k: jax.Array) -> tuple[tuple, tuple]:
            state, pcarry, alive = carry
            obs = jax.tree.map(lambda x: x[None], state.obs)
            action, pcarry, _ = policy(obs, pcarry, k)
            nxt = env.step(state, action[0])
            # Hold the final state once the episode has ended (no auto-reset here).
            nxt = jax.tree.map(lambda a, b: jp.where(alive, b, a), state, nxt)
            out = (episodes.physics_fields(env, nxt), alive)
            return (nxt, pcarry, alive & (nxt.done == 0)), out

        carry0 = (state0, initial_carry(1), jp.array(True))
        _, (traj, alive) = jax.lax.scan(body, carry0, jax.random.split(k_act, steps))
        return episodes.physics_fields(env, state0), traj, alive

    return jax.jit(rollout)


def rollout_frames(
    env: Env,
    policy: Policy,
    initial_carry: Callable[[int], Any],
    key: jax.Array,
    max_steps: int | None = None,
) -> list[Frame]:
    """Runs one episode of the unbatched ``env`` in one jitted ``lax.scan``.

    ``policy(obs [1, ...], carry, key) -> (action [1, A], carry, extras)`` is
    called on a batch of one; ``initial_carry(1)`` is its first carry. The scan
    runs ``min(max_steps, env.episode_length)`` steps; frames after ``done`` are
    dropped. Returns host frames: the reset state, then one per step taken
    (so ``1 + episode length`` frames).
    """
    steps = env.episode_length if max_steps is None else min(max_steps, env.episode_length)
    checks.require("max_steps", steps, ge=1)
    first, traj, alive = jax.device_get(_make_rollout(env, policy, initial_carry, steps)(key))
    taken = int(np.sum(alive))
    frames = [first]
    frames += [jax.tree.map(lambda x, t=t: np.asarray(x[t]), traj) for t in range(taken)]
    return frames


# ----------------------------------------------------------------------------- recorded episodes


def recorded_frames(record: dict[str, Any]) -> list[Frame]:
    """Host frames of an evaluator's recorded episode (``{"first", "steps", "alive"}``, see
    :func:`envs.evaluate.make_evaluator` with ``record=episodes.physics_fields``)."""
    taken = int(np.sum(record["alive"]))
    steps = record["steps"]
    return [record["first"]] + [
        jax.tree.map(lambda x, t=t: np.asarray(x[t]), steps) for t in range(taken)
    ]


def render_recorded(
    path: str | Path,
    out: str | Path,
    width: int = 480,
    height: int = 360,
    camera: str | int | None = None,
    fps: float | None = None,
) -> Path:
    """Renders the episode :func:`~dexdistill.pipelines.io.episodes.save_episode` wrote to ``out`` (MP4, or GIF without ffmpeg)."""
    env, record = episodes.load_episode(path)
    images = render_frames(env, recorded_frames(record), width, height, camera)
    return write_video(out, images, fps if fps is not None else 1.0 / env.dt)


# ----------------------------------------------------------------------------- MuJoCo frames


FACE_COLORS = (
    (0.85, 0.15, 0.15),  # +x red
    (0.15, 0.65, 0.2),  # -x green
    (0.15, 0.35, 0.9),  # +y blue
    (0.95, 0.85, 0.15),  # -y yellow
    (0.95, 0.95, 0.95),  # +z white
    (0.55, 0.2, 0.75),  # -z purple
)
"""Colours of a box object's six faces in videos (+x, -x, +y, -y, +z, -z), so a viewer
can tell the faces apart, as on Dactyl's lettered block; the goal cube has the same."""


def _with_face_colours(env: Env) -> Any | None:
    """The task's model with a thin coloured plate on each face of its box object and goal
    (render only: no physics runs on it), or None for a task without a box object."""
    import mujoco

    build = getattr(env, "build_mjcf", None)
    if build is None:
        return None
    spec = mujoco.MjSpec.from_string(build())
    names = {b.name for b in spec.bodies}
    for body_name in (getattr(env, "object_body_name", "object"), "goal"):
        if body_name not in names:
            continue
        body = spec.body(body_name)
        for geom in [g for g in body.geoms if g.type == mujoco.mjtGeom.mjGEOM_BOX]:
            half = np.asarray(geom.size, float)
            alpha = 0.5 if body_name == "goal" else 1.0
            for k, rgb in enumerate(FACE_COLORS):
                axis, sign = k // 2, 1.0 if k % 2 == 0 else -1.0
                size, pos = 0.8 * half, np.asarray(geom.pos, float).copy()
                size[axis], pos[axis] = 0.0005, pos[axis] + sign * (half[axis] + 0.0005)
                body.add_geom(
                    type=mujoco.mjtGeom.mjGEOM_BOX,
                    size=size,
                    pos=pos,
                    rgba=[*rgb, alpha],
                    contype=0,
                    conaffinity=0,
                    group=geom.group,
                    density=0.0,
                )
    model = spec.compile()
    base = env.mj_model
    same = (model.nq, model.nv, model.nmocap) == (base.nq, base.nv, base.nmocap)
    return model if same else None


def _render_model(env: Env, width: int, height: int) -> Any:
    """A copy of ``env.mj_model`` (with coloured cube faces where the object is a box) whose
    offscreen buffer fits ``width x height``."""
    model = _with_face_colours(env) or copy.copy(env.mj_model)
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    return model


_gl_failure: list[str] = []
"""The message of this process's first failed OpenGL context, if any. MuJoCo aborts the
whole process when a second context creation fails (GLFW without a display), so a
failure is remembered and not retried."""


def make_renderer(model: Any, width: int, height: int) -> Any:
    """``mujoco.Renderer`` or a one-line ``RuntimeError`` saying OpenGL is unavailable."""
    import mujoco

    if _gl_failure:
        raise RuntimeError(_gl_failure[0])
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as err:  # mujoco raises FatalError, ImportError, AttributeError...
        gl = os.environ.get("MUJOCO_GL", "")
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        _gl_failure.append(NO_GL_MESSAGE.format(gl=gl, err=first_line))
        raise RuntimeError(_gl_failure[0]) from err


def _camera_id(model: Any, camera: str | int | None) -> int:
    """Camera id: the given name/id, else the model's ``track`` camera, else free (-1)."""
    import mujoco

    if isinstance(camera, int):
        return camera
    name = camera if camera is not None else "track"
    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    if cam < 0 and camera is not None:
        raise ValueError(f"camera={camera!r}: the model has no such camera")
    return int(cam)


def _scale_object(model: Any, env: Env, scale: float) -> None:
    """Applies the episode's randomized object scale to the render model's object geoms
    (its face plates too); ``model`` is a fresh render model, scaled once."""
    import mujoco

    name = getattr(env, "object_body_name", "object")
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if body < 0:
        return
    og = np.flatnonzero(model.geom_bodyid == body)
    model.geom_size[og] *= scale
    model.geom_pos[og] *= scale
    model.geom_rbound[og] *= scale


def render_mujoco_frames(
    env: Env, frames: Sequence[Frame], width: int, height: int, camera: str | int | None = None
) -> list[np.ndarray]:
    """Draws MJX frames with MuJoCo's offscreen renderer; returns ``[H, W, 3]`` uint8 images."""
    import mujoco

    model = _render_model(env, width, height)
    renderer = make_renderer(model, width, height)
    if "object_scale" in frames[0]:
        _scale_object(model, env, float(frames[0]["object_scale"]))
    option = mujoco.MjvOption()
    option.geomgroup[GOAL_GROUP] = 1
    cam = _camera_id(model, camera)
    data = mujoco.MjData(model)
    images = []
    try:
        for f in frames:
            data.qpos[:] = f["qpos"]
            data.qvel[:] = f["qvel"]
            if model.nmocap:
                data.mocap_pos[:] = f["mocap_pos"]
                data.mocap_quat[:] = f["mocap_quat"]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam, scene_option=option)
            images.append(renderer.render().copy())
    finally:
        renderer.close()
    return images


# ----------------------------------------------------------------------------- point_mass frames


def render_point_mass_frames(
    env: Env, frames: Sequence[Frame], width: int, height: int
) -> list[np.ndarray]:
    """Top-down matplotlib drawing of ``point_mass``: arena, goal zone, puck and its trail."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    cfg = env.config
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.05, 0.05, 0.9, 0.85))
    ax.set_aspect("equal")
    lim = cfg.arena * 1.05
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_axis_off()
    ax.add_patch(Rectangle((-cfg.arena, -cfg.arena), 2 * cfg.arena, 2 * cfg.arena, fill=False))
    goal = Circle((0, 0), cfg.success_tolerance, color="tab:green", alpha=0.35)
    puck = Circle((0, 0), cfg.radius, color="tab:blue")
    ax.add_patch(goal)
    ax.add_patch(puck)
    (trail,) = ax.plot([], [], color="tab:blue", alpha=0.4, lw=1)
    x0, y0 = (float(v) for v in frames[0]["pos"])
    ax.plot([x0], [y0], marker="x", color="tab:gray", ms=6)  # start
    images = []
    xs, ys = [], []
    for f in frames:
        x, y = (float(v) for v in f["pos"])
        xs.append(x)
        ys.append(y)
        goal.center = tuple(float(v) for v in f["goal"])
        puck.center = (x, y)
        trail.set_data(xs, ys)
        ax.set_title(_label(env, f), fontsize=9)
        canvas.draw()
        images.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return images


# ----------------------------------------------------------------------------- labels, files


def _label(env: Env, frame: Frame) -> str:
    step = int(frame["step"])
    text = f"{getattr(env, 'name', 'env')}  step {step}  t={step * env.dt:.2f} s"
    if float(frame["metrics"].get("success", 0.0)) > 0:
        text += "  success"
    return text


def _stamp(images: list[np.ndarray], env: Env, frames: Sequence[Frame]) -> list[np.ndarray]:
    """Writes the step/time label in the top-left corner of every image (PIL)."""
    from PIL import Image, ImageDraw

    out = []
    for img, f in zip(images, frames, strict=True):
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        text = _label(env, f)
        box = draw.textbbox((6, 4), text)
        draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(0, 0, 0))
        draw.text((6, 4), text, fill=(255, 255, 255))
        out.append(np.asarray(pil))
    return out


def render_frames(
    env: Env,
    frames: Sequence[Frame],
    width: int = 480,
    height: int = 360,
    camera: str | int | None = None,
) -> list[np.ndarray]:
    """Images ``[H, W, 3]`` uint8, one per frame, for an MJX task or ``point_mass``."""
    if _is_mjx(env):
        return _stamp(render_mujoco_frames(env, frames, width, height, camera), env, frames)
    if frames and "pos" in frames[0]:
        return render_point_mass_frames(env, frames, width, height)
    raise ValueError(f"cannot render {type(env).__name__}: no mj_model and no point_mass state")


def ffmpeg_available() -> bool:
    """Whether mediapy can find ``ffmpeg`` to write MP4."""
    return shutil.which("ffmpeg") is not None


def write_video(path: str | Path, images: Sequence[np.ndarray], fps: float) -> Path:
    """Writes ``images`` as MP4 (mediapy + ffmpeg) or, without ffmpeg or for ``.gif``, GIF.

    Returns the path written; its suffix becomes ``.gif`` when it fell back to GIF.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".gif" and ffmpeg_available():
        import mediapy

        mediapy.write_video(path, np.stack(images), fps=fps)
        return path
    path = path.with_suffix(".gif")
    _write_gif(path, images, fps)
    return path


def _write_gif(path: Path, images: Sequence[np.ndarray], fps: float) -> None:
    from PIL import Image

    pil = [Image.fromarray(np.asarray(img, np.uint8)) for img in images]
    duration_ms = max(10, int(round(1000.0 / fps / 10.0)) * 10)  # GIF counts centiseconds
    pil[0].save(path, save_all=True, append_images=pil[1:], duration=duration_ms, loop=0)


def render_episode(
    env: Env,
    policy: Policy,
    initial_carry: Callable[[int], Any],
    key: jax.Array,
    path: str | Path,
    width: int = 480,
    height: int = 360,
    camera: str | int | None = None,
    fps: float | None = None,
    max_steps: int | None = None,
) -> Path:
    """Rolls out one episode and writes it to ``path`` (MP4, or GIF without ffmpeg).

    ``camera``: a camera name or id (default: the model's ``track`` camera, else the
    free camera). ``fps`` defaults to ``1 / env.dt`` (real time). For MJX tasks the
    OpenGL context is created before the rollout, so a machine without one fails
    fast with a one-line ``RuntimeError``. Returns the path written.
    """
    if _is_mjx(env):  # fail before the (long) compile when there is no OpenGL
        make_renderer(_render_model(env, width, height), width, height).close()
    frames = rollout_frames(env, policy, initial_carry, key, max_steps)
    images = render_frames(env, frames, width, height, camera)
    return write_video(path, images, fps if fps is not None else 1.0 / env.dt)
