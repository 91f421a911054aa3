"""``dexdistill evaluate``: randomization modes, robustness sweeps, the JSON result, shapes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import mujoco
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.envs.evaluation import sweeps as sweep_lib
from dexdistill.envs.sim2real import conditions as cond_lib, randomize
from dexdistill.envs.tasks import geometry
from dexdistill.pipelines import configs, presets, rundir
from dexdistill.pipelines.outputs import eval_table
from dexdistill.pipelines.stages import evaluate as ev, teacher as teacher_stage

Cfg = ev.EvaluateConfig
sample_params = jax.jit(randomize.sample_params, static_argnums=(1, 2))
DIMS = randomize.ParamDims(n_links=1, n_joints=2, n_actuators=2, n_proprio=2)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """A run directory with a (briefly) trained point_mass teacher."""
    run_dir = tmp_path_factory.mktemp("eval_teacher")
    cfg = configs.TeacherStageConfig(
        env="point_mass",
        ppo=dataclasses.replace(presets.get("tiny").teacher.ppo, num_timesteps=64 * 10 * 20),
        eval_every=0,
        final_eval_episodes=16,
        timing_breakdown=False,
    )
    teacher_stage.run(run_dir, cfg)
    return run_dir


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field, value",
    [
        ("policy", "expert"),
        ("episodes", 0),
        ("episodes", 2.5),
        ("randomization", "wild"),
        ("sweeps", ("gravity_wobble",)),
        ("sweeps", ("all", "object_mass")),
        ("sweeps", ("object_mass", "object_mass")),
        ("sweep_points", 1),
        ("sweep_episodes", 0),
        ("seed", -1),
    ],
)
def test_bad_config_values_give_one_line_errors(field, value):
    with pytest.raises(ValueError) as err:
        Cfg(**{field: value}).validate()
    msg = str(err.value)
    assert field in msg and "\n" not in msg


def test_none_disables_every_family_and_train_keeps_the_run_config():
    base = envs.default_config("point_mass")
    assert cond_lib.eval_env_config(base, "train") == base
    none = cond_lib.eval_env_config(base, "none")
    rc = none.randomization
    assert not any(getattr(rc, f.name).enabled for f in dataclasses.fields(rc))
    assert rc.physics.actuator_gain == base.randomization.physics.actuator_gain  # values kept
    assert dataclasses.replace(none, randomization=base.randomization) == base


def test_heldout_ranges_contain_the_training_ranges_and_are_wider():
    train = envs.default_config("point_mass").randomization
    held = cond_lib.heldout(train)
    for fam in ("physics", "observation", "unmodeled", "camera"):
        t, h = getattr(train, fam), getattr(held, fam)
        assert h.enabled
        for f in dataclasses.fields(t):
            tv, hv = getattr(t, f.name), getattr(h, f.name)
            if isinstance(tv, tuple):
                assert 0 < hv[0] <= tv[0] and hv[1] >= tv[1], f.name
                assert hv[1] - hv[0] > tv[1] - tv[0], f.name
            elif not isinstance(tv, bool) and not f.name.startswith("min_"):
                assert hv >= tv and (hv > tv or tv == 0 or hv == 1.0), f.name
    assert held.physics.object_mass == pytest.approx((0.4, 1.6))
    assert held.physics.actuator_gain == pytest.approx((0.2, 2.2))  # lower end kept > 0
    assert held.unmodeled.max_action_delay == 2
    randomize.validate(held)
    off = cond_lib.heldout(randomize.disabled())
    assert all(getattr(off, f.name).enabled for f in dataclasses.fields(off))


# --------------------------------------------------------------------------- sweeps


def test_sweeps_available_per_task():
    pm = sweep_lib.list_sweeps("point_mass")
    assert {"object_mass", "actuator_gain", "action_delay", "keypoint_noise"} <= set(pm)
    assert not {"friction", "object_scale", "object_shape"} & set(pm)
    assert "object_shape" in sweep_lib.list_sweeps("trifinger_cube")
    assert "object_shape" in sweep_lib.list_sweeps("hand_cube")
    assert "object_shape" not in sweep_lib.list_sweeps("dclaw_valve")
    assert {"friction", "object_scale"} <= set(sweep_lib.list_sweeps("dclaw_valve"))
    cfg = envs.default_config("point_mass")
    assert [s.name for s in sweep_lib.resolve_sweeps("point_mass", cfg, ("all",))] == pm
    with pytest.raises(ValueError, match=r"'friction' does not apply to point_mass; valid") as e:
        sweep_lib.resolve_sweeps("point_mass", cfg, ("friction",))
    assert "\n" not in str(e.value)


def test_sweep_values_span_inside_to_outside_training():
    mass = sweep_lib.SWEEPS["object_mass"].values(5)
    assert len(mass) == 5 and mass[0] == 0.5 and mass[-1] == 3.0
    assert sweep_lib.SWEEPS["action_delay"].values(5) == [0, 1, 2, 3, 4]
    assert sweep_lib.SWEEPS["action_delay"].values(3) == [0, 2, 4]
    assert sweep_lib.SWEEPS["object_shape"].values(5) == ["cube", "cuboid", "sphere"]


def test_fixing_a_parameter_sets_its_range_and_keeps_the_rest():
    base = envs.default_config("point_mass")
    fixed = sweep_lib.SWEEPS["object_mass"].apply(base, 2.0)
    assert fixed.randomization.physics.object_mass == (2.0, 2.0)
    assert fixed.randomization.physics.actuator_gain == base.randomization.physics.actuator_gain
    delay = sweep_lib.SWEEPS["action_delay"].apply(base, 3).randomization.unmodeled
    assert (delay.min_action_delay, delay.max_action_delay) == (3, 3)
    assert delay.action_noise == base.randomization.unmodeled.action_noise
    # a family switched off is switched on with only the swept value non-nominal
    none = cond_lib.eval_env_config(base, "none")
    ph = sweep_lib.SWEEPS["actuator_gain"].apply(none, 0.5).randomization.physics
    assert ph.enabled and ph.actuator_gain == (0.5, 0.5) and ph.object_mass == (1.0, 1.0)
    assert ph.joint_limit == 0.0 and ph.gravity_tilt == 0.0
    p = sample_params(
        jax.random.PRNGKey(0), dataclasses.replace(none.randomization, physics=ph), DIMS
    )
    np.testing.assert_allclose(p["actuator_gain"], 0.5)
    np.testing.assert_allclose(p["object_mass"], 1.0)
    np.testing.assert_allclose(p["gravity"], [0.0, 0.0, -9.81], atol=1e-6)


def test_fixed_action_delay_and_backlash_are_sampled_exactly():
    un = dataclasses.replace(
        randomize.UnmodeledEffects(),
        min_action_delay=2,
        max_action_delay=2,
        min_backlash=0.05,
        backlash=0.05,
    )
    rc = dataclasses.replace(randomize.RandomizationConfig(), unmodeled=un)
    for seed in range(3):
        p = sample_params(jax.random.PRNGKey(seed), rc, DIMS)
        assert int(p["action_delay"]) == 2
        np.testing.assert_allclose(p["backlash"], 0.05)
    with pytest.raises(ValueError, match="min_action_delay=3: must be <= max_action_delay=1"):
        randomize.validate(
            dataclasses.replace(
                rc, unmodeled=dataclasses.replace(un, min_action_delay=3, max_action_delay=1)
            )
        )


# --------------------------------------------------------------------------- the stage


def test_teacher_evaluation_writes_json_with_sweeps(teacher_dir):
    cfg = Cfg(
        policy="teacher",
        episodes=16,
        sweeps=("actuator_gain", "action_delay"),
        sweep_points=2,
        sweep_episodes=8,
    )
    result = ev.run(teacher_dir, cfg, verbose=False)
    path = teacher_dir / "eval" / "teacher_train.json"
    saved = json.loads(path.read_text())
    assert saved["success_rate"] == result["success_rate"]
    for key in ("policy", "randomization", "episodes", "success_rate", "success_ci95"):
        assert key in saved
    assert saved["return_mean"] == pytest.approx(result["return_mean"])
    assert saved["length_mean"] == 40.0  # point_mass episodes run to the horizon
    assert 0.0 <= saved["success_ci95"] <= 0.5
    assert 0.0 <= saved["success_rate"] <= 1.0
    rob = saved["robustness"]
    assert [r["value"] for r in rob["actuator_gain"]] == [0.25, 2.5]
    assert [r["value"] for r in rob["action_delay"]] == [0, 4]
    for rows in rob.values():
        for r in rows:
            assert 0 <= r["success_rate"] <= 1 and 0 <= r["success_ci95"] <= 0.5
            assert "teacher_success_rate" not in r
    assert saved["compile_s"] > 0 and saved["eval_s"] >= saved["compile_s"]
    table = eval_table.format_table(saved)
    assert "actuator_gain" in table and "action_delay" in table and "success" in table


def test_none_randomization_is_evaluated_on_disabled_families(teacher_dir):
    result = ev.run(teacher_dir, Cfg(policy="teacher", episodes=16, randomization="none"), False)
    assert (teacher_dir / "eval" / "teacher_none.json").exists()
    rc = result["randomization_config"]
    assert not any(rc[fam]["enabled"] for fam in ("physics", "observation", "unmodeled", "camera"))


def test_traced_sweep_equals_a_rebuilt_env(teacher_dir):
    """Feeding the value through one compiled evaluator gives the episodes of a rebuilt env."""
    loaded = rundir.load_teacher(teacher_dir)
    policy = ev._as_policy(loaded, "teacher")
    sweep, value = sweep_lib.SWEEPS["actuator_gain"], 0.5
    key = jax.random.PRNGKey(3)
    base = envs.make("point_mass", loaded.env_config)
    fn = sweep_lib.make_sweep_evaluator(base, sweep, policy.factory, 8, policy.init_carry)
    traced = fn(policy.params, key, np.float32(value))
    timer = ev._Timer()
    env = envs.make("point_mass", sweep.apply(loaded.env_config, value))
    rebuilt = ev._evaluate(env, policy, 8, key, timer)
    for k in ("return", "success", "length"):
        np.testing.assert_allclose(traced[k], rebuilt[k], rtol=1e-5, atol=1e-5)


def test_missing_policy_and_invalid_sweep_errors(teacher_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="dexdistill distill"):
        ev.run(teacher_dir, Cfg(policy="student"), verbose=False)
    with pytest.raises(FileNotFoundError, match="dexdistill teacher"):
        ev.run(tmp_path, Cfg(policy="teacher"), verbose=False)
    with pytest.raises(ValueError, match="valid sweeps for point_mass"):
        ev.run(teacher_dir, Cfg(policy="teacher", sweeps=("friction",)), verbose=False)


@pytest.mark.slow
def test_student_evaluation_reports_gap_and_action_error(teacher_dir, tmp_path):
    import shutil

    from dexdistill.pipelines.stages import distill as distill_stage

    run_dir = tmp_path / "run"
    shutil.copytree(teacher_dir, run_dir)
    dcfg = configs.DistillStageConfig(
        dagger=dataclasses.replace(
            presets.get("tiny").distill.dagger, iterations=2, num_envs=16, unroll_length=20
        ),
        eval_episodes=8,
        final_eval_episodes=8,
        write_dataset=False,
    )
    distill_stage.run(run_dir, dcfg)
    cfg = Cfg(
        policy="student", episodes=16, sweeps=("object_mass",), sweep_points=2, sweep_episodes=8
    )
    result = ev.run(run_dir, cfg, verbose=False)
    assert result["action_error"] >= 0
    assert result["gap"] == pytest.approx(result["teacher_success_rate"] - result["success_rate"])
    rows = result["robustness"]["object_mass"]
    assert len(rows) == 2 and all("teacher_success_rate" in r for r in rows)
    assert (run_dir / "eval" / "student_train.json").exists()
    assert "teacher" in eval_table.format_table(result)


# --------------------------------------------------------------------------- object shapes


SHAPE_GEOMS = {
    "cube": (mujoco.mjtGeom.mjGEOM_BOX, (1.0, 1.0, 1.0)),
    "cuboid": (mujoco.mjtGeom.mjGEOM_BOX, (2 * 2 ** (-1 / 3), 2 ** (-1 / 3), 2 ** (-1 / 3))),
    "sphere": (mujoco.mjtGeom.mjGEOM_SPHERE, (1.0, 0.0, 0.0)),
}


@pytest.mark.parametrize("task, half", [("trifinger_cube", 0.0325), ("hand_cube", 0.03)])
def test_object_shapes_build_and_rest(task, half):
    """Each shape's geom and keypoints; the start state rests on its support (MuJoCo C).

    MJX traces a reset with the sphere (new collision pairs); the jitted resets are slow tests.
    """
    for shape, (gtype, rel) in SHAPE_GEOMS.items():
        env = envs.make(task, object_shape=shape)
        m = env.mj_model
        g = m.geom("object_geom")
        assert g.type == gtype and m.geom("goal_geom").type == gtype
        np.testing.assert_allclose(g.size, np.array(rel) * half, rtol=1e-4)
        extents = np.array(geometry.object_half_extents(shape, half))
        np.testing.assert_allclose(
            np.abs(env.object_keypoints()), np.tile(extents, (8, 1)), rtol=1e-6
        )
        assert env._shape.types.tolist() == [gtype]
        nominal = randomize.nominal_params(env.dims)
        qpos, _, _ = env.sample_start(jax.random.PRNGKey(0), nominal, 0)
        d = mujoco.MjData(m)
        d.qpos[:] = np.asarray(qpos)
        d.ctrl[:] = np.asarray(env._ctrl_from_qpos(qpos))
        mujoco.mj_forward(m, d)
        z0 = d.qpos[env._obj_qadr + 2]
        for _ in range(100):
            mujoco.mj_step(m, d)
        assert abs(d.qpos[env._obj_qadr + 2] - z0) < 0.005, shape  # neither sinks nor falls
        if shape == "sphere":
            spec = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
            assert spec.obs["keypoints"].shape == (16, 3)
    with pytest.raises(ValueError, match="object_shape='torus': allowed values are"):
        envs.make(task, object_shape="torus")


@pytest.mark.slow
@pytest.mark.parametrize("task", ["trifinger_cube", "hand_cube"])
def test_object_shape_reset_runs(task):
    for shape in ("cuboid", "sphere"):
        env = envs.make(task, object_shape=shape)
        state = jax.jit(env.reset)(jax.random.PRNGKey(0))
        kp = np.asarray(state.obs["privileged"][env.privileged_layout["object_pos"]])
        assert np.all(np.isfinite(kp))
        assert np.all(np.isfinite(np.asarray(state.obs["keypoints"])))


def test_env_overrides_change_the_evaluated_task_and_name_the_file(teacher_dir):
    cfg = Cfg(policy="teacher", episodes=8, env_overrides=("episode_length=7",))
    assert ev.output_name(cfg) == "teacher_train_episode_length=7"
    result = ev.run(teacher_dir, cfg, verbose=False)
    assert (teacher_dir / "eval" / "teacher_train_episode_length=7.json").exists()
    assert result["length_mean"] <= 7
    with pytest.raises(ValueError, match="nope"):
        ev.run(teacher_dir, Cfg(policy="teacher", env_overrides=("nope=1",)), verbose=False)
