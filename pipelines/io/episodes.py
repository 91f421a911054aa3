"""Recorded episodes on disk: one evaluated episode's physics per step and the env it ran
in, in one ``.npz`` (written by the distill stage, rendered by the report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dexdistill.envs.base import Env, State
from dexdistill.pipelines import config_io
from dexdistill.pipelines.io import files


def physics_fields(env: Env, state: State) -> dict[str, Any]:
    """The small part of ``state`` needed to draw it (not the whole ``mjx.Data``).

    Works on a batched state too (every leaf keeps its batch axis), so it can be the
    ``record`` of :func:`envs.evaluate.make_evaluator`.
    """
    if getattr(env, "mj_model", None) is not None:  # an MJX task (else point_mass)
        d = state.data
        fields = {
            "qpos": d.qpos,
            "qvel": d.qvel,
            "mocap_pos": d.mocap_pos,
            "mocap_quat": d.mocap_quat,
        }
    else:
        fields = {"pos": state.data["pos"], "vel": state.data["vel"], "goal": state.info["goal"]}
    scale = state.info.get("params", {}).get("object_scale")
    if scale is not None:
        fields["object_scale"] = scale
    return {
        **fields,
        "step": state.info["step"],
        "reward": state.reward,
        "done": state.done,
        "metrics": state.metrics,
    }


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def save_episode(path: str | Path, record: dict[str, Any], task: str, env_config: Any) -> None:
    """Writes a recorded episode and the env it ran in (task, config) to one ``.npz``
    (the primary process only)."""
    env = json.dumps({"task": task, "config": config_io.to_dict(env_config)})

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: numpy adds no ``.npz`` to the name
            np.savez_compressed(f, __env__=np.asarray(env), **_flatten(record))

    files.write_atomic(path, write)


def load_episode(path: str | Path) -> tuple[Env, dict[str, Any]]:
    """``(env, record)`` from :func:`save_episode`'s file."""
    from dexdistill import envs  # here: MuJoCo reads MUJOCO_GL once, at its first import

    record: dict[str, Any] = {}
    with np.load(path) as data:
        meta = json.loads(str(data["__env__"]))
        for name in data.files:
            if name == "__env__":
                continue
            *parents, leaf = name.split("/")
            node = record
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = data[name]
    cls = type(envs.default_config(meta["task"]))
    return envs.make(meta["task"], config_io.from_dict(cls, meta["config"])), record
