"""The MuJoCo C backend's host call (envs/host_call.py): a numpy function of a batch of
rows as an XLA custom call, batched under vmap, and cached across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.envs.physics import host_call

ROOT = Path(__file__).resolve().parents[1]
CALLS: list[tuple[int, ...]] = []


def _affine(x: np.ndarray) -> np.ndarray:
    CALLS.append(x.shape)
    return np.concatenate([2.0 * x, x.sum(axis=1, keepdims=True)], axis=1)


host_call.register("test.affine", _affine)


def _fails(x: np.ndarray) -> np.ndarray:
    raise RuntimeError("boom")


host_call.register("test.fails", _fails)


def test_one_host_call_for_the_whole_batch_under_nested_vmap_jit_and_scan():
    rows = jp.arange(2 * 3 * 4, dtype=jp.float32).reshape(2, 3, 4)
    per_row = lambda r: host_call.call("test.affine", r, 5)  # noqa: E731

    def run(x):
        def body(c, _):
            return jax.vmap(jax.vmap(per_row))(c)[..., :4] + 1.0, None

        return jax.lax.scan(body, x, None, length=2)[0]

    CALLS.clear()
    out = np.asarray(jax.jit(run)(rows))
    expected = np.asarray(rows)
    for _ in range(2):
        expected = 2.0 * expected + 1.0
    np.testing.assert_allclose(out, expected)
    assert CALLS and all(shape == (6, 4) for shape in CALLS), "all 6 rows in each call"
    single = np.asarray(jax.jit(per_row)(rows[0, 0]))
    np.testing.assert_allclose(single, [*(2.0 * np.asarray(rows[0, 0])), float(rows[0, 0].sum())])


def test_a_raising_host_function_gives_nan_and_keeps_the_traceback():
    out = np.asarray(jax.jit(lambda r: host_call.call("test.fails", r, 3))(jp.ones((2, 3))))
    assert np.isnan(out).all()
    assert "RuntimeError: boom" in host_call.last_error()


def test_register_keeps_the_first_function_under_a_key():
    assert not host_call.register("test.affine", _fails)
    assert host_call.registered("test.affine") is _affine


_PROGRAM = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jp, numpy as np
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    from dexdistill.envs.physics import host_call
    host_call.register("cached.double", lambda x: 2.0 * x)

    def host_program(x):
        return jax.vmap(lambda r: host_call.call("cached.double", r, 3))(x).sum()

    print(float(jax.jit(host_program)(jp.ones((4, 3)))))
    """
)


def test_programs_with_the_host_call_enter_the_persistent_compilation_cache(tmp_path):
    """A ``jax.pure_callback`` program is never cached; this is why the custom call exists."""
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PROGRAM, str(cache)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip().splitlines()[-1] == "24.0"
    assert [p.name for p in cache.iterdir() if p.name.startswith("jit_host_program")]
