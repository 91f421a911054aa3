"""A Markdown report of a run directory: summary, evaluations, curves and an episode video.

Reads what the stages wrote (every input is optional; a section whose inputs
are missing is skipped, so a half-finished run still gets a report)::

    DIR/config.json                  stage configs (the task name comes from here)
    DIR/teacher/metrics.jsonl        PPO iterations (+ eval/* on evaluation iterations)
    DIR/teacher/eval.json            the teacher's final evaluation
    DIR/student/metrics.jsonl        DAgger iterations
    DIR/student/eval.json            the student's final evaluation (+ the teacher on the same episodes)
    DIR/eval/*.json                  ``dexdistill evaluate`` results (optionally robustness sweeps)

and writes ``DIR/report/report.md`` with PNG plots (matplotlib, Agg) next to it
and, when a policy is given, ``DIR/report/episode.mp4`` (``.gif`` without ffmpeg).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np
from dexdistill.pipelines import rundir as run_files
from dexdistill.pipelines.outputs import render

Record = dict[str, Any]

TEACHER_PLOT = "teacher_curve.png"
DAGGER_PLOT = "dagger_curves.png"
ROBUSTNESS_PLOT = "robustness.png"
VIDEO_NAME = "episode.mp4"
POLICY_COLORS = {"teacher": "tab:orange", "student": "tab:blue"}
MAX_INLINE_TRIALS = 20
"""Longer lists of consecutive-success trials are listed under the evaluation table."""


# ----------------------------------------------------------------------------- reading


def read_json(path: Path) -> Any | None:
    """The parsed file, or ``None`` if it is missing or not (yet) valid JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[Record]:
    """One dict per valid line; a torn last line (a stage killed mid-write) is skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


@dataclasses.dataclass
class RunData:
    """Everything the report reads from a run directory (absent inputs are empty/None)."""

    run_dir: Path
    config: dict[str, Any]
    teacher_metrics: list[Record]
    teacher_eval: dict[str, Any] | None
    student_metrics: list[Record]
    student_eval: dict[str, Any] | None
    evals: list[tuple[str, dict[str, Any]]]
    """``(file name, contents)`` of ``DIR/eval/*.json``, sorted by name."""

    @property
    def task(self) -> str | None:
        for section in ("teacher", "distill"):
            cfg = (self.config.get(section) or {}).get("config") or {}
            if isinstance(cfg.get("env"), str):
                return cfg["env"]
        return None


def load_run(run_dir: str | Path) -> RunData:
    """Reads the run directory; never raises on missing or partial files."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    evals = []
    for path in sorted((run_dir / "eval").glob("*.json")):
        data = read_json(path)
        if isinstance(data, dict):
            evals.append((path.name, data))
    return RunData(
        run_dir=run_dir,
        config=config if isinstance(config, dict) else {},
        teacher_metrics=read_jsonl(run_dir / "teacher" / "metrics.jsonl"),
        teacher_eval=_as_dict(read_json(run_dir / "teacher" / "eval.json")),
        student_metrics=read_jsonl(run_dir / "student" / "metrics.jsonl"),
        student_eval=_as_dict(read_json(run_dir / "student" / "eval.json")),
        evals=evals,
    )


def _as_dict(x: Any) -> dict[str, Any] | None:
    return x if isinstance(x, dict) else None


# ----------------------------------------------------------------------------- numbers


def _num(v: Any) -> float | None:
    """``v`` as a finite float, else ``None`` (nulls, NaN, strings...)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _column(records: list[Record], key: str) -> list[float]:
    return [f for f in (_num(r.get(key)) for r in records) if f is not None]


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _last(records: list[Record], key: str) -> float | None:
    """The last non-null value of ``key``."""
    values = _column(records, key)
    return values[-1] if values else None


def _first(records: list[Record], key: str) -> float | None:
    values = _column(records, key)
    return values[0] if values else None


def _steady(records: list[Record]) -> list[Record]:
    """Records without the first iteration of each (re)start, whose time includes compiling."""
    return [r for r in records if "compile_s" not in r]


def _series(records: list[Record], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` over the records where both are finite numbers."""
    pairs = [(_num(r.get(x_key)), _num(r.get(y_key))) for r in records]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*pairs, strict=True)
    return np.asarray(xs), np.asarray(ys)


def _stage_success(
    evaluation: dict[str, Any] | None, metrics: list[Record]
) -> tuple[float | None, float | None, str | None]:
    """``(success, ci95, source)``: the final eval.json, else the last training evaluation."""
    if evaluation is not None and _num(evaluation.get("success_rate")) is not None:
        return (
            _num(evaluation.get("success_rate")),
            _num(evaluation.get("success_ci95")),
            "eval.json",
        )
    rows = [r for r in metrics if _num(r.get("eval/success_rate")) is not None]
    if rows:
        return (
            _num(rows[-1]["eval/success_rate"]),
            _num(rows[-1].get("eval/success_ci95")),
            "metrics",
        )
    return None, None, None


def _consecutive(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
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
    same_episodes = _num(((run.student_eval or {}).get("teacher") or {}).get("success_rate"))
    reference = same_episodes if same_episodes is not None else t_success
    ratio = s_success / reference if s_success is not None and reference else None
    if _num((run.student_eval or {}).get("ratio")) is not None:
        ratio = _num(run.student_eval["ratio"])  # on the task's headline metric, same episodes
    action_error = _num((run.student_eval or {}).get("action_error"))
    if action_error is None:
        action_error = _last(run.student_metrics, "eval/action_error")
    t_cs, s_cs = _consecutive(run.teacher_eval), _consecutive(run.student_eval)
    same_cs = _consecutive((run.student_eval or {}).get("teacher"))
    return {
        "teacher_same_cs_mean": _num(same_cs.get("mean")) if same_cs else None,
        "teacher_same_cs_median": _num(same_cs.get("median")) if same_cs else None,
        "task": run.task,
        "teacher_success": t_success,
        "teacher_success_ci95": t_ci,
        "teacher_success_source": t_src,
        "teacher_episodes": _num((run.teacher_eval or {}).get("episodes")),
        "teacher_return": _num((run.teacher_eval or {}).get("return_mean")),
        "teacher_consecutive_mean": _num(t_cs.get("mean")) if t_cs else None,
        "teacher_consecutive_median": _num(t_cs.get("median")) if t_cs else None,
        "teacher_goals_per_minute": _num((run.teacher_eval or {}).get("goals_per_minute")),
        "headline_metric": (run.student_eval or run.teacher_eval or {}).get("headline_metric"),
        "curriculum_level": ((run.teacher_eval or {}).get("curriculum") or {}).get("level_name"),
        "student_success": s_success,
        "student_success_ci95": s_ci,
        "student_success_source": s_src,
        "student_episodes": _num((run.student_eval or {}).get("episodes")),
        "student_return": _num((run.student_eval or {}).get("return_mean")),
        "student_consecutive_mean": _num(s_cs.get("mean")) if s_cs else None,
        "student_consecutive_median": _num(s_cs.get("median")) if s_cs else None,
        "student_goals_per_minute": _num((run.student_eval or {}).get("goals_per_minute")),
        "teacher_success_same_episodes": same_episodes,
        "ratio": ratio,
        "action_error": action_error,
        "teacher_iterations": len(run.teacher_metrics) or None,
        "teacher_env_steps": _num((run.teacher_eval or {}).get("env_steps"))
        or _last(run.teacher_metrics, "env_steps"),
        "teacher_wall_s": sum(_column(run.teacher_metrics, "iteration_s")) or None,
        "teacher_env_steps_per_s": _median(
            _column(_steady(run.teacher_metrics), "env_steps_per_s")
        ),
        "teacher_compile_s": _first(run.teacher_metrics, "compile_s"),
        "student_iterations": len(run.student_metrics) or None,
        "student_labelled_samples": _last(run.student_metrics, "labelled_samples"),
        "student_wall_s": sum(_column(run.student_metrics, "iteration_s")) or None,
        "student_samples_per_s": _median(_column(_steady(run.student_metrics), "samples_per_s")),
        "student_compile_s": _first(run.student_metrics, "compile_s"),
    }


# ----------------------------------------------------------------------------- plots


def _figure(ncols: int, nrows: int = 1, width: float = 5.0, height: float = 3.6) -> Any:
    """A matplotlib ``Figure`` on the Agg canvas (no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _band(ax: Any, x: np.ndarray, y: np.ndarray, half: np.ndarray, label: str, **kw: Any) -> None:
    """A line with markers and a shaded ``y ± half`` band."""
    (line,) = ax.plot(x, y, marker="o", ms=3, label=label, **kw)
    ax.fill_between(x, y - half, y + half, color=line.get_color(), alpha=0.2, lw=0)


def _success_band(records: list[Record], x_key: str) -> tuple[np.ndarray, ...]:
    """``(x, success, ci95)`` on evaluation records (a null CI counts as 0)."""
    rows = [r for r in records if _num(r.get(x_key)) is not None]
    rows = [r for r in rows if _num(r.get("eval/success_rate")) is not None]
    x = np.array([_num(r[x_key]) for r in rows], float)
    y = np.array([_num(r["eval/success_rate"]) for r in rows], float)
    ci = np.array([_num(r.get("eval/success_ci95")) or 0.0 for r in rows], float)
    return x, y, ci


def plot_teacher_curve(metrics: list[Record], path: Path) -> Path | None:
    """Evaluation success (with its 95% band) and return vs env steps; ``None`` without evals."""
    x_key = "env_steps" if _column(metrics, "env_steps") else "iteration"
    x, y, ci = _success_band(metrics, x_key)
    xr, ret = _series(metrics, x_key, "eval/return_mean")
    if not len(x) and not len(xr):
        return None
    xl, level = _series(metrics, x_key, "curriculum/level")
    curriculum = len(xl) > 0 and level.max() > 0
    fig = _figure(3 if curriculum else 2)
    axes = fig.subplots(1, 3 if curriculum else 2)
    ax_s, ax_r = axes[0], axes[1]
    if curriculum:
        ax_c = axes[2]
        ax_c.step(xl, level, where="post", color=POLICY_COLORS["teacher"], label="level")
        xw, window = _series(metrics, x_key, "curriculum/window_mean")
        twin = ax_c.twinx()
        twin.plot(xw, window, color="tab:gray", lw=0.8, label="window mean")
        twin.set(ylabel="training headline metric (window mean)")
        ax_c.set(xlabel=x_key.replace("_", " "), ylabel="goal level", title="Goal curriculum")
        ax_c.grid(alpha=0.3)
    xh, head = _series(metrics, x_key, "eval/headline")
    consecutive = any(r.get("eval/headline_metric") == "consecutive_successes" for r in metrics)
    if consecutive and len(xh):  # hand_cube: consecutive successes, not a rate
        ax_s.plot(xh, head, marker="o", ms=3, color=POLICY_COLORS["teacher"])
        ax_s.set(xlabel=x_key.replace("_", " "), ylabel="consecutive successes")
        ax_s.set_title("Teacher evaluation: consecutive successes (mean)")
    elif len(x):
        _band(ax_s, x, y, ci, "teacher", color=POLICY_COLORS["teacher"])
    if not consecutive:
        ax_s.set(xlabel=x_key.replace("_", " "), ylabel="success rate", ylim=(-0.02, 1.02))
        ax_s.set_title("Teacher evaluation success (95% CI)")
    if len(xr):
        ax_r.plot(xr, ret, marker="o", ms=3, color=POLICY_COLORS["teacher"])
    ax_r.set(xlabel=x_key.replace("_", " "), ylabel="episode return")
    ax_r.set_title("Teacher evaluation return")
    for ax in (ax_s, ax_r):
        ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def plot_dagger_curves(
    metrics: list[Record], teacher_success: float | None, path: Path
) -> Path | None:
    """Student success vs iteration (teacher as a line); action error with beta on a twin axis."""
    from matplotlib.ticker import MaxNLocator

    if not metrics:
        return None
    fig = _figure(2)
    ax_s, ax_e = fig.subplots(1, 2)
    x, y, ci = _success_band(metrics, "iteration")
    if len(x):
        _band(ax_s, x, y, ci, "student", color=POLICY_COLORS["student"])
    if teacher_success is not None:
        ax_s.axhline(teacher_success, color="k", ls="--", lw=1, label="teacher")
    ax_s.set(xlabel="DAgger iteration", ylabel="success rate", ylim=(-0.02, 1.02))
    ax_s.set_title("Student evaluation success (95% CI)")
    ax_s.legend(loc="lower right")
    for key, label in (
        ("rollout/action_error", "rollout action error"),
        ("eval/action_error", "eval action error"),
        ("fit/action_mse", "fit action MSE"),
    ):
        xs, ys = _series(metrics, "iteration", key)
        if len(xs):
            ax_e.plot(xs, ys, marker="o", ms=3, label=label)
    ax_e.set(xlabel="DAgger iteration", ylabel="action error", title="Action error and beta")
    handles = list(ax_e.lines)
    xb, beta = _series(metrics, "iteration", "beta")
    if len(xb):
        twin = ax_e.twinx()
        handles += twin.plot(xb, beta, color="tab:gray", ls=":", label="beta")
        twin.set(ylabel="beta (teacher share)", ylim=(-0.02, 1.02))
    if handles:
        ax_e.legend(handles=handles, loc="upper right", fontsize=8)
    for ax in (ax_s, ax_e):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path)
    return path


def _sweeps(evals: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, list[Record]]]]:
    """``{sweep name: [(curve label, points), ...]}`` over every eval file with ``robustness``."""
    out: dict[str, list[tuple[str, list[Record]]]] = {}
    with_sweeps = [(n, d) for n, d in evals if isinstance(d.get("robustness"), dict)]
    labels = [f"{d.get('policy', '?')} ({d.get('randomization', '?')})" for _, d in with_sweeps]
    for (name, data), label in zip(with_sweeps, labels, strict=True):
        sweeps = data["robustness"]
        if labels.count(label) > 1:
            label = f"{label} [{Path(name).stem}]"
        for sweep, points in sweeps.items():
            if isinstance(points, list):
                out.setdefault(sweep, []).append(
                    (label, [p for p in points if isinstance(p, dict)])
                )
    return out


def plot_robustness(evals: list[tuple[str, dict[str, Any]]], path: Path) -> Path | None:
    """One panel per robustness sweep: success (95% band) vs the swept value, one curve per file."""
    sweeps = _sweeps(evals)
    if not sweeps:
        return None
    ncols = min(3, len(sweeps))
    nrows = math.ceil(len(sweeps) / ncols)
    fig = _figure(ncols, nrows, width=4.2, height=3.2)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, (sweep, curves) in zip(axes, sorted(sweeps.items()), strict=False):
        for label, points in curves:
            x, y = _series(points, "value", "success_rate")
            if not len(x):
                continue
            rows = [p for p in points if _num(p.get("value")) is not None]
            rows = [p for p in rows if _num(p.get("success_rate")) is not None]
            ci = np.array([_num(p.get("success_ci95")) or 0.0 for p in rows])
            order = np.argsort(x)
            color = POLICY_COLORS.get(label.split(" ")[0])
            _band(ax, x[order], y[order], ci[order], label, **({"color": color} if color else {}))
        ax.set(xlabel=sweep, ylabel="success rate", ylim=(-0.02, 1.02), title=sweep)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    for ax in axes[len(sweeps) :]:
        ax.set_visible(False)
    fig.savefig(path)
    return path


# ----------------------------------------------------------------------------- Markdown


def _fmt(v: Any, digits: int = 3) -> str:
    f = _num(v)
    if f is None:
        return "—"
    if abs(f) >= 1000 or (f == int(f) and abs(f) >= 10):
        return f"{f:,.0f}"
    return f"{f:.{digits}g}"


def _pm(v: Any, half: Any, digits: int = 3) -> str:
    if _num(v) is None:
        return "—"
    return _fmt(v, digits) if _num(half) is None else f"{_fmt(v, digits)} ± {_fmt(half, digits)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (``|`` inside cells is escaped)."""
    cell = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]


def _summary_section(s: dict[str, Any]) -> list[str]:
    """The summary table as Markdown lines."""
    src = {"metrics": " (last training evaluation; stage not finished)", "eval.json": ""}
    rows: list[list[str]] = []
    # hand_cube: ``success`` (the episode ended on a goal) says nothing; the headline does
    rates = s.get("headline_metric") != "consecutive_successes"
    if rates and s["teacher_success"] is not None:
        n = f", {_fmt(s['teacher_episodes'])} episodes" if s["teacher_episodes"] else ""
        rows.append(
            [
                "Teacher success",
                _pm(s["teacher_success"], s["teacher_success_ci95"])
                + n
                + src[s["teacher_success_source"]],
            ]
        )
    if rates and s["student_success"] is not None:
        n = f", {_fmt(s['student_episodes'])} episodes" if s["student_episodes"] else ""
        rows.append(
            [
                "Student success",
                _pm(s["student_success"], s["student_success_ci95"])
                + n
                + src[s["student_success_source"]],
            ]
        )
    if rates and s["teacher_success_same_episodes"] is not None:
        rows.append(
            ["Teacher success on the student's episodes", _fmt(s["teacher_success_same_episodes"])]
        )
    ratio_label = (
        "Student / teacher consecutive successes (same episodes)"
        if s.get("headline_metric") == "consecutive_successes"
        else "Student / teacher success"
    )
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
    values = [_fmt(t) for t in sorted(t for t in trials if _num(t) is not None)]
    if len(values) <= MAX_INLINE_TRIALS:
        return " ".join(values)
    return f"{' '.join(values[:5])} … {' '.join(values[-5:])} (n={len(values)}, listed below)"


def _eval_rows(run: RunData) -> list[tuple[str, dict[str, Any]]]:
    """``(source, evaluation)``: the stages' final evaluations, then ``DIR/eval/*.json``."""
    rows = []
    trained_on = run.config.get("physics_backend") or {}
    for name, data, stage in (
        ("teacher/eval.json", run.teacher_eval, "teacher"),
        ("student/eval.json", run.student_eval, "distill"),
    ):
        if data is not None:
            policy = name.split("/")[0]
            physics = trained_on.get(stage, "—")
            rows.append(
                (
                    name,
                    {
                        "policy": policy,
                        "randomization": "train",
                        "physics_backend": physics,
                        **data,
                    },
                )
            )
    rows += [(f"eval/{name}", data) for name, data in run.evals]
    return rows


def _evaluation_section(run: RunData) -> list[str]:
    rows = _eval_rows(run)
    if not rows:
        return []
    header = [
        "source",
        "policy",
        "randomization",
        "physics",
        "episodes",
        "success ± 95% CI",
        "return",
        "consecutive successes (mean ± std)",
        "median",
        "trials (sorted)",
        "drop rate",
    ]
    body, long_trials = [], []
    for source, d in rows:
        cs = _consecutive(d) or {}
        trials = cs.get("trials") if isinstance(cs.get("trials"), list) else []
        if len(trials) > MAX_INLINE_TRIALS:
            long_trials.append((source, sorted(t for t in trials if _num(t) is not None)))
        body.append(
            [
                f"`{source}`",
                str(d.get("policy", "—")),
                str(d.get("randomization", "—")),
                str(d.get("physics_backend", "—")),
                _fmt(d.get("episodes")),
                _pm(d.get("success_rate"), d.get("success_ci95")),
                _fmt(d.get("return_mean")),
                _pm(cs.get("mean"), cs.get("std")) if cs else "—",
                _fmt(cs.get("median")) if cs else "—",
                _trials_text(trials) if trials else "—",
                _fmt(d.get("drop_rate")),
            ]
        )
    lines = ["## Evaluations", "", *_table(header, body)]
    lines += [
        "",
        "*physics*: the simulator of that evaluation; a row on the simulator the policy was "
        "not trained on (sim-to-sim) comes from `dexdistill evaluate --backend mjx|mujoco`.",
    ]
    for source, trials in long_trials:
        lines += [
            "",
            f"Consecutive successes of `{source}` (sorted): {' '.join(_fmt(t) for t in trials)}",
        ]
    return lines


def _levels_section(run: RunData) -> list[str]:
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


def _image_section(title: str, image: Path | None, note: str = "") -> list[str]:
    if image is None:
        return []
    lines = [f"## {title}", ""]
    if note:
        lines += [note, ""]
    return lines + [f"![{title}]({image.name})"]


def _video_section(video: Path | str | None, recorded: bool) -> list[str]:
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


def _header(run: RunData) -> list[str]:
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


# ----------------------------------------------------------------------------- video, entry point


def _render_video(
    out_dir: Path, episode: Path | None, video_policy: tuple[Any, Any, Any] | None
) -> Path | str:
    """Writes the episode video - the recorded ``episode`` if given, else a rollout of
    ``video_policy`` - and returns its path, or the one-line reason it could not."""
    try:
        if episode is not None:
            return render.render_recorded(episode, out_dir / VIDEO_NAME)
        assert video_policy is not None
        env, policy, initial_carry = video_policy
        return render.render_episode(
            env, policy, initial_carry, jax.random.PRNGKey(0), out_dir / VIDEO_NAME
        )
    except RuntimeError as err:  # no OpenGL context (see pipelines/render.py)
        return str(err).splitlines()[0] if str(err) else type(err).__name__


def _existing_video(out_dir: Path) -> Path | None:
    for name in (VIDEO_NAME, Path(VIDEO_NAME).with_suffix(".gif").name):
        if (out_dir / name).exists():
            return out_dir / name
    return None


def write_report(
    run_dir: str | Path,
    video: bool = True,
    video_policy: tuple[Any, Any, Any] | None = None,
) -> Path:
    """Writes ``DIR/report/report.md`` (+ PNG plots, + the episode video); returns its path.

    With ``video=True`` the video shows the first episode of the student's final
    evaluation (``student/episode.npz``, recorded by the distill stage: nothing to
    compile). Runs without that file render a fresh episode of ``video_policy``:
    ``(env, policy, initial_carry)`` for an unbatched env and a pure
    ``policy(obs [1, ...], carry, key)`` (see :func:`pipelines.render.render_episode`).
    Without an OpenGL context the report says so in one line instead of failing.
    Without either, an existing video is linked.
    """
    run = load_run(run_dir)
    out_dir = run.run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = report_summary(run)
    teacher_line = next(
        (
            v
            for v in (
                summary["teacher_success_same_episodes"],
                summary["teacher_success"],
                _last(run.student_metrics, "teacher/success_rate"),
            )
            if v is not None
        ),
        None,
    )
    teacher_png = plot_teacher_curve(run.teacher_metrics, out_dir / TEACHER_PLOT)
    dagger_png = plot_dagger_curves(run.student_metrics, teacher_line, out_dir / DAGGER_PLOT)
    robust_png = plot_robustness(run.evals, out_dir / ROBUSTNESS_PLOT)
    clip: Path | str | None = None
    episode: Path | None = None
    if video:
        recorded = run.run_dir / "student" / "episode.npz"
        episode = recorded if recorded.exists() else None
        if episode is not None or video_policy is not None:
            clip = _render_video(out_dir, episode, video_policy)
        else:
            clip = _existing_video(out_dir)
    sections = [
        _header(run),
        _summary_section(summary),
        _evaluation_section(run),
        _levels_section(run),
        _image_section("Teacher learning curve", teacher_png),
        _image_section("DAgger", dagger_png, "Dashed line: the teacher's success rate."),
        _image_section("Robustness", robust_png),
        _video_section(clip, video and episode is not None),
    ]
    text = "\n\n".join("\n".join(s) for s in sections if s) + "\n"
    path = out_dir / "report.md"
    run_files.write_text(path, text)
    return path
