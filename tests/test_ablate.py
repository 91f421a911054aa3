"""``dexdistill ablate``: every ablation's arms, table shape, and end-to-end runs at smoke scale."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dexdistill.pipelines import cli, presets
from dexdistill.pipelines.experiments import ablate

SMOKE = dict(
    task="point_mass",
    seeds=1,
    preset="smoke",
    teacher_timesteps=64 * 10 * 40,
    iterations=2,
    episodes=32,
)


@pytest.mark.parametrize("name", [n for n in ablate.ABLATIONS if n != "representation"])
def test_every_ablation_has_its_arms(name):
    names = [a.name for a in ablate.arms(name, "point_mass")]
    expected = {
        "randomization": [
            "all",
            "none",
            "no_physics",
            "no_observation",
            "no_unmodeled",
            "no_camera",
        ],
        "memory": ["gru", "lstm", "stack", "none", "gru_stored_memory"],
        "dagger": [
            "beta0",
            "exponential",
            "linear",
            "success_gated",
            "bc",
            "on_policy",
            "noise_fixed",
            "noise_learned",
        ],
        "modality": ["keypoints", "pointcloud"],
        "loss": ["mse", "mse_aux", "nll", "nll_aux", "kl", "kl_aux", "std_mse", "std_mse_aux"],
    }[name]
    assert names == expected
    assert [a.name for a in ablate.arms("modality", "dclaw_valve")][-1] == "pointcloud_raycast"
    assert [a.name for a in ablate.arms("representation", "trifinger_cube")] == [
        "keypoints_reward",
        "pose_reward",
    ]


def test_unsupported_ablation_and_bad_config_are_one_line_errors():
    with pytest.raises(ValueError, match="representation.*reward_representation.*trifinger_cube"):
        ablate.arms("representation", "point_mass")
    with pytest.raises(ValueError, match="seeds=0: must be >= 1"):
        ablate.AblateConfig(seeds=0).validate()
    with pytest.raises(ValueError, match="task='juggling'"):
        ablate.AblateConfig(task="juggling").validate()


def _tables(text: str) -> list[list[str]]:
    """The markdown tables of ``text``: per table, the first cell of each body row."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("| arm"):
            current = []
            tables.append(current)
        elif line.startswith("|---"):
            continue
        elif line.startswith("| ") and current is not None:
            current.append(line.split("|")[1].strip())
        else:
            current = None
    return tables


def _check_outputs(out, name, arm_names, seeds):
    tables = _tables((out / f"{name}.md").read_text())
    assert tables and all(t == arm_names for t in tables), tables
    text = (out / f"{name}.md").read_text()
    first = text.split("| arm")[1].split("\n\n")[0].splitlines()[2:]
    assert all(len(r.split("|")) == 9 for r in first)  # arm + 2 conditions x (mean, median, seeds)
    with (out / f"{name}.csv").open() as f:
        records = list(csv.DictReader(f))
    assert len(records) == len(arm_names) * seeds
    for r in records:
        for key in ("heldout_success", "reality_success"):
            assert 0.0 <= float(r[key]) <= 1.0
    assert (out / f"{name}.png").stat().st_size > 1000


@pytest.mark.parametrize("name", ablate.ABLATIONS)
def test_every_ablation_writes_every_arm_and_seed(name, tmp_path, monkeypatch):
    """Table, CSV and plot of every ablation (training replaced by synthetic results)."""
    task = "trifinger_cube" if name == "representation" else "point_mass"
    cfg = ablate.AblateConfig(name=name, task=task, seeds=2, out=str(tmp_path))
    arm_names = [a.name for a in ablate.arms(name, task)]

    def fake_run_arm(cfg, arm, seed):
        row = {"arm": arm.name, "seed": seed, "train_success": 0.9, "train_teacher_success": 1.0}
        for i, c in enumerate(ablate.CONDITIONS):
            row[f"{c}_success"] = 0.1 * (arm_names.index(arm.name) % 9) + 0.01 * seed + 0.02 * i
            row[f"{c}_teacher_success"] = 0.5
            row[f"{c}_action_error"] = 0.3
            if task == "trifinger_cube":
                row.update({f"{c}_{e}": 0.05 for e in ablate.ERRORS})
        return row

    monkeypatch.setattr(ablate, "run_arm", fake_run_arm)
    ablate.run(cfg)
    _check_outputs(tmp_path, name, arm_names, 2)
    tables = _tables((tmp_path / f"{name}.md").read_text())
    assert len(tables) == (3 if task == "trifinger_cube" else 2)  # + errors table
    text = (tmp_path / f"{name}.md").read_text()
    first = next(ln for ln in text.splitlines() if ln.startswith(f"| {arm_names[0]} |"))
    assert "0.005" in first and "0.00, 0.01" in first  # mean ± std over seeds, sorted seeds


def test_arms_change_what_they_say(tmp_path):
    cfg = ablate.AblateConfig(
        name="dagger", preset="tiny", out=str(tmp_path), env_overrides=("instability=1.5",)
    )
    by_name = {a.name: a for a in ablate.arms("dagger", "point_mass")}
    teacher, distill = ablate._stage_configs(cfg, by_name["on_policy"], seed=2)
    assert distill.dagger.capacity == distill.dagger.num_envs  # no aggregation
    assert distill.dagger.beta.kind == "constant" and distill.dagger.beta.value == 0.0
    assert "instability=1.5" in teacher.env_overrides and "instability=1.5" in distill.env_overrides
    base_teacher, _ = ablate._stage_configs(cfg, by_name["bc"], seed=0)
    assert teacher.ppo.seed == base_teacher.ppo.seed + 2
    cfg = ablate.AblateConfig(name="memory", preset="tiny", out=str(tmp_path))
    memory_arms = {a.name: a for a in ablate.arms("memory", "point_mass")}
    _, distill = ablate._stage_configs(cfg, memory_arms["none"], seed=0)
    assert distill.dagger.student.memory == "none"
    _, distill = ablate._stage_configs(cfg, memory_arms["gru_stored_memory"], seed=0)
    assert distill.dagger.student.memory == "gru"
    assert distill.dagger.fit.memory_start == "stored"
    cfg = ablate.AblateConfig(name="dagger", preset="tiny", out=str(tmp_path))
    _, distill = ablate._stage_configs(cfg, by_name["noise_fixed"], seed=0)
    assert distill.dagger.rollout_noise == "fixed" and distill.dagger.beta.kind == "exponential"
    cfg = ablate.AblateConfig(name="randomization", preset="tiny", out=str(tmp_path))
    arm = ablate.arms("randomization", "point_mass")[2]  # no_physics
    teacher, distill = ablate._stage_configs(cfg, arm, seed=0)
    assert not teacher.env_config().randomization.physics.enabled
    assert teacher.env_config().randomization.observation.enabled


@pytest.mark.parametrize("preset", ["quickstart", "dclaw_valve_cpu", "tiny"])
def test_every_arm_gives_valid_stage_configs_on_the_preset(preset, tmp_path):
    """Each arm's teacher and distill configs validate before anything trains (the
    success-gated arm once crashed mid-ablation on the quickstart, which evaluates every 2
    iterations while the gate needs every one)."""
    task = presets.get(preset).teacher.env
    for name in ("memory", "dagger", "loss", "randomization"):
        cfg = ablate.AblateConfig(name=name, task=task, preset=preset, out=str(tmp_path))
        for arm in ablate.arms(name, task):
            teacher, distill = ablate._stage_configs(cfg, arm, seed=1)
            teacher.validate()
            distill.validate()


def check_dagger_smoke_ablation(out: Path, capsys: pytest.CaptureFixture) -> None:
    """What a finished ``dexdistill ablate dagger --arms exponential bc`` at smoke scale
    writes; rerunning the command reuses everything on disk.

    Run on the ablation notebook's smoke run (``tests/test_notebooks.py``), which calls
    ``ablate.run`` with this very config, so the suite trains it once; the CLI rerun also
    proves that these arguments resolve to the notebook's config."""
    arm_names = ["exponential", "bc"]
    argv = ["ablate", "dagger", "--out", str(out), "--arms", *arm_names]
    for k, v in SMOKE.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    _check_outputs(out, "dagger", arm_names, 1)
    assert len(list((out / "teachers").iterdir())) == 1  # one teacher shared by every arm
    capsys.readouterr()
    assert cli.main(argv) == 0  # everything on disk is reused
    assert "resuming" not in capsys.readouterr().out
    _check_outputs(out, "dagger", arm_names, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["randomization", "memory", "dagger", "modality", "loss"])
def test_ablation_end_to_end_at_smoke_scale(name, tmp_path):
    cfg = ablate.AblateConfig(name=name, out=str(tmp_path / "abl"), **SMOKE)
    ablate.run(cfg)
    _check_outputs(tmp_path / "abl", name, [a.name for a in ablate.arms(name, "point_mass")], 1)


@pytest.mark.slow
def test_representation_ablation_end_to_end_on_trifinger(tmp_path):
    cfg = ablate.AblateConfig(
        name="representation",
        task="trifinger_cube",
        seeds=1,
        out=str(tmp_path / "abl"),
        teacher_timesteps=256 * 16 * 2,
        episodes=16,
    )
    ablate.run(cfg)
    _check_outputs(tmp_path / "abl", "representation", ["keypoints_reward", "pose_reward"], 1)
