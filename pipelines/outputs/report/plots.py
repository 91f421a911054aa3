"""The report's PNG plots (matplotlib, Agg): teacher curve, DAgger curves, robustness."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dexdistill.pipelines.outputs.report.numbers import column, num, series
from dexdistill.pipelines.outputs.report.read import POLICY_COLORS, Record


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
    rows = [r for r in records if num(r.get(x_key)) is not None]
    rows = [r for r in rows if num(r.get("eval/success_rate")) is not None]
    x = np.array([num(r[x_key]) for r in rows], float)
    y = np.array([num(r["eval/success_rate"]) for r in rows], float)
    ci = np.array([num(r.get("eval/success_ci95")) or 0.0 for r in rows], float)
    return x, y, ci


def plot_teacher_curve(metrics: list[Record], path: Path) -> Path | None:
    """Evaluation success (with its 95% band) and return vs env steps; ``None`` without evals."""
    x_key = "env_steps" if column(metrics, "env_steps") else "iteration"
    x, y, ci = _success_band(metrics, x_key)
    xr, ret = series(metrics, x_key, "eval/return_mean")
    if not len(x) and not len(xr):
        return None
    xl, level = series(metrics, x_key, "curriculum/level")
    curriculum = len(xl) > 0 and level.max() > 0
    fig = _figure(3 if curriculum else 2)
    axes = fig.subplots(1, 3 if curriculum else 2)
    ax_s, ax_r = axes[0], axes[1]
    if curriculum:
        ax_c = axes[2]
        ax_c.step(xl, level, where="post", color=POLICY_COLORS["teacher"], label="level")
        xw, window = series(metrics, x_key, "curriculum/window_mean")
        twin = ax_c.twinx()
        twin.plot(xw, window, color="tab:gray", lw=0.8, label="window mean")
        twin.set(ylabel="training headline metric (window mean)")
        ax_c.set(xlabel=x_key.replace("_", " "), ylabel="goal level", title="Goal curriculum")
        ax_c.grid(alpha=0.3)
    xh, head = series(metrics, x_key, "eval/headline")
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
        xs, ys = series(metrics, "iteration", key)
        if len(xs):
            ax_e.plot(xs, ys, marker="o", ms=3, label=label)
    ax_e.set(xlabel="DAgger iteration", ylabel="action error", title="Action error and beta")
    handles = list(ax_e.lines)
    xb, beta = series(metrics, "iteration", "beta")
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
            x, y = series(points, "value", "success_rate")
            if not len(x):
                continue
            rows = [p for p in points if num(p.get("value")) is not None]
            rows = [p for p in rows if num(p.get("success_rate")) is not None]
            ci = np.array([num(p.get("success_ci95")) or 0.0 for p in rows])
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
