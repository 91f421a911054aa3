"""Run-directory files (pipelines/run_files.py): atomic writes, provenance."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipelines import run_files


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "sub" / "eval.json"
    run_files.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    def half(tmp):
        tmp.write_text('{"a": ')  # killed here
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_files.write_atomic(path, half)
    assert json.loads(path.read_text()) == {"a": 1}, "readers never see half a file"
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == ["eval.json"]


@dataclasses.dataclass(frozen=True)
class _Config:
    x: int = 1


def test_config_records_version_commit_and_refuses_a_different_config(tmp_path):
    run_files.write_config(tmp_path, "teacher", _Config(1), _Config(2), force=False)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["teacher"] == {"config": {"x": 1}, "env_config": {"x": 2}}
    assert data["package_version"] == run_files.VERSION and "git_commit" in data
    with pytest.raises(ValueError, match="different teacher config"):
        run_files.write_config(tmp_path, "teacher", _Config(3), _Config(2), force=False)
    run_files.write_config(tmp_path, "teacher", _Config(3), _Config(2), force=True)


def test_a_metrics_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    from pipelines.logs import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl", tensorboard=False)
    for i in (1, 2, 3):
        log.write({"iteration": i, "loss": 0.5})
    with log.path.open("a") as f:
        f.write('{"iteration": 4, "lo')  # SIGKILL in the middle of a write
    assert [r["iteration"] for r in log.read()] == [1, 2, 3]
    log.truncate_after(2)  # resuming from the checkpoint of iteration 2
    assert log.path.read_text() == '{"iteration": 1, "loss": 0.5}\n{"iteration": 2, "loss": 0.5}\n'


def test_a_policy_loads_from_a_checkpoint_whose_later_fields_changed(tmp_path):
    """``restore_leading``: the first fields of a stage state (a teacher's params) restore
    even when the fields after them (the env state) have another layout in this version."""
    import jax.numpy as jp

    from pipelines.checkpoints import Checkpointer

    params = {"w": jp.arange(6.0).reshape(2, 3), "b": jp.ones(3)}
    old_state = (params, {"env": jp.zeros(4), "extra": jp.ones((2, 2))})
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(1, old_state, {"iteration": 1})
    template = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    restored = ckpt.restore_leading((template,))[0]
    np.testing.assert_array_equal(restored["w"], params["w"])
    np.testing.assert_array_equal(restored["b"], params["b"])
    with pytest.raises(ValueError):  # the whole state no longer matches: a full restore refuses
        ckpt.restore((template, {"env": np.zeros(4, np.float32)}))
    ckpt.close()
