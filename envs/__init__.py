"""MJX dexterous-manipulation tasks with privileged and student observations.

Quick use::

    import envs, jax
    env = envs.make("dclaw_valve")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jax.numpy.zeros(env.action_size))
"""

from envs.base import OBS_KEYS, STUDENT_KEYS, ArraySpec, Env, State, check_keys
from envs.registry import default_config, make, names, with_overrides

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
