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

from pathlib import Path
from typing import Any

import jax

from dexdistill.pipelines import rundir
from dexdistill.pipelines.io import files
from dexdistill.pipelines.outputs import render
from dexdistill.pipelines.outputs.report.markdown import (
    evaluation_section,
    header,
    image_section,
    levels_section,
    summary_section,
    video_section,
)
from dexdistill.pipelines.outputs.report.numbers import last, report_summary
from dexdistill.pipelines.outputs.report.plots import (
    plot_dagger_curves,
    plot_robustness,
    plot_teacher_curve,
)
from dexdistill.pipelines.outputs.report.read import load_run
from dexdistill.pipelines.rundir import DAGGER_PLOT, ROBUSTNESS_PLOT, TEACHER_PLOT, VIDEO_NAME

__all__ = [
    "TEACHER_PLOT",
    "DAGGER_PLOT",
    "ROBUSTNESS_PLOT",
    "report_summary",
    "load_run",
    "write_report",
]


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
    rd = rundir.RunDir(run.run_dir)
    out_dir = rd.report_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = report_summary(run)
    teacher_line = next(
        (
            v
            for v in (
                summary["teacher_success_same_episodes"],
                summary["teacher_success"],
                last(run.student_metrics, "teacher/success_rate"),
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
        recorded = rd.episode
        episode = recorded if recorded.exists() else None
        if episode is not None or video_policy is not None:
            clip = _render_video(out_dir, episode, video_policy)
        else:
            clip = _existing_video(out_dir)
    sections = [
        header(run),
        summary_section(summary),
        evaluation_section(run),
        levels_section(run),
        image_section("Teacher learning curve", teacher_png),
        image_section("DAgger", dagger_png, "Dashed line: the teacher's success rate."),
        image_section("Robustness", robust_png),
        video_section(clip, video and episode is not None),
    ]
    text = "\n\n".join("\n".join(s) for s in sections if s) + "\n"
    path = rd.report
    files.write_text(path, text)
    return path
