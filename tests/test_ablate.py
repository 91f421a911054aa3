"""``dexdistill ablate``: every ablation's arms, table shape, and end-to-end runs at smoke scale."""

from __future__ import annotations

import csv

import pytest

from pipelines import ablate, cli

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
        "memory": ["gru", "lstm", "stack", "none"],
        "dagger": ["beta0", "exponential", "linear", "success_gated", "bc", "on_policy"],
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


def _check_outputs(out, name, arm_names, seeds):
    table = (out / f"{name}.md").read_text().splitlines()
    rows = [ln for ln in table if ln.startswith("| ") and not ln.startswith("| arm")]
    assert [r.split("|")[1].strip() for r in rows] == arm_names
    assert all(len(r.split("|")) == 9 for r in rows)  # arm + 2 conditions x (mean, median, seeds)
    with (out / f"{name}.csv").open() as f:
        records = list(csv.DictReader(f))
    assert len(records) == len(arm_names) * seeds
    for r in records:
        for key in ("heldout_success", "reality_success"):
            assert 0.0 <= float(r[key]) <= 1.0
    assert (out / f"{name}.png").stat().st_size > 1000


def test_dagger_ablation_end_to_end_and_reused_on_rerun(tmp_path, capsys):
    out = tmp_path / "abl"
    arm_names = ["exponential", "bc"]
    argv = ["ablate", "dagger", "--out", str(out), "--arms", *arm_names]
    for k, v in SMOKE.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert cli.main(argv) == 0
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
