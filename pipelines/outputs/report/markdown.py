"""The report's Markdown sections: summary, evaluations, levels, images, video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dexdistill.pipelines.outputs.report.numbers import consecutive, num
from dexdistill.pipelines.outputs.report.read import MAX_INLINE_TRIALS, RunData


def _fmt(v: Any, digits: int = 3) -> str:
    f = num(v)
    if f is None:
        return "—"
    if abs(f) >= 1000 or (f == int(f) and abs(f) >= 10):
        return f"{f:,.0f}"
    return f"{f:.{digits}g}"


def _pm(v: Any, half: Any, digits: int = 3) -> str:
    if num(v) is None:
        return "—"
    return _fmt(v, digits) if num(half) is None else f"{_fmt(v, digits)} ± {_fmt(half, digits)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (``|`` inside cells is escaped)."""
    cell = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]


def summary_section(s: dict[str, Any]) -> list[str]:
    """The summary table as Markdown lines."""
    src = {"metrics": " (last training evaluation; stage not finished)", "eval.json": ""}
    rows: list[list[str]] = []
    # hand_cube: ``success`` (the episode ended on a goal) says nothing; the headline does
    rates = s.get("headline_metric") != "consecutive_successes"

    def at(level: Any) -> str:
        return f" at goal level `{level}`" if level else ""

    t_at, s_at = at(s.get("teacher_level")), at(s.get("student_level"))
    for who, level_at in (("teacher", t_at), ("student", s_at)):
        if rates and s[f"{who}_success"] is not None:
            episodes = s[f"{who}_episodes"]
            n = f", {_fmt(episodes)} episodes" if episodes else ""
            value = _pm(s[f"{who}_success"], s[f"{who}_success_ci95"])
            label = f"{who.capitalize()} success{level_at}"
            rows.append([label, value + n + src[s[f"{who}_success_source"]]])
    if rates and s["teacher_success_same_episodes"] is not None:
        rows.append(
            [
                "Teacher success on the student's episodes" + s_at,
                _fmt(s["teacher_success_same_episodes"]),
            ]
        )
    ratio_label = (
        "Student / teacher consecutive successes (same episodes)"
        if s.get("headline_metric") == "consecutive_successes"
        else "Student / teacher success (same episodes)"
    ) + s_at
    optional = [
        (ratio_label, "ratio"),
        ("Goal level the teacher's curriculum reached", "curriculum_level"),
        ("Student action error (vs teacher mean action)", "action_error"),
        ("Teacher consecutive successes (mean)", "teacher_consecutive_mean"),
        ("Teacher consecutive successes (median)", "teacher_consecutive_median"),
        ("Teacher consecutive successes on the student's episodes (mean)", "teacher_same_cs_mean"),
        (
            "Teacher consecutive successes on the student's episodes (median)",
            "teacher_same_cs_median",
        ),
        ("Teacher goals per minute", "teacher_goals_per_minute"),
        ("Student consecutive successes (mean)", "student_consecutive_mean"),
        ("Student consecutive successes (median)", "student_consecutive_median"),
        ("Student goals per minute", "student_goals_per_minute"),
        ("Teacher iterations", "teacher_iterations"),
        ("Teacher env steps", "teacher_env_steps"),
        ("Teacher wall-clock (s, sum of iterations)", "teacher_wall_s"),
        ("Teacher throughput (median env steps/s)", "teacher_env_steps_per_s"),
        ("Teacher compile + first iteration (s)", "teacher_compile_s"),
        ("DAgger iterations", "student_iterations"),
        ("Labelled samples", "student_labelled_samples"),
        ("Student wall-clock (s, sum of iterations)", "student_wall_s"),
        ("Student throughput (median labelled samples/s)", "student_samples_per_s"),
        ("Student compile + first iteration (s)", "student_compile_s"),
    ]
    rows += [[label, _fmt(s[key])] for label, key in optional if s.get(key) is not None]
    if not rows:
        return ["## Summary", "", "Nothing to summarize yet: no teacher or student results."]
    return ["## Summary", "", *_table(["", "value"], rows)]


def _trials_text(trials: list[Any]) -> str:
    values = [_fmt(t) for t in sorted(t for t in trials if num(t) is not None)]
    if len(values) <= MAX_INLINE_TRIALS:
        return " ".join(values)
    return f"{' '.join(values[:5])} … {' '.join(values[-5:])} (n={len(values)}, listed below)"


def _eval_rows(run: RunData) -> list[tuple[str, dict[str, Any]]]:
    """``(source, evaluation)``, each evaluation once: the stages' final evaluations, then
    ``DIR/eval/*.json`` (copies of a stage's evaluation, which older runs wrote, left out)."""
    rows = []
    trained_on = run.config.get("physics_backend") or {}
    for name, data, stage in (
        ("teacher/eval.json", run.teacher_eval, "teacher"),
        ("student/eval.json", run.student_eval, "distill"),
    ):
        if data is not None:
            meta = {
                "policy": name.split("/")[0],
                "randomization": "train",
                "physics_backend": trained_on.get(stage, "—"),
            }
            rows.append((name, {**meta, **data}))
    rows += [(f"eval/{name}", d) for name, d in run.evals if "source" not in d]
    return rows


def _row(source: str, d: dict[str, Any], hand: bool) -> list[str]:
    """One evaluation's cells; a student row also gets its teacher on the same episodes."""
    head = [
        f"`{source}`",
        str(d.get("policy", "—")),
        str(d.get("goal_level") or "—"),
        str(d.get("randomization", "—")),
        str(d.get("physics_backend", "—")),
        _fmt(d.get("episodes")),
    ]
    teacher = d.get("teacher") if isinstance(d.get("teacher"), dict) else None
    if hand:
        cs = consecutive(d) or {}
        t_cs = consecutive(teacher) or {}
        trials = cs.get("trials") if isinstance(cs.get("trials"), list) else []
        return head + [
            _pm(cs.get("mean"), cs.get("std")) if cs else "—",
            _fmt(cs.get("median")) if cs else "—",
            _trials_text(trials) if trials else "—",
            _fmt(d.get("goals_per_minute")),
            _fmt(d.get("drop_rate")),
            _pm(t_cs.get("mean"), t_cs.get("std")) if t_cs else "—",
        ]
    t_rate = teacher.get("success_rate") if teacher else d.get("teacher_success_rate")
    return head + [
        _pm(d.get("success_rate"), d.get("success_ci95")),
        _fmt(d.get("return_mean")),
        _fmt(t_rate) if t_rate is not None else "—",
    ]


def evaluation_section(run: RunData) -> list[str]:
    """Every evaluation once; each row names its policy, goal level and conditions, and a
    student row its teacher on the same episodes. The hand's rows are Dactyl's table (its
    per-episode "success" means nothing there); the other tasks' the success rate."""
    rows = _eval_rows(run)
    if not rows:
        return []
    hand = any(consecutive(d) for _, d in rows)
    head = ["source", "policy", "goal level", "randomization", "physics", "episodes"]
    if hand:
        head += [
            "consecutive successes (mean ± std)",
            "median",
            "trials (sorted)",
            "goals / min",
            "drop rate",
            "teacher, same episodes",
        ]
    else:
        head += ["success ± 95% CI", "return", "teacher, same episodes"]
    body = [_row(source, d, hand) for source, d in rows]
    lines = ["## Evaluations", "", *_table(head, body)]
    lines += [
        "",
        "*physics*: the simulator of that evaluation; a row on the simulator the policy was "
        "not trained on is a sim-to-sim check (`dexdistill run`'s `sim2sim` condition, or "
        "`dexdistill evaluate --backend mjx|mujoco`). "
        "*teacher, same episodes*: the teacher on the student's episodes (student rows).",
    ]
    for source, d in rows:
        trials = (consecutive(d) or {}).get("trials")
        if isinstance(trials, list) and len(trials) > MAX_INLINE_TRIALS:
            text = " ".join(_fmt(t) for t in sorted(t for t in trials if num(t) is not None))
            lines += ["", f"Consecutive successes of `{source}` (sorted): {text}"]
    return lines


def levels_section(run: RunData) -> list[str]:
    """The teacher's final evaluation at every goal level (tasks with a curriculum)."""
    levels = (run.teacher_eval or {}).get("levels")
    if not isinstance(levels, dict) or not levels:
        return []
    reached = ((run.teacher_eval or {}).get("curriculum") or {}).get("level_name")
    metric = str((run.teacher_eval or {}).get("headline_metric", "success")).replace("_", " ")
    rows = [
        [
            f"`{name}`" + (" (reached)" if name == reached else ""),
            _fmt(d.get("headline")),
            _pm(d.get("success_rate"), d.get("success_ci95")),
            _fmt(d.get("position_success_mean")),
        ]
        for name, d in levels.items()
    ]
    return [
        "## Goal levels",
        "",
        "The teacher's final evaluation episodes at every goal level, easiest first "
        "(the last is the task's full goal distribution; see docs/tasks.md).",
        "",
        *_table(["level", metric, "success ± 95% CI", "position success"], rows),
    ]


def image_section(title: str, image: Path | None, note: str = "") -> list[str]:
    if image is None:
        return []
    lines = [f"## {title}", ""]
    if note:
        lines += [note, ""]
    return lines + [f"![{title}]({image.name})"]


def video_section(video: Path | str | None, recorded: bool) -> list[str]:
    if video is None:
        return []
    if isinstance(video, str):  # why there is no video
        return ["## Episode video", "", f"No video: {video}"]
    link = (
        f"![episode]({video.name})" if video.suffix == ".gif" else f"[{video.name}]({video.name})"
    )
    what = (
        "The student in the first episode of its final evaluation (randomized as in training)."
        if recorded
        else "The student in a fresh randomized episode."
    )
    return ["## Episode video", "", what, "", link]


def header(run: RunData) -> list[str]:
    task = run.task or "unknown task"
    meta = [f"run directory `{run.run_dir}`"]
    if run.config.get("package_version"):
        meta.append(f"dexdistill {run.config['package_version']}")
    if run.config.get("git_commit"):
        meta.append(f"commit `{str(run.config['git_commit'])[:12]}`")
    lines = [f"# dexdistill report: {task}", "", " · ".join(meta)]
    missing = [
        what
        for what, present in (
            ("teacher", run.teacher_metrics or run.teacher_eval),
            ("student (DAgger)", run.student_metrics or run.student_eval),
        )
        if not present
    ]
    if missing:
        lines += ["", f"Not in this run directory (yet): {', '.join(missing)}."]
    return lines
