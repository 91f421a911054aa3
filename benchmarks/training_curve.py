"""A teacher's training curve from its ``metrics.jsonl``: over env steps and over wall-clock.

Plots, per iteration with ended episodes, the training episodes' headline metric (success
rate, or consecutive successes for hand_cube) at the goal level they ran at, the goal
level of the curriculum, and the throughput; prints a short table of milestones.

Run: ``python benchmarks/training_curve.py RUN_DIR --out docs/img/NAME.png [--json F]
[--label A --compare B=OTHER_RUN_DIR]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from dexdistill.pipelines.rundir import RunDir


def load(run_dir: Path) -> list[dict[str, Any]]:
    path = RunDir(run_dir).metrics("teacher")
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def curve(rows: list[dict[str, Any]], metric: str) -> dict[str, np.ndarray]:
    """Arrays over the iterations in which episodes ended (training statistics)."""
    wall = np.cumsum([r["iteration_s"] for r in rows]) / 60.0
    keep = [i for i, r in enumerate(rows) if r.get("episode/count", 0) > 0]
    return {
        "env_steps": np.array([rows[i]["env_steps"] for i in keep], float),
        "minutes": wall[keep],
        "value": np.array([rows[i][f"episode/{metric}"] for i in keep], float),
        "level": np.array([rows[i].get("curriculum/level", 0) for i in keep], float),
        "sps": np.array([rows[i]["env_steps_per_s"] for i in keep], float),
    }


def smooth(y: np.ndarray, k: int = 5) -> np.ndarray:
    if len(y) < k:
        return y
    return np.convolve(np.pad(y, (k - 1, 0), mode="edge"), np.ones(k) / k, mode="valid")


def plot(
    c: dict[str, np.ndarray],
    metric: str,
    title: str,
    path: Path,
    others: tuple[tuple[str, dict[str, np.ndarray]], ...] = (),
    main_label: str = "",
) -> None:
    """The curve over env steps and minutes; ``others``: ``(label, curve)`` drawn in grey
    tones behind it (e.g. the same task with another setting)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, x_key, label in ((axes[0], "env_steps", "env steps"), (axes[1], "minutes", "minutes")):
        ax.plot(c[x_key], c["value"], color="tab:blue", alpha=0.3, lw=0.8)
        for (name, o), tone in zip(others, ("tab:gray", "tab:olive", "tab:brown"), strict=False):
            ax.plot(o[x_key], smooth(o["value"]), color=tone, label=name)
        ax.plot(
            c[x_key],
            smooth(c["value"]),
            color="tab:blue",
            label=main_label or metric.replace("_", " "),
        )
        ax.set(xlabel=label, ylabel=f"training {metric.replace('_', ' ')}")
        twin = ax.twinx()
        twin.step(c[x_key], c["level"], where="post", color="tab:red", label="goal level")
        twin.set(ylabel="goal level", ylim=(-0.1, max(2.1, c["level"].max() + 0.1)))
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    if others:
        axes[0].legend(loc="upper left", fontsize=8)
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--metric", default="success")
    p.add_argument("--out", required=True)
    p.add_argument("--json", default="")
    p.add_argument("--title", default="")
    p.add_argument("--label", default="", help="legend label of RUN_DIR's curve")
    p.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="LABEL=DIR",
        help="other runs drawn behind RUN_DIR's curve, e.g. absolute=runs/hand_abs",
    )
    args = p.parse_args()
    rows = load(Path(args.run_dir))
    c = curve(rows, args.metric)
    others = tuple(
        (lab, curve(load(Path(d)), args.metric))
        for lab, d in (item.split("=", 1) for item in args.compare)
    )
    title = args.title or Path(args.run_dir).name
    plot(c, args.metric, title, Path(args.out), others, args.label)
    marks = []
    for frac in (0.25, 0.5, 0.75, 1.0):
        i = max(0, int(round(frac * len(c["value"]))) - 1)
        lo = max(0, i - 4)
        marks.append(
            {
                "env_steps": int(c["env_steps"][i]),
                "minutes": round(float(c["minutes"][i]), 1),
                args.metric: round(float(np.mean(c["value"][lo : i + 1])), 3),
                "level": int(c["level"][i]),
                "env_steps_per_s": round(float(np.median(c["sps"][lo : i + 1]))),
            }
        )
    for m in marks:
        print(m)
    if args.json:
        Path(args.json).write_text(json.dumps(marks, indent=2))


if __name__ == "__main__":
    main()
