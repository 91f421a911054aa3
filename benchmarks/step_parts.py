"""Where an env step spends its time: the step with parts switched off, side by side.

Builds one task several times (full; no point cloud; no observation noise; no unmodeled
effects; none of the three) plus the physics alone, compiles each batched scan of random
actions once, then times them in turns (best of ``--repeats``), so every variant sees
the same machine load::

    python benchmarks/step_parts.py trifinger_cube --backend mujoco --envs 256

Prints milliseconds per control step and env steps/s per variant. The differences to
``full`` are what each part costs (parts overlap a little: XLA fuses across them).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax

from dexdistill import envs
from dexdistill.envs import wrappers
from dexdistill.pipelines.experiments.bench import _env_fn, _physics_fn

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_point_cloud": {"point_cloud.source": "none"},
    "no_observation_noise": {"randomization.observation.enabled": False},
    "no_unmodeled_effects": {"randomization.unmodeled.enabled": False},
    "none_of_the_three": {
        "point_cloud.source": "none",
        "randomization.observation.enabled": False,
        "randomization.unmodeled.enabled": False,
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["dclaw_valve", "trifinger_cube", "hand_cube"])
    ap.add_argument("--backend", default="mujoco", choices=["mujoco", "mjx"])
    ap.add_argument("--envs", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=6)
    args = ap.parse_args()
    rng = jax.random.PRNGKey(0)
    runs: dict[str, tuple[Any, ...]] = {}
    for name, overrides in VARIANTS.items():
        cfg = envs.default_config(args.task)
        task = envs.make(
            args.task, envs.with_overrides(cfg, {"backend": args.backend, **overrides})
        )
        env = wrappers.wrap_for_training(task, args.envs)
        state = jax.block_until_ready(jax.jit(env.reset)(rng))
        runs[name] = (_env_fn(env, args.steps), state, rng)
        if name == "full":
            keys = jax.random.split(rng, args.envs)
            runs["physics_only"] = (
                _physics_fn(task, args.steps),
                state.data,
                state.info["params"],
                keys,
            )
    for fn, *fn_args in runs.values():  # compile every variant before timing any
        jax.block_until_ready(fn(*fn_args))
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):
        for name, (fn, *fn_args) in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*fn_args))
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"{args.task}, {args.backend}, {args.envs} envs, best of {args.repeats}:")
    for name, t in best.items():
        ms = t / args.steps * 1e3
        print(f"  {name:22s} {ms:6.2f} ms/step {args.envs * args.steps / t:10,.0f} env steps/s")


if __name__ == "__main__":
    main()
