"""The prepared accelerator check (issue 15) runs end to end on a CPU at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """``benchmarks/gpu_check.sh OUT --dry-run``: what it printed and wrote."""
    out = tmp_path_factory.mktemp("gpu_check")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEXDISTILL_CHECK_RUN_DIR": str(out.parent / "gpu_check_run"),
    }
    res = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--dry-run", "--no-install"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    return res, out


def test_dry_run_measures_every_part_and_writes_at_most_8_files(dry_run):
    res, out = dry_run
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        ["envs.json", "teacher.json", "distill.json", "summary.json", "summary.md", "log.txt"]
    ), "no leftovers: the device tool brings back at most 8 files"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["device"]["platform"] == "cpu"
    (task,) = summary["envs"]["impls"]["jax"]["tasks"]
    row = task["batches"]["2"]
    assert row["mujoco_env_sps"] > 0 and row["mujoco_physics_sps"] > 0
    assert "skipped" in summary["envs"]["impls"]["warp"], "no warp on CPU: said, not crashed"
    teacher, distill = summary["teacher"], summary["distill"]
    assert teacher["train_env_steps_per_s"] > 0 and teacher["compile_s"] > 0
    assert teacher["curve"] and teacher["num_envs"] == 8
    assert distill["labelled_samples_per_s"] > 0 and distill["iterations"] == 2
    table = (out / "summary.md").read_text()
    assert "| teacher |" in table and "| distill | labelled samples/s |" in table
    assert table in res.stdout, "the table is printed too"


def test_a_part_over_its_cap_is_killed_and_reported(tmp_path):
    log = tmp_path / "log.txt"
    # a hand_cube MJX bench compiles for minutes on a CPU: cut after 3 s
    argv = ["bench", "envs", "--tasks", "hand_cube", "--backends", "mjx", "--out", "x.json"]
    res = gpu_check.run_part(argv, 3.0, log)
    assert res["timed_out"] and res["wall_s"] < 30
    assert "TIMED OUT" in log.read_text()


def test_unknown_option_is_refused_in_one_line(tmp_path):
    res = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--fast"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "unknown option --fast" in res.stderr
