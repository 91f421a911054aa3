"""The ``dexdistill`` command line: envs listing, bench JSON, one-line config errors."""

from __future__ import annotations

import json
import os
import sys

import pytest

from dexdistill import envs
from dexdistill.pipelines import cli
from dexdistill.pipelines.io import runtime


def test_envs_command_lists_every_task_with_shapes(capsys):
    assert cli.main(["envs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["task"] for r in rows] == envs.names()
    for r in rows:
        assert set(r["observations"]) == set(envs.OBS_KEYS)
        assert r["action_size"] > 0 and r["control_hz"] > 0 and r["episode_length"] > 0
    hand = next(r for r in rows if r["task"] == "hand_cube")
    assert hand["action_size"] == 16 and hand["observations"]["keypoints"][0] == [16, 3]
    assert hand["headline_metric"] == "consecutive_successes" and len(hand["goal_levels"]) == 3
    tri = next(r for r in rows if r["task"] == "trifinger_cube")
    assert tri["goal_levels"] == ["floor", "lifted", "pose"] and tri["headline_metric"] == "success"


def test_bench_envs_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = cli.main(
        [
            "bench",
            "envs",
            "--tasks",
            "point_mass",
            "--batch-sizes",
            "2",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    res = json.loads(out.read_text())
    row = res["tasks"][0]["batches"]["2"]
    assert row["env_sps"] > 0 and row["env_compile_s"] >= 0
    assert "| point_mass | 2 |" in out.with_suffix(".md").read_text()


def test_bad_values_get_one_line_errors(tmp_path, capsys):
    cases = [
        (
            ["teacher", "--run-dir", str(tmp_path / "a"), "--ppo.num-envs", "0"],
            "ppo.num_envs=0: must be >= 1",
        ),
        (
            ["teacher", "--run-dir", str(tmp_path / "b"), "--env", "cartpole"],
            "env='cartpole': unknown task",
        ),
        (
            ["teacher", "--run-dir", str(tmp_path / "c"), "--preset", "huge"],
            "unknown preset 'huge'; available:",
        ),
        (
            [
                "teacher",
                "--run-dir",
                str(tmp_path / "d"),
                "--env-overrides",
                "point_cloud.source=lidar",
            ],
            "point_cloud.source='lidar': allowed values are",
        ),
        (["envs", "--task", "nope"], "unknown task 'nope'; registered tasks:"),
        (["fly"], "unknown command 'fly'"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err, (argv, err)
        assert len(err.splitlines()) == 1, err


def test_xla_flags_are_added_when_known_and_asked_once_per_jaxlib(tmp_path, monkeypatch):
    scheduler = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
    unknown = "--xla_cpu_no_such_flag_in_any_release=1"
    assert scheduler in os.environ["XLA_FLAGS"], "runtime.setup() adds it in every command"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false")
    flags = (scheduler, unknown, "--xla_cpu_use_fusion_emitters=true")
    assert runtime.add_xla_flags(flags, tmp_path) == [scheduler], "unknown and set ones skipped"
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_use_fusion_emitters=false {scheduler}"

    def no_probe(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(runtime.subprocess, "run", no_probe)
    monkeypatch.setenv("XLA_FLAGS", "")
    assert runtime.add_xla_flags((scheduler, unknown), tmp_path) == [scheduler]
    with pytest.raises(AssertionError, match="probed again"):
        runtime.add_xla_flags(("--xla_cpu_enable_fast_math=false",), tmp_path)


def _one_error_line(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_version_is_printed(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("dexdistill ")


def test_a_run_dir_that_is_a_file_gets_one_line(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    for command in ("teacher", "run", "report", "evaluate"):
        line = _one_error_line(capsys, [command, "--run-dir", str(file)])
        assert "is a file" in line and str(file) in line


def test_reading_commands_refuse_a_missing_run_dir_and_create_nothing(tmp_path, capsys):
    typo = tmp_path / "runs" / "typo"
    for command in ("report", "evaluate", "export", "distill"):
        line = _one_error_line(capsys, [command, "--run-dir", str(typo)])
        assert "no such run directory" in line, line
        assert not typo.exists() and not typo.parent.exists(), command


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"teacher": ', "not valid JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_a_broken_config_json_is_named_in_one_line(tmp_path, capsys, text, says):
    (tmp_path / "config.json").write_text(text)
    for command in ("teacher", "distill", "evaluate"):
        line = _one_error_line(capsys, [command, "--run-dir", str(tmp_path)])
        assert says in line and "config.json" in line, line


def test_progress_draws_a_notebook_bar_in_a_kernel(monkeypatch):
    import types

    from dexdistill.pipelines.io import logs

    assert logs.notebook_tqdm() is None  # pytest is no kernel
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    fake = types.SimpleNamespace(get_ipython=lambda: ZMQInteractiveShell())
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    from tqdm.notebook import tqdm as notebook_bar

    assert logs.notebook_tqdm() is notebook_bar
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # no widgets: plain lines
    assert logs.notebook_tqdm() is None


def test_every_command_option_has_a_help_line():
    """Every field of every command's config (nested ones too) has the docstring tyro turns
    into its --help line."""
    import dataclasses
    import typing

    from tyro import _docstrings

    missing, seen = [], set()

    def walk(cls: type, prefix: str) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            inner = [t for t in (hints[f.name], *typing.get_args(hints[f.name]))]
            groups = [t for t in inner if dataclasses.is_dataclass(t)]
            for tp in groups:  # a section: tyro shows its class docstring
                walk(tp, f"{prefix}{f.name}.")
            if not groups and not _docstrings.get_field_docstring(cls, f.name, ()):
                missing.append(f"{prefix}{f.name}")

    for name, (cls, _) in cli.COMMANDS.items():
        for sub in typing.get_args(typing.get_args(cls)[0]) if name == "bench" else (cls,):
            sub = typing.get_args(sub)[0] if typing.get_args(sub) else sub
            walk(sub, f"{name}: ")
    assert not missing, missing


@pytest.mark.parametrize("command", ["run", "teacher", "distill", "evaluate", "ablate"])
def test_help_shows_no_restructuredtext_markup(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "``" not in capsys.readouterr().out
