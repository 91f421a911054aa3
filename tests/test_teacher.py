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
from typing import Any

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.pipelines import presets, rundir
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.stages.teacher import progress_items
from dexdistill.teacher import normalize as norm_lib, ppo
from dexdistill.teacher.networks import NetworkConfig, make_networks, make_policy


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


def _train_and_score(
    base: Any, nets: Any, iteration: Any, ts: Any, iterations: int
) -> tuple[dict, dict]:
    """Summaries of 128 deterministic episodes before and after ``iterations`` PPO iterations."""
    evaluator = eval_lib.make_evaluator(
        base,
        lambda p: make_policy(nets, p[0], lambda o: norm_lib.normalize(p[1], o), True),
        128,
        nets.initial_carry,
    )

    def score(ts: Any) -> dict:
        key = jax.random.PRNGKey(9)
        return eval_lib.summarize(jax.device_get(evaluator((ts.params, ts.normalizer), key)))

    before = score(ts)
    for _ in range(iterations):
        ts, _ = iteration(ts)
    return before, score(ts)


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
    obs = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(1), 4)).obs
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
def test_tiny_task_is_learned(distribution):
    """The tiny preset's budget (128K env steps) takes point_mass to >= 80% success; how long
    that takes is measured by the benchmarks, not asserted here."""
    preset = presets.get("tiny")
    cfg = preset.teacher.ppo
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
    nets, iteration = ppo.build(env, cfg)
    ts = ppo.init_state(env, nets, cfg)
    before, after = _train_and_score(base, nets, iteration, ts, cfg.num_iterations)
    assert before["success_rate"] < 0.2
    assert after["success_rate"] >= 0.8, after
    assert after["return_mean"] > before["return_mean"] + 10


RESUME_ENVS = {"point_mass": 64, "dclaw_valve": 16}
"""Envs of the kill-and-resume runs (48 iterations of 10 steps each)."""


def _teacher_cmd(run_dir: Path, task: str = "point_mass") -> list[str]:
    return [
        sys.executable,
        "-m",
        "dexdistill.pipelines.cli",
        "teacher",
        "--preset",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--env",
        task,
        "--ppo.num-envs",
        str(RESUME_ENVS[task]),
        "--ppo.num-timesteps",
        str(RESUME_ENVS[task] * 10 * 48),
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


@pytest.mark.parametrize("task", ["point_mass", "dclaw_valve"])
def test_killed_teacher_resumes_bit_identical(tmp_path, task, capsys):
    """point_mass (pure JAX) and dclaw_valve on the MuJoCo C backend (physics on the host).
    The command is killed after its first checkpoint and run again in a new process; the
    uninterrupted reference is the same command run in this process."""
    from dexdistill.pipelines import cli

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert cli.main(_teacher_cmd(full, task)[3:]) == 0
    proc = subprocess.Popen(
        _teacher_cmd(killed, task), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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
        _teacher_cmd(killed, task), check=True, env=env, capture_output=True, text=True, timeout=600
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
    if task != "dclaw_valve":
        return
    # an MJX task on the C backend: recorded as such, loadable, its policy runs without MJX
    config = json.loads((killed / "config.json").read_text())
    assert config["physics_backend"]["teacher"] == "mujoco"

    teacher = rundir.load_teacher(killed)
    task_env = envs.make(teacher.env_name, teacher.env_config)
    assert task_env.backend == "mujoco"
    obs = jax.jit(jax.vmap(task_env.reset))(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    action, carry, extras = teacher.policy(deterministic=True)(obs, None, jax.random.PRNGKey(1))
    assert action.shape == (3, 9) and carry is None
    np.testing.assert_allclose(action, extras["mean"], atol=1e-6)
    assert np.all(extras["std"] > 0)
    capsys.readouterr()
    assert cli.main(_teacher_cmd(killed, task)[3:]) == 0
    rerun = capsys.readouterr().out
    assert "nothing to do" in rerun or "already finished" in rerun


# --------------------------------------------------------------------------- recurrent teacher


def _recurrent_cfg(actor_memory="gru", critic_memory="none", memory_size=64, **ppo_kw):
    net = NetworkConfig(
        actor_keys=("proprio", "keypoints"),
        critic_keys=("privileged",),
        actor_memory=actor_memory,
        critic_memory=critic_memory,
        memory_size=memory_size,
    )
    return dataclasses.replace(presets.get("tiny").teacher.ppo, network=net, **ppo_kw)


def test_unknown_memory_is_rejected():
    env = envs.make("point_mass")
    for field in ("actor_memory", "critic_memory"):
        with pytest.raises(ValueError, match=rf"network.{field}='transformer': allowed values"):
            make_networks(
                NetworkConfig(**{field: "transformer"}), env.observation_spec, env.action_size
            )
    with pytest.raises(ValueError, match="must divide num_envs=6 with a recurrent"):
        _recurrent_cfg(num_envs=6, num_minibatches=4, unroll_length=2).validate()


@pytest.mark.parametrize(("actor_memory", "critic_memory"), [("gru", "none"), ("lstm", "lstm")])
def test_recurrent_teacher_uses_and_resets_its_memory(tmp_path, actor_memory, critic_memory):
    horizon = 4
    base = envs.make("point_mass", episode_length=horizon)
    cfg = _recurrent_cfg(
        actor_memory,
        critic_memory,
        num_envs=8,
        unroll_length=horizon + 2,
        num_minibatches=2,
        num_epochs=2,
    )
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets = make_networks(cfg.network, env.observation_spec, env.action_size)
    ts = ppo.init_state(env, nets, cfg)
    assert jax.tree.leaves(ts.carry["actor"])[0].shape == (8, 64)
    assert (ts.carry["critic"] is None) == (critic_memory == "none")

    # the current action depends on past observations through the carry
    policy = jax.jit(make_policy(nets, ts.params, deterministic=True))
    obs = jax.tree.map(lambda x: x[:4], ts.env_state.obs)
    other = jax.tree.map(lambda x: x[::-1], obs)
    key = jax.random.PRNGKey(0)

    def last_action(history):
        carry = nets.initial_carry(4)
        for o in history:
            action, carry, _ = policy(o, carry, key)
        return np.asarray(action), carry

    a_same, carry = last_action([obs, obs, obs])
    a_diff, _ = last_action([other, other, obs])
    np.testing.assert_array_equal(a_same, last_action([obs, obs, obs])[0])
    assert np.abs(a_same - a_diff).max() > 1e-6, "the past did not change the action"
    # reset_carry zeroes exactly the envs whose episode ended
    reset = nets.reset_carry(carry, jp.array([1.0, 0.0, 0.0, 0.0]))
    zeros = nets.initial_carry(4)
    for r, c, z in zip(*map(jax.tree.leaves, (reset, carry, zeros)), strict=True):
        np.testing.assert_array_equal(r[0], z[0])
        np.testing.assert_array_equal(r[1:], c[1:])
    fresh = np.asarray(policy(obs, zeros, key)[0])
    after_reset = np.asarray(policy(obs, reset, key)[0])
    np.testing.assert_array_equal(after_reset[0], fresh[0])
    assert np.abs(after_reset[1:] - fresh[1:]).max() > 1e-6

    # in training rollouts the memory is zeroed when an episode ends (step `horizon`)
    ts = ts.replace(normalizer=norm_lib.update(ts.normalizer, obs))
    _, traj, _, _ = jax.jit(lambda t, k: ppo.rollout(env, nets, t, k, cfg.unroll_length))(
        ts, jax.random.PRNGKey(3)
    )
    first = np.asarray(traj.first)
    assert first[horizon].all() and not first[:horizon].any() and not first[horizon + 1 :].any()
    obs_n = norm_lib.normalize(ts.normalizer, traj.obs)

    @jax.jit
    def log_probs(o, carry, f, raw):
        logits, _ = nets.unroll_logits(ts.params, o, carry, f)
        return nets.dist.log_prob(logits, raw)

    # the update's unroll from the stored carry reproduces the rollout's log-probs ...
    lp = log_probs(obs_n, ts.carry["actor"], traj.first, traj.raw_action)
    np.testing.assert_allclose(lp, traj.log_prob, rtol=1e-5, atol=1e-5)
    # ... the new episode starts from a zero state, and ignoring the reset would differ
    fresh_carry = jax.tree.map(jp.zeros_like, ts.carry["actor"])
    tail = jax.tree.map(lambda x: jp.concatenate([x[horizon:]] * 3), (obs_n, traj.raw_action))
    lp_fresh = log_probs(tail[0], fresh_carry, jp.zeros_like(traj.first), tail[1])
    np.testing.assert_allclose(lp_fresh[:2], traj.log_prob[horizon:], rtol=1e-5, atol=1e-5)
    lp_no_reset = log_probs(obs_n, ts.carry["actor"], jp.zeros_like(traj.first), traj.raw_action)
    assert np.abs(lp_no_reset[horizon:] - traj.log_prob[horizon:]).max() > 1e-5

    # one PPO iteration trains and carries the states on; the carry is checkpointed
    ts, metrics = ppo.make_iteration(env, nets, cfg)(ts)
    assert np.isfinite(float(metrics["policy_loss"])) and np.isfinite(float(metrics["value_loss"]))
    carry_leaves = jax.tree.leaves(ts.carry)
    assert len(carry_leaves) == {"gru": 1, "lstm": 2}[actor_memory] + (
        2 if critic_memory == "lstm" else 0
    )
    assert all(float(jp.abs(c).max()) > 0 for c in carry_leaves)
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(1, ts, {"iteration": 1})
    template = jax.eval_shape(lambda: ppo.init_state(env, nets, cfg))
    restored, _ = ckpt.restore(jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), template))
    for x, y in zip(jax.tree.leaves(ts), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_recurrent_teacher_learns_tiny_task():
    """A GRU actor reading only proprio + keypoints (critic: privileged) learns point_mass."""
    cfg = _recurrent_cfg("gru", "none", memory_size=64)
    base = envs.make("point_mass")
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets, iteration = ppo.build(env, cfg)
    ts = ppo.init_state(env, nets, cfg)
    before, after = _train_and_score(base, nets, iteration, ts, cfg.num_iterations)
    assert before["success_rate"] < 0.2
    assert after["success_rate"] >= 0.6, after
    assert after["return_mean"] > before["return_mean"] + 10


@pytest.mark.parametrize("task", ["trifinger_cube", "hand_cube"])
def test_gpu_preset_trains_the_cpu_presets_task(task):
    """Same env overrides (goal mode, curriculum) on both presets of a cube task: only the
    training scale differs, so a GPU teacher solves the task the CPU one does."""
    cpu, gpu = presets.get(f"{task}_cpu").teacher, presets.get(f"{task}_gpu").teacher
    assert cpu.env == gpu.env == task
    assert cpu.env_overrides == gpu.env_overrides
    assert "curriculum.enabled=True" in gpu.env_overrides
    assert gpu.ppo.num_envs > cpu.ppo.num_envs


def test_progress_line_shows_the_training_success_at_the_curriculum_level():
    """With a curriculum the last evaluation is at the hardest level (0 for most of a
    trifinger run), so the line also carries the window mean the curriculum advances on."""
    record = {"env_steps": 4096, "env_steps_per_s": 1.5e4, "curriculum/window_mean": 0.37}
    items = progress_items(record, {"headline": 0.0}, "success", level=0)
    assert items == {"steps": 4096, "sps": 1.5e4, "success": 0.0, "level": 0, "level_success": 0.37}
    plain = progress_items({"env_steps": 8, "env_steps_per_s": 2.0}, {}, "success", level=None)
    assert set(plain) == {"steps", "sps", "success"} and np.isnan(plain["success"])
