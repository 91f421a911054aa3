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

t = rundir.load_teacher(sys.argv[1])
env = envs.make(
    "hand_cube", envs.with_overrides(t.env_config, {"curriculum.enabled": False, "goal_level": 0})
)
policy = t.policy(deterministic=True)
B, T = 256, 200
reset = jax.jit(jax.vmap(env.reset))
step = jax.jit(jax.vmap(env.step))
s = reset(jax.random.split(jax.random.PRNGKey(1), B))
rel = jax.vmap(lambda g, q: geometry.quat_mul(g, geometry.quat_conj(q)))(
    s.info["goal_quat"], s.data.qpos[:, env._obj_qadr + 3 : env._obj_qadr + 7]
)
axis = np.asarray(rel[:, 1:])
axis = axis / np.linalg.norm(axis, axis=1, keepdims=True)
angle = 2 * np.arccos(np.clip(np.abs(np.asarray(rel[:, 0])), 0, 1))


@jax.jit
def run(s, key):
    def body(c, k):
        s, hit = c
        a, _, _ = policy(s.obs, None, k)
        s = step(s, a)
        return (s, hit | (s.metrics["consecutive_successes"] >= 1)), None

    (s, hit), _ = jax.lax.scan(body, (s, jp.zeros(B, bool)), jax.random.split(key, T))
    return hit


hit = np.asarray(run(s, jax.random.PRNGKey(2)))
print("first-goal success", hit.mean(), "mean angle", angle.mean())
dom = np.argmax(np.abs(axis), axis=1)
for i, n in enumerate("xyz"):
    m = dom == i
    print(f"dominant axis {n}: n={m.sum()} success={hit[m].mean():.2f}")
