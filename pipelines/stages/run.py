"""``dexdistill run``: teacher -> distill -> evaluate -> report in one run directory.

Finished stages are skipped and an interrupted one resumes from its last
checkpoint, so rerunning the same command after a crash or a kill completes the
run and gives the results an uninterrupted run would have. Each stage's
wall-clock goes to ``DIR/pipeline.json``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from dexdistill import envs
from dexdistill.pipelines import rundir
from dexdistill.pipelines.configs import EvaluateConfig, RunConfig
from dexdistill.pipelines.io import files
from dexdistill.pipelines.outputs import report
from dexdistill.pipelines.stages import (
    distill as distill_stage,
    evaluate as evaluate_stage,
    teacher as teacher_stage,
)

STAGES = ("teacher", "distill", "evaluate", "report")


def _timed(log: dict[str, Any], name: str, fn: Any) -> Any:
    t0 = time.perf_counter()
    out = fn()
    log[name] = {"wall_s": round(time.perf_counter() - t0, 2)}
    return out


def _write_log(run_dir: Path, log: dict[str, Any]) -> None:
    files.write_json(rundir.RunDir(run_dir).pipeline_log, log)


def run(run_dir: str | Path, cfg: RunConfig, force: bool = False) -> dict[str, Any]:
    """Runs every stage in ``run_dir`` (skipping finished ones); returns the report summary."""
    cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log: dict[str, Any] = {"stages": {}}
    stages = log["stages"]
    teacher = _timed(stages, "teacher", lambda: teacher_stage.run(run_dir, cfg.teacher, force))
    if not teacher.get("finished"):
        return _stopped(run_dir, log, "teacher")
    student = _timed(stages, "distill", lambda: distill_stage.run(run_dir, cfg.distill, force))
    if not student.get("finished"):
        return _stopped(run_dir, log, "distill")

    def evaluate() -> None:
        for ecfg in comparisons(run_dir, cfg):
            if not rundir.RunDir(run_dir).evaluation(evaluate_stage.output_name(ecfg)).exists():
                evaluate_stage.run(run_dir, ecfg)

    _timed(stages, "evaluate", evaluate)

    def write_report() -> Path:
        video_policy = student_video_policy(run_dir) if cfg.video else None
        return report.write_report(run_dir, video=cfg.video, video_policy=video_policy)

    path = _timed(stages, "report", write_report)
    log["total_wall_s"] = round(time.perf_counter() - t_start, 2)
    _write_log(run_dir, log)
    summary = report.report_summary(run_dir)
    print(f"run: done in {log['total_wall_s']:.0f} s; report at {path}")
    return summary


def student_video_policy(run_dir: str | Path) -> tuple[Any, Any, Any] | None:
    """``(env, policy, initial_carry)`` of the run's student for the report video; None when
    there is no student, or when the report will render its recorded evaluation episode."""
    rd = rundir.RunDir(run_dir)
    if not rd.checkpoints("student").exists() or rd.episode.exists():
        return None
    loaded = rundir.load_student(run_dir)
    env = envs.make(loaded.env_name, loaded.env_config)
    return env, loaded.policy(), loaded.initial_carry


def comparisons(run_dir: str | Path, cfg: RunConfig) -> list[EvaluateConfig]:
    """The student-vs-teacher evaluations of ``cfg.conditions`` (each evaluates the student
    and its teacher on the same episodes). ``sim2sim`` is the engine the distill stage did
    not train on; a task without a physics engine (``point_mass``) has none and skips it."""
    trained = (rundir.RunDir(run_dir).read_config().get("physics_backend") or {}).get("distill")
    out = []
    for condition in cfg.conditions:
        if condition == "sim2sim":
            if trained not in ("mujoco", "mjx"):
                continue
            other = "mjx" if trained == "mujoco" else "mujoco"
            ecfg = dataclasses.replace(
                cfg.evaluate, policy="student", randomization="train", backend=other
            )
        else:
            ecfg = dataclasses.replace(cfg.evaluate, policy="student", randomization=condition)
        out.append(ecfg)
    return out


def _stopped(run_dir: Path, log: dict[str, Any], stage: str) -> dict[str, Any]:
    _write_log(run_dir, log)
    print(f"run: the {stage} stage stopped early (max_minutes); rerun the command to continue")
    return {"finished": False, "stage": stage}
