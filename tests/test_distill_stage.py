"""The ``dexdistill distill`` stage: run dir, dataset, resume after SIGKILL, loading."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.distill.dagger import DAggerConfig
from dexdistill.pipelines import configs, presets, rundir
from dexdistill.pipelines.io import dataset as dataset_lib
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.stages import (
    distill as distill_stage,
    distill_setup,
    teacher as teacher_stage,
)

ITERATIONS = 4


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """A run directory with a (briefly) trained point_mass teacher."""
    run_dir = tmp_path_factory.mktemp("teacher")
    preset = presets.get("tiny")
    cfg = configs.TeacherStageConfig(
        env="point_mass",
        ppo=dataclasses.replace(preset.teacher.ppo, num_timesteps=64 * 10 * 40),
        eval_every=0,
        final_eval_episodes=32,
        timing_breakdown=False,
    )
    teacher_stage.run(run_dir, cfg)
    return run_dir


@pytest.fixture(scope="module")
def valve_teacher_dir(tmp_path_factory) -> Path:
    """A run directory with a (barely) trained dclaw_valve teacher on the MuJoCo C backend."""
    from dexdistill.teacher import ppo

    run_dir = tmp_path_factory.mktemp("valve_teacher")
    cfg = configs.TeacherStageConfig(
        env="dclaw_valve",
        ppo=ppo.PPOConfig(
            num_timesteps=2 * 16 * 4, num_envs=16, unroll_length=4, num_minibatches=2, num_epochs=1
        ),
        eval_every=0,
        final_eval_episodes=4,
        timing_breakdown=False,
    )
    teacher_stage.run(run_dir, cfg)
    return run_dir


def _distilled(teacher_dir: Path, base: Path) -> tuple[Path, dict]:
    """``teacher_dir`` distilled in this process with :func:`_config` (what :func:`_args`
    asks the CLI for): ``(run dir, summary)``."""
    run_dir = _copy(teacher_dir, base / "run")
    return run_dir, distill_stage.run(run_dir, _config())


@pytest.fixture(scope="module")
def distilled_dir(teacher_dir, tmp_path_factory) -> tuple[Path, dict]:
    """The point_mass teacher distilled once: read by the tests that need a finished run,
    and the killed run's uninterrupted reference."""
    return _distilled(teacher_dir, tmp_path_factory.mktemp("distilled"))


@pytest.fixture(scope="module")
def valve_distilled_dir(valve_teacher_dir, tmp_path_factory) -> tuple[Path, dict]:
    """:func:`distilled_dir` for the dclaw_valve teacher (MuJoCo C backend)."""
    return _distilled(valve_teacher_dir, tmp_path_factory.mktemp("valve_distilled"))


def _copy(teacher_dir: Path, dst: Path) -> Path:
    shutil.copytree(teacher_dir, dst)
    return dst


def _args(run_dir: Path) -> list[str]:
    return [
        "distill",
        "--preset",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--dagger.iterations",
        str(ITERATIONS),
        "--dagger.num-envs",
        "16",
        "--dagger.unroll-length",
        "20",
        "--eval-episodes",
        "16",
        "--final-eval-episodes",
        "32",
    ]


def _config() -> configs.DistillStageConfig:
    return configs.DistillStageConfig(
        dagger=dataclasses.replace(
            presets.get("tiny").distill.dagger, iterations=ITERATIONS, num_envs=16, unroll_length=20
        ),
        eval_episodes=16,
        final_eval_episodes=32,
    )


def test_distill_needs_a_teacher(tmp_path):
    from dexdistill.pipelines import cli

    assert cli.main(["distill", "--run-dir", str(tmp_path)]) == 2


def test_distill_stage_writes_dataset_checkpoints_metrics_and_loads(distilled_dir):
    run_dir, summary = distilled_dir
    assert summary["finished"] and 0.0 <= summary["success_rate"] <= 1.0
    assert {"action_error", "gap", "ratio", "teacher"} <= set(summary)
    lines = [
        json.loads(x) for x in (run_dir / "student" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["iteration"] for r in lines] == list(range(1, ITERATIONS + 1))
    assert lines[0]["beta"] == 1.0 and lines[-1]["beta"] < 0.2  # exponential schedule
    assert "compile_s" in lines[0] and all(r["samples_per_s"] > 0 for r in lines)
    assert all("eval/success_rate" in r and "eval/action_error_mean" in r for r in lines)
    source = dataset_lib.load(run_dir / "dataset")
    assert len(source) == lines[-1]["dataset/episodes"] >= ITERATIONS * 16
    steps = sum(len(source[i]["steps"]) for i in range(len(source)))
    assert steps == ITERATIONS * 16 * 20  # every labelled step is on disk, once
    meta = dataset_lib.episode_arrays(source[len(source) - 1])["episode_metadata"]
    assert meta["iteration"] == ITERATIONS - 1 and meta["task"] == "point_mass"
    # the student comes back from the run directory alone, as a pure policy
    student = rundir.load_student(run_dir)
    ckpt = Checkpointer(run_dir / "student" / "checkpoints")
    assert ckpt.latest_step() == ITERATIONS
    obs = jax.jit(jax.vmap(student_env(run_dir).reset))(
        jax.random.split(jax.random.PRNGKey(0), 3)
    ).obs
    action, carry, extras = student.policy()(obs, student.initial_carry(3), jax.random.PRNGKey(1))
    assert action.shape == (3, 2) and np.all(np.abs(np.asarray(action)) <= 1.0)
    assert set(extras) >= {"mean", "std"}
    # rerunning a finished stage does nothing
    assert distill_stage.run(run_dir, _config()) == summary


def test_loading_a_student_builds_no_simulator_and_loads_no_teacher(distilled_dir):
    run_dir, _ = distilled_dir
    full = distill_setup.load_full(run_dir)  # the old way: the whole DAgger setup

    def forbidden(*args, **kwargs):
        raise AssertionError("load() built an env, the DAgger setup or loaded the teacher")

    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((envs, "make"), (distill_setup, "build"), (rundir, "load_teacher")):
            mp.setattr(module, name, forbidden)
        student = rundir.load_student(run_dir)
    assert (student.env_name, student.env_config) == (full.env_name, full.env_config)
    assert student.nets.config == full.nets.config
    for x, y in zip(jax.tree.leaves(student.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def student_env(run_dir: Path):
    from dexdistill import envs

    s = rundir.load_student(run_dir)
    return envs.make(s.env_name, s.env_config)


def test_distill_refuses_a_different_config(teacher_dir, tmp_path):
    run_dir = _copy(teacher_dir, tmp_path / "run")
    cfg = _config()
    setup = distill_setup.build(run_dir, cfg)
    resolved = distill_setup.resolved_config(cfg, setup)
    rundir.write_config(run_dir, "distill", resolved, setup.base.config, force=False)
    other = dataclasses.replace(cfg, eval_episodes=8)
    with pytest.raises(ValueError, match="different distill config"):
        distill_stage.run(run_dir, other)


def test_bad_distill_config_names_the_field():
    with pytest.raises(ValueError, match=r"dagger.mixing='sometimes'"):
        dataclasses.replace(_config(), dagger=DAggerConfig(mixing="sometimes")).validate()
    with pytest.raises(ValueError, match="student='depth'"):
        dataclasses.replace(_config(), student="depth").validate()


@pytest.mark.parametrize(
    ("teacher", "reference"),
    [("teacher_dir", "distilled_dir"), ("valve_teacher_dir", "valve_distilled_dir")],
)
def test_killed_distillation_resumes_without_lost_or_duplicated_episodes(
    teacher, reference, request, tmp_path
):
    """point_mass, and dclaw_valve on the MuJoCo C backend (physics state in the checkpoint).
    The CLI run is killed after its first checkpoint and rerun; the uninterrupted reference
    is the same config run in this process (a CLI whose arguments resolved to another
    config would land other episodes)."""
    full, _ = request.getfixturevalue(reference)
    teacher_dir = request.getfixturevalue(teacher)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dexdistill.pipelines.cli"]
    killed = _copy(teacher_dir, tmp_path / "killed")
    proc = subprocess.Popen(
        cmd + _args(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt_dir = killed / "student" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline:
        if ckpt_dir.exists() and any(p.name.isdigit() for p in ckpt_dir.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = Checkpointer(ckpt_dir).latest_step()
    assert done is not None and done < ITERATIONS, "the run was not interrupted"
    out = subprocess.run(
        cmd + _args(killed), check=True, env=env, capture_output=True, text=True, timeout=600
    )
    assert "resuming from iteration" in out.stdout
    a, b = dataset_lib.load(full / "dataset"), dataset_lib.load(killed / "dataset")
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = dataset_lib.episode_arrays(a[i]), dataset_lib.episode_arrays(b[i])
        assert x["episode_metadata"] == y["episode_metadata"]
        for k in ("action", "teacher_action", "reward", "is_first", "is_last"):
            np.testing.assert_array_equal(x["steps"][k], y["steps"][k])
    pa = rundir.load_student(full).params
    pb = rundir.load_student(killed).params
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ev_a = json.loads((full / "student" / "eval.json").read_text())
    ev_b = json.loads((killed / "student" / "eval.json").read_text())
    assert ev_a == ev_b


def test_ratio_is_null_where_the_teacher_scored_zero():
    """Trifinger's pose goals: a student at 0.016 against a teacher at 0 read 1.6e7."""
    assert distill_stage.headline_ratio(0.6, 0.75) == pytest.approx(0.8)
    assert distill_stage.headline_ratio(0.016, 0.0) is None
    assert distill_stage.headline_ratio(0.0, 0.0) is None
    assert json.dumps({"ratio": distill_stage.headline_ratio(0.0, 0.0)}) == '{"ratio": null}'
