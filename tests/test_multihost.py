"""Several hosts, proven on one machine (issue 15): two processes joined by
``jax.distributed`` (CPU devices, gloo collectives) run a teacher iteration and a DAgger
iteration sharded over both, and land what one process with two devices lands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import TEST_ENV

from dexdistill.pipelines.io import dataset as dataset_lib, distributed

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "multihost_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without JAX's settings but the suite's own (``TEST_ENV``); the
    suite's XLA flags are kept (they are part of the compile cache's keys) and ``extra``
    flags appended."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") or k in TEST_ENV}
    env.pop("DEXDISTILL_MULTIHOST", None)
    flags = " ".join(f for f in (env.get("XLA_FLAGS", ""), extra.pop("XLA_FLAGS", "")) if f)
    return {**env, "XLA_FLAGS": flags, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def _launch(base: Path) -> tuple[Path, Path, list[str]]:
    """``(two-process run dir, one-process reference dir, the two processes' output)``."""
    multi, single = base / "multi", base / "single"
    port = _free_port()
    logs = [(base / f"process{i}.log").open("w") for i in range(2)]  # no pipe to fill up
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(multi)],
            env=_env(
                DEXDISTILL_MULTIHOST="1",
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                JAX_NUM_PROCESSES="2",
                JAX_PROCESS_ID=str(i),
            ),
            stdout=logs[i],
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    for p, log in zip(procs, logs, strict=True):
        p.wait(timeout=900)
        log.close()
    outs = [(base / f"process{i}.log").read_text() for i in range(2)]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    ref = subprocess.run(
        [sys.executable, str(WORKER), str(single)],
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    return multi, single, outs


def _state(run_dir: Path, stage: str) -> dict[str, np.ndarray]:
    """Every leaf of the stage's latest orbax checkpoint, as numpy."""
    ckpts = run_dir / stage / "checkpoints"
    step = max(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    path = ckpts / str(step) / "state"
    ck = ocp.StandardCheckpointer()
    tree = dict(ck.metadata(path).item_metadata)
    return ck.restore(path, {k: np.zeros(m.shape, m.dtype) for k, m in tree.items()})


def test_two_processes_land_what_one_process_with_two_devices_lands(tmp_path):
    """One launch (the processes take a minute or two), every check: the checkpoints, then
    that only the primary wrote logs, results and the dataset."""
    multi, single, outs = _launch(tmp_path)
    for stage in ("teacher", "student"):
        a, b = _state(multi, stage), _state(single, stage)
        assert a.keys() == b.keys()
        for k in a:
            # the same programs; only the all-reduce runs over gloo instead of in one process
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=f"{stage} {k}")
        lines = (multi / stage / "metrics.jsonl").read_text().splitlines()
        ref = (single / stage / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == len(ref) == 1, "one record per iteration, not one per process"
        assert (multi / stage / "eval.json").exists()
    a, b = dataset_lib.load(multi / "dataset"), dataset_lib.load(single / "dataset")
    assert len(a) == len(b) > 0, "the primary wrote every host's episodes, once"
    ea, eb = dataset_lib.episode_arrays(a[0]), dataset_lib.episode_arrays(b[0])
    for key in ("teacher_action", "action"):
        np.testing.assert_allclose(ea["steps"][key], eb["steps"][key], rtol=1e-5, atol=1e-6)
    assert "[teacher]" not in outs[1] and "[distill]" not in outs[1], "progress: primary only"


def test_single_process_helpers_are_the_plain_operations():
    assert distributed.is_primary()
    assert distributed.agree(True) is True and distributed.agree(False) is False
    tree = {"x": np.arange(3)}
    np.testing.assert_array_equal(distributed.to_host(tree)["x"], tree["x"])


def test_runtime_reads_the_cache_threshold_and_names_a_bad_value(monkeypatch):
    from dexdistill.pipelines.io import runtime

    monkeypatch.delenv("DEXDISTILL_CACHE_MIN_COMPILE_S", raising=False)
    assert runtime._cache_min_compile_s() == 1.0, "users cache only programs of >= 1 s"
    monkeypatch.setenv("DEXDISTILL_CACHE_MIN_COMPILE_S", "0")
    assert runtime._cache_min_compile_s() == 0.0
    monkeypatch.setenv("DEXDISTILL_CACHE_MIN_COMPILE_S", "fast")
    with pytest.raises(ValueError, match="DEXDISTILL_CACHE_MIN_COMPILE_S='fast'"):
        runtime._cache_min_compile_s()


def test_runtime_reads_the_process_counts_and_names_a_bad_value(monkeypatch):
    from dexdistill.pipelines.io import runtime

    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    assert runtime._int_env("JAX_PROCESS_ID") is None, "unset: JAX detects the cluster"
    monkeypatch.setenv("JAX_PROCESS_ID", "3")
    assert runtime._int_env("JAX_PROCESS_ID") == 3
    monkeypatch.setenv("JAX_PROCESS_ID", "1.5")
    with pytest.raises(ValueError, match=r"JAX_PROCESS_ID='1.5': must be an integer"):
        runtime._int_env("JAX_PROCESS_ID")
