"""Which rotation axes a hand_cube teacher can turn the cube about.

Runs the teacher's deterministic policy on ``B`` fresh episodes at goal level 0 (rotations
of at most ``goal_rotation_levels[0]``) for one goal timeout, and reports the share of
first goals reached by the goal's dominant rotation axis (x: along the fingers, y: across
the palm, z: the palm normal). Used in docs/benchmarks.md ("The hand on Dactyl's 3-D task").

Run: ``python benchmarks/hand_axes.py RUN_DIR``.
"""

import sys

import jax
import jax.numpy as jp
import numpy as np

from dexdistill import envs
from dexdistill.envs.tasks import geometry
from dexdistill.pipelines import rundir

BATCH, STEPS = 256, 200


def main(run_dir: str) -> None:
    teacher = rundir.load_teacher(run_dir)
    level0 = {"curriculum.enabled": False, "goal_level": 0}
    env = envs.make("hand_cube", envs.with_overrides(teacher.env_config, level0))
    policy = teacher.policy(deterministic=True)
    reset, step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
    state = reset(jax.random.split(jax.random.PRNGKey(1), BATCH))
    quat = jax.vmap(lambda d: env.object_pose(d)[1])(state.data)
    rel = jax.vmap(lambda g, q: geometry.quat_mul(g, geometry.quat_conj(q)))(
        state.info["goal_quat"], quat
    )
    axis = np.asarray(rel[:, 1:])
    axis = axis / np.linalg.norm(axis, axis=1, keepdims=True)

    @jax.jit
    def reached(state: envs.State, key: jax.Array) -> jax.Array:
        def body(carry, k):
            s, hit = carry
            action, _, _ = policy(s.obs, None, k)
            s = step(s, action)
            return (s, hit | (s.metrics["consecutive_successes"] >= 1)), None

        init = (state, jp.zeros(BATCH, bool))
        (_, hit), _ = jax.lax.scan(body, init, jax.random.split(key, STEPS))
        return hit

    hit = np.asarray(reached(state, jax.random.PRNGKey(2)))
    print(f"first goal reached: {hit.mean():.3f} of {BATCH}")
    dominant = np.argmax(np.abs(axis), axis=1)
    for i, name in enumerate(("x (along the fingers)", "y (across the palm)", "z (palm normal)")):
        m = dominant == i
        print(f"dominant axis {name}: n={m.sum()} reached={hit[m].mean():.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
