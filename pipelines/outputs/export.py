"""Export a trained student as a standalone artifact that runs with numpy alone.

``export_student(cfg, params, obs_spec, action_size, out)`` writes::

    out/
      student.json           architecture, observation spec, action size, format
                             version, meta (task, training steps...), CPU latency
      params.npz             flax parameters, one array per "/"-joined path
      dexdistill_student.py  a copy of student/inference.py (imports only numpy)
      README.md              how to load and call it, the observation keys/shapes

and checks, before returning, that the artifact loads and runs. On the robot::

    sys.path.insert(0, out); import dexdistill_student
    policy = dexdistill_student.StudentPolicy.load(out)
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dexdistill.envs.base import ArraySpec
from dexdistill.envs.common import checks
from dexdistill.pipelines.config_io import to_dict
from dexdistill.pipelines.io import files
from dexdistill.student import inference
from dexdistill.student.inference import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    PARAMS_FILE,
    StudentPolicy,
)
from dexdistill.student.networks import StudentConfig

MODULE_FILE = "dexdistill_student.py"
README_FILE = "README.md"


def flatten_params(params: Any) -> dict[str, np.ndarray]:
    """Flax variables (``{"params": ...}``, or the bare ``params`` tree) as ``{"params/a/b": array}``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"student params must be a dict of arrays, got {type(params).__name__}")
    tree = params if set(params) == {"params"} else {"params": params}
    flat: dict[str, np.ndarray] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for name, child in node.items():
                walk(child, f"{path}/{name}")
        else:
            flat[path] = np.asarray(jax.device_get(node), np.float32)

    walk(tree["params"], "params")
    return flat


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"export meta: {type(value).__name__} {value!r} is not JSON-serializable")


def export_student(
    cfg: StudentConfig,
    params: Any,
    obs_spec: Mapping[str, ArraySpec],
    action_size: int,
    out: str | Path,
    meta: dict | None = None,
    measure: bool = True,
) -> Path:
    """Writes the standalone student artifact to directory ``out`` and returns its path.

    ``params`` are the student's flax variables (as from ``StudentNetworks.init``
    or a distillation checkpoint); ``obs_spec`` is the env's observation spec
    (only the keys the student reads are stored, never ``privileged``);
    ``meta`` is any JSON-able dict worth keeping with it (task name, teacher
    and student steps, evaluation scores...). With ``measure``, the per-step
    CPU latency at batch 1 goes into ``student.json`` under ``"latency"``.
    Raises ``ValueError`` if the parameters do not fit ``cfg``/``action_size``.
    """
    cfg.validate(frozenset(obs_spec))
    out = Path(out)
    flat = flatten_params(params)
    spec = {
        k: {"shape": [int(s) for s in obs_spec[k].shape], "dtype": str(np.dtype(obs_spec[k].dtype))}
        for k in cfg.input_keys
    }
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "student": to_dict(cfg),
        "input_keys": list(cfg.input_keys),
        "observation_spec": spec,
        "action_size": int(action_size),
        "params": {"file": PARAMS_FILE, "arrays": len(flat)},
        "meta": json.loads(json.dumps(dict(meta or {}), default=_jsonable)),
        "exporter": {"dexdistill": files.VERSION, "numpy": np.__version__},
    }
    # builds the numpy policy first: a config/params mismatch fails before anything is written
    policy = StudentPolicy(doc["student"], flat, spec, action_size)
    doc["params"]["count"] = policy.num_params()
    doc["encoding_size"] = policy.encoding_size

    out.mkdir(parents=True, exist_ok=True)
    files.write_atomic(out / PARAMS_FILE, lambda p: _save_npz(p, flat))
    source = Path(inference.__file__)
    files.write_atomic(out / MODULE_FILE, lambda p: shutil.copyfile(source, p))
    _write_json(out / CONFIG_FILE, doc)

    loaded = StudentPolicy.load(out)  # the artifact as a robot would read it
    _smoke_test(policy, loaded)
    if measure:
        doc["latency"] = measure_latency(loaded, batch=1)
        _write_json(out / CONFIG_FILE, doc)
    files.write_atomic(out / README_FILE, lambda p: p.write_text(readme(doc)))
    return out


def _save_npz(path: Path, flat: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **flat)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    files.write_atomic(path, lambda p: p.write_text(json.dumps(doc, indent=2) + "\n"))


def _smoke_test(policy: StudentPolicy, loaded: StudentPolicy) -> None:
    obs = policy.example_observation(2, seed=0)
    a1, _, _ = policy(obs, policy.initial_carry(2))
    a2, _, _ = loaded(obs, loaded.initial_carry(2))
    if not np.array_equal(a1, a2) or not np.all(np.isfinite(a1)):
        raise RuntimeError("the exported student does not reproduce the in-memory one")


def measure_latency(policy: StudentPolicy, batch: int = 1, iterations: int = 200) -> dict:
    """Per-step wall time of ``policy`` on this CPU (deterministic, carry threaded).

    Runs ``max(10, iterations // 10)`` warm-up steps, then times each of
    ``iterations`` steps on fixed random observations. Returns microseconds
    (``median_us``, ``p90_us``, ``mean_us``, ``min_us``) and where it was measured.
    """
    checks.require("batch", batch, ge=1)
    checks.require("iterations", iterations, ge=1)
    obs = policy.example_observation(batch, seed=0)
    carry = policy.initial_carry(batch)
    for _ in range(max(10, iterations // 10)):
        _, carry, _ = policy(obs, carry)
    times = np.empty(iterations)
    clock = time.perf_counter_ns
    for i in range(iterations):
        t0 = clock()
        _, carry, _ = policy(obs, carry)
        times[i] = clock() - t0
    times /= 1e3
    return {
        "batch": int(batch),
        "iterations": int(iterations),
        "median_us": round(float(np.median(times)), 2),
        "p90_us": round(float(np.percentile(times, 90)), 2),
        "mean_us": round(float(times.mean()), 2),
        "min_us": round(float(times.min()), 2),
        "device": "cpu",
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def readme(doc: dict[str, Any]) -> str:
    """The artifact's README.md, from its ``student.json`` document."""
    cfg = doc["student"]
    spec = doc["observation_spec"]
    rows = "\n".join(
        f"| `{k}` | `[B, {', '.join(map(str, v['shape']))}]` | {v['dtype']} |"
        for k, v in spec.items()
    )
    memory = cfg["memory"]
    carry = {
        "gru": f"a float32 array `[B, {cfg['memory_size']}]` (GRU hidden state)",
        "lstm": f"a tuple `(c, h)` of two float32 arrays `[B, {cfg['memory_size']}]` (LSTM state)",
        "stack": (
            f"a float32 array `[B, {cfg['history']}, {doc.get('encoding_size', 'E')}]` "
            f"(the last {cfg['history']} observation encodings)"
        ),
        "none": "an empty `[B, 0]` array (feed-forward student)",
    }[memory]
    meta = doc.get("meta") or {}
    meta_lines = "\n".join(f"- {k}: {json.dumps(v)}" for k, v in meta.items()) or "- (none)"
    latency = doc.get("latency")
    latency_line = (
        f"Measured at export on {latency['machine']} (numpy {latency['numpy']}): "
        f"median {latency['median_us']} us, p90 {latency['p90_us']} us per step at batch "
        f"{latency['batch']}."
        if latency
        else "Not measured at export."
    )
    return f"""# dexdistill student policy

A {cfg["modality"]} student with `{memory}` memory, exported by dexdistill
(format `{doc["format"]}` version {doc["format_version"]}). It needs only Python and
numpy: `dexdistill_student.py` computes exactly what the trained flax network does.

## Use

```python
import sys
sys.path.insert(0, "/path/to/this/folder")
import dexdistill_student

policy = dexdistill_student.StudentPolicy.load("/path/to/this/folder")
carry = policy.initial_carry(1)                # at the start of an episode
action, carry, extras = policy(obs, carry)     # obs: dict of numpy arrays, below
carry = policy.reset(carry, done)              # done [B]: zero the memory of ended episodes
```

- `action`: float32 `[B, {doc["action_size"]}]` in `[-1, 1]` (deterministic: the mean;
  `policy(obs, carry, deterministic=False, rng=seed)` samples
  `clip(mean + std * noise, -1, 1)`).
- `extras`: `mean`, `std` (`[B, {doc["action_size"]}]`) and `aux`.
- `carry`: {carry}.
- One unbatched step works too: give each key without the leading `B`
  (and `initial_carry(None)`); the outputs are unbatched.
- A missing key or a wrong shape raises `ValueError` naming the key, the shape
  given and the shape expected. Other keys in `obs` are ignored.

## Observations

| key | shape | dtype |
|---|---|---|
{rows}

`point_cloud_mask` (if present) is True where a point is valid; masked points never
affect the action.

## Latency

{latency_line} At batch 1 the time is mostly numpy's per-call overhead; on a busy
multi-core CPU, `OPENBLAS_NUM_THREADS=1` (set before numpy is imported) avoids
BLAS threading stalls for larger batches.

## Meta

{meta_lines}

Files: `student.json` (architecture, spec, meta), `params.npz` (parameters by flax
path), `dexdistill_student.py` (numpy inference), this README.
"""
