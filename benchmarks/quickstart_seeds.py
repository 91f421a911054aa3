"""``dexdistill run`` (the quickstart) for several seeds, cold compile cache, one after another.

Each seed runs the README's main command in its own run directory with an empty JAX
compile cache (a fresh machine's worst case) and the teacher and DAgger seeds set;
the script then writes one JSON with every run and a markdown table with mean ± std::

    python benchmarks/quickstart_seeds.py --seeds 0 1 2 --out docs/bench/quickstart_seeds

Run it on an otherwise idle machine: wall-clock is part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dexdistill.pipelines.rundir import RunDir


def run_seed(seed: int, root: Path, extra: list[str]) -> dict:
    run_dir = root / f"seed{seed}"
    cache = tempfile.mkdtemp(prefix=f"dexdistill_cache_{seed}_")
    env = {**os.environ, "DEXDISTILL_CACHE": cache, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "dexdistill.pipelines.cli",
        "run",
        "--run-dir",
        str(run_dir),
        "--teacher.ppo.seed",
        str(seed),
        "--distill.dagger.seed",
        str(seed),
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rd = RunDir(run_dir)
    student = json.loads(rd.final_eval("student").read_text())
    stages = json.loads(rd.pipeline_log.read_text())
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "stages_s": {k: v["wall_s"] for k, v in stages["stages"].items()},
        "teacher_success": student["teacher"]["success_rate"],
        "student_success": student["success_rate"],
        "ratio": student["ratio"],
        "action_error": student["action_error"],
        "episodes": student["episodes"],
    }


def mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.3f} ± {sd:.3f}"


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| seed | wall-clock | teacher / distill / evaluate / report (s) | teacher success "
        "| student success | student / teacher |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        s = r["stages_s"]
        parts = " / ".join(
            f"{s.get(k, 0):.0f}" for k in ("teacher", "distill", "evaluate", "report")
        )
        m, sec = divmod(int(round(r["wall_s"])), 60)
        lines.append(
            f"| {r['seed']} | {m}:{sec:02d} | {parts} | {r['teacher_success']:.3f} "
            f"| {r['student_success']:.3f} | {r['ratio']:.2f} |"
        )
    walls = [r["wall_s"] / 60 for r in rows]
    lines.append(
        f"| **mean ± std** | {mean_std(walls)} min | | "
        f"**{mean_std([r['teacher_success'] for r in rows])}** "
        f"| **{mean_std([r['student_success'] for r in rows])}** "
        f"| **{mean_std([r['ratio'] for r in rows])}** |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--root", default="runs/quickstart_seeds")
    ap.add_argument("--out", default="bench_out/quickstart_seeds")
    ap.add_argument("extra", nargs="*", help="more `dexdistill run` flags (after --)")
    args = ap.parse_args()
    root = Path(args.root)
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, root, args.extra))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    out.with_suffix(".md").write_text(to_markdown(rows))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
