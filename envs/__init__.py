"""MJX dexterous-manipulation tasks with privileged and student observations.

Quick use::

    import envs, jax
    env = envs.make("dclaw_valve")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jax.numpy.zeros(env.action_size))
"""

import contextlib as _contextlib
import io as _io

# mujoco.mjx prints "Failed to import warp" on machines without NVIDIA Warp; the
# JAX implementation does not need it, so keep that line out of users' output.
with _contextlib.redirect_stdout(_io.StringIO()):
    import mujoco.mjx as _mjx  # noqa: F401

from dexdistill.envs.base import OBS_KEYS, STUDENT_KEYS, ArraySpec, Env, State, check_keys
from dexdistill.envs.registry import default_config, make, names, with_overrides

__all__ = [
    "OBS_KEYS",
    "STUDENT_KEYS",
    "ArraySpec",
    "Env",
    "State",
    "check_keys",
    "default_config",
    "make",
    "names",
    "with_overrides",
]
