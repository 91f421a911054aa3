"""Standalone student artifact: numpy inference equals flax, loads without jax, checks inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.pipelines.outputs.export import export_student, measure_latency
from dexdistill.student.inference import StudentPolicy
from dexdistill.student.networks import (
    MEMORIES,
    MODALITIES,
    StudentConfig,
    make_networks,
    make_policy,
)

BATCH = 3
STEPS = 6
RESET_AT = 3
TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def spec():
    return envs.make("point_mass").observation_spec


def _obs(rng: np.random.Generator, spec, step: int) -> dict[str, np.ndarray]:
    """Random observations of every env key; some masks are sparse, one is empty."""
    obs = {
        k: (2.0 * rng.standard_normal((BATCH, *s.shape))).astype(np.float32)
        for k, s in spec.items()
        if s.dtype != "bool"
    }
    mask = rng.random((BATCH, *spec["point_cloud_mask"].shape)) < 0.6
    if step == 1:
        mask[0] = False  # no valid point at all
    if step == 2:
        mask[:] = True  # every point valid (the unmasked fast path)
    obs["point_cloud_mask"] = mask
    return obs


def _random_carry(nets, rng: np.random.Generator):
    return jax.tree.map(
        lambda c: jp.asarray(rng.standard_normal(c.shape).astype(np.float32) * 0.5),
        nets.initial_carry(BATCH),
    )


def _random_params(nets, spec, seed: int):
    """Parameters shaped as ``nets.init`` makes them, filled with random values.

    Flax initialises biases to zero and the action head near zero, which would hide
    a wrong bias or gate order; random values everywhere exercise every parameter.
    The structure comes from ``jax.eval_shape`` (no slow op-by-op initialisers).
    """
    shapes = jax.eval_shape(lambda k: nets.init(k, spec), jax.random.PRNGKey(seed))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        fan_in = leaf.shape[0] if len(leaf.shape) == 2 else 10
        scale = 1.5 / np.sqrt(fan_in) if jax.tree_util.keystr(path).endswith("['kernel']") else 0.3
        return jp.asarray(rng.standard_normal(leaf.shape).astype(np.float32) * scale)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _export(spec, cfg: StudentConfig, out, seed: int = 0, **kwargs):
    nets = make_networks(cfg, spec, 2)
    params = _random_params(nets, spec, seed)
    path = export_student(cfg, params, spec, 2, out, **kwargs)
    return nets, params, path


def _assert_matches_flax(spec, cfg: StudentConfig, out) -> None:
    nets, params, path = _export(spec, cfg, out, measure=False)
    policy = StudentPolicy.load(path)
    flax_policy = jax.jit(make_policy(nets, params, deterministic=True))
    rng = np.random.default_rng(1)
    carry_j = _random_carry(nets, rng)
    carry_n = jax.tree.map(np.asarray, carry_j)
    if isinstance(carry_n, list):
        carry_n = tuple(carry_n)
    key = jax.random.PRNGKey(0)
    for step in range(STEPS):
        if step == RESET_AT:
            done = np.array([1.0, 0.0, 1.0], np.float32)
            carry_j = nets.reset_carry(carry_j, jp.asarray(done))
            carry_n = policy.reset(carry_n, done)
            for cj, cn in zip(jax.tree.leaves(carry_j), jax.tree.leaves(carry_n), strict=True):
                np.testing.assert_allclose(cn, np.asarray(cj), **TOL)
                assert not np.any(cn[done > 0]) and (cn.size == 0 or np.any(cn[1]))
        obs = _obs(rng, spec, step)
        action_j, carry_j, extras_j = flax_policy(
            {k: jp.asarray(v) for k, v in obs.items()}, carry_j, key
        )
        action_n, carry_n, extras_n = policy(obs, carry_n)
        where = f"{cfg.modality}/{cfg.memory} step {step}"
        assert action_n.dtype == np.float32 and action_n.shape == (BATCH, 2), where
        np.testing.assert_allclose(action_n, action_j, **TOL, err_msg=where)
        for name in ("mean", "std", "aux"):
            np.testing.assert_allclose(extras_n[name], extras_j[name], **TOL, err_msg=where)
        leaves_j, leaves_n = jax.tree.leaves(carry_j), jax.tree.leaves(carry_n)
        assert len(leaves_j) == len(leaves_n), where
        for cj, cn in zip(leaves_j, leaves_n, strict=True):
            np.testing.assert_allclose(cn, cj, **TOL, err_msg=where)


@pytest.mark.parametrize("memory", MEMORIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_numpy_student_matches_flax_over_a_sequence(spec, tmp_path, modality, memory):
    _assert_matches_flax(spec, StudentConfig(modality=modality, memory=memory), tmp_path / "a")


def test_numpy_student_matches_flax_for_an_unusual_architecture(spec, tmp_path):
    # uneven layer counts, no proprio MLP, an aux head and two extra keys: module naming must hold
    cfg = StudentConfig(
        modality="point_cloud",
        num_goal_points=8,  # point_mass: 16 object + 8 goal points
        extra_keys=("proprio", "keypoints"),
        pointnet_hidden=(16,),
        proprio_hidden=(),
        memory="lstm",
        memory_size=24,
        head_hidden=(32, 16),
        min_std=0.1,
        aux_outputs=5,
    )
    _assert_matches_flax(spec, cfg, tmp_path / "a")


def test_unbatched_step_and_sampling(spec, tmp_path):
    _, _, path = _export(spec, StudentConfig(memory="stack"), tmp_path / "a", measure=False)
    policy = StudentPolicy.load(path)
    obs = _obs(np.random.default_rng(0), spec, 0)
    carry = policy.initial_carry(BATCH)
    action, next_carry, extras = policy(obs, carry)
    single = {k: v[2] for k, v in obs.items()}
    a1, c1, e1 = policy(single, policy.initial_carry(None))
    assert a1.shape == (2,) and c1.shape == next_carry.shape[1:]
    np.testing.assert_allclose(a1, action[2], **TOL)
    np.testing.assert_allclose(c1, next_carry[2], **TOL)
    np.testing.assert_allclose(e1["std"], extras["std"][2], **TOL)
    # sampling: clip(mean + std * noise), reproducible from a seed
    sampled, _, extras = policy(obs, carry, deterministic=False, rng=7)
    noise = np.random.default_rng(7).standard_normal((BATCH, 2), dtype=np.float32)
    expected = np.clip(extras["mean"] + extras["std"] * noise, -1.0, 1.0)
    np.testing.assert_allclose(sampled, expected, atol=1e-7)
    assert np.all(np.abs(sampled) <= 1.0) and not np.allclose(sampled, extras["mean"])


def test_artifact_contents_and_latency(spec, tmp_path):
    meta = {"task": "point_mass", "teacher_steps": 1000, "student_steps": np.int64(200)}
    _, _, path = _export(spec, StudentConfig(), tmp_path / "artifact", meta=meta)
    assert sorted(p.name for p in path.iterdir()) == [
        "README.md",
        "dexdistill_student.py",
        "params.npz",
        "student.json",
    ]
    doc = json.loads((path / "student.json").read_text())
    assert doc["format_version"] == 1 and doc["action_size"] == 2
    assert doc["student"]["memory"] == "gru" and doc["student"]["encoder_hidden"] == [64, 64]
    assert doc["observation_spec"] == {
        k: {"shape": list(spec[k].shape), "dtype": "float32"} for k in ("keypoints", "proprio")
    }, "only the keys the student reads, never privileged"
    assert doc["meta"] == {"task": "point_mass", "teacher_steps": 1000, "student_steps": 200}
    latency = doc["latency"]
    assert latency["batch"] == 1 and 0 < latency["median_us"] <= latency["p90_us"]
    policy = StudentPolicy.load(path / "student.json")
    assert policy.meta["task"] == "point_mass" and policy.action_size == 2
    assert policy.observation_spec["keypoints"].shape == tuple(spec["keypoints"].shape)
    readme = (path / "README.md").read_text()
    shape = ", ".join(map(str, spec["keypoints"].shape))
    assert f"`keypoints` | `[B, {shape}]`" in readme and "StudentPolicy.load" in readme
    again = measure_latency(policy, batch=4, iterations=20)
    assert again["batch"] == 4 and again["iterations"] == 20 and again["median_us"] > 0


def test_artifact_runs_with_numpy_only(spec, tmp_path):
    cfg = StudentConfig(modality="point_cloud", memory="lstm")
    _, _, path = _export(spec, cfg, tmp_path / "artifact", measure=False)
    policy = StudentPolicy.load(path)
    obs = policy.example_observation(2, seed=3)
    expected, _, _ = policy(obs, policy.initial_carry(2))
    code = f"""
import sys
class _NoHeavyImports:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"jax", "jaxlib", "flax", "mujoco", "envs", "student"}}:
            raise ImportError("blocked " + name)
        return None
sys.meta_path.insert(0, _NoHeavyImports())
sys.path.insert(0, {str(path)!r})
import json
import dexdistill_student
policy = dexdistill_student.StudentPolicy.load({str(path)!r})
obs = policy.example_observation(2, seed=3)
action, carry, extras = policy(obs, policy.initial_carry(2))
carry = policy.reset(carry, [1, 0])
assert "jax" not in sys.modules and "mujoco" not in sys.modules, sorted(sys.modules)
assert "flax" not in sys.modules
print(json.dumps(action.tolist()))
"""
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    action = np.array(json.loads(result.stdout.strip().splitlines()[-1]), np.float32)
    np.testing.assert_array_equal(action, expected)


def test_bad_observations_and_artifacts_raise(spec, tmp_path):
    _, params, path = _export(spec, StudentConfig(), tmp_path / "a", measure=False)
    policy = StudentPolicy.load(path)
    obs = policy.example_observation(BATCH)
    kp, prop = tuple(spec["keypoints"].shape), tuple(spec["proprio"].shape)

    def shape_re(shape):
        return re.escape(str(list(shape)))

    with pytest.raises(ValueError, match=rf"missing key 'proprio'.*{shape_re(prop)}"):
        policy({"keypoints": obs["keypoints"]}, policy.initial_carry(BATCH))
    wrong = (BATCH, kp[0] + 1, 4)
    bad = {**obs, "keypoints": np.zeros(wrong, np.float32)}
    with pytest.raises(
        ValueError, match=rf"'keypoints' has shape {shape_re(wrong)}; expected {shape_re(kp)}"
    ):
        policy(bad, policy.initial_carry(BATCH))
    mixed = {**obs, "proprio": np.zeros((BATCH + 1, *prop), np.float32)}
    with pytest.raises(
        ValueError, match=rf"'proprio' has shape {shape_re((BATCH + 1, *prop))}, inconsistent"
    ):
        policy(mixed, policy.initial_carry(BATCH))
    with pytest.raises(ValueError, match=r"carry has shape \[1, 128\]; expected \[3, 128\]"):
        policy(obs, policy.initial_carry(1))
    # parameters that do not fit the configuration are refused at export
    with pytest.raises(ValueError, match="OptimizedLSTMCell_0"):
        export_student(StudentConfig(memory="lstm"), params, spec, 2, tmp_path / "b")
    with pytest.raises(ValueError, match="action head has 4 outputs"):
        export_student(StudentConfig(), params, spec, 3, tmp_path / "c")
    with pytest.raises(ValueError, match="privileged"):
        export_student(StudentConfig(extra_keys=("privileged",)), params, spec, 2, tmp_path / "d")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_export_without_last_action_matches_flax(spec, tmp_path):
    """``proprio_last_action=none`` masks the same entries in flax and in the numpy export."""
    _assert_matches_flax(
        spec, StudentConfig(memory="gru", proprio_last_action="none"), tmp_path / "s"
    )
