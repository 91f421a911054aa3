"""Evaluation conditions: the randomizations and simulators a policy is evaluated under.

``eval_env_config(env_config, randomization)`` turns the config a policy was trained with
into the one it is evaluated on (:data:`Randomization`):

* ``train``   - the env config the policy was trained with;
* ``none``    - the same with every randomization family switched off;
* ``heldout`` - :func:`heldout`: every family on, every range widened about 2x around
  nominal, more delay, backlash and noise than in training;
* ``reality`` - :func:`reality_proxy`: held-out ranges plus a perturbed simulator that
  no policy trained on, standing in for the reality gap.

``on_backend(env_config, backend)`` moves a task to the other physics engine for a
sim-to-sim check. Everything here is a pure config transform; the training-time
families themselves are in :mod:`envs.randomize`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from dexdistill.envs.common import checks
from dexdistill.envs.sim2real import randomize
from dexdistill.envs.sim2real.randomize import RandomizationConfig
from dexdistill.envs.tasks.mjx_task import ManipulationConfig

Randomization = Literal["train", "none", "heldout", "reality"]
RANDOMIZATIONS: tuple[str, ...] = checks.choices(Randomization)

Backend = Literal["trained", "mujoco", "mjx"]
"""The run's own physics (``trained``), or a named engine for a sim-to-sim check."""
BACKENDS: tuple[str, ...] = checks.choices(Backend)


def _widen(rng: tuple[float, float], factor: float) -> tuple[float, float]:
    """A multiplier range (nominal 1) with its deviations from 1 scaled by ``factor``.

    The result contains ``rng``; its lower end stays positive (at least ``lo / factor``).
    """
    lo, hi = rng
    new_lo = max(min(lo, 1.0 - factor * (1.0 - lo)), lo / factor)
    new_hi = max(hi, 1.0 + factor * (hi - 1.0))
    return (float(new_lo), float(new_hi))


def _scaled(name: str, value: Any, factor: float) -> Any:
    """One randomization field made ``factor`` times harder (see :func:`heldout`)."""
    if isinstance(value, bool):
        return True  # ``enabled``
    if isinstance(value, tuple):
        return _widen(value, factor)
    if name.startswith("min_"):
        return value
    if name.endswith(("probability", "dropout")):
        return min(1.0, value * factor)
    if name == "max_action_delay":
        return max(math.ceil(factor * value), value + 1)
    if isinstance(value, int):
        return math.ceil(factor * value)
    return float(value * factor)


def heldout(cfg: RandomizationConfig, factor: float = 2.0) -> RandomizationConfig:
    """Held-out randomization: every family on, and every range made about ``factor``x wider.

    * physics multiplier ranges ``(lo, hi)`` (nominal 1): deviations from 1 times
      ``factor``, containing the trained range, the lower end kept positive
      (``(0.7, 1.3)`` -> ``(0.4, 1.6)``; ``(0.4, 1.6)`` -> ``(0.2, 2.2)``);
      ``joint_limit`` and ``gravity_tilt`` times ``factor``;
    * ``max_action_delay``: ``max(ceil(factor * d), d + 1)`` steps (1 -> 2);
    * every other noise level, force and jitter times ``factor``; probabilities capped
      at 1; ``min_*`` fields unchanged (so the trained ranges stay inside);
    * families switched off in training are switched on, with their widened values:
      held-out conditions test a policy outside what it was trained on.

    A field that is zero in ``cfg`` stays zero.
    """

    def family(fam: Any) -> Any:
        changes = {
            f.name: _scaled(f.name, getattr(fam, f.name), factor) for f in dataclasses.fields(fam)
        }
        return dataclasses.replace(fam, **changes)

    return RandomizationConfig(
        **{f.name: family(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    )


def reality_proxy(env_config: Any) -> Any:
    """A perturbed simulator no policy trained on, standing in for the reality gap.

    On top of :func:`heldout` randomization: friction below the training range
    (``0.5-0.8x`` its lower end), a fixed extra step of latency beyond the training
    maximum, backlash fixed at twice the training maximum, and a different simulator:
    MJX tasks run with half the physics timestep and other solver iteration counts;
    ``point_mass`` gets 30% more damping.
    """
    train = env_config.randomization
    rc = heldout(train)
    lo = train.physics.friction[0]
    delay = train.unmodeled.max_action_delay + 1
    backlash = 2.0 * max(train.unmodeled.backlash, 0.01)
    physics = dataclasses.replace(rc.physics, enabled=True, friction=(0.5 * lo, 0.8 * lo))
    unmodeled = dataclasses.replace(
        rc.unmodeled,
        enabled=True,
        min_action_delay=delay,
        max_action_delay=delay,
        min_backlash=backlash,
        backlash=backlash,
    )
    config = dataclasses.replace(
        env_config, randomization=dataclasses.replace(rc, physics=physics, unmodeled=unmodeled)
    )
    if hasattr(config, "sim_dt"):
        return dataclasses.replace(
            config,
            sim_dt=config.sim_dt / 2,
            solver_iterations=config.solver_iterations + 2,
            ls_iterations=max(1, config.ls_iterations - 1),
        )
    if hasattr(config, "damping"):
        return dataclasses.replace(config, damping=1.3 * config.damping)
    return config


def eval_env_config(env_config: Any, randomization: str) -> Any:
    """The task config to evaluate on: ``env_config`` (as trained) under ``randomization``."""
    checks.require("randomization", randomization, allowed=RANDOMIZATIONS)
    rc = env_config.randomization
    if randomization == "none":
        return dataclasses.replace(env_config, randomization=randomize.disabled(rc))
    if randomization == "heldout":
        return dataclasses.replace(env_config, randomization=heldout(rc))
    if randomization == "reality":
        return reality_proxy(env_config)
    return env_config


def on_backend(env_config: Any, backend: str) -> Any:
    """``env_config`` with its physics ``backend`` replaced (``trained``: unchanged).

    Tasks without a physics engine of their own (``point_mass``) are returned unchanged.
    """
    checks.require("backend", backend, allowed=BACKENDS)
    if backend == "trained" or not isinstance(env_config, ManipulationConfig):
        return env_config
    return dataclasses.replace(env_config, backend=backend)
