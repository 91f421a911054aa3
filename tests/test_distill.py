"""DAgger: buffer aggregation, losses, beta schedules, and learning on the tiny task."""

from __future__ import annotations

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.distill import buffer as buffer_lib, dagger
from dexdistill.distill.fit import LOSSES, action_loss
from dexdistill.distill.schedules import BetaSchedule, next_beta
from dexdistill.envs import wrappers
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.tasks.point_mass import expert
from dexdistill.pipelines import presets
from dexdistill.student.networks import StudentConfig, make_networks, make_policy as student_policy
from dexdistill.teacher import normalize as norm_lib, ppo
from dexdistill.teacher.networks import make_policy as teacher_policy


def _batch(start: int, n: int = 4):
    return {"x": jp.arange(start, start + n, dtype=jp.float32)[:, None] * jp.ones((n, 3))}


def test_fifo_buffer_keeps_the_latest_sequences():
    buf = buffer_lib.init_buffer(_batch(0), capacity=10)
    for i in range(4):
        buf = buffer_lib.add(buf, _batch(4 * i), jax.random.PRNGKey(i), "fifo")
    assert int(buf.size) == 10 and int(buf.added) == 16
    assert sorted(np.asarray(buf.data["x"][:, 0]).tolist()) == list(range(6, 16))


def test_reservoir_buffer_is_a_uniform_sample_of_everything():
    counts = np.zeros(100)
    for seed in range(200):
        buf = buffer_lib.init_buffer(_batch(0, 10), capacity=10)
        for i in range(10):
            buf = buffer_lib.add(
                buf, _batch(10 * i, 10), jax.random.PRNGKey(seed * 100 + i), "reservoir"
            )
        kept = np.asarray(buf.data["x"][:, 0]).astype(int)
        assert len(set(kept.tolist())) == 10
        counts[kept] += 1
    # every item kept with probability 10/100: early and late items alike
    assert abs(counts[:50].mean() - counts[50:].mean()) < 4.0
    assert counts.min() > 5


@pytest.mark.parametrize("kind", LOSSES)
def test_losses_are_minimal_at_the_teacher(kind):
    t_mean = jp.array([[0.3, -0.2]])
    t_std = jp.array([[0.2, 0.4]])
    at = action_loss(kind, t_mean, t_std, t_mean, t_std)
    off = action_loss(kind, t_mean + 0.3, t_std, t_mean, t_std)
    assert float(off[0]) > float(at[0])
    g = jax.grad(lambda m: action_loss(kind, m, t_std, t_mean, t_std).sum())(t_mean)
    np.testing.assert_allclose(g, 0.0, atol=1e-6)


def test_beta_schedules():
    assert [next_beta(BetaSchedule("exponential", decay=0.5), i, 1, 0, 1) for i in range(3)] == [
        1,
        0.5,
        0.25,
    ]
    assert next_beta(BetaSchedule("linear", horizon=4), 2, 1, 0, 1) == 0.5
    assert next_beta(BetaSchedule("constant", value=1.0), 7, 1, 0, 1) == 1.0
    gated = BetaSchedule("success_gated", gate=0.8)
    assert next_beta(gated, 3, 0.5, 0.5, 1.0) == 0.5
    assert next_beta(gated, 3, 0.5, 0.9, 1.0) == 0.25
    with pytest.raises(ValueError, match="beta.kind='cosine'"):
        BetaSchedule("cosine").validate()


@pytest.fixture(scope="module")
def tiny_teacher():
    cfg = presets.get("tiny").teacher.ppo
    base = envs.make("point_mass")
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets, iteration = ppo.build(env, cfg)
    ts = ppo.init_state(env, nets, cfg)
    for _ in range(cfg.num_iterations):
        ts, _ = iteration(ts)
    params = jax.device_get(ts.params)
    normalizer = jax.device_get(ts.normalizer)
    policy = teacher_policy(
        nets, params, lambda o: norm_lib.normalize(normalizer, o), deterministic=True
    )
    evaluator = eval_lib.make_evaluator(base, lambda p: policy, 128)
    success = eval_lib.summarize(jax.device_get(evaluator(None, jax.random.PRNGKey(5))))[
        "success_rate"
    ]
    return base, policy, params, success


def test_dagger_student_approaches_the_teacher(tiny_teacher):
    base, teacher, teacher_params, teacher_success = tiny_teacher
    before = jax.tree.map(np.array, teacher_params)
    probe = jax.jit(jax.vmap(base.reset))(jax.random.split(jax.random.PRNGKey(7), 16)).obs
    probe_action = np.asarray(teacher(probe, None, jax.random.PRNGKey(0))[0])
    cfg = dagger.DAggerConfig(
        iterations=10, num_envs=64, unroll_length=40, student=StudentConfig(memory="gru")
    )
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets = make_networks(cfg.student, base.observation_spec, base.action_size)
    rollout, iteration = dagger.make_iteration(env, teacher, nets, cfg)
    ds = dagger.init_state(env, nets, rollout, cfg)
    evaluator = eval_lib.make_evaluator(
        base, lambda p: student_policy(nets, p, True), 128, nets.initial_carry
    )
    beta, errors = 1.0, []
    for i in range(cfg.iterations):
        beta = next_beta(cfg.beta, i, beta, 0.0, 1.0)
        ds, _, metrics = iteration(ds, jp.asarray(beta))
        errors.append(float(metrics["rollout/action_error"]))
    success = eval_lib.summarize(jax.device_get(evaluator(ds.params, jax.random.PRNGKey(5))))[
        "success_rate"
    ]
    assert teacher_success >= 0.8
    assert errors[-1] < 0.5 * errors[0], errors
    assert success >= 0.9 * teacher_success, (success, teacher_success)
    assert int(ds.buffer.size) == cfg.iterations * cfg.num_envs  # every iteration's data is kept
    # the frozen teacher is untouched by student updates: same parameters, same actions
    for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(teacher_params), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(probe_action, teacher(probe, None, jax.random.PRNGKey(0))[0])


def test_dagger_beats_behaviour_cloning_on_a_task_built_to_drift():
    """Unstable point_mass: errors compound, so BC (beta = 1) drifts off the teacher's states.

    Same compiled iteration, same seed and the same number of labelled samples for both;
    only beta differs. The expert is the analytic PD law (``envs.point_mass.expert``).
    """
    overrides = {
        "instability": 3.5,
        "randomization.physics.enabled": False,
        "randomization.unmodeled.enabled": False,
    }
    base = envs.make(
        "point_mass", envs.with_overrides(envs.default_config("point_mass"), overrides)
    )
    teacher = expert(base)
    cfg = dagger.DAggerConfig(
        iterations=5, num_envs=16, unroll_length=40, student=StudentConfig(memory="none")
    )
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets = make_networks(cfg.student, base.observation_spec, base.action_size)
    rollout, iteration = dagger.make_iteration(env, teacher, nets, cfg)
    evaluator = eval_lib.make_evaluator(
        base, lambda p: student_policy(nets, p, True), 256, nets.initial_carry, reference=teacher
    )
    teacher_eval = eval_lib.make_evaluator(base, lambda p: teacher, 256)
    key = jax.random.PRNGKey(5)
    teacher_success = eval_lib.summarize(jax.device_get(teacher_eval(None, key)))["success_rate"]
    results = {}
    for name, schedule in (
        ("bc", BetaSchedule("constant", value=1.0)),
        ("dagger", BetaSchedule("exponential", decay=0.5)),
    ):
        ds, beta, labels = dagger.init_state(env, nets, rollout, cfg), 1.0, 0
        for i in range(cfg.iterations):
            beta = next_beta(schedule, i, beta, 0.0, 1.0)
            ds, seq, _ = iteration(ds, jp.asarray(beta))
            labels += seq["teacher_mean"].shape[0] * seq["teacher_mean"].shape[1]
        results[name] = eval_lib.summarize(jax.device_get(evaluator(ds.params, key)))
        results[name]["labels"] = labels
    bc, dg = results["bc"], results["dagger"]
    assert bc["labels"] == dg["labels"] == 5 * 16 * 40
    assert teacher_success >= 0.75
    assert dg["success_rate"] >= bc["success_rate"] + 0.1, results
    assert dg["success_rate"] >= 0.9 * teacher_success, (results, teacher_success)
    assert dg["action_error_mean"] < 0.75 * bc["action_error_mean"], results
