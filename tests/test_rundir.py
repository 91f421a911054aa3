"""Run-directory files (pipelines/rundir.py, pipelines/io/files.py): atomic writes, provenance."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dexdistill.pipelines import rundir
from dexdistill.pipelines.io import files


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "sub" / "eval.json"
    files.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    def half(tmp):
        tmp.write_text('{"a": ')  # killed here
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(path, half)
    assert json.loads(path.read_text()) == {"a": 1}, "readers never see half a file"
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == ["eval.json"]


@dataclasses.dataclass(frozen=True)
class _Config:
    x: int = 1


def test_config_records_version_commit_and_refuses_a_different_config(tmp_path):
    rundir.write_config(tmp_path, "teacher", _Config(1), _Config(2), force=False)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["teacher"] == {"config": {"x": 1}, "env_config": {"x": 2}}
    assert data["package_version"] == files.VERSION and "git_commit" in data
    with pytest.raises(ValueError, match="different teacher config"):
        rundir.write_config(tmp_path, "teacher", _Config(3), _Config(2), force=False)
    rundir.write_config(tmp_path, "teacher", _Config(3), _Config(2), force=True)


def test_a_metrics_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    from dexdistill.pipelines.io.logs import MetricsLog

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

    from dexdistill.pipelines.io.checkpoints import Checkpointer

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


def test_a_kill_between_checkpoint_and_log_line_loses_no_record(tmp_path):
    """The stage loop checkpoints, then logs; a stage stores the record in the checkpoint,
    so a kill in between still leaves one log line per iteration after resuming."""
    import jax.numpy as jp

    from dexdistill.pipelines.io import logs
    from dexdistill.pipelines.io.checkpoints import Checkpointer
    from dexdistill.pipelines.io.logs import MetricsLog
    from dexdistill.pipelines.stages import loop as stage_loop

    class Killed(Exception):
        pass

    cfg = stage_loop.LoopConfig("toy", 6, 0, 2, 0.0, "units_per_s", 1)
    ckpt = Checkpointer(tmp_path / "ckpt")
    log = MetricsLog(tmp_path / "metrics.jsonl", tensorboard=False)

    def step(x, i):
        return x + 1.0, {"value": float(i)}

    def save(x, i, finished, record, kill_at=None):
        ckpt.save(i, x, {"iteration": i, "finished": finished, "record": logs.clean_record(record)})
        if i == kill_at:
            raise Killed

    with pytest.raises(Killed):
        stage_loop.run(cfg, jp.zeros(()), 0, log, step, lambda *a: save(*a, kill_at=4))
    assert [r["iteration"] for r in log.read()] == [1, 2, 3]
    state, meta, _ = stage_loop.resume("toy", tmp_path, ckpt, log, jp.zeros(()))
    assert meta["iteration"] == 4 and float(state) == 4.0
    stage_loop.run(cfg, state, 4, log, step, save)
    assert [r["iteration"] for r in log.read()] == [1, 2, 3, 4, 5, 6]
    ckpt.close()
