"""``dexdistill run`` end to end at tiny scale, kill-and-rerun at every stage, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dexdistill.pipelines import cli

SMALL = ["--preset", "smoke"]


def _run(run_dir: Path) -> list[str]:
    return ["run", "--run-dir", str(run_dir), *SMALL]


def _results(run_dir: Path) -> dict:
    """Everything a run concludes (minus wall-clock timings)."""
    out = {
        "teacher": json.loads((run_dir / "teacher" / "eval.json").read_text()),
        "student": json.loads((run_dir / "student" / "eval.json").read_text()),
    }
    for path in sorted((run_dir / "eval").glob("*.json")):
        data = json.loads(path.read_text())
        out[path.stem] = {k: v for k, v in data.items() if not k.endswith("_s")}
    return out


def check_smoke_run(run_dir: Path) -> None:
    """What a finished ``dexdistill run --preset smoke`` holds: teacher, student, evaluation
    and report; rerunning the command skips every stage.

    Run on the quickstart notebook's smoke run (``tests/test_notebooks.py``): the notebook
    calls ``run_pipeline.run(run_dir, presets.get("smoke"))``, the same run, so the suite
    trains it once. The CLI rerun at the end also proves that ``run --preset smoke``
    resolves to the notebook's config (another config is refused, not skipped)."""
    report = (run_dir / "report" / "report.md").read_text()
    assert "point_mass" in report
    for png in ("teacher_curve.png", "dagger_curves.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000
    assert list((run_dir / "report").glob("episode.*"))  # point_mass renders without GL
    # ... from the student's recorded final-evaluation episode (no extra rollout compile)
    assert (run_dir / "student" / "episode.npz").stat().st_size > 0
    results = _results(run_dir)
    # student vs teacher on the training randomization (the distill stage's final evaluation,
    # on the teacher's final-evaluation episodes), held out and on the reality proxy; no
    # sim-to-sim for point_mass (no physics engine), and no copies of a stage's evaluation
    assert set(results) == {"teacher", "student", "student_heldout", "student_reality"}
    assert results["student"]["teacher"]["success_rate"] == results["teacher"]["success_rate"]
    student, teacher = results["student"], results["student"]["teacher"]
    assert teacher["success_rate"] >= 0.8
    assert student["success_rate"] >= 0.9 * teacher["success_rate"], (student, teacher)
    for condition in ("heldout", "reality"):
        row = results[f"student_{condition}"]
        assert row["randomization"] == condition and "success_rate" in row["teacher"]
    assert report.count("`student/eval.json`") == 1 and "student_train" not in report
    # one evaluation schema: every file says what it measured, then the same body
    from dexdistill.pipelines.rundir import EVALUATION_HEADER

    body = {"success_rate", "success_ci95", "headline", "headline_metric", "metrics"}
    records = [*results.values(), results["student"]["teacher"]]
    records += [r["teacher"] for k, r in results.items() if k.startswith("student_")]
    for record in records:
        assert set(EVALUATION_HEADER) | body <= set(record), sorted(record)
    config = json.loads((run_dir / "config.json").read_text())
    assert {"teacher", "distill", "package_version", "git_commit"} <= set(config)
    stages = json.loads((run_dir / "pipeline.json").read_text())["stages"]
    assert set(stages) == {"teacher", "distill", "evaluate", "report"}
    # a finished run is skipped stage by stage
    assert cli.main(_run(run_dir)) == 0
    assert _results(run_dir) == results


def _killed_during(run_dir: Path, marker: Path, env: dict) -> bool:
    """Starts ``dexdistill run``, SIGKILLs it once ``marker`` exists; True if it was killed."""
    cmd = [sys.executable, "-m", "dexdistill.pipelines.cli", *_run(run_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if marker.exists() and (not marker.is_dir() or any(marker.iterdir())):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


@pytest.mark.slow
def test_run_killed_in_every_stage_ends_like_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    cmd = [sys.executable, "-m", "dexdistill.pipelines.cli"]
    subprocess.run(cmd + _run(full), check=True, env=env, capture_output=True, timeout=900)
    markers = [
        killed / "teacher" / "checkpoints",
        killed / "student" / "checkpoints",
        killed / "eval",
        killed / "report",
    ]
    kills = [_killed_during(killed, m, env) for m in markers]
    assert kills[0] and kills[1], kills  # the long stages were really interrupted
    subprocess.run(cmd + _run(killed), check=True, env=env, capture_output=True, timeout=900)
    assert _results(killed) == _results(full)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--preset", "huge"], "unknown preset 'huge'; available:"),
        (["teacher", "--env", "cube_juggle", "--run-dir", "x"], "env='cube_juggle': unknown task"),
        (["teacher", "--preset", "tiny", "--run-dir", "x", "--ppo.num-envs", "0"], "num_envs"),
        (["distill", "--run-dir", "x", "--dagger.mixing", "sometimes"], "dagger.mixing"),
        (["teacher", "--preset", "tiny", "--run-dir", "x", "--env-overrides", "nope=1"], "nope"),
        (["distill", "--run-dir", "nowhere"], "--run-dir nowhere: no such run directory"),
        (["bench", "envs", "--tasks", "cube_juggle"], "tasks=['cube_juggle']: registered"),
        (["bench", "distill", "--batch-sizes", "0"], "batch_sizes=[0]: must be"),
        (["ablate", "dagger", "--env-overrides", "instability=-1"], "instability=-1"),
    ],
)
def test_bad_input_gets_one_line_naming_the_field(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    assert len(err.splitlines()) == 1, err


def test_different_config_in_the_same_run_dir_needs_force(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["teacher", "--preset", "tiny", "--run-dir", str(run_dir)]
    assert cli.main([*args, "--ppo.num-timesteps", "640", "--final-eval-episodes", "8"]) == 0
    capsys.readouterr()
    code = cli.main([*args, "--ppo.num-timesteps", "1280", "--final-eval-episodes", "8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--force" in err and len(err.splitlines()) == 1
