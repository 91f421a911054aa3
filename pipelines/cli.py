"""The ``dexdistill`` command line (tyro). Run ``dexdistill --help``."""

from __future__ import annotations

from dexdistill.pipelines import rundir
from dexdistill.pipelines.io import files, runtime

runtime.choose_headless_gl()  # before anything imports mujoco: report videos render offscreen

import contextlib
import dataclasses
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from dexdistill import envs
from dexdistill.envs.tasks import curriculum
from dexdistill.pipelines import presets
from dexdistill.pipelines.configs import (
    DistillStageConfig,
    EvaluateConfig,
    RunConfig,
    TeacherStageConfig,
)
from dexdistill.pipelines.experiments import ablate, bench, bench_distill
from dexdistill.pipelines.experiments.ablate import AblateConfig
from dexdistill.pipelines.experiments.bench import BenchEnvsConfig
from dexdistill.pipelines.experiments.bench_distill import BenchDistillConfig
from dexdistill.pipelines.outputs import export, report
from dexdistill.pipelines.stages import (
    distill as distill_stage,
    evaluate as evaluate_stage,
    run as run_pipeline,
    teacher as teacher_stage,
)
from dexdistill.student import inference

PresetName = Literal[tuple(presets.PRESETS)]
"""A preset's name (pipelines/presets.py): tyro lists the names as the choices of --preset."""


@dataclasses.dataclass(frozen=True)
class EnvsCommand:
    """List every registered task with its observation keys and shapes, action size,
    control rate and episode length."""

    task: str | None = None
    """Only this task (default: all)."""
    json: bool = False
    """Print JSON instead of a table."""


BENCH_HELP = "Benchmarks: `envs` (env throughput) or `distill` (DAgger labelling cost)."
BenchCommand = Annotated[
    Annotated[BenchEnvsConfig, tyro.conf.subcommand("envs", default=BenchEnvsConfig())]
    | Annotated[BenchDistillConfig, tyro.conf.subcommand("distill", default=BenchDistillConfig())],
    tyro.conf.arg(help=BENCH_HELP),
]
"""``dexdistill bench envs|distill``: the options of each are its config dataclass."""


def describe_envs(task: str | None = None) -> list[dict]:
    """Task name, observation spec, action size, control rate and episode length."""
    names = envs.names() if task is None else [task]
    rows = []
    for name in names:
        env = envs.make(name)
        rows.append(
            {
                "task": name,
                "action_size": env.action_size,
                "control_hz": round(1.0 / env.dt, 3),
                "episode_length": env.episode_length,
                "headline_metric": envs.base.headline_metric(env),
                "goal_levels": list(curriculum.levels_of(env)),
                "observations": {
                    k: [list(v.shape), v.dtype] for k, v in env.observation_spec.items()
                },
            }
        )
    return rows


def _print_envs(rows: list[dict]) -> None:
    for r in rows:
        print(
            f"{r['task']}: action_size={r['action_size']} control={r['control_hz']} Hz "
            f"episode_length={r['episode_length']} steps headline={r['headline_metric']}"
            + (f" goal_levels={','.join(r['goal_levels'])}" if r["goal_levels"] else "")
        )
        for key, (shape, dtype) in r["observations"].items():
            print(f"    {key:<18} {str(tuple(shape)):<12} {dtype}")


def run_envs(cmd: EnvsCommand) -> None:
    rows = describe_envs(cmd.task)
    if cmd.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_envs(rows)


def run_bench(cmd: BenchEnvsConfig | BenchDistillConfig) -> None:
    if isinstance(cmd, BenchDistillConfig):
        bench_distill.run(cmd)
    else:
        bench.run(cmd)
    print(f"wrote {cmd.out}")


@dataclasses.dataclass(frozen=True)
class TeacherCommand(TeacherStageConfig):
    """Train (or resume) a PPO teacher on privileged observations in a run directory."""

    run_dir: str = ""
    """Run directory (required); rerunning the same command resumes from its last checkpoint."""
    preset: PresetName | None = None
    """Tuned starting point (see pipelines/presets.py); explicit flags override it."""
    force: bool = False
    """Reuse a run directory created with a different config."""

    def stage(self) -> TeacherStageConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(TeacherStageConfig)}
        return TeacherStageConfig(**fields)


def run_teacher(cmd: TeacherCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=False)
    summary = teacher_stage.run(cmd.run_dir, cmd.stage(), force=cmd.force)
    print(json.dumps(summary, indent=2))


@dataclasses.dataclass(frozen=True)
class DistillCommand(DistillStageConfig):
    """Distill the run directory's teacher into a student with DAgger (needs `dexdistill teacher`)."""

    run_dir: str = ""
    """Run directory holding a trained teacher; rerunning the same command resumes."""
    preset: PresetName | None = None
    """Tuned starting point (see pipelines/presets.py; default: the task's); flags override it."""
    force: bool = False
    """Reuse a run directory whose distill stage was created with a different config."""

    def stage(self) -> DistillStageConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(DistillStageConfig)}
        return DistillStageConfig(**fields)


def run_distill(cmd: DistillCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=True)
    summary = distill_stage.run(cmd.run_dir, cmd.stage(), force=cmd.force)
    print(json.dumps(summary, indent=2))


@dataclasses.dataclass(frozen=True)
class RunCommand(RunConfig):
    """Teacher -> distill -> evaluate -> report in one run directory (skips finished stages)."""

    run_dir: str = "runs/quickstart"
    """Run directory; rerunning the same command resumes an interrupted stage."""
    preset: PresetName = "quickstart"
    """Tuned settings for every stage (see pipelines/presets.py); flags override them."""
    force: bool = False
    """Reuse a run directory created with a different config."""

    def config(self) -> RunConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)}
        return RunConfig(**fields)


def run_run(cmd: RunCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=False)
    summary = run_pipeline.run(cmd.run_dir, cmd.config(), force=cmd.force)
    print(json.dumps(summary, indent=2))


@dataclasses.dataclass(frozen=True)
class EvaluateCommand(EvaluateConfig):
    """Evaluate the run directory's teacher or student on fresh episodes (+ robustness sweeps)."""

    run_dir: str = ""
    """Run directory holding the policy to evaluate (required)."""


def run_evaluate(cmd: EvaluateCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=True)
    fields = {f.name: getattr(cmd, f.name) for f in dataclasses.fields(EvaluateConfig)}
    evaluate_stage.run(cmd.run_dir, EvaluateConfig(**fields))  # prints its table


@dataclasses.dataclass(frozen=True)
class ReportCommand:
    """Write DIR/report/report.md with plots, tables and a rendered student episode."""

    run_dir: str = ""
    """Run directory to report on."""
    video: bool = True
    """Render one student episode (needs OpenGL: MUJOCO_GL=egl on a headless machine)."""


def run_report(cmd: ReportCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=True)
    video_policy = run_pipeline.student_video_policy(cmd.run_dir) if cmd.video else None
    print(report.write_report(cmd.run_dir, video=cmd.video, video_policy=video_policy))


@dataclasses.dataclass(frozen=True)
class ExportCommand:
    """Export the student as a standalone folder (params + config + obs spec + numpy inference)."""

    run_dir: str = ""
    """Run directory holding a distilled student."""
    out: str = ""
    """Output folder (default: DIR/export)."""


def run_export(cmd: ExportCommand) -> None:
    rundir.check_run_dir(cmd.run_dir, must_exist=True)
    loaded = rundir.load_student(cmd.run_dir)
    env = envs.make(loaded.env_name, loaded.env_config)
    out = Path(cmd.out or rundir.RunDir(cmd.run_dir).export_dir)
    meta = {"task": loaded.env_name, "run_dir": str(Path(cmd.run_dir).absolute())}
    path = export.export_student(
        loaded.nets.config, loaded.params, env.observation_spec, env.action_size, out, meta
    )
    info = json.loads((path / inference.CONFIG_FILE).read_text())
    lat = info.get("latency", {})
    print(
        f"exported to {path}; CPU latency per step (batch 1): median "
        f"{lat.get('median_us', float('nan')):.0f} us, p90 {lat.get('p90_us', float('nan')):.0f} us"
    )


@dataclasses.dataclass(frozen=True)
class AblateCommand(AblateConfig):
    """Run a research ablation (multi-seed) and write OUT/NAME.md, .csv and .png."""


def run_ablate(cmd: AblateCommand) -> None:
    result = ablate.run(cmd)
    print(result["table"])


COMMANDS: dict[str, tuple[type, Callable[[Any], None]]] = {
    "run": (RunCommand, run_run),
    "envs": (EnvsCommand, run_envs),
    "teacher": (TeacherCommand, run_teacher),
    "distill": (DistillCommand, run_distill),
    "evaluate": (EvaluateCommand, run_evaluate),
    "report": (ReportCommand, run_report),
    "export": (ExportCommand, run_export),
    "ablate": (AblateCommand, run_ablate),
    "bench": (BenchCommand, run_bench),
}


@dataclasses.dataclass(frozen=True)
class PresetChoice:
    """The options that choose a training command's defaults; read first, by tyro."""

    preset: str | None = None
    """Any string, not a PresetName: an unknown name gets presets.get's error (names sorted)."""
    env: str | None = None
    run_dir: str = ""


def _default(name: str, args: list[str]) -> Any:
    """Defaults of a command: its ``--preset`` (or the task's own preset), as plain configs.

    A first tyro pass reads only ``--preset``, ``--env`` and ``--run-dir`` (everything else,
    ``--help`` included, is left for the full parse); the chosen preset then becomes the
    defaults of the command's dataclass, so flags override the preset field by field. Its
    parse errors are one-line ValueErrors too.
    """
    if name not in ("teacher", "distill", "run"):
        return None
    first_pass = {"add_help": False, "return_unknown_args": True}
    choice, _ = _parse(PresetChoice, args, f"dexdistill {name}", first_pass)
    if name == "run":
        preset_name = choice.preset or "quickstart"
        return RunCommand(**_fields(presets.get(preset_name)), preset=preset_name)
    env = choice.env or _run_dir_env(choice.run_dir) or "dclaw_valve"
    preset_name = choice.preset or presets.default_for(env)
    preset = presets.for_task(env, preset_name) if choice.env else presets.get(preset_name)
    if name == "distill":
        return DistillCommand(**_fields(preset.distill), preset=preset_name)
    return TeacherCommand(**_fields(preset.teacher), preset=preset_name)


def _fields(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _run_dir_env(run_dir: str | None) -> str | None:
    """The task of the teacher recorded in ``run_dir/config.json``, if any."""
    if not run_dir:
        return None
    path = Path(run_dir)
    if not path.is_dir():
        return None  # the command's own check names the problem
    env = rundir.RunDir(path).read_config().get("teacher", {}).get("config", {}).get("env")
    return env if isinstance(env, str) else None


def _parse(cls: Any, args: list[str], prog: str, kwargs: dict[str, Any]) -> Any:
    """``tyro.cli``, with its boxed parse errors (a bad choice, a malformed number) turned
    into the one-line ``ValueError`` every other config error is."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return tyro.cli(cls, args=args, prog=prog, **kwargs)
    except SystemExit as exit_:
        if not exit_.code:
            raise
        raise ValueError(_one_line(err.getvalue())) from None


def _one_line(box: str) -> str:
    """The message inside a tyro error box, on one line (its help pointer left out)."""
    lines = [ln.strip(" │╭╮╰╯─") for ln in box.splitlines()]
    body = []
    for ln in lines[1:]:
        if not ln.strip():
            break
        body.append(ln.strip())
    return " ".join(body) or box.strip() or "invalid command line"


def _usage() -> str:
    lines = ["usage: dexdistill {" + ",".join(COMMANDS) + "} [--help] ... | --version", ""]
    for name, (cls, _) in COMMANDS.items():
        doc = BENCH_HELP if name == "bench" else (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:<9} {doc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dexdistill`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"dexdistill {files.VERSION}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"dexdistill: error: unknown command {name!r}; commands: {list(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    runtime.setup()
    cls, fn = COMMANDS[name]
    try:
        default = _default(name, rest)
        kwargs = {} if default is None else {"default": default}
        cmd = _parse(cls, rest, f"dexdistill {name}", kwargs)
        fn(cmd)
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"dexdistill {name}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
