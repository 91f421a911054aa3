"""Shared fixtures: compiled env rollouts are built once per session and reused."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from dexdistill.pipelines.io import runtime

_CACHE = os.environ.get(
    "DEXDISTILL_TEST_CACHE", str(Path(__file__).resolve().parent.parent / ".jax_cache")
)
"""The persistent compile cache shared by the test processes, workers and subprocesses."""
Path(_CACHE).mkdir(parents=True, exist_ok=True)

NO_FUSION_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
TEST_XLA_FLAGS = ("--xla_backend_optimization_level=0", NO_FUSION_EMITTERS)
"""XLA flags of every test process and subprocess (inherited through ``XLA_FLAGS``; each
only where this jaxlib's XLA knows it, see :func:`runtime.add_xla_flags`). The tests'
programs are small and run for seconds, while a cold suite compiles for more than half its
wall-clock: LLVM's optimization passes are about a third of a compile, and XLA's CPU fusion
emitters, at that level, about half of what is left (a cold valve distill process: 18-20 s
of XLA compile with them, 10 s without; docs/history/benchmarks-log-2026-12-01-to-07.md). Without them, two different
programs computing the same numbers (a batch sharded over two devices and unsharded, say)
may round differently in the last bit; a test of bit-equality between two programs, which
users get with JAX's default codegen, drops ``NO_FUSION_EMITTERS``."""
runtime.add_xla_flags(TEST_XLA_FLAGS, Path(_CACHE))

TEST_ENV = {
    "DEXDISTILL_CACHE_MIN_COMPILE_S": "0",
    "JAX_TRACEBACK_IN_LOCATIONS_LIMIT": "0",
    "JAX_INCLUDE_FULL_TRACEBACKS_IN_LOCATIONS": "false",
}
"""Settings of every test process and subprocess (inherited through the environment). Cache
every compiled program, however fast it compiled (the default skips those under 1 s; the
tests build many small ones again in other tests, workers and subprocesses), and lower no
Python tracebacks into the programs' locations (smaller modules: faster lowering, hashing
and compiling). Together 17% less CPU on a sample of five test modules (250 -> 208 s of user
time, docs/history/benchmarks-log-2026-12-01-to-07.md). Users keep JAX's defaults."""
for _name, _value in TEST_ENV.items():
    os.environ.setdefault(_name, _value)

runtime.choose_headless_gl()  # as the CLI does, before mujoco is imported

import jax  # noqa: E402
import jax.numpy as jp  # noqa: E402
import pytest  # noqa: E402

os.environ["DEXDISTILL_CACHE"] = _CACHE  # runtime.setup() in the CLI and every subprocess
runtime.setup(_CACHE)  # the cache settings the CLI uses, with TEST_ENV's threshold

from dexdistill import envs  # noqa: E402

TASKS = ("point_mass", "dclaw_valve", "trifinger_cube", "hand_cube")
BATCH = 8
STEPS = 200


class Rollout:
    """A task with its batch-8 reset and a jitted 200-step random-action rollout."""

    def __init__(self, name: str, **overrides):
        config = envs.with_overrides(envs.default_config(name), overrides)
        self.env = envs.make(name, config)
        self.reset = jax.jit(jax.vmap(self.env.reset))
        self._run = jax.jit(self._rollout)
        self._cache: dict[int, tuple] = {}

    def _rollout(self, rng: jax.Array):
        """Returns (first states [B], last states [B], per-step obs/reward/done stats)."""
        k_reset, k_act = jax.random.split(rng)
        first = jax.vmap(self.env.reset)(jax.random.split(k_reset, BATCH))

        def body(state, key):
            a = jax.random.uniform(key, (BATCH, self.env.action_size), minval=-1, maxval=1)
            nxt = jax.vmap(self.env.step)(state, a)
            finite = jp.all(
                jp.stack(
                    [
                        jp.all(jp.isfinite(v))
                        for v in jax.tree.leaves(nxt.obs)
                        if v.dtype != jp.bool_
                    ]
                )
            )
            summary = {
                "finite": finite & jp.all(jp.isfinite(nxt.reward)),
                "reward": nxt.reward,
                "done": nxt.done,
                "unstable": nxt.metrics["unstable"],
                "obs0": jax.tree.map(lambda x: x[0], nxt.obs),
            }
            return nxt, summary

        last, traj = jax.lax.scan(body, first, jax.random.split(k_act, STEPS))
        return first, last, traj

    def run(self, seed: int = 0):
        if seed not in self._cache:
            self._cache[seed] = jax.device_get(self._run(jax.random.PRNGKey(seed)))
        return self._cache[seed]


_ROLLOUTS: dict[str, Rollout] = {}


def get_rollout(name: str) -> Rollout:
    if name not in _ROLLOUTS:
        _ROLLOUTS[name] = Rollout(name)
    return _ROLLOUTS[name]


@pytest.fixture(params=TASKS)
def rollout(request) -> Rollout:
    return get_rollout(request.param)


# Modules holding the longest tests (a cold 2-core run) start first, so that the two xdist
# workers do not end with one of them running a three-minute test alone. Whole modules
# move, in their own order, so that module-scoped fixtures are still built once.
# The notebooks come after the pipeline and ablation tests: they run the same `smoke`
# configurations and find those programs in the shared compile cache.
_LONGEST_FIRST = (
    "test_multihost.py",
    "test_pipeline.py",
    "test_curriculum.py",
    "test_ablate.py",
    "test_distill_stage.py",
    "test_gpu_check.py",
    "test_teacher.py",
    "test_distill.py",
    "test_notebooks.py",
    "test_physics.py",
)


def _rank(item: pytest.Item) -> int:
    name = item.path.name
    return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the rest keep their file order
