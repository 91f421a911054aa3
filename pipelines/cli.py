"""The ``dexdistill`` command line (tyro). Run ``dexdistill --help``."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any, Literal

import tyro

from pipelines import runtime
from pipelines.distill_stage import DistillStageConfig
from pipelines.teacher_stage import TeacherStageConfig


@dataclasses.dataclass(frozen=True)
class EnvsCommand:
    """List every registered task with its observation keys and shapes, action size,
    control rate and episode length."""

    task: str | None = None
    """Only this task (default: all)."""
    json: bool = False
    """Print JSON instead of a table."""


@dataclasses.dataclass(frozen=True)
class BenchCommand:
    """Benchmarks; ``dexdistill bench envs`` measures environment throughput."""

    target: tyro.conf.Positional[Literal["envs"]] = "envs"
    tasks: tuple[str, ...] = ("point_mass", "dclaw_valve", "trifinger_cube", "hand_cube")
    batch_sizes: tuple[int, ...] = (1, 64, 1024)
    steps: int = 20
    """Control steps per timed scan."""
    repeats: int = 2
    point_cloud: Literal["surface", "raycast"] = "surface"
    impl: Literal["jax", "warp"] = "jax"
    out: str = "bench_out/envs.json"


def describe_envs(task: str | None = None) -> list[dict]:
    """Task name, observation spec, action size, control rate and episode length."""
    import envs

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
            f"episode_length={r['episode_length']} steps"
        )
        for key, (shape, dtype) in r["observations"].items():
            print(f"    {key:<18} {str(tuple(shape)):<12} {dtype}")


def run_envs(cmd: EnvsCommand) -> None:
    rows = describe_envs(cmd.task)
    if cmd.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_envs(rows)


def run_bench(cmd: BenchCommand) -> None:
    from pipelines import bench

    cfg = bench.BenchEnvsConfig(
        tasks=cmd.tasks,
        batch_sizes=cmd.batch_sizes,
        steps=cmd.steps,
        repeats=cmd.repeats,
        point_cloud=cmd.point_cloud,
        impl=cmd.impl,
        out=cmd.out,
    )
    bench.run(cfg)
    print(f"wrote {cmd.out}")


@dataclasses.dataclass(frozen=True)
class TeacherCommand(TeacherStageConfig):
    """Train (or resume) a PPO teacher on privileged observations in a run directory."""

    run_dir: str = ""
    """Run directory (required); rerunning the same command resumes from its last checkpoint."""
    preset: str | None = None
    """Tuned starting point (see pipelines/presets.py); explicit flags override it."""
    force: bool = False
    """Reuse a run directory created with a different config."""

    def stage(self) -> TeacherStageConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(TeacherStageConfig)}
        return TeacherStageConfig(**fields)


def run_teacher(cmd: TeacherCommand) -> None:
    from pipelines import teacher_stage

    if not cmd.run_dir:
        raise ValueError("--run-dir: required (a directory for config, checkpoints and metrics)")
    summary = teacher_stage.run(cmd.run_dir, cmd.stage(), force=cmd.force)
    print(json.dumps(summary, indent=2))


@dataclasses.dataclass(frozen=True)
class DistillCommand(DistillStageConfig):
    """Distill the run directory's teacher into a student with DAgger (needs `dexdistill teacher`)."""

    run_dir: str = ""
    """Run directory holding a trained teacher; rerunning the same command resumes."""
    preset: str | None = None
    """Tuned starting point (see pipelines/presets.py; default: the task's); flags override it."""
    force: bool = False
    """Reuse a run directory whose distill stage was created with a different config."""

    def stage(self) -> DistillStageConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(DistillStageConfig)}
        return DistillStageConfig(**fields)


def run_distill(cmd: DistillCommand) -> None:
    from pipelines import distill_stage

    if not cmd.run_dir:
        raise ValueError("--run-dir: required (a run directory with a trained teacher)")
    summary = distill_stage.run(cmd.run_dir, cmd.stage(), force=cmd.force)
    print(json.dumps(summary, indent=2))


COMMANDS: dict[str, tuple[type, Callable[[Any], None]]] = {
    "envs": (EnvsCommand, run_envs),
    "bench": (BenchCommand, run_bench),
    "teacher": (TeacherCommand, run_teacher),
    "distill": (DistillCommand, run_distill),
}


def _peek(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _default(name: str, argv: list[str]) -> Any:
    """Defaults of a command, taken from ``--preset`` (or the task's default preset)."""
    if name not in ("teacher", "distill"):
        return None
    from pipelines import presets

    env = _peek(argv, "--env") or _run_dir_env(_peek(argv, "--run-dir")) or "dclaw_valve"
    preset_name = _peek(argv, "--preset") or presets.default_for(env)
    preset = presets.get(preset_name)
    if name == "distill":
        return DistillCommand(dagger=preset.dagger, preset=preset_name)
    overrides = tuple(f"{k}={v!r}" for k, v in preset.env_overrides)
    return TeacherCommand(
        env=preset.env, ppo=preset.ppo, env_overrides=overrides, preset=preset_name
    )


def _run_dir_env(run_dir: str | None) -> str | None:
    """The task of the teacher recorded in ``run_dir/config.json``, if any."""
    if not run_dir:
        return None
    from pathlib import Path

    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())["teacher"]["config"]["env"]
    except (OSError, KeyError, ValueError):
        return None


def _usage() -> str:
    lines = ["usage: dexdistill {" + ",".join(COMMANDS) + "} [--help] ...", ""]
    for name, (cls, _) in COMMANDS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:<9} {doc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dexdistill`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
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
        cmd = tyro.cli(cls, args=rest, default=default, prog=f"dexdistill {name}")
        fn(cmd)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"dexdistill {name}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
