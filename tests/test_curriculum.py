"""Goal levels, curricula and headline metrics (issue 12): hand_cube and trifinger_cube."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.distill.dagger import DAggerConfig
from dexdistill.envs import wrappers
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.tasks import curriculum, geometry
from dexdistill.envs.tasks.trifinger_cube import CUBE_HALF_SIZE
from dexdistill.pipelines import configs, rundir
from dexdistill.teacher import ppo


def _make(task: str, **overrides):
    return envs.make(task, envs.with_overrides(envs.default_config(task), overrides))


def test_curriculum_advances_only_when_the_window_passes_the_threshold():
    cfg = curriculum.CurriculumConfig(enabled=True, threshold=0.5, window=3, min_episodes=10)
    cs = curriculum.init(cfg)
    # 4 episodes a time: not enough episodes yet, then a window mean below the threshold
    cs = curriculum.update(cfg, cs, jp.asarray(4.0), jp.asarray(4.0), 3)
    assert int(cs.level) == 0, "needs min_episodes before advancing"
    cs = curriculum.update(cfg, cs, jp.asarray(0.0), jp.asarray(4.0), 3)
    cs = curriculum.update(cfg, cs, jp.asarray(1.0), jp.asarray(4.0), 3)
    assert int(cs.level) == 0 and float(curriculum.window_mean(cs)) == pytest.approx(5 / 12)
    # the oldest iteration (4/4) leaves the window, 4/4 enters: 9/12 >= 0.5
    cs = curriculum.update(cfg, cs, jp.asarray(4.0), jp.asarray(4.0), 3)
    assert int(cs.level) == 0, "the window now holds 0/4, 1/4, 4/4: 5/12 < 0.5"
    cs = curriculum.update(cfg, cs, jp.asarray(4.0), jp.asarray(4.0), 3)
    assert int(cs.level) == 1 and float(jp.sum(cs.counts)) == 0.0, "advance clears the window"
    for _ in range(10):
        cs = curriculum.update(cfg, cs, jp.asarray(4.0), jp.asarray(4.0), 3)
    assert int(cs.level) == 2, "never beyond the last level"


def test_an_empty_window_and_a_rollout_without_episode_ends_log_null_not_zero():
    """trifinger's 200-step episodes end together every 12.5 iterations of 16 steps: the
    10-iteration window is empty at times and read 0.0, a collapse in the logged curve."""
    from dexdistill.pipelines.io import logs

    cfg = curriculum.CurriculumConfig(enabled=True, threshold=0.5, window=2, min_episodes=1)
    cs = curriculum.init(cfg)
    assert np.isnan(float(curriculum.window_mean(cs)))
    cs = curriculum.update(cfg, cs, jp.asarray(0.0), jp.asarray(0.0), 3)
    assert np.isnan(float(curriculum.window_mean(cs))) and int(cs.level) == 0
    cs = curriculum.update(cfg, cs, jp.asarray(1.0), jp.asarray(4.0), 3)
    assert float(curriculum.window_mean(cs)) == pytest.approx(0.25)
    metrics = {"success": jp.ones((16, 4))}
    none = ppo._episode_metrics(metrics, jp.zeros((16, 4)))
    assert float(none["episode/count"]) == 0 and np.isnan(float(none["episode/success"]))
    record = logs.clean_record(
        {"curriculum/window_mean": curriculum.window_mean(curriculum.init(cfg)), **none}
    )
    assert record["curriculum/window_mean"] is None and record["episode/success"] is None
    some = ppo._episode_metrics(metrics, jp.zeros((16, 4)).at[3, 1].set(1.0))
    assert float(some["episode/success"]) == 1.0 and float(some["episode/count"]) == 1


def test_final_config_turns_the_curriculum_off_at_the_hardest_level():
    cfg = envs.with_overrides(envs.default_config("trifinger_cube"), {"curriculum.enabled": True})
    final = curriculum.final_config(cfg)
    assert not final.curriculum.enabled and final.goal_level == 2
    assert curriculum.final_config(cfg, 0).goal_level == 0
    assert curriculum.final_config(cfg, -1) == curriculum.final_config(cfg, 2)
    assert _make("trifinger_cube", curriculum=cfg.curriculum).start_level == 0
    with pytest.raises(ValueError, match="goal_level=3"):
        _make("trifinger_cube", goal_level=3)


def test_is_final_reuses_the_training_env_only_at_the_hardest_level_without_curriculum():
    cfg = envs.default_config("trifinger_cube")  # curriculum off, goal_level -1 (the hardest)
    assert curriculum.is_final(cfg), "-1 and 2 are the same level: no second env to build"
    assert curriculum.is_final(curriculum.final_config(cfg))
    assert not curriculum.is_final(dataclasses.replace(cfg, goal_level=0))
    on = envs.with_overrides(cfg, {"curriculum.enabled": True})
    assert not curriculum.is_final(on)
    assert curriculum.is_final(envs.default_config("dclaw_valve")), "no levels: always final"


@pytest.fixture(scope="module")
def tri():
    """A batch of 4 trifinger_cube envs with 3-step episodes, freshly reset."""
    base = _make("trifinger_cube", episode_length=3)
    env = wrappers.wrap_for_training(base, 4)
    return base, env, jax.jit(env.reset)(jax.random.PRNGKey(0))


def test_auto_reset_starts_new_episodes_at_the_carried_level(tri):
    base, env, state = tri
    assert np.all(np.asarray(state.info["goal_level"]) == 2)
    state = curriculum.set_level(state, jp.asarray(0, jp.int32))
    step = jax.jit(env.step)
    for _ in range(3):
        state = step(state, jp.zeros((4, base.action_size)))
    assert np.all(np.asarray(state.done) == 1.0)
    # the new episodes are floor goals: the cube's resting height, orientation unscored
    np.testing.assert_array_equal(np.asarray(state.info["goal_level"]), 0)
    scale = np.asarray(state.info["params"]["object_scale"])
    np.testing.assert_allclose(state.info["goal_pos"][:, 2], CUBE_HALF_SIZE * scale, rtol=1e-5)


def test_ppo_curriculum_update_advances_and_sets_the_level_of_new_episodes(tri):
    base, _, state = tri
    cur = curriculum.CurriculumConfig(enabled=True, threshold=0.6, window=2, min_episodes=4)
    env = envs.make("trifinger_cube", dataclasses.replace(base.config, curriculum=cur))
    advance = jax.jit(ppo._curriculum_update(env))
    cs = curriculum.init(cur)
    done = jp.zeros((3, 4)).at[-1].set(1.0)  # [T, B]: every episode ends at the last step
    fail = {"success": jp.zeros((3, 4))}
    cs, out = advance(cs, state, fail, done)
    assert int(cs.level) == 0 and np.all(np.asarray(out.info["goal_level"]) == 0)
    cs, out = advance(cs, state, {"success": jp.ones((3, 4))}, done)
    assert int(cs.level) == 0, "window 4/8 = 0.5 < 0.6"
    cs, out = advance(cs, state, {"success": jp.ones((3, 4))}, done)
    assert int(cs.level) == 1
    np.testing.assert_array_equal(np.asarray(out.info["goal_level"]), 1)


def test_episodes_begun_before_an_advance_do_not_advance_the_next_level(tri):
    """After an advance to level 1, successful episodes that started at level 0 (still
    running when the level went up) must not fill the window and advance it again."""
    base, _, state = tri
    cur = curriculum.CurriculumConfig(enabled=True, threshold=0.6, window=2, min_episodes=4)
    env = envs.make("trifinger_cube", dataclasses.replace(base.config, curriculum=cur))
    advance = jax.jit(ppo._curriculum_update(env))
    cs = curriculum.CurriculumState(
        level=jp.asarray(1, jp.int32),
        sums=jp.zeros((2,)),
        counts=jp.zeros((2,)),
        cursor=jp.asarray(0, jp.int32),
    )
    done = jp.zeros((3, 4)).at[-1].set(1.0)
    old = {"success": jp.ones((3, 4)), "start_level": jp.zeros((3, 4))}
    for _ in range(3):
        cs, _ = advance(cs, state, old, done)
    assert int(cs.level) == 1 and float(jp.sum(cs.counts)) == 0.0
    new = {"success": jp.ones((3, 4)), "start_level": jp.ones((3, 4))}
    cs, _ = advance(cs, state, new, done)
    assert int(cs.level) == 2, "episodes begun at the current level count"


def test_episodes_report_the_level_they_started_at(tri):
    base, env, state = tri
    assert "start_level" in state.metrics
    raised = curriculum.set_level(state, jp.asarray(0, jp.int32))
    nxt = jax.jit(env.step)(raised, jp.zeros((4, base.action_size)))
    np.testing.assert_array_equal(np.asarray(nxt.metrics["start_level"]), 2.0)


def test_one_evaluation_program_serves_the_envs_own_episodes_and_every_level(tri):
    """The level is always traced: evaluating without a level is evaluating at the env's
    ``start_level`` (same episodes), and no level needs a compile of its own."""
    base = tri[0]
    zero = lambda p: lambda obs, carry, key: (jp.zeros((4, base.action_size)), carry, {})  # noqa: E731
    evaluate = eval_lib.make_evaluator(base, zero, 4)
    key = jax.random.PRNGKey(3)
    own = jax.device_get(evaluate(None, key))
    hardest = jax.device_get(evaluate(None, key, base.start_level))
    floor = jax.device_get(evaluate(None, key, 0))
    for k in own:
        np.testing.assert_array_equal(own[k], hardest[k], err_msg=k)
    np.testing.assert_array_equal(floor["start_level"], 0.0)
    np.testing.assert_array_equal(own["start_level"], float(base.start_level))
    assert evaluate.fn._cache_size() == 1, "one compile for every level"
    compiled = evaluate.lower(None, key).compile()  # what `dexdistill evaluate` times
    np.testing.assert_array_equal(jax.device_get(compiled(None, key))["return"], own["return"])


def test_trifinger_position_levels_score_only_the_position():
    base = _make("trifinger_cube", goal_level=1)
    state = jax.jit(base.reset)(jax.random.PRNGKey(3))
    data = state.data
    turned = geometry.quat_mul(geometry.yaw_quat(jp.asarray(0.8)), state.info["goal_quat"])
    at_goal = data.replace(
        xpos=data.xpos.at[base._obj_body].set(state.info["goal_pos"]),
        xquat=data.xquat.at[base._obj_body].set(turned),
    )
    _, _, m, _ = base.compute_reward(at_goal, dict(state.info), jax.random.PRNGKey(0))
    assert float(m["success"]) == 1.0 and float(m["position_success"]) == 1.0
    assert float(m["pose_success"]) == 0.0, "0.8 rad off: not the 6-DoF goal"
    info = {**state.info, "goal_level": jp.asarray(2, jp.int32)}
    _, _, m, _ = base.compute_reward(at_goal, info, jax.random.PRNGKey(0))
    assert float(m["success"]) == 0.0, "at the pose level the orientation counts"


def _goal_angles(env, level: int, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Rotation angles from random cube orientations to goals drawn at ``level``, and how
    far each goal tilts the cube's up axis (``n`` draws; goal sampling needs no physics)."""
    keys = jax.random.split(jax.random.PRNGKey(level), 2 * n)
    quat = jax.vmap(geometry.random_quat)(keys[:n])
    goal = jax.jit(jax.vmap(lambda k, q: env._new_goal(k, q, jp.asarray(level))["goal_quat"]))
    goal_quat = goal(keys[n:], quat)
    angle = jax.vmap(geometry.rotation_angle)(quat, goal_quat)
    up = jp.array([0.0, 0.0, 1.0])
    z_obj = jax.vmap(lambda q: geometry.quat_to_mat(q).T @ up)(quat)
    z_goal = jax.vmap(lambda q: geometry.quat_to_mat(q).T @ up)(goal_quat)
    return np.asarray(angle), np.asarray(jp.linalg.norm(z_obj - z_goal, axis=-1))


def test_hand_goal_levels_bound_the_rotation_from_the_current_orientation():
    env = _make("hand_cube")
    lo, tops = env.config.success_tolerance, env.config.goal_rotation_levels
    for level, top in enumerate(tops[:-1]):
        angle, _ = _goal_angles(env, level)
        assert np.all(angle >= lo - 1e-4) and np.all(angle <= top + 1e-4), (level, angle)
        assert angle.max() > top - 0.2, "the level's range is used"
    angle, _ = _goal_angles(env, len(tops) - 1)
    assert angle.max() > tops[-2], "last level: all of SO(3)"


def test_hand_yaw_goals_turn_about_the_palm_normal_only():
    env = _make("hand_cube", goal_mode="yaw")
    for level in (0, 2):
        _, tilt = _goal_angles(env, level)
        np.testing.assert_allclose(tilt, 0.0, atol=1e-4)
    _, tilt = _goal_angles(_make("hand_cube"), 2)
    assert tilt.max() > 0.5, "full goals do tilt the cube"


def test_hand_goal_timeout_is_a_truncation_not_a_termination():
    env = _make("hand_cube", goal_timeout=2)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    action = env._action_from_ctrl(state.data.ctrl)  # hold the start pose: no goal reached
    for _ in range(2):
        state = step(state, action)
    assert float(state.done) == 1.0 and float(state.metrics["dropped"]) == 0.0
    assert float(state.info["truncation"]) == 1.0, "the critic bootstraps at a goal timeout"


def test_headline_metric_summarizes_consecutive_successes_for_the_hand():
    assert envs.base.headline_metric(_make("hand_cube")) == "consecutive_successes"
    assert envs.base.headline_metric(_make("trifinger_cube")) == "success"
    res = {
        "success": np.array([0.0, 0.0, 1.0, 0.0]),
        "consecutive_successes": np.array([3.0, 0.0, 10.0, 5.0]),
        "length": np.array([400.0, 100.0, 400.0, 300.0]),
    }
    s = eval_lib.summarize(res, "consecutive_successes", dt=0.05)
    assert s["headline"] == pytest.approx(4.5) and s["headline_metric"] == "consecutive_successes"
    assert s["consecutive_successes"]["median"] == pytest.approx(4.0)
    assert s["consecutive_successes"]["trials"] == [0, 3, 5, 10]
    # 18 goals in 1200 steps of 0.05 s = 1 minute
    assert s["goals_per_minute"] == pytest.approx(18.0)
    assert eval_lib.headline({"success_rate": 0.25}) == 0.25, "older results: success rate"


def test_teacher_and_student_stages_report_goal_levels(tmp_path):
    """A tiny trifinger run with the curriculum on: the level is logged per iteration, the
    final evaluation has every level and the level reached, the student trains there."""
    import json

    from dexdistill.pipelines.stages import distill as distill_stage, teacher as teacher_stage

    run_dir = tmp_path / "run"
    cfg = configs.TeacherStageConfig(
        env="trifinger_cube",
        env_overrides=(
            "curriculum.enabled=True",
            "curriculum.threshold=1e-9",  # one success in the window advances
            "curriculum.min_episodes=1",
            "curriculum.window=1",
            "episode_length=4",
        ),
        ppo=ppo.PPOConfig(
            num_timesteps=3 * 16 * 4, num_envs=16, unroll_length=4, num_minibatches=2, num_epochs=1
        ),
        eval_every=0,
        eval_episodes=4,
        final_eval_episodes=4,
        timing_breakdown=False,
    )
    result = teacher_stage.run(run_dir, cfg)
    rows = [json.loads(x) for x in (run_dir / "teacher" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all("curriculum/level" in r for r in rows)
    assert list(result["levels"]) == ["floor", "lifted", "pose"], "easiest first"
    assert result["levels"]["pose"]["headline"] == result["headline"]
    reached = result["curriculum"]["level"]
    assert reached == int(rows[-1]["curriculum/level"])
    assert rundir.load_teacher(run_dir).level_reached == reached
    student_cfg = configs.DistillStageConfig().env_config(cfg, reached)
    assert student_cfg.goal_level == reached and not student_cfg.curriculum.enabled
    # a student trained at the floor level is also evaluated at the hardest, with its teacher
    dcfg = configs.DistillStageConfig(
        dagger=DAggerConfig(iterations=1, num_envs=8, unroll_length=4, capacity=64),
        eval_every=0,
        eval_episodes=4,
        final_eval_episodes=4,
        write_dataset=False,
        goal_level=0,
    )
    student = distill_stage.run(run_dir, dcfg)
    assert student["goal_level"] == "floor" and student["hardest_level"]["level"] == "pose"
    hardest = student["hardest_level"]
    for policy in ("student", "teacher"):
        assert {"headline", "success_rate", "position_success_mean"} <= set(hardest[policy])
    assert rundir.load_student(run_dir).env_config.goal_level == 0
