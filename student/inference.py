"""Numpy-only inference for an exported student policy (no jax, flax or mujoco).

This file is copied verbatim into every exported artifact as
``dexdistill_student.py``, so a robot computer needs only numpy::

    import sys
    sys.path.insert(0, "path/to/artifact")
    import dexdistill_student

    policy = dexdistill_student.StudentPolicy.load("path/to/artifact")
    carry = policy.initial_carry(1)
    action, carry, extras = policy(obs, carry)  # obs: {key: [1, *shape]}
    carry = policy.reset(carry, done)           # at an episode boundary

It computes, step for step, what ``student.networks.StudentModule`` computes in
flax (float32): swish MLPs, a masked PointNet (max + mean pooling), then a GRU
(``flax.linen.GRUCell``), an LSTM (``flax.linen.OptimizedLSTMCell``, carry
``(c, h)``), a stacked window of the last ``history`` encodings, or nothing,
then a Gaussian head: ``mean = tanh(loc)``, ``std = softplus(.) + min_std``.
The deterministic action is the mean; a sampled one is
``clip(mean + std * noise, -1, 1)``, as ``make_policy`` does.

An artifact directory holds ``student.json`` (the architecture, observation
spec and action size), ``params.npz`` (the flax parameters, one array per
``/``-joined path such as ``params/ObservationEncoder_0/Dense_0/kernel``) and
this file. Only the standard library and numpy may be imported here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

FORMAT = "dexdistill.student"
FORMAT_VERSION = 1
CONFIG_FILE = "student.json"
PARAMS_FILE = "params.npz"

MEMORIES = ("gru", "lstm", "stack", "none")
MODALITIES = ("keypoints", "point_cloud")

_F32 = np.float32


class ArraySpec(NamedTuple):
    """Shape and dtype of one observation entry, for a single (unbatched) step."""

    shape: tuple[int, ...]
    dtype: str


# --------------------------------------------------------------------------- math


# Activations go through tanh (sigmoid(x) = (1 + tanh(x / 2)) / 2): no overflow for any
# x, and few numpy calls, done in place where possible (per-call overhead dominates at
# batch 1). Python float scalars keep float32 arrays float32.


def _swish(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x) = h + h * tanh(h)`` with ``h = x / 2``; a new array."""
    h = x * 0.5
    t = np.tanh(h)
    t *= h
    t += h
    return t


def _sigmoid(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x * 0.5)
    t *= 0.5
    t += 0.5
    return t


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, 0.0, dtype=_F32)


class _Dense(NamedTuple):
    kernel: np.ndarray
    bias: np.ndarray | None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.kernel
        if self.bias is not None:
            y += self.bias
        return y


def _mlp(x: np.ndarray, layers: list[_Dense]) -> np.ndarray:
    for layer in layers:
        x = _swish(layer(x))
    return x


class _Params:
    """Reads flat ``/``-joined parameter paths, naming modules the way flax does.

    Inside one flax module, unnamed submodules are called ``<Class>_<n>`` with
    one counter per class, in the order they are created; :meth:`child`
    reproduces that order. Every array taken is recorded, so :meth:`unused`
    can reject an artifact whose parameters do not fit the configuration.
    """

    def __init__(self, flat: Mapping[str, np.ndarray], prefix: str, used: set[str]):
        self._flat = flat
        self._prefix = prefix
        self._used = used
        self._counts: dict[str, int] = {}

    @classmethod
    def root(cls, flat: Mapping[str, np.ndarray]) -> _Params:
        return cls(flat, "params", set())

    def child(self, kind: str) -> _Params:
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        return self.named(f"{kind}_{n}")

    def named(self, name: str) -> _Params:
        return _Params(self._flat, f"{self._prefix}/{name}", self._used)

    def array(self, name: str) -> np.ndarray:
        path = f"{self._prefix}/{name}"
        if path not in self._flat:
            raise ValueError(
                f"student parameters have no {path!r}: the parameters do not match the "
                f"student configuration"
            )
        self._used.add(path)
        return np.ascontiguousarray(self._flat[path], dtype=_F32)

    def dense(self, name: str | None = None, bias: bool = True) -> _Dense:
        scope = self.child("Dense") if name is None else self.named(name)
        return _Dense(scope.array("kernel"), scope.array("bias") if bias else None)

    def unused(self) -> list[str]:
        return sorted(set(self._flat) - self._used)


def _config_from(config: Mapping[str, Any]) -> dict[str, Any]:
    """The student configuration with defaults filled in and values checked."""
    defaults: dict[str, Any] = {
        "modality": "keypoints",
        "extra_keys": ("proprio",),
        "encoder_hidden": (64, 64),
        "pointnet_hidden": None,  # artifacts exported before it existed: encoder_hidden
        "proprio_hidden": (64,),
        "memory": "gru",
        "memory_size": 128,
        "history": 4,
        "head_hidden": (128,),
        "min_std": 0.05,
        "aux_outputs": 0,
        "num_goal_points": 0,
        "proprio_last_action": "executed",
    }
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(f"unknown student config field(s) {unknown}; known: {sorted(defaults)}")
    cfg = {**defaults, **dict(config)}
    if cfg["pointnet_hidden"] is None:
        cfg["pointnet_hidden"] = cfg["encoder_hidden"]
    for name in (
        "extra_keys",
        "encoder_hidden",
        "pointnet_hidden",
        "proprio_hidden",
        "head_hidden",
    ):
        cfg[name] = tuple(cfg[name])
    if cfg["modality"] not in MODALITIES:
        raise ValueError(f"student.modality={cfg['modality']!r}: allowed values are {MODALITIES}")
    if cfg["memory"] not in MEMORIES:
        raise ValueError(f"student.memory={cfg['memory']!r}: allowed values are {MEMORIES}")
    if "privileged" in cfg["extra_keys"]:
        raise ValueError("a student may not read observation key 'privileged'")
    for name in ("memory_size", "history"):
        if int(cfg[name]) < 1:
            raise ValueError(f"student.{name}={cfg[name]}: must be >= 1")
    return cfg


def _input_keys(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    keys = (cfg["modality"], *cfg["extra_keys"])
    if cfg["modality"] == "point_cloud":
        keys = (*keys, "point_cloud_mask")
    return keys


def _spec_from(value: Any) -> ArraySpec:
    if isinstance(value, Mapping):
        shape, dtype = value["shape"], value["dtype"]
    else:  # an ArraySpec-like object with .shape and .dtype
        shape, dtype = value.shape, value.dtype
    return ArraySpec(tuple(int(s) for s in shape), str(np.dtype(dtype)))


# --------------------------------------------------------------------------- policy


class StudentPolicy:
    """A student policy evaluated with numpy, equal to the flax module it was exported from.

    ``policy(obs, carry) -> (action [B, A], carry, extras)`` with ``extras``
    holding ``mean``, ``std`` (and ``aux``, empty unless the student has an
    auxiliary head). ``obs`` maps every key of :attr:`observation_spec` to an
    array of shape ``[B, *shape]``, or ``shape`` for one unbatched step (then
    the outputs are unbatched too). Keys the student does not read are ignored.

    The carry is a numpy array (``gru``: ``[B, memory_size]``; ``stack``:
    ``[B, history, encoding_size]``; ``none``: ``[B, 0]``) or, for ``lstm``, a
    tuple ``(c, h)`` of two ``[B, memory_size]`` arrays, as in flax. Start each
    episode from :meth:`initial_carry` and call :meth:`reset` with the ``done``
    flags between steps. Passing ``carry=None`` starts from a fresh carry.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        params: Mapping[str, np.ndarray],
        observation_spec: Mapping[str, Any],
        action_size: int,
    ):
        cfg = _config_from(config)
        self._config = cfg
        self._keys = _input_keys(cfg)
        missing = [k for k in self._keys if k not in observation_spec]
        if missing:
            raise ValueError(
                f"observation spec has no {missing}; the student reads {list(self._keys)}"
            )
        self._spec = {k: _spec_from(observation_spec[k]) for k in self._keys}
        self._action_size = int(action_size)
        self._min_std = _F32(cfg["min_std"])
        self._meta: dict[str, Any] = {}
        self._build(params)
        self._encoding_size = int(self._encode(self._zeros_obs(1)).shape[-1])
        first = self.initial_carry(None)
        self._carry_shape = (first[0] if isinstance(first, tuple) else first).shape
        self._check_shapes()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path) -> StudentPolicy:
        """Reads an artifact directory (or its ``student.json``) written by the exporter."""
        path = Path(path)
        directory = path.parent if path.is_file() else path
        doc_path = directory / CONFIG_FILE
        if not doc_path.is_file():
            raise FileNotFoundError(f"{doc_path} not found: not a student artifact directory")
        doc = json.loads(doc_path.read_text())
        version = doc.get("format_version")
        if doc.get("format") != FORMAT or not isinstance(version, int):
            raise ValueError(f"{doc_path} is not a {FORMAT} artifact")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{doc_path} has format_version {version}; this reader understands "
                f"<= {FORMAT_VERSION} (export it again or use the dexdistill_student.py next to it)"
            )
        with np.load(directory / PARAMS_FILE, allow_pickle=False) as npz:
            params = {name: npz[name] for name in npz.files}
        policy = cls(doc["student"], params, doc["observation_spec"], doc["action_size"])
        policy._meta = dict(doc.get("meta") or {})
        return policy

    def _build(self, flat: Mapping[str, np.ndarray]) -> None:
        cfg = self._config
        root = _Params.root(flat)
        enc = root.child("ObservationEncoder")
        if cfg["modality"] == "point_cloud":
            pn = enc.child("PointNetEncoder")
            self._object_layers = [pn.dense() for _ in cfg["pointnet_hidden"]]
        else:
            self._object_layers = [enc.dense() for _ in cfg["encoder_hidden"]]
        self._extra_layers = [enc.dense() for _ in cfg["proprio_hidden"]]

        memory = cfg["memory"]
        if memory == "gru":
            cell = root.child("GRUCell")
            ins = [cell.dense(n) for n in ("ir", "iz", "in")]
            hid = [cell.dense(n, bias=False) for n in ("hr", "hz")] + [cell.dense("hn")]
            size = hid[0].kernel.shape[-1]
            # one matmul for the input gates, one for the recurrent ones (r, z, n)
            self._cell_in = _Dense(
                np.concatenate([d.kernel for d in ins], -1),
                np.concatenate([d.bias for d in ins], -1),
            )
            self._cell_h = _Dense(
                np.concatenate([d.kernel for d in hid], -1),
                np.concatenate([np.zeros(2 * size, _F32), hid[2].bias]),
            )
        elif memory == "lstm":
            cell = root.child("OptimizedLSTMCell")
            gates = ("i", "f", "g", "o")
            ins = [cell.dense("i" + g, bias=False) for g in gates]
            hid = [cell.dense("h" + g) for g in gates]
            self._cell_in = _Dense(np.concatenate([d.kernel for d in ins], -1), None)
            self._cell_h = _Dense(
                np.concatenate([d.kernel for d in hid], -1),
                np.concatenate([d.bias for d in hid], -1),
            )
        self._head_layers = [root.dense() for _ in cfg["head_hidden"]]
        # loc, std (and aux) read the same features: one matmul for all of them
        outs = [root.dense(), root.dense()]
        if cfg["aux_outputs"]:
            outs.append(root.dense())
        self._out = _Dense(
            np.concatenate([d.kernel for d in outs], -1),
            np.concatenate([d.bias for d in outs], -1),
        )
        unused = root.unused()
        if unused:
            raise ValueError(
                f"student parameters {unused[:4]}{'...' if len(unused) > 4 else ''} are not "
                f"used by the configured architecture: configuration and parameters disagree"
            )

    def _check_shapes(self) -> None:
        a, x = self._action_size, int(self._config["aux_outputs"])
        if self._out.kernel.shape[-1] != 2 * a + x:
            raise ValueError(
                f"action head has {self._out.kernel.shape[-1]} outputs; "
                f"action_size={a} and aux_outputs={x} need {2 * a + x}"
            )
        memory, size = self._config["memory"], int(self._config["memory_size"])
        if memory in ("gru", "lstm") and self._cell_h.kernel.shape[0] != size:
            raise ValueError(
                f"{memory} parameters have {self._cell_h.kernel.shape[0]} units; memory_size={size}"
            )

    # ------------------------------------------------------------------ properties

    @property
    def observation_spec(self) -> dict[str, ArraySpec]:
        """The keys the student reads, with the shape and dtype of one step."""
        return dict(self._spec)

    @property
    def action_size(self) -> int:
        return self._action_size

    @property
    def config(self) -> dict[str, Any]:
        """The student architecture (``student.networks.StudentConfig`` fields)."""
        return dict(self._config)

    @property
    def memory(self) -> str:
        return self._config["memory"]

    @property
    def encoding_size(self) -> int:
        """Size of one observation's encoding (what ``stack`` keeps per step)."""
        return self._encoding_size

    @property
    def meta(self) -> dict[str, Any]:
        """The ``meta`` dict stored with the artifact (task, training steps...)."""
        return dict(self._meta)

    def __repr__(self) -> str:
        cfg = self._config
        spec = ", ".join(f"{k}: {list(s.shape)}" for k, s in self._spec.items())
        return (
            f"StudentPolicy(modality={cfg['modality']!r}, memory={cfg['memory']!r}, "
            f"action_size={self._action_size}, obs={{{spec}}})"
        )

    # ------------------------------------------------------------------ carry

    def initial_carry(self, batch: int | None = 1) -> Any:
        """The carry of a fresh episode for ``batch`` envs (``None``: one unbatched env)."""
        lead = () if batch is None else (int(batch),)
        cfg = self._config
        if cfg["memory"] in ("gru", "lstm"):
            h = np.zeros((*lead, int(cfg["memory_size"])), _F32)
            return (h, h.copy()) if cfg["memory"] == "lstm" else h
        if cfg["memory"] == "stack":
            return np.zeros((*lead, int(cfg["history"]), self._encoding_size), _F32)
        return np.zeros((*lead, 0), _F32)

    def reset(self, carry: Any, done: Any) -> Any:
        """Zeroes the memory of the envs whose episode ended (``done [B] > 0``); a new carry."""
        if carry is None:
            return None
        done = np.asarray(done)
        if isinstance(carry, (tuple, list)):
            return tuple(self.reset(c, done) for c in carry)
        carry = np.asarray(carry, _F32)
        unbatched_ndim = 2 if self._config["memory"] == "stack" else 1
        if carry.ndim == unbatched_ndim:  # one env: ``done`` is a scalar
            return np.zeros_like(carry) if np.any(done > 0) else carry.copy()
        done = done.reshape(-1, *([1] * (carry.ndim - 1)))
        return np.where(done > 0, _F32(0.0), carry).astype(_F32)

    # ------------------------------------------------------------------ forward

    def __call__(
        self,
        obs: Mapping[str, Any],
        carry: Any = None,
        deterministic: bool = True,
        rng: np.random.Generator | int | None = None,
    ) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        """One step: ``(action [B, A], new carry, {"mean", "std", "aux"})``.

        ``deterministic=False`` samples ``clip(mean + std * noise, -1, 1)`` with
        ``rng`` (a ``numpy.random.Generator`` or a seed; ``None``: fresh entropy).
        """
        x, batched = self._prepare(obs)
        batch = next(iter(x.values())).shape[0]
        if carry is None:
            carry = self.initial_carry(batch if batched else None)
        c, carry_batched = self._prepare_carry(carry, batch, batched)
        c, mean, std, aux = self._step(x, c)
        if deterministic:
            action = mean.copy()
        else:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            noise = gen.standard_normal(mean.shape, dtype=_F32)
            action = np.clip(mean + std * noise, _F32(-1.0), _F32(1.0))
        if not carry_batched:
            c = tuple(v[0] for v in c) if isinstance(c, tuple) else c[0]
        extras = {"mean": mean, "std": std, "aux": aux}
        if not batched:
            action = action[0]
            extras = {k: v[0] for k, v in extras.items()}
        return action, c, extras

    def _step(
        self, obs: dict[str, np.ndarray], carry: Any
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        cfg = self._config
        x = self._encode(obs)
        memory = cfg["memory"]
        if memory == "gru":
            h = carry
            size = h.shape[-1]
            gi = self._cell_in(x)  # [ir | iz | in]
            gh = self._cell_h(h)  # [hr | hz | hn]
            rz = _sigmoid(gi[:, : 2 * size] + gh[:, : 2 * size])
            r, z = rz[:, :size], rz[:, size:]
            n = np.tanh(gi[:, 2 * size :] + r * gh[:, 2 * size :])
            h = n + z * (h - n)  # = (1 - z) * n + z * h
            carry, x = h, h
        elif memory == "lstm":
            c, h = carry
            size = h.shape[-1]
            g = self._cell_h(h)  # [i | f | g | o], as flax concatenates them
            g += self._cell_in(x)
            s = _sigmoid(g)  # one call for i, f, o (the g block is not used)
            i, f, o = s[:, :size], s[:, size : 2 * size], s[:, 3 * size :]
            u = np.tanh(g[:, 2 * size : 3 * size])
            c = f * c + i * u
            h = o * np.tanh(c)
            carry, x = (c, h), h
        elif memory == "stack":
            carry = np.concatenate([carry[:, 1:], x[:, None]], axis=1)
            x = carry.reshape(carry.shape[0], -1)
        h = _mlp(x, self._head_layers)
        out = self._out(h)
        a = self._action_size
        mean = np.tanh(out[:, :a])
        std = _softplus(out[:, a : 2 * a])
        std += self._min_std
        aux = out[:, 2 * a :] if cfg["aux_outputs"] else np.zeros((out.shape[0], 0), _F32)
        return carry, mean, std, aux

    def _encode(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        cfg = self._config
        if cfg["modality"] == "point_cloud":
            points = obs["point_cloud"]
            num_goal = int(cfg["num_goal_points"])
            if num_goal:  # goal indicator channel, as in the flax PointNetEncoder
                flag = np.zeros((*points.shape[:-1], 1), points.dtype)
                flag[..., -num_goal:, :] = 1.0
                points = np.concatenate([points, flag], axis=-1)
            feats = _mlp(points, self._object_layers)  # [B, N, H]
            mask = obs["point_cloud_mask"]  # [B, N] bool
            if mask.shape[-1] and mask.all():  # the same numbers, without masking passes
                max_pool = feats.max(axis=-2)
                mean_pool = feats.sum(axis=-2) / _F32(mask.shape[-1])
            else:
                m = mask[..., None]
                max_pool = np.where(m, feats, np.finfo(_F32).min).max(axis=-2)
                max_pool = np.where(mask.any(axis=-1, keepdims=True), max_pool, _F32(0.0))
                count = np.maximum(mask.sum(axis=-1, keepdims=True), 1).astype(_F32)
                mean_pool = np.where(m, feats, _F32(0.0)).sum(axis=-2) / count
            obj = np.concatenate([max_pool, mean_pool], axis=-1)
        else:
            kp = obs["keypoints"]
            obj = _mlp(kp.reshape(kp.shape[0], -1), self._object_layers)
        parts = []
        for k in cfg["extra_keys"]:
            x = obs[k].reshape(obs[k].shape[0], -1)
            if k == "proprio" and cfg["proprio_last_action"] == "none":
                x = x.copy()
                x[:, x.shape[1] - self._action_size :] = 0.0  # as the trained student saw it
            parts.append(x)
        extra = np.concatenate(parts, axis=-1)
        return np.concatenate([obj, _mlp(extra, self._extra_layers)], axis=-1)

    # ------------------------------------------------------------------ validation

    def _prepare(self, obs: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """Checks keys and shapes; returns float32/bool arrays with a batch dim, and ``batched``."""
        if not isinstance(obs, Mapping):
            raise TypeError(f"observation must be a dict of arrays, got {type(obs).__name__}")
        out: dict[str, np.ndarray] = {}
        batched: bool | None = None
        batch = None
        for key, spec in self._spec.items():
            if key not in obs:
                raise ValueError(
                    f"observation is missing key {key!r} (expected shape {list(spec.shape)} "
                    f"or [B, {', '.join(map(str, spec.shape))}]); the student reads "
                    f"{list(self._spec)}"
                )
            value = np.asarray(obs[key])
            shape = tuple(value.shape)
            if shape == spec.shape:
                is_batched = False
            elif len(shape) == len(spec.shape) + 1 and shape[1:] == spec.shape:
                is_batched = True
            else:
                raise ValueError(
                    f"observation {key!r} has shape {list(shape)}; expected {list(spec.shape)} "
                    f"(one step) or [B, {', '.join(map(str, spec.shape))}] (a batch)"
                )
            if batched is None:
                batched, batch = is_batched, (shape[0] if is_batched else 1)
            elif is_batched != batched or (is_batched and shape[0] != batch):
                raise ValueError(
                    f"observation {key!r} has shape {list(shape)}, inconsistent with the "
                    f"other keys ({'batch of ' + str(batch) if batched else 'unbatched'})"
                )
            if spec.dtype == "bool":
                value = value if value.dtype == np.bool_ else value != 0
            else:
                value = value.astype(_F32, copy=False)
            out[key] = value if is_batched else value[None]
        return out, bool(batched)

    def _prepare_carry(self, carry: Any, batch: int, obs_batched: bool) -> tuple[Any, bool]:
        """The carry with a batch dim, and whether the caller's carry had one."""
        memory = self._config["memory"]
        parts = carry if memory == "lstm" else (carry,)
        if memory == "lstm" and not (isinstance(carry, (tuple, list)) and len(carry) == 2):
            raise ValueError("an lstm student's carry is a tuple (c, h); see initial_carry()")
        arrays, batched = [], None
        for part in parts:
            part = np.asarray(part, _F32)
            if part.shape == self._carry_shape and not obs_batched:
                has_batch, part = False, part[None]
            elif part.shape[1:] == self._carry_shape and part.shape[0] == batch:
                has_batch = True
            else:
                want = [batch, *self._carry_shape] if obs_batched else [*self._carry_shape]
                raise ValueError(
                    f"carry has shape {list(part.shape)}; expected {want} for this "
                    f"observation (see initial_carry())"
                )
            batched = has_batch if batched is None else batched
            arrays.append(part)
        c = tuple(arrays) if memory == "lstm" else arrays[0]
        return c, bool(batched)

    # ------------------------------------------------------------------ helpers

    def _zeros_obs(self, batch: int) -> dict[str, np.ndarray]:
        return {k: np.zeros((batch, *s.shape), s.dtype) for k, s in self._spec.items()}

    def example_observation(self, batch: int | None = 1, seed: int | None = 0) -> dict:
        """A random observation with the right keys, shapes and dtypes (for smoke tests)."""
        gen = np.random.default_rng(seed)
        lead = () if batch is None else (int(batch),)
        obs = {}
        for key, spec in self._spec.items():
            if spec.dtype == "bool":
                obs[key] = np.ones((*lead, *spec.shape), bool)
            else:
                obs[key] = gen.standard_normal((*lead, *spec.shape)).astype(spec.dtype)
        return obs

    def num_params(self) -> int:
        """Number of scalar parameters."""
        layers = [*self._object_layers, *self._extra_layers, *self._head_layers, self._out]
        if self._config["memory"] in ("gru", "lstm"):
            layers += [self._cell_in, self._cell_h]
        total = 0
        for layer in layers:
            total += math.prod(layer.kernel.shape)
            total += 0 if layer.bias is None else layer.bias.size
        if self._config["memory"] == "gru":
            total -= 2 * self._cell_h.kernel.shape[0]  # the zero biases of hr, hz
        return total
