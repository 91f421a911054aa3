"""Every accelerator number from one prepared command (called by ``gpu_check.sh``).

Usage::

    python benchmarks/gpu_check.py OUT_DIR [--dry-run]

Three parts, run one after the other as subprocesses of the ``dexdistill`` CLI, each
under its own wall-clock cap (a part that overruns is killed and the next one starts; what
it measured so far is kept, since every stage writes its results as it goes):

1. ``envs``: ``dexdistill bench envs`` on the MJX backend for every MJX task, per batch
   size, with ``impl=jax`` and (when ``warp`` imports) ``impl=warp``: the full env step
   and physics only, with compile times;
2. ``teacher``: a PPO teacher on ``trifinger_cube`` with the GPU preset: env steps/s while
   training against physics only (same batch, part 1), headline metric and curriculum
   level over wall-clock;
3. ``distill``: a DAgger stage from that teacher: labelled samples/s, compile time.

``OUT_DIR`` receives at most 8 files: ``envs.json``, ``teacher.json``, ``distill.json``,
``summary.json``, ``summary.md`` (one markdown table) and ``log.txt`` (every subprocess's
output). ``--dry-run`` runs the same code at tiny sizes on whatever device JAX has (a CPU
in the tests), so the script cannot rot between accelerator windows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one check runs and how long each part may take (seconds of wall-clock)."""

    tasks: tuple[str, ...]
    """MJX tasks of part 1, most important first (a cut-short part loses the last)."""
    batch_sizes: tuple[int, ...]
    """Batch sizes of part 1, most important first."""
    steps: int
    """Control steps per timed scan in part 1."""
    repeats: int
    backend: str
    """Physics backend of part 1: ``mjx`` (the accelerator's), ``mujoco`` in the dry run
    (compiling MJX on a CPU would take minutes: the dry run checks the plumbing)."""
    envs_s: float
    """Cap on part 1 (all impls together; ``warp`` gets ``warp_share`` of it)."""
    warp_share: float
    teacher_task: str
    teacher_args: tuple[str, ...]
    teacher_s: float
    """Cap on part 2; the stage is asked to stop (and checkpoint) 20 s before it."""
    distill_args: tuple[str, ...]
    distill_s: float


FULL = Plan(
    tasks=("trifinger_cube", "dclaw_valve", "hand_cube"),
    batch_sizes=(8192, 16384, 1024),
    steps=20,
    repeats=2,
    backend="mjx",
    envs_s=200.0,
    warp_share=0.3,
    teacher_task="trifinger_cube",
    teacher_args=("--preset", "trifinger_cube_gpu", "--eval-every", "10", "--eval-episodes", "256"),
    teacher_s=210.0,
    distill_args=tuple(
        shlex.split(
            "--dagger.num-envs 4096 --dagger.unroll-length 20 --dagger.capacity "
            "65536 --dagger.iterations 1000 --eval-every 0 --no-write-dataset"
        )
    ),
    distill_s=75.0,
)
"""The accelerator check: about 8.5 minutes with installation (issue 15's 9-minute window)."""

DRY = Plan(
    tasks=("dclaw_valve",),
    batch_sizes=(2,),
    steps=2,
    repeats=1,
    backend="mujoco",
    envs_s=240.0,
    warp_share=0.3,
    teacher_task="point_mass",
    teacher_args=tuple(
        shlex.split(
            "--preset smoke --ppo.num-envs 8 --ppo.unroll-length 4 "
            "--ppo.num-minibatches 2 --ppo.num-epochs 1 --ppo.num-timesteps 64 "
            "--eval-every 1 --eval-episodes 2 --final-eval-episodes 2"
        )
    ),
    teacher_s=240.0,
    distill_args=tuple(
        shlex.split(
            "--dagger.num-envs 4 --dagger.unroll-length 4 --dagger.capacity 16 "
            "--dagger.iterations 2 --dagger.fit.num-updates 2 "
            "--dagger.fit.batch-size 4 --eval-every 0 --final-eval-episodes 2 "
            "--eval-episodes 2 --no-write-dataset"
        )
    ),
    distill_s=240.0,
)
"""Tiny sizes for a CPU: the same parts, files and table, in about a minute."""


def run_part(argv: list[str], cap_s: float, log: Path) -> dict[str, Any]:
    """Runs ``dexdistill ARGV`` for at most ``cap_s`` seconds (its whole process group is
    killed at the cap); appends its output to ``log``. Returns rc, wall time, timed_out."""
    cmd = [sys.executable, "-c", "from dexdistill.pipelines.cli import main; main()", *argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath()}
    t0 = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n$ dexdistill {' '.join(argv)}   (cap {cap_s:.0f} s)\n")
        f.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=max(cap_s, 1.0))
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc, timed_out = proc.wait(), True
        wall = time.perf_counter() - t0
        f.write(f"[rc={rc} wall={wall:.1f}s{' TIMED OUT' if timed_out else ''}]\n")
    return {"rc": rc, "wall_s": round(wall, 1), "timed_out": timed_out}


def _pythonpath() -> str:
    rest = os.environ.get("PYTHONPATH", "")
    return f"{ROOT}{os.pathsep}{rest}" if rest else str(ROOT)


def warp_available() -> str | None:
    """``None`` when ``warp`` imports, else why ``impl=warp`` cannot be measured."""
    if importlib.util.find_spec("warp") is None:
        return (
            "warp-lang is not installed (its wheel is about 150 MB, over a 64 MiB carry limit;"
            " install it on the machine to measure impl=warp)"
        )
    return None


def part_envs(plan: Plan, out: Path, log: Path) -> dict[str, Any]:
    """Part 1: ``bench envs`` per impl on the MJX backend; partial results survive a cap."""
    result: dict[str, Any] = {"impls": {}}
    skip = warp_available()
    impls = ("jax", "warp") if skip is None else ("jax",)
    if skip is not None:
        result["impls"]["warp"] = {"skipped": skip}
    for impl in impls:
        share = plan.warp_share if impl == "warp" else (1.0 - plan.warp_share)
        cap = plan.envs_s * (share if len(impls) == 2 else 1.0)
        path = out / f".envs_{impl}.json"
        argv = ["bench", "envs", "--tasks", *plan.tasks, "--batch-sizes"]
        argv += [str(b) for b in plan.batch_sizes]
        argv += ["--steps", str(plan.steps), "--repeats", str(plan.repeats), "--impl", impl]
        argv += ["--backends", plan.backend, "--no-raw-rollout", "--out", str(path)]
        run = run_part(argv, cap, log)
        bench = json.loads(path.read_text()) if path.exists() else {"tasks": []}
        for extra in (path, path.with_suffix(".md")):
            extra.unlink(missing_ok=True)
        result["impls"][impl] = {"run": run, **bench}
    (out / "envs.json").write_text(json.dumps(result, indent=2))
    return result


def _metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by the kill
            rows.append(json.loads(line))
    return rows


def _run_dir(path: Path) -> Any:
    """The run directory's paths (imported here: the package is installed by then)."""
    from dexdistill.pipelines.rundir import RunDir

    return RunDir(path)


def part_teacher(plan: Plan, out: Path, log: Path, run_dir: Path) -> dict[str, Any]:
    """Part 2: a teacher stopped (checkpointed) before the cap; its curve over wall-clock."""
    minutes = max((plan.teacher_s - 20.0) / 60.0, 0.05)
    argv = ["teacher", "--run-dir", str(run_dir), "--env", plan.teacher_task, *plan.teacher_args]
    run = run_part([*argv, "--max-minutes", f"{minutes:.3f}"], plan.teacher_s, log)
    rows = _metrics(_run_dir(run_dir).metrics("teacher"))
    result: dict[str, Any] = {"run": run, "task": plan.teacher_task, "iterations": len(rows)}
    if rows:
        steady = [r["env_steps_per_s"] for r in rows[1:]] or [rows[0]["env_steps_per_s"]]
        wall, curve = 0.0, []
        for r in rows:
            wall += r["iteration_s"]
            if "eval/headline" in r:
                point = {"wall_s": round(wall, 1), "env_steps": r["env_steps"]}
                point["headline"] = r["eval/headline"]
                point["level"] = r.get("curriculum/level")
                curve.append(point)
        result.update(
            compile_s=rows[0].get("compile_s"),
            train_env_steps_per_s=sorted(steady)[len(steady) // 2],
            env_steps=rows[-1]["env_steps"],
            wall_s=round(wall, 1),
            curve=curve,
            num_envs=_num_envs(run_dir),
        )
        reached = [p for p in curve if p["headline"] >= 0.8]
        result["time_to_0.8_s"] = reached[0]["wall_s"] if reached else None
    (out / "teacher.json").write_text(json.dumps(result, indent=2))
    return result


def _num_envs(run_dir: Path) -> int | None:
    path = _run_dir(run_dir).config
    if not path.exists():
        return None
    return json.loads(path.read_text())["teacher"]["config"]["ppo"]["num_envs"]


def part_distill(plan: Plan, out: Path, log: Path, run_dir: Path) -> dict[str, Any]:
    """Part 3: DAgger from the part-2 teacher; labelled samples/s after the compile."""
    minutes = max((plan.distill_s - 15.0) / 60.0, 0.05)
    argv = ["distill", "--run-dir", str(run_dir), *plan.distill_args]
    run = run_part([*argv, "--max-minutes", f"{minutes:.3f}"], plan.distill_s, log)
    rows = _metrics(_run_dir(run_dir).metrics("student"))
    result: dict[str, Any] = {"run": run, "iterations": len(rows)}
    if rows:
        steady = [r["samples_per_s"] for r in rows[1:]] or [rows[0]["samples_per_s"]]
        result.update(
            compile_s=rows[0].get("compile_s"),
            labelled_samples_per_s=sorted(steady)[len(steady) // 2],
            labelled_samples=rows[-1]["labelled_samples"],
        )
    (out / "distill.json").write_text(json.dumps(result, indent=2))
    return result


def device() -> dict[str, Any]:
    """The accelerator JAX sees (asked in a subprocess: this process stays JAX-free)."""
    code = (
        "import json, jax, mujoco; d = jax.devices()[0]; print(json.dumps({'platform': "
        "d.platform, 'device_kind': d.device_kind, 'device_count': jax.device_count(), "
        "'jax': jax.__version__, 'mujoco': mujoco.__version__}))"
    )
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def summary_table(summary: dict[str, Any]) -> str:
    """One markdown table: every measured number, one row each."""
    dev = summary["device"]
    lines = [
        f"Device: {dev.get('device_kind', '?')} ({dev.get('platform', '?')}), jax "
        f"{dev.get('jax', '?')}, mujoco {dev.get('mujoco', '?')}; dry run: {summary['dry_run']}; "
        f"total {summary['total_s']:.0f} s.",
        "",
        "| part | what | value |",
        "|---|---|---:|",
    ]
    for impl, res in summary["envs"]["impls"].items():
        if "skipped" in res:
            lines.append(f"| envs | impl={impl} | skipped: {res['skipped']} |")
            continue
        backend = summary["plan"]["backend"]
        for t in res.get("tasks", []):
            for b, r in t["batches"].items():
                for key, what in (("env_sps", "env step"), ("physics_sps", "physics")):
                    if f"{backend}_{key}" in r:
                        lines.append(
                            f"| envs | {t['task']} {what}, {b} envs, {backend} impl={impl} "
                            f"| {r[f'{backend}_{key}']:,.0f} steps/s |"
                        )
                compile_s = r.get(f"{backend}_env_compile_s")
                if compile_s is not None:
                    lines.append(
                        f"| envs | {t['task']} env-step compile, {b} envs, impl={impl} "
                        f"| {compile_s:.1f} s |"
                    )
        if res["run"]["timed_out"]:
            lines.append(f"| envs | impl={impl} | cut at its cap ({res['run']['wall_s']} s) |")
    te = summary["teacher"]
    if "train_env_steps_per_s" in te:
        lines.append(
            f"| teacher | {te['task']}, {te['num_envs']} envs: env steps/s while training "
            f"| {te['train_env_steps_per_s']:,.0f} |"
        )
        if te.get("train_over_physics") is not None:
            lines.append(
                f"| teacher | training / physics only (target ≥ 0.85) "
                f"| {te['train_over_physics']:.2f} |"
            )
        lines.append(f"| teacher | compile + first iteration | {te['compile_s']:.1f} s |")
        last = te["curve"][-1] if te["curve"] else None
        if last:
            level = "" if last["level"] is None else f" (goal level {int(last['level'])})"
            lines.append(
                f"| teacher | headline at {last['wall_s']:.0f} s, {last['env_steps']:,} steps"
                f"{level} | {last['headline']:.3f} |"
            )
        t80 = te.get("time_to_0.8_s")
        lines.append(f"| teacher | time to 0.8 | {f'{t80:.0f} s' if t80 else 'not reached'} |")
    else:
        lines.append(f"| teacher | no iteration finished | rc {te['run']['rc']} |")
    di = summary["distill"]
    if "labelled_samples_per_s" in di:
        lines.append(f"| distill | labelled samples/s | {di['labelled_samples_per_s']:,.0f} |")
        lines.append(f"| distill | compile + first iteration | {di['compile_s']:.1f} s |")
    else:
        lines.append(f"| distill | no iteration finished | rc {di['run']['rc']} |")
    return "\n".join(lines) + "\n"


def _physics_at(
    envs_result: dict[str, Any], backend: str, task: str, batch: int | None
) -> float | None:
    """Part 1's physics-only rate (impl=jax) for ``task`` at ``batch`` envs, if measured."""
    res = envs_result["impls"].get("jax", {})
    for t in res.get("tasks", []):
        if t["task"] == task and batch is not None:
            return t["batches"].get(str(batch), {}).get(f"{backend}_physics_sps")
    return None


def main(argv: list[str]) -> int:
    """Runs the check; returns 0 when every part produced its numbers."""
    if not argv or argv[0].startswith("-"):
        print("usage: gpu_check.py OUT_DIR [--dry-run]", file=sys.stderr)
        return 2
    out, dry = Path(argv[0]), "--dry-run" in argv[1:]
    plan = DRY if dry else FULL
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    log.write_text("")
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"dry_run": dry, "plan": dataclasses.asdict(plan)}
    summary["device"] = device()
    print(f"gpu_check: device {summary['device']}", flush=True)
    run_dir = Path(os.environ.get("DEXDISTILL_CHECK_RUN_DIR", "/tmp/dexdistill_gpu_check_run"))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for name, part in (("envs", part_envs), ("teacher", part_teacher), ("distill", part_distill)):
        print(f"gpu_check: part {name} ...", flush=True)
        args = (plan, out, log) if name == "envs" else (plan, out, log, run_dir)
        summary[name] = part(*args)
    num_envs = summary["teacher"].get("num_envs")
    physics = _physics_at(summary["envs"], plan.backend, plan.teacher_task, num_envs)
    te = summary["teacher"]
    if physics and "train_env_steps_per_s" in te:
        te["physics_sps_same_batch"] = physics
        te["train_over_physics"] = te["train_env_steps_per_s"] / physics
    summary["total_s"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = summary_table(summary)
    (out / "summary.md").write_text(table)
    print(table, flush=True)
    complete = "train_env_steps_per_s" in te and "labelled_samples_per_s" in summary["distill"]
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
