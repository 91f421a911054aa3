"""The ``dexdistill`` command line (tyro). Run ``dexdistill --help``."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Literal

import tyro

from pipelines import runtime


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
                "observations": {k: [list(v.shape), v.dtype] for k, v in env.observation_spec.items()},
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


Commands = (
    Annotated[EnvsCommand, tyro.conf.subcommand("envs")]
    | Annotated[BenchCommand, tyro.conf.subcommand("bench")]
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dexdistill`` console script."""
    runtime.setup()
    cmd = tyro.cli(Commands, args=argv, description="dexdistill: teacher-student distillation on MJX")
    try:
        if isinstance(cmd, EnvsCommand):
            run_envs(cmd)
        elif isinstance(cmd, BenchCommand):
            run_bench(cmd)
    except ValueError as err:
        print(f"dexdistill: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
