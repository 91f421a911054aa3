"""``dexdistill ablate``: the seminal papers' "what matters?" questions, one command each.

An ablation is a set of *arms* (config changes) trained for ``seeds`` seeds. Every arm's
policy is evaluated on the same **held-out** randomized episodes (ranges wider than
training) and on a **reality proxy** - a perturbed simulator none of the policies trained
on (see :func:`envs.conditions.reality_proxy`). Results go to ``OUT/NAME.md``
(mean ± std, median and sorted individual results, as in Dactyl's tables),
``OUT/NAME.csv`` and ``OUT/NAME.png``.

Runs live under ``OUT/runs/NAME/ARM/seedK``. Teachers are trained once per distinct
teacher config and seed (``OUT/teachers/``) and copied into the arms that share them;
finished stages are skipped, so rerunning the command reuses everything on disk.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from dexdistill import envs
from dexdistill.envs.common import checks
from dexdistill.pipelines import config_io, configs, presets, rundir
from dexdistill.pipelines.io import files
from dexdistill.pipelines.stages import (
    distill as distill_stage,
    evaluate as evaluate_stage,
    teacher as teacher_stage,
)

Ablation = Literal["randomization", "memory", "representation", "dagger", "modality", "loss"]
ABLATIONS: tuple[str, ...] = checks.choices(Ablation)
CONDITIONS = ("heldout", "reality")
ERRORS = ("keypoint_distance", "position_error", "rotation_error")
"""End-of-episode errors reported next to success when the task measures them (these stay
informative where a small budget leaves every arm's success rate at zero)."""


@dataclasses.dataclass(frozen=True)
class Arm:
    """One configuration of an ablation: dotted overrides per stage."""

    name: str
    env: tuple[tuple[str, Any], ...] = ()
    """Task config overrides for teacher and student (training conditions)."""
    teacher: tuple[tuple[str, Any], ...] = ()
    """Overrides of the teacher stage config (e.g. ``ppo.network.actor_memory``)."""
    distill: tuple[tuple[str, Any], ...] = ()
    """Overrides of the distill stage config (e.g. ``dagger.student.memory``)."""
    evaluate: str = "student"
    """Which policy the arm's result is about: ``student`` or ``teacher``."""


_FAMILIES = ("physics", "observation", "unmodeled", "camera")


def arms(name: str, task: str) -> list[Arm]:
    """The arms of ablation ``name`` on ``task`` (unsupported ones raise one line)."""
    checks.require("ablation", name, allowed=ABLATIONS)
    config = envs.default_config(task)
    if name == "randomization":
        off = lambda fams: tuple((f"randomization.{f}.enabled", False) for f in fams)  # noqa: E731
        return [
            Arm("all"),
            Arm("none", env=off(_FAMILIES)),
            *[Arm(f"no_{f}", env=off((f,))) for f in _FAMILIES],
        ]
    if name == "memory":
        return [
            *[
                Arm(m, distill=(("dagger.student.memory", m),))
                for m in ("gru", "lstm", "stack", "none")
            ],
            # GRU trained from the memories stored at collection time (before issue 13)
            Arm(
                "gru_stored_memory",
                distill=(("dagger.student.memory", "gru"), ("dagger.fit.memory_start", "stored")),
            ),
        ]
    if name == "representation":
        if not hasattr(config, "reward_representation"):
            raise ValueError(
                f"ablation 'representation' on task={task!r}: needs a task with a "
                f"reward_representation option: {_tasks_with('reward_representation')}"
            )
        return [
            Arm(f"{rep}_reward", env=(("reward_representation", rep),), evaluate="teacher")
            for rep in ("keypoints", "pose")
        ]
    if name == "dagger":
        b = "dagger.beta"
        return [
            Arm("beta0", distill=((f"{b}.kind", "constant"), (f"{b}.value", 0.0))),
            Arm("exponential", distill=((f"{b}.kind", "exponential"),)),
            Arm("linear", distill=((f"{b}.kind", "linear"),)),
            # the gate reads the student's evaluation after every iteration
            Arm("success_gated", distill=((f"{b}.kind", "success_gated"), ("eval_every", 1))),
            Arm("bc", distill=((f"{b}.kind", "constant"), (f"{b}.value", 1.0))),
            Arm(
                "on_policy",
                distill=((f"{b}.kind", "constant"), (f"{b}.value", 0.0), ("_on_policy", True)),
            ),
            # exponential beta, but the student collects data with noise (DART-style fixed
            # sigma, or its own never-trained std head as before the issue-13 fix)
            Arm(
                "noise_fixed",
                distill=((f"{b}.kind", "exponential"), ("dagger.rollout_noise", "fixed")),
            ),
            Arm(
                "noise_learned",
                distill=((f"{b}.kind", "exponential"), ("dagger.rollout_noise", "learned")),
            ),
        ]
    if name == "modality":
        out = [Arm("keypoints"), Arm("pointcloud", distill=(("student", "pointcloud"),))]
        if hasattr(config, "impl"):  # MJX tasks ray-cast a depth camera
            out.append(
                Arm(
                    "pointcloud_raycast",
                    distill=(
                        ("student", "pointcloud"),
                        ("env_overrides", ("point_cloud.source='raycast'",)),
                    ),
                )
            )
        return out
    return [  # name == "loss"
        Arm(
            f"{loss}{'_aux' if aux else ''}",
            distill=(("dagger.fit.loss", loss), ("dagger.fit.aux_weight", 0.1 if aux else 0.0)),
        )
        for loss in ("mse", "nll", "kl", "std_mse")
        for aux in (False, True)
    ]


def _tasks_with(field: str) -> list[str]:
    return [t for t in envs.names() if hasattr(envs.default_config(t), field)]


@dataclasses.dataclass(frozen=True)
class AblateConfig:
    """Options of 'dexdistill ablate'."""

    name: tyro.conf.Positional[Ablation] = "dagger"
    """Which ablation: randomization, memory, representation, dagger, modality, loss."""
    task: str = "point_mass"
    """Task every arm trains and is evaluated on."""
    seeds: int = 3
    """Seeds per arm (0 .. seeds-1); tables report mean and std over them."""
    preset: str | None = None
    """Settings every arm starts from (default: the task's preset)."""
    out: str = "ablations"
    """Folder of the runs, the shared teachers and the NAME.md / .csv / .png tables."""
    episodes: int = 0
    """Evaluation episodes per condition (0: the preset's 'final_eval_episodes')."""
    teacher_timesteps: int = 0
    """Teacher budget override (0: the preset's)."""
    iterations: int = 0
    """DAgger iterations override (0: the preset's)."""
    arms: tuple[str, ...] = ()
    """Run only these arms (default: all of the ablation's)."""
    env_overrides: tuple[str, ...] = ()
    """Task overrides shared by every arm, 'FIELD=VALUE' (e.g. 'instability=3.5')."""

    def validate(self) -> None:
        checks.check_types(self)
        if self.task not in envs.names():
            raise ValueError(f"task={self.task!r}: unknown task; registered tasks: {envs.names()}")
        checks.require("seeds", self.seeds, ge=1)
        for field in ("episodes", "teacher_timesteps", "iterations"):
            checks.require(field, getattr(self, field), ge=0)
        presets.get(self.preset or presets.default_for(self.task))
        envs.with_overrides(
            envs.default_config(self.task), config_io.parse_overrides(self.env_overrides)
        ).validate()
        if self.arms:
            valid = [a.name for a in arms(self.name, self.task)]
            unknown = [a for a in self.arms if a not in valid]
            if unknown:
                raise ValueError(f"arms={unknown}: not arms of {self.name!r}; valid: {valid}")


def _stage_configs(cfg: AblateConfig, arm: Arm, seed: int) -> tuple[Any, Any]:
    """(teacher, distill) stage configs of ``arm`` for ``seed``."""
    preset = presets.for_task(cfg.task, cfg.preset)
    teacher, distill = preset.teacher, preset.distill
    env_overrides = (*cfg.env_overrides, *(f"{k}={v!r}" for k, v in arm.env))
    teacher = dataclasses.replace(
        teacher, env_overrides=(*teacher.env_overrides, *env_overrides), eval_every=0
    )
    if cfg.teacher_timesteps:
        teacher = envs.with_overrides(teacher, {"ppo.num_timesteps": cfg.teacher_timesteps})
    teacher = envs.with_overrides(
        teacher, {"ppo.seed": teacher.ppo.seed + seed, **dict(arm.teacher)}
    )
    overrides = dict(arm.distill)
    on_policy = overrides.pop("_on_policy", False)
    extra_env = overrides.pop("env_overrides", ())
    distill = dataclasses.replace(
        distill, env_overrides=(*distill.env_overrides, *cfg.env_overrides, *extra_env)
    )
    distill = envs.with_overrides(distill, {"dagger.seed": distill.dagger.seed + seed, **overrides})
    if cfg.iterations:
        distill = envs.with_overrides(distill, {"dagger.iterations": cfg.iterations})
    if on_policy:  # what rsl_rl does: train on the current iteration's data only
        distill = envs.with_overrides(distill, {"dagger.capacity": distill.dagger.num_envs})
    return teacher, distill


def _teacher_dir(out: Path, teacher: Any) -> Path:
    blob = json.dumps(config_io.to_dict(teacher), sort_keys=True).encode()
    return out / "teachers" / f"{teacher.env}-{hashlib.sha1(blob).hexdigest()[:10]}"


def run_arm(cfg: AblateConfig, arm: Arm, seed: int) -> dict[str, Any]:
    """Trains (or reuses) ``arm`` for ``seed`` and evaluates it; returns one result row."""

    out = Path(cfg.out)
    teacher_cfg, distill_cfg = _stage_configs(cfg, arm, seed)
    t_dir = _teacher_dir(out, teacher_cfg)
    teacher_stage.run(t_dir, teacher_cfg)
    run_dir = out / "runs" / cfg.name / arm.name / f"seed{seed}"
    rd, shared = rundir.RunDir(run_dir), rundir.RunDir(t_dir)
    if not rd.stage("teacher").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shared.stage("teacher"), rd.stage("teacher"), dirs_exist_ok=True)
        shutil.copy(shared.config, rd.config)
    if arm.evaluate == "student":
        distill_stage.run(run_dir, distill_cfg)
    row: dict[str, Any] = {"arm": arm.name, "seed": seed}
    for condition in CONDITIONS:
        episodes = cfg.episodes or distill_cfg.final_eval_episodes
        ecfg = configs.EvaluateConfig(
            policy=arm.evaluate, randomization=condition, episodes=episodes
        )
        path = rd.evaluation(evaluate_stage.output_name(ecfg))
        result = (
            json.loads(path.read_text()) if path.exists() else evaluate_stage.run(run_dir, ecfg)
        )
        row[f"{condition}_success"] = result["success_rate"]
        if "consecutive_successes" in result:
            row[f"{condition}_consecutive"] = result["consecutive_successes"]["mean"]
        for name in ERRORS:
            if name in result.get("metrics", {}):
                row[f"{condition}_{name}"] = result["metrics"][name]
        if "teacher_success_rate" in result:  # a student, with its teacher on the same episodes
            row[f"{condition}_teacher_success"] = result["teacher_success_rate"]
            row[f"{condition}_action_error"] = result["action_error"]
    final = rd.final_eval("student")
    if arm.evaluate == "student" and final.exists():  # training randomization
        train = json.loads(final.read_text())
        row["train_success"] = train["success_rate"]
        row["train_teacher_success"] = train["teacher"]["success_rate"]
    return row


def run(cfg: AblateConfig) -> dict[str, Any]:
    """Runs every arm x seed (reusing finished ones); writes NAME.md/.csv/.png; returns rows."""
    cfg.validate()
    arm_list = [a for a in arms(cfg.name, cfg.task) if not cfg.arms or a.name in cfg.arms]
    rows = []
    for arm in arm_list:
        for seed in range(cfg.seeds):
            print(f"ablate {cfg.name}: arm {arm.name}, seed {seed}", flush=True)
            rows.append(run_arm(cfg, arm, seed))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    metric = "consecutive" if any("heldout_consecutive" in r for r in rows) else "success"
    write_csv(out / f"{cfg.name}.csv", rows)
    table = to_markdown(cfg, [a.name for a in arm_list], rows, metric)
    files.write_text(out / f"{cfg.name}.md", table)
    plot(out / f"{cfg.name}.png", cfg, [a.name for a in arm_list], rows, metric)
    return {"rows": rows, "table": table}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per arm and seed, every key any row has as a column (written atomically)."""
    fields = list(dict.fromkeys(k for r in rows for k in r))

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    files.write_atomic(path, write)


def _stats(values: list[float]) -> tuple[str, str, str]:
    v = np.asarray(values, np.float64)
    trials = ", ".join(f"{x:.2f}" for x in np.sort(v))
    return f"{v.mean():.3f} ± {v.std():.3f}", f"{np.median(v):.3f}", trials


def to_markdown(cfg: AblateConfig, arm_names: list[str], rows: list[dict], metric: str) -> str:
    """Dactyl-style table: per arm and condition, mean ± std, median, sorted seeds."""
    what = "consecutive successes" if metric == "consecutive" else "success rate"
    lines = [
        f"# Ablation `{cfg.name}` on `{cfg.task}`",
        "",
        f"{cfg.seeds} seed(s) per arm; {what} on held-out randomized episodes and on the "
        "reality proxy (a perturbed simulator no policy trained on).",
        "",
        "| arm | held-out mean ± std | median | seeds (sorted) | reality proxy mean ± std | median | seeds (sorted) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in arm_names:
        arm_rows = [r for r in rows if r["arm"] == name]
        cells = []
        for condition in CONDITIONS:
            cells.extend(_stats([r[f"{condition}_{metric}"] for r in arm_rows]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _context_table(arm_names, rows)
    errors = [e for e in ERRORS if all(f"heldout_{e}" in r for r in rows)]
    if errors:
        lines += [
            "",
            "End-of-episode errors (mean ± std over seeds; lower is better):",
            "",
            "| arm | " + " | ".join(f"{c} {e}" for c in CONDITIONS for e in errors) + " |",
            "|---|" + "---|" * (len(CONDITIONS) * len(errors)),
        ]
        for name in arm_names:
            arm_rows = [r for r in rows if r["arm"] == name]
            cells = [
                _stats([r[f"{c}_{e}"] for r in arm_rows])[0] for c in CONDITIONS for e in errors
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_CONTEXT = (
    ("train_success", "student, training randomization"),
    ("train_teacher_success", "its teacher, same episodes"),
    ("heldout_teacher_success", "teacher, held-out"),
    ("reality_teacher_success", "teacher, reality proxy"),
    ("heldout_action_error", "student action error vs teacher, held-out"),
)


def _context_table(arm_names: list[str], rows: list[dict]) -> list[str]:
    """Students' success on the training randomization, their teachers on the very same
    episodes, and the action error: what the held-out numbers should be read against."""
    cols = [(k, label) for k, label in _CONTEXT if rows and all(k in r for r in rows)]
    if not cols:
        return []
    lines = [
        "",
        "For reference (mean ± std over seeds): the students on the training randomization, "
        "each seed's teacher on the same episodes, and the student's mean squared action "
        "error against its teacher on the states it visits.",
        "",
        "| arm | " + " | ".join(label for _, label in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name in arm_names:
        arm_rows = [r for r in rows if r["arm"] == name]
        cells = [_stats([r[k] for r in arm_rows])[0] for k, _ in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def plot(
    path: Path, cfg: AblateConfig, arm_names: list[str], rows: list[dict], metric: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(arm_names), 3.6))
    width = 0.38
    for j, condition in enumerate(CONDITIONS):
        x = np.arange(len(arm_names)) + (j - 0.5) * width
        values = [[r[f"{condition}_{metric}"] for r in rows if r["arm"] == a] for a in arm_names]
        ax.bar(x, [np.mean(v) for v in values], width, label=condition, alpha=0.8)
        for xi, v in zip(x, values, strict=True):
            ax.scatter([xi] * len(v), v, color="k", s=8, zorder=3)
    ax.set_xticks(np.arange(len(arm_names)), arm_names, rotation=20)
    ax.set_ylabel("consecutive successes" if metric == "consecutive" else "success rate")
    ax.set_title(f"{cfg.name} ({cfg.task}, {cfg.seeds} seed(s))")
    ax.legend()
    fig.tight_layout()
    files.write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
