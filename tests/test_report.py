"""The run report (pipelines/report.py) and episode videos (pipelines/render.py).

Fast CPU tests on a synthetic run directory; the point_mass video needs no OpenGL.
MuJoCo rendering of the MJX tasks needs an OpenGL context and is marked ``slow``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jp
import numpy as np
import pytest

from dexdistill import envs
from dexdistill.pipelines.io import episodes
from dexdistill.pipelines.outputs import render, report

TASK = "point_mass"


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _teacher_records() -> list[dict]:
    rows = []
    for i in range(1, 7):
        r = {
            "iteration": i,
            "env_steps": 1000 * i,
            "iteration_s": 0.5,
            "env_steps_per_s": 2000.0 if i > 1 else 10.0,
            "collect_s": 0.2,
            "update_s": 0.3,
            "policy_loss": 0.1,
            "value_loss": None if i == 3 else 1.0,
        }
        if i == 1:
            r["compile_s"] = 42.0
        if i % 2 == 0:  # evaluation iterations
            r.update(
                {
                    "eval/success_rate": 0.2 * i / 2,
                    "eval/success_ci95": None if i == 2 else 0.05,
                    "eval/return_mean": -10.0 + i,
                    "eval/length_mean": 40.0,
                }
            )
        rows.append(r)
    return rows


def _student_records() -> list[dict]:
    rows = []
    for i in range(1, 5):
        r = {
            "iteration": i,
            "beta": 1.0 - 0.25 * (i - 1),
            "labelled_samples": 256 * i,
            "samples_per_s": 500.0 if i > 1 else 5.0,
            "iteration_s": 0.4,
            "fit/loss": 0.5 / i,
            "fit/action_mse": 0.1 / i,
            "rollout/action_error": 0.2 / i,
            "rollout/teacher_fraction": 1.0 - 0.25 * (i - 1),
            "dataset/episodes": None,
        }
        if i == 1:
            r["compile_s"] = 7.0
        if i % 2 == 0:
            r.update(
                {
                    "eval/success_rate": 0.3 * i / 2,
                    "eval/success_ci95": 0.1,
                    "eval/return_mean": -5.0,
                    "eval/action_error": 0.15 / i,
                    "teacher/success_rate": 0.6,
                    "gap": 0.6 - 0.3 * i / 2,
                }
            )
        rows.append(r)
    return rows


def _make_run(root: Path, student: bool = True) -> Path:
    """A small synthetic run directory with every file the report reads."""
    run = root / "run"
    (run / "teacher").mkdir(parents=True)
    config = {
        "teacher": {"config": {"env": TASK, "eval_every": 2}, "env_config": {}},
        "package_version": "0.1.0",
        "git_commit": "0123456789abcdef",
    }
    _write_jsonl(run / "teacher" / "metrics.jsonl", _teacher_records())
    teacher_eval = {
        "finished": True,
        "episodes": 256,
        "success_rate": 0.625,
        "success_ci95": 0.059,
        "return_mean": -3.5,
        "length_mean": 40.0,
        "consecutive_successes": {
            "mean": 43.4,
            "std": 13.8,
            "median": 50.0,
            "trials": [50, 20, 50],
        },
        "env_steps": 6000,
    }
    (run / "teacher" / "eval.json").write_text(json.dumps(teacher_eval))
    if student:
        config["distill"] = {"config": {"iterations": 4}, "env_config": {}}
        _write_jsonl(run / "student" / "metrics.jsonl", _student_records())
        student_eval = {
            "finished": True,
            "episodes": 256,
            "success_rate": 0.5,
            "success_ci95": 0.061,
            "return_mean": -4.0,
            "action_error": 0.0375,
            "teacher": {"success_rate": 0.625},
        }
        (run / "student" / "eval.json").write_text(json.dumps(student_eval))
        (run / "eval").mkdir()
        for policy, sr in (("teacher", 0.7), ("student", 0.55)):
            sweep = [
                {"value": v, "success_rate": sr - 0.1 * k, "success_ci95": 0.05}
                for k, v in enumerate((0.5, 1.0, 2.0))
            ]
            row = {
                "policy": policy,
                "randomization": "heldout",
                "episodes": 64,
                "success_rate": sr,
                "success_ci95": 0.1,
                "return_mean": -2.0,
                "drop_rate": 0.125,
                "consecutive_successes": {
                    "mean": 3.5,
                    "std": 2.5,
                    "median": 3.0,
                    "trials": list(range(30, 0, -1)),
                },
                "robustness": {"friction": sweep, "object_mass": sweep[:2]},
            }
            (run / "eval" / f"{policy}_heldout.json").write_text(json.dumps(row))
        (run / "eval" / "broken.json").write_text('{"policy": ')  # a torn write
    (run / "config.json").write_text(json.dumps(config))
    return run


def _assert_png(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_numbers(tmp_path: Path) -> None:
    s = report.report_summary(_make_run(tmp_path))
    assert s["task"] == TASK
    assert s["teacher_success"] == pytest.approx(0.625)
    assert s["student_success"] == pytest.approx(0.5)
    assert s["ratio"] == pytest.approx(0.8)
    assert s["action_error"] == pytest.approx(0.0375)
    assert s["teacher_env_steps_per_s"] == pytest.approx(2000.0)  # compile iteration left out
    assert s["student_samples_per_s"] == pytest.approx(500.0)
    assert s["teacher_compile_s"] == pytest.approx(42.0)
    assert s["student_compile_s"] == pytest.approx(7.0)
    assert s["teacher_env_steps"] == 6000
    assert s["teacher_consecutive_mean"] == pytest.approx(43.4)


def test_full_report(tmp_path: Path) -> None:
    run = _make_run(tmp_path)
    path = report.write_report(run, video=False)
    assert path == run / "report" / "report.md"
    text = path.read_text()
    assert f"# dexdistill report: {TASK}" in text
    assert "0.625 ± 0.059" in text and "0.5 ± 0.061" in text
    assert "| Student / teacher success (same episodes) | 0.8 |" in text
    assert "43.4 ± 13.8" in text  # Dactyl Table 3 form
    assert "50 20 50" not in text and "20 50 50" in text  # trials sorted
    assert "`eval/teacher_heldout.json`" in text and "heldout" in text
    assert "broken.json" not in text
    for name in (report.TEACHER_PLOT, report.DAGGER_PLOT, report.ROBUSTNESS_PLOT):
        _assert_png(run / "report" / name)
        assert f"]({name})" in text


def test_teacher_only_run(tmp_path: Path) -> None:
    run = _make_run(tmp_path, student=False)
    (run / "teacher" / "eval.json").unlink()  # unfinished: only training evaluations
    with (run / "teacher" / "metrics.jsonl").open("a") as f:
        f.write('{"iteration": 7, "env_st')  # torn last line
    text = report.write_report(run, video=False).read_text()
    s = report.report_summary(run)
    assert s["teacher_success"] == pytest.approx(0.6) and s["teacher_success_source"] == "metrics"
    assert s["student_success"] is None and s["ratio"] is None
    assert "student (DAgger)" in text and "0.6 ± 0.05" in text
    _assert_png(run / "report" / report.TEACHER_PLOT)
    assert not (run / "report" / report.DAGGER_PLOT).exists()
    assert report.DAGGER_PLOT not in text


def test_empty_run_dir(tmp_path: Path) -> None:
    text = report.write_report(tmp_path / "nothing", video=False).read_text()
    assert "unknown task" in text and "Nothing to summarize" in text


def _zero_policy(obs, carry, key):
    return jp.zeros((1, 2)), carry, {}


def _read_frames(path: Path) -> list[np.ndarray]:
    if path.suffix == ".gif":
        from PIL import Image, ImageSequence

        with Image.open(path) as im:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    import mediapy

    return list(mediapy.read_video(path))


@pytest.fixture(scope="module")
def point_mass_env():
    return envs.make(TASK, episode_length=12)


def test_point_mass_video(tmp_path: Path, point_mass_env) -> None:
    env = point_mass_env
    path = render.render_episode(
        env, _zero_policy, lambda b: None, jax.random.PRNGKey(0), tmp_path / "ep.mp4", 160, 120
    )
    assert path.exists() and path.suffix in (".mp4", ".gif")
    assert path.suffix == (".mp4" if render.ffmpeg_available() else ".gif")
    frames = _read_frames(path)
    assert len(frames) == env.episode_length + 1  # reset + one per step
    assert frames[0].shape == (120, 160, 3)


def test_report_links_video(tmp_path: Path, point_mass_env) -> None:
    run = _make_run(tmp_path)
    policy = (point_mass_env, _zero_policy, lambda b: None)
    text = report.write_report(run, video=True, video_policy=policy).read_text()
    videos = list((run / "report").glob("episode.*"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    assert f"({videos[0].name})" in text


def _random_policy(obs, carry, key):
    a = jax.random.uniform(key, (obs["proprio"].shape[0], 2), minval=-1.0, maxval=1.0)
    return a, carry, {"mean": a, "std": jp.ones_like(a)}


def test_evaluator_records_its_first_episode_and_the_report_renders_it(
    tmp_path: Path, point_mass_env
) -> None:
    from dexdistill.envs.evaluation import evaluate as eval_lib

    env = point_mass_env
    record = lambda state: episodes.physics_fields(env, state)  # noqa: E731
    fn = eval_lib.make_evaluator(env, lambda p: _random_policy, 3, record=record)
    res = eval_lib.evaluate_chunks(fn, None, jax.random.PRNGKey(3), 5, 3)
    assert res["return"].shape == (5,) and "frames_mean" not in eval_lib.summarize(res)
    frames = render.recorded_frames(res["frames"])
    assert len(frames) == int(res["length"][0]) + 1 == env.episode_length + 1
    # the recorded episode is evaluation episode 0: same rewards, same final success
    rewards = sum(float(f["reward"]) for f in frames[1:])
    np.testing.assert_allclose(rewards, res["return"][0], rtol=1e-5, atol=1e-5)
    assert float(frames[-1]["metrics"]["success"]) == res["success"][0]
    run = _make_run(tmp_path)
    episodes.save_episode(run / "student" / "episode.npz", res["frames"], TASK, env.config)
    loaded_env, loaded = episodes.load_episode(run / "student" / "episode.npz")
    assert loaded_env.config == env.config
    jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(res["frames"]))
    text = report.write_report(run, video=True).read_text()  # no policy: the recording
    (video,) = list((run / "report").glob("episode.*"))
    assert f"({video.name})" in text and len(_read_frames(video)) == len(frames)


def test_rollout_frames_stop_at_done(point_mass_env) -> None:
    frames = render.rollout_frames(
        point_mass_env, _zero_policy, lambda b: None, jax.random.PRNGKey(1), max_steps=5
    )
    assert [int(f["step"]) for f in frames] == list(range(6))
    full = render.rollout_frames(
        point_mass_env, _zero_policy, lambda b: None, jax.random.PRNGKey(1)
    )
    assert float(full[-1]["done"]) == 1.0 and len(full) == point_mass_env.episode_length + 1


def test_no_gl_message(tmp_path: Path, monkeypatch) -> None:
    """A renderer that cannot get an OpenGL context gives one line that names MUJOCO_GL."""
    import mujoco

    def fail(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded")

    monkeypatch.setattr(mujoco, "Renderer", fail)
    monkeypatch.setattr(render, "_gl_failure", [])
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl") as info:
        render.make_renderer(None, 64, 48)
    assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl"):  # remembered, not retried
        render.make_renderer(None, 64, 48)

    class FakeEnv:
        mj_model = mujoco.MjModel.from_xml_string("<mujoco/>")
        dt = 0.05

    run = _make_run(tmp_path, student=False)
    text = report.write_report(run, video_policy=(FakeEnv(), _zero_policy, lambda b: None))
    assert "No video: cannot render MuJoCo frames" in text.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["dclaw_valve", "trifinger_cube", "hand_cube"])
def test_mjx_frames_render(task: str, tmp_path: Path) -> None:
    """Needs a headless OpenGL backend. conftest requests EGL whenever the library is
    installed (as the CLI does), so this is skipped only on machines with neither EGL nor
    an explicit ``MUJOCO_GL=osmesa``; with a backend requested, failing to render fails."""
    if os.environ.get("MUJOCO_GL") not in ("egl", "osmesa"):
        pytest.skip("no headless OpenGL on this machine (no EGL library, MUJOCO_GL unset)")
    short = {"goal_timeout": 3, "max_consecutive_successes": 1} if task == "hand_cube" else {}
    env = envs.make(task, episode_length=3, **short)  # the hand: a 3-step trial at most
    policy = lambda obs, carry, key: (jp.zeros((1, env.action_size)), carry, {})
    frames = render.rollout_frames(env, policy, lambda b: None, jax.random.PRNGKey(0))
    images = render.render_frames(env, frames, 96, 64)
    assert len(images) == 4 and images[0].shape == (64, 96, 3)
    assert images[-1].std() > 5  # not a blank frame


def test_evaluation_rows_name_their_level_appear_once_and_fit_the_task(tmp_path: Path) -> None:
    """Each evaluation once (a copy of a stage's evaluation is left out), every row names
    its goal level, and a hand report has no per-episode success column."""
    run = _make_run(tmp_path)
    teacher = json.loads((run / "teacher" / "eval.json").read_text())
    teacher["goal_level"] = "3.14rad"
    (run / "teacher" / "eval.json").write_text(json.dumps(teacher))
    copy = {**teacher, "policy": "teacher", "source": "student/eval.json"}
    (run / "eval" / "teacher_train.json").write_text(json.dumps(copy))
    text = report.write_report(run, video=False).read_text()
    evaluations = text.split("## Evaluations", 1)[1].split("\n## ", 1)[0]
    header = evaluations.strip().splitlines()[0]
    assert "goal level" in header and "goals / min" in header
    assert "success ± 95% CI" not in header  # the hand's table is Dactyl's
    assert "`eval/teacher_train.json`" not in evaluations
    assert "| `teacher/eval.json` | teacher | 3.14rad | train |" in evaluations


def test_videos_show_the_cubes_faces_in_six_colours() -> None:
    """Dactyl's block has lettered faces; ours has coloured ones, on the goal cube too, in
    the render model only (the physics model is unchanged)."""
    import mujoco

    for task in ("hand_cube", "trifinger_cube"):
        env = envs.make(task)
        model = render._render_model(env, 64, 48)
        assert (model.nq, model.nv) == (env.mj_model.nq, env.mj_model.nv)
        assert model.ngeom == env.mj_model.ngeom + 12
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "object")
        plates = np.flatnonzero(model.geom_bodyid == body)[1:]
        colours = {tuple(np.round(model.geom_rgba[g, :3], 2)) for g in plates}
        assert len(plates) == 6 and len(colours) == 6, task
        assert np.all(model.geom_contype[plates] == 0) and np.all(
            model.geom_conaffinity[plates] == 0
        )
