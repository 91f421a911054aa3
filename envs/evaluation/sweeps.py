"""Robustness sweeps: one parameter fixed at values from inside to well outside training.

A :class:`Sweep` fixes one randomization parameter (or, for ``object_shape``, a task
field) at a series of values; everything else stays randomized as the evaluated config
says. :data:`SWEEPS` holds every sweep by name and ``list_sweeps(task)`` those that apply
to a task. A *traced* sweep changes only the randomization config, so one compiled
evaluator serves all its values: :func:`make_sweep_evaluator` returns
``evaluate(params, rng, value)`` with the value as an argument. ``action_delay`` (it sizes
the action buffer) and ``object_shape`` (it changes the MJCF model) are rebuilt per value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import numpy as np

from dexdistill.envs import registry
from dexdistill.envs.base import with_randomization
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.envs.sim2real import randomize
from dexdistill.envs.sim2real.randomize import RandomizationConfig
from dexdistill.envs.tasks.mjx_task import ManipulationConfig


def _nominal_family(fam: Any) -> Any:
    """``fam`` switched on with every value at nominal (ranges (1, 1), levels 0)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(fam):
        v = getattr(fam, f.name)
        if isinstance(v, bool):
            values[f.name] = True
        elif isinstance(v, tuple):
            values[f.name] = (1.0, 1.0)
        else:
            values[f.name] = type(v)(0)
    return dataclasses.replace(fam, **values)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One robustness sweep: a parameter fixed at values from inside to outside training.

    Fixing a physics multiplier sets its randomization range to ``(v, v)``; fixing a
    noise level sets it to ``v``. A family switched off in the evaluated config is
    switched on with all its other values at nominal, so only the swept one acts.
    """

    name: str
    description: str
    family: str
    """``physics``, ``unmodeled`` or ``observation`` (a randomization family), or ``task``
    (a field of the task config itself)."""
    fields: tuple[str, ...]
    """Fields set to the value (a range ``(v, v)`` for physics)."""
    values_from: tuple[Any, ...]
    """``(lo, hi)`` of a continuous sweep, or the values of a categorical one."""
    spacing: Literal["geometric", "linear", "integer", "categorical"]
    scope: Literal["all", "mjx", "object_shape"] = "all"
    """Tasks it applies to: ``all``, the MJX tasks (``mjx``), or tasks with ``object_shape``."""
    traced: bool = True
    """Whether the value can be an array argument of one compiled evaluator (no recompile)."""

    def values(self, points: int) -> list[Any]:
        """The sweep's values (JSON-able)."""
        if self.spacing == "categorical":
            return list(self.values_from)
        lo, hi = self.values_from
        if self.spacing == "geometric":
            return [float(f"{v:.4g}") for v in np.geomspace(lo, hi, points)]
        if self.spacing == "integer":
            return sorted({int(round(v)) for v in np.linspace(lo, hi, points)})
        return [float(f"{v:.4g}") for v in np.linspace(lo, hi, points)]

    def applies(self, env_config: Any) -> bool:
        if self.scope == "mjx":
            return isinstance(env_config, ManipulationConfig)
        if self.scope == "object_shape":
            return hasattr(env_config, "object_shape")
        return True

    def apply(self, env_config: Any, value: Any) -> Any:
        """``env_config`` with the parameter fixed at ``value``."""
        if self.family == "task":
            return dataclasses.replace(env_config, **{f: value for f in self.fields})
        return dataclasses.replace(
            env_config, randomization=self.randomization(env_config.randomization, value)
        )

    def randomization(self, rc: RandomizationConfig, value: Any) -> RandomizationConfig:
        """``rc`` with the parameter fixed at ``value`` (a number or a traced array)."""
        if self.family == "task":
            raise ValueError(f"sweep {self.name!r} changes the task, not its randomization")
        fam = getattr(rc, self.family)
        if not fam.enabled:
            fam = _nominal_family(fam)
        fixed = (value, value) if self.family == "physics" else value
        fam = dataclasses.replace(fam, **{f: fixed for f in self.fields})
        if self.name == "object_force" and fam.force_probability == 0:
            fam = dataclasses.replace(
                fam, force_probability=randomize.UnmodeledEffects().force_probability
            )
        return dataclasses.replace(rc, **{self.family: fam})


def _physics(name: str, lo: float, hi: float, scope: str, what: str) -> Sweep:
    return Sweep(name, what, "physics", (name,), (lo, hi), "geometric", scope)  # type: ignore


SWEEPS: dict[str, Sweep] = {
    s.name: s
    for s in (
        _physics("object_scale", 0.7, 1.4, "mjx", "object size multiplier (mass grows as scale^3)"),
        _physics("object_mass", 0.5, 3.0, "all", "object mass multiplier"),
        _physics("friction", 0.3, 2.0, "mjx", "sliding friction multiplier of all geoms"),
        _physics("actuator_gain", 0.25, 2.5, "all", "actuator gain multiplier (all actuators)"),
        _physics("joint_damping", 0.3, 3.0, "mjx", "joint damping multiplier (all joints)"),
        _physics("link_mass", 0.5, 2.0, "mjx", "robot link mass multiplier (all links)"),
        Sweep(
            "action_delay",
            "action delay in control steps",
            "unmodeled",
            ("min_action_delay", "max_action_delay"),
            (0, 4),
            "integer",
            traced=False,
        ),
        Sweep(
            "action_noise",
            "per-step action noise std (normalized action units)",
            "unmodeled",
            ("action_noise",),
            (0.0, 0.2),
            "linear",
        ),
        Sweep(
            "backlash",
            "backlash dead band (normalized action units)",
            "unmodeled",
            ("min_backlash", "backlash"),
            (0.0, 0.1),
            "linear",
        ),
        Sweep(
            "object_force",
            "random object force std, in object weights (trained probability, or 0.1)",
            "unmodeled",
            ("object_force",),
            (0.0, 2.0),
            "linear",
            "mjx",
        ),
        Sweep(
            "keypoint_noise",
            "per-step keypoint noise std (m)",
            "observation",
            ("keypoints_uncorrelated",),
            (0.0, 0.02),
            "linear",
        ),
        Sweep(
            "proprio_noise",
            "per-step joint position noise std (rad)",
            "observation",
            ("proprio_uncorrelated",),
            (0.0, 0.05),
            "linear",
        ),
        Sweep(
            "object_shape",
            "object shape (cube / cuboid / sphere, as in TriFinger's generalization tests)",
            "task",
            ("object_shape",),
            ("cube", "cuboid", "sphere"),
            "categorical",
            "object_shape",
            traced=False,
        ),
    )
}
"""Every robustness sweep by name; ``list_sweeps(task)`` gives those valid for a task."""


def list_sweeps(task: str, env_config: Any | None = None) -> list[str]:
    """Names of the sweeps that apply to ``task`` (with ``env_config``, default: its default)."""
    env_config = env_config if env_config is not None else registry.default_config(task)
    return [name for name, s in SWEEPS.items() if s.applies(env_config)]


def resolve_sweeps(task: str, env_config: Any, names: tuple[str, ...]) -> list[Sweep]:
    """The requested sweeps (``("all",)``: every valid one); a one-line error for invalid ones."""
    valid = list_sweeps(task, env_config)
    if names == ("all",):
        return [SWEEPS[n] for n in valid]
    for name in names:
        if name not in SWEEPS:
            raise ValueError(f"sweeps: unknown sweep {name!r}; valid sweeps for {task}: {valid}")
        if name not in valid:
            raise ValueError(
                f"sweeps: {name!r} does not apply to {task}; valid sweeps for {task}: {valid}"
            )
    return [SWEEPS[n] for n in names]


def make_sweep_evaluator(
    env: Any,
    sweep: Sweep,
    make_policy: eval_lib.PolicyFactory,
    num_episodes: int,
    init_carry: Callable[[int], Any] = lambda b: None,
    reference: Callable | None = None,
) -> Callable[[Any, jax.Array, jax.Array], dict[str, jax.Array]]:
    """Jitted ``evaluate(params, rng, value) -> {name: [num_episodes]}`` for a traced sweep.

    ``env`` is the task (not wrapped) as evaluated; each call runs ``num_episodes``
    episodes of ``with_randomization(env, sweep.randomization(rc, value))``. One compile
    serves every value. The arguments are those of :func:`envs.evaluate.make_evaluator`.
    """
    if not sweep.traced:
        raise ValueError(f"sweep {sweep.name!r} is not traced: build one env per value")

    def evaluate(params: Any, rng: jax.Array, value: jax.Array) -> dict[str, jax.Array]:
        swept = with_randomization(env, sweep.randomization(env.config.randomization, value))
        fn = eval_lib.make_evaluator(swept, make_policy, num_episodes, init_carry, reference)
        return fn(params, rng)

    return jax.jit(evaluate)
