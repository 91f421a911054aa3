"""The report's numbers: per-stage success, Dactyl's table, the summary of a run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dexdistill.pipelines.outputs.report.read import Record, RunData, load_run


def num(v: Any) -> float | None:
    """``v`` as a finite float, else ``None`` (nulls, NaN, strings...)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def column(records: list[Record], key: str) -> list[float]:
    return [f for f in (num(r.get(key)) for r in records) if f is not None]


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def last(records: list[Record], key: str) -> float | None:
    """The last non-null value of ``key``."""
    values = column(records, key)
    return values[-1] if values else None


def _first(records: list[Record], key: str) -> float | None:
    values = column(records, key)
    return values[0] if values else None


def _steady(records: list[Record]) -> list[Record]:
    """Records without the first iteration of each (re)start, whose time includes compiling."""
    return [r for r in records if "compile_s" not in r]


def series(records: list[Record], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` over the records where both are finite numbers."""
    pairs = [(num(r.get(x_key)), num(r.get(y_key))) for r in records]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*pairs, strict=True)
    return np.asarray(xs), np.asarray(ys)


def _stage_success(
    evaluation: dict[str, Any] | None, metrics: list[Record]
) -> tuple[float | None, float | None, str | None]:
    """``(success, ci95, source)``: the final eval.json, else the last training evaluation."""
    if evaluation is not None and num(evaluation.get("success_rate")) is not None:
        return (
            num(evaluation.get("success_rate")),
            num(evaluation.get("success_ci95")),
            "eval.json",
        )
    rows = [r for r in metrics if num(r.get("eval/success_rate")) is not None]
    if rows:
        return (
            num(rows[-1]["eval/success_rate"]),
            num(rows[-1].get("eval/success_ci95")),
            "metrics",
        )
    return None, None, None


def consecutive(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    table = (evaluation or {}).get("consecutive_successes")
    return table if isinstance(table, dict) else None


def report_summary(run_dir: str | Path | RunData) -> dict[str, Any]:
    """The numbers of the report's summary table (``None`` where the run lacks them).

    Success rates come from the stage's ``eval.json``, or from its last training
    evaluation when the stage has not finished (``*_success_source`` says which).
    ``ratio`` divides the student's success by the teacher's on the *same* episodes
    when ``student/eval.json`` has them, else by the teacher's own final success.
    Throughputs are medians over iterations, leaving out the ones that compiled.
    """
    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    t_success, t_ci, t_src = _stage_success(run.teacher_eval, run.teacher_metrics)
    s_success, s_ci, s_src = _stage_success(run.student_eval, run.student_metrics)
    same_episodes = num(((run.student_eval or {}).get("teacher") or {}).get("success_rate"))
    reference = same_episodes if same_episodes is not None else t_success
    ratio = s_success / reference if s_success is not None and reference else None
    if num((run.student_eval or {}).get("ratio")) is not None:
        ratio = num(run.student_eval["ratio"])  # on the task's headline metric, same episodes
    action_error = num((run.student_eval or {}).get("action_error"))
    if action_error is None:
        action_error = last(run.student_metrics, "eval/action_error")
    t_cs, s_cs = consecutive(run.teacher_eval), consecutive(run.student_eval)
    same_cs = consecutive((run.student_eval or {}).get("teacher"))
    return {
        "teacher_same_cs_mean": num(same_cs.get("mean")) if same_cs else None,
        "teacher_same_cs_median": num(same_cs.get("median")) if same_cs else None,
        "task": run.task,
        "teacher_success": t_success,
        "teacher_success_ci95": t_ci,
        "teacher_success_source": t_src,
        "teacher_episodes": num((run.teacher_eval or {}).get("episodes")),
        "teacher_return": num((run.teacher_eval or {}).get("return_mean")),
        "teacher_consecutive_mean": num(t_cs.get("mean")) if t_cs else None,
        "teacher_consecutive_median": num(t_cs.get("median")) if t_cs else None,
        "teacher_goals_per_minute": num((run.teacher_eval or {}).get("goals_per_minute")),
        "headline_metric": (run.student_eval or run.teacher_eval or {}).get("headline_metric"),
        "curriculum_level": ((run.teacher_eval or {}).get("curriculum") or {}).get("level_name"),
        "teacher_level": (run.teacher_eval or {}).get("goal_level"),
        "student_level": (run.student_eval or {}).get("goal_level"),
        "student_success": s_success,
        "student_success_ci95": s_ci,
        "student_success_source": s_src,
        "student_episodes": num((run.student_eval or {}).get("episodes")),
        "student_return": num((run.student_eval or {}).get("return_mean")),
        "student_consecutive_mean": num(s_cs.get("mean")) if s_cs else None,
        "student_consecutive_median": num(s_cs.get("median")) if s_cs else None,
        "student_goals_per_minute": num((run.student_eval or {}).get("goals_per_minute")),
        "teacher_success_same_episodes": same_episodes,
        "ratio": ratio,
        "action_error": action_error,
        "teacher_iterations": len(run.teacher_metrics) or None,
        "teacher_env_steps": num((run.teacher_eval or {}).get("env_steps"))
        or last(run.teacher_metrics, "env_steps"),
        "teacher_wall_s": sum(column(run.teacher_metrics, "iteration_s")) or None,
        "teacher_env_steps_per_s": _median(column(_steady(run.teacher_metrics), "env_steps_per_s")),
        "teacher_compile_s": _first(run.teacher_metrics, "compile_s"),
        "student_iterations": len(run.student_metrics) or None,
        "student_labelled_samples": last(run.student_metrics, "labelled_samples"),
        "student_wall_s": sum(column(run.student_metrics, "iteration_s")) or None,
        "student_samples_per_s": _median(column(_steady(run.student_metrics), "samples_per_s")),
        "student_compile_s": _first(run.student_metrics, "compile_s"),
    }
