"""PPO teacher: GAE, learning on the tiny task, key isolation, resumable stage."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jp
import numpy as np
import pytest

import envs
from envs import wrappers
from pipelines import presets
from pipelines.checkpoints import Checkpointer
from teacher import evaluate as eval_lib
from teacher import normalize as norm_lib
from teacher import ppo
from teacher.networks import NetworkConfig, make_networks, make_policy


def _gae_loop(rewards, values, bootstrap, terms, truncs, gamma, lam):
    T, B = rewards.shape
    adv = np.zeros((T, B))
    for b in range(B):
        acc = 0.0
        for t in reversed(range(T)):
            nv = bootstrap[b] if t == T - 1 else values[t + 1, b]
            if truncs[t, b]:
                acc = 0.0
                continue
            delta = rewards[t, b] + gamma * (1 - terms[t, b]) * nv - values[t, b]
            acc = delta + gamma * lam * (1 - terms[t, b]) * acc
            adv[t, b] = acc
    return adv


def test_gae_matches_python_loop():
    rng = np.random.default_rng(0)
    T, B = 12, 5
    rewards = rng.normal(size=(T, B))
    values = rng.normal(size=(T, B))
    bootstrap = rng.normal(size=B)
    terms = (rng.random((T, B)) < 0.15).astype(float)
    truncs = ((rng.random((T, B)) < 0.1) & (terms == 0)).astype(float)
    adv, targets = ppo.compute_gae(
        jp.asarray(rewards),
        jp.asarray(values),
        jp.asarray(bootstrap),
        jp.asarray(terms),
        jp.asarray(truncs),
        0.97,
        0.9,
    )
    expected = _gae_loop(rewards, values, bootstrap, terms, truncs, 0.97, 0.9)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, expected + values, rtol=1e-5, atol=1e-5)


def test_actor_cannot_read_keys_it_was_not_given():
    env = envs.make("point_mass")
    cfg = NetworkConfig(actor_keys=("proprio",), critic_keys=("privileged", "proprio"))
    nets = make_networks(cfg, env.observation_spec, env.action_size)
    params = nets.init(jax.random.PRNGKey(0), env.observation_spec)
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 4)).obs
    policy = make_policy(nets, params, deterministic=True)
    a1, _, _ = policy(obs, None, jax.random.PRNGKey(0))
    poisoned = {
        **obs,
        "privileged": obs["privileged"] * 1e6 + 3.0,
        "keypoints": obs["keypoints"] - 7.0,
    }
    a2, _, _ = policy(poisoned, None, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a1, a2)
    # gradients of the actor w.r.t. unread keys are exactly zero
    floats = {k: v for k, v in obs.items() if v.dtype != jp.bool_}
    g = jax.grad(lambda o: jp.sum(nets.logits(params, {**obs, **o})))(floats)
    assert float(jp.abs(g["privileged"]).max()) == 0.0
    assert float(jp.abs(g["proprio"]).max()) > 0.0
    with pytest.raises(
        ValueError, match=r"network.actor_keys may not read observation key\(s\) \['depth'\]"
    ):
        make_networks(NetworkConfig(actor_keys=("depth",)), env.observation_spec, env.action_size)


@pytest.mark.parametrize("distribution", ["tanh_normal", "discrete"])
def test_tiny_task_is_learned_in_under_a_minute(distribution):
    preset = presets.get("tiny")
    cfg = preset.ppo
    cfg = ppo.PPOConfig(
        **{
            **cfg.__dict__,
            "network": NetworkConfig(
                actor_hidden=(64, 64), critic_hidden=(128, 128), distribution=distribution
            ),
        }
    )
    base = envs.make("point_mass")
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    t0 = time.perf_counter()
    nets, iteration = ppo.build(env, cfg)
    ts = ppo.init_state(env, nets, cfg)
    evaluator = eval_lib.make_evaluator(
        base, lambda p: make_policy(nets, p[0], lambda o: norm_lib.normalize(p[1], o), True), 128
    )
    before = eval_lib.summarize(
        jax.device_get(evaluator((ts.params, ts.normalizer), jax.random.PRNGKey(9)))
    )
    for _ in range(cfg.num_iterations):
        ts, _ = iteration(ts)
    after = eval_lib.summarize(
        jax.device_get(evaluator((ts.params, ts.normalizer), jax.random.PRNGKey(9)))
    )
    elapsed = time.perf_counter() - t0
    assert before["success_rate"] < 0.2
    assert after["success_rate"] >= 0.8, after
    assert after["return_mean"] > before["return_mean"] + 10
    assert elapsed < 60, f"took {elapsed:.1f}s"


def _teacher_cmd(run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.cli",
        "teacher",
        "--preset",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--ppo.num-timesteps",
        str(64 * 10 * 48),
        "--checkpoint-every",
        "4",
        "--eval-every",
        "8",
        "--final-eval-episodes",
        "32",
        "--no-timing-breakdown",
    ]


def _final_state(run_dir: Path):
    ckpt = Checkpointer(run_dir / "teacher" / "checkpoints")
    import orbax.checkpoint as ocp

    step = ckpt.latest_step()
    state = ckpt._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(None)))[
        "state"
    ]
    return step, state


def test_killed_teacher_resumes_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_teacher_cmd(full), check=True, env=env, capture_output=True, timeout=600)
    proc = subprocess.Popen(
        _teacher_cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt_dir = killed / "teacher" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline:
        steps = (
            [p.name for p in ckpt_dir.glob("*") if p.name.isdigit()] if ckpt_dir.exists() else []
        )
        if steps:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = (killed / "teacher" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) < 48, "the run was not interrupted"
    out = subprocess.run(
        _teacher_cmd(killed), check=True, env=env, capture_output=True, text=True, timeout=600
    )
    assert "resuming from iteration" in out.stdout
    s_full, a = _final_state(full)
    s_killed, b = _final_state(killed)
    assert s_full == s_killed == 48
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ev_full = json.loads((full / "teacher" / "eval.json").read_text())
    ev_killed = json.loads((killed / "teacher" / "eval.json").read_text())
    assert ev_full == ev_killed
    iterations = [
        json.loads(ln)["iteration"]
        for ln in (killed / "teacher" / "metrics.jsonl").read_text().splitlines()
    ]
    assert iterations == list(range(1, 49))


def test_mjx_teacher_stage_checkpoints_and_loads(tmp_path):
    """An MJX task (zero-size arrays in its state) saves, resumes as finished, and loads."""
    from pipelines import teacher_stage

    cfg = teacher_stage.TeacherStageConfig(
        env="dclaw_valve",
        ppo=ppo.PPOConfig(
            num_timesteps=2 * 16 * 4, num_envs=16, unroll_length=4, num_minibatches=2, num_epochs=1
        ),
        eval_every=0,
        final_eval_episodes=4,
        timing_breakdown=False,
    )
    summary = teacher_stage.run(tmp_path, cfg)
    assert summary["finished"] and summary["env_steps"] == 128
    assert teacher_stage.run(tmp_path, cfg) == summary  # finished: nothing to redo
    teacher = teacher_stage.load(tmp_path)
    env = envs.make(teacher.env_name, teacher.env_config)
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    action, carry, extras = teacher.policy(deterministic=True)(obs, None, jax.random.PRNGKey(1))
    assert action.shape == (3, 9) and carry is None
    np.testing.assert_allclose(action, extras["mean"], atol=1e-6)
    assert np.all(extras["std"] > 0)
    with pytest.raises(ValueError, match="different teacher config"):
        teacher_stage.run(tmp_path, dataclasses.replace(cfg, eval_episodes=7))
