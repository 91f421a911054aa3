"""The evaluation stage: a trained teacher or student on fresh episodes, plus robustness sweeps.

``run(run_dir, cfg)`` loads the run directory's teacher (``DIR/teacher``) or student
(``DIR/student``), builds its task with the chosen randomization, evaluates it on
``episodes`` fresh episodes and writes::

    DIR/eval/<policy>_<randomization>.json

with the success rate and its 95% interval, mean return and length, Dactyl's table of
consecutive successes and the drop rate (``hand_cube``), the student's gap to the
teacher on the *same* episodes, and, per requested sweep, success against one
parameter fixed at values from inside to well outside its training range.

Randomization (``EvaluateConfig.randomization``):

* ``train``   - the env config the policy was trained with (the run directory's).
* ``none``    - the same with every randomization family switched off.
* ``heldout`` - :func:`heldout`: every family on, every range widened about 2x around
  nominal, more delay, backlash and noise than in training.

Sweeps (``EvaluateConfig.sweeps``, :data:`SWEEPS`, ``list_sweeps(task)``) fix one
parameter at a time; everything else stays randomized as ``randomization`` says.
Continuous sweeps compile one evaluator per sweep and feed the value in as an
argument (the value reaches the env through its config at trace time, see
:func:`_traced_evaluator`); ``action_delay`` (it sizes the action buffer) and
``object_shape`` (it changes the MJCF model) compile once per value.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import jax
import jax.numpy as jp
import numpy as np

import envs
from envs import checks, randomize
from envs import curriculum as cur_lib
from envs.base import headline_metric
from envs.mjx_task import ManipulationConfig
from envs.randomize import RandomizationConfig
from pipelines import config_io, run_files, teacher_stage
from teacher import evaluate as eval_lib

POLICIES = ("teacher", "student")
RANDOMIZATIONS = ("train", "none", "heldout", "reality")


BackendChoice = Literal["trained", "mujoco", "mjx"]
BACKEND_CHOICES: tuple[str, ...] = get_args(BackendChoice)
"""``dexdistill evaluate --backend``: the run's own physics, or the other simulator."""


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Options of ``dexdistill evaluate``."""

    policy: Literal["teacher", "student"] = "student"
    """Which policy of the run directory to evaluate. A student is also compared with its
    teacher on the same episodes (success gap, action error on the student's states)."""
    episodes: int = 256
    """Fresh episodes of the main evaluation."""
    randomization: Literal["train", "none", "heldout", "reality"] = "train"
    """``train``: as in training; ``none``: all randomization off; ``heldout``: ranges
    widened beyond training (see ``evaluate_stage.heldout``)."""
    sweeps: tuple[str, ...] = ()
    """Robustness sweeps to run (``all``: every sweep valid for the task), e.g.
    ``object_mass friction``; ``evaluate_stage.list_sweeps(task)`` lists them."""
    sweep_points: int = 5
    """Values per continuous sweep, from inside to well outside the training range
    (``action_delay`` uses the distinct integers among them; ``object_shape`` its 3 shapes)."""
    sweep_episodes: int = 64
    """Episodes per sweep value."""
    seed: int = 0
    """Seed of the evaluation episodes (the same episodes for the student and its teacher)."""
    backend: BackendChoice = "trained"
    """Physics to evaluate on: ``trained`` (the run's own ``backend``), or the other
    simulator for a sim-to-sim check: ``mujoco`` (MuJoCo C) or ``mjx``. The result is
    written to ``eval/<policy>_<randomization>_<backend>.json``."""

    def validate(self) -> None:
        """Raises a one-line ``ValueError`` naming the first invalid field."""
        checks.check_types(self)
        if self.backend not in BACKEND_CHOICES:
            raise ValueError(
                f"backend={self.backend!r}: allowed values are {list(BACKEND_CHOICES)}"
            )
        if self.policy not in POLICIES:
            raise ValueError(f"policy={self.policy!r}: allowed values are {list(POLICIES)}")
        if self.randomization not in RANDOMIZATIONS:
            raise ValueError(
                f"randomization={self.randomization!r}: allowed values are {list(RANDOMIZATIONS)}"
            )
        for name, least in (("episodes", 1), ("sweep_points", 2), ("sweep_episodes", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= {least}")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be >= 0")
        if not isinstance(self.sweeps, tuple) or not all(isinstance(s, str) for s in self.sweeps):
            raise ValueError(f"sweeps={self.sweeps!r}: expected a tuple of sweep names")
        known = [*SWEEPS, "all"]
        for name in self.sweeps:
            if name not in known:
                raise ValueError(f"sweeps: unknown sweep {name!r}; known sweeps: {known}")
            if self.sweeps.count(name) > 1:
                raise ValueError(f"sweeps={self.sweeps!r}: {name!r} is given twice")
        if "all" in self.sweeps and len(self.sweeps) > 1:
            raise ValueError(f"sweeps={self.sweeps!r}: 'all' must be given alone")


# --------------------------------------------------------------------------- randomization


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
        return dataclasses.replace(
            fam,
            **{
                f.name: _scaled(f.name, getattr(fam, f.name), factor)
                for f in dataclasses.fields(fam)
            },
        )

    return RandomizationConfig(
        **{f.name: family(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    )


def _all_disabled(cfg: RandomizationConfig) -> RandomizationConfig:
    """``cfg`` with every family's ``enabled`` off (the values themselves are kept)."""
    return RandomizationConfig(
        **{
            f.name: dataclasses.replace(getattr(cfg, f.name), enabled=False)
            for f in dataclasses.fields(cfg)
        }
    )


def on_backend(env_config: Any, backend: str) -> Any:
    """``env_config`` with its physics ``backend`` replaced (``trained``: unchanged)."""
    if backend == "trained" or not isinstance(env_config, ManipulationConfig):
        return env_config
    return dataclasses.replace(env_config, backend=backend)


def eval_env_config(env_config: Any, randomization: str) -> Any:
    """The task config to evaluate on: ``env_config`` (as trained) under ``randomization``."""
    rc = env_config.randomization
    if randomization == "train":
        return env_config
    if randomization == "none":
        return dataclasses.replace(env_config, randomization=_all_disabled(rc))
    if randomization == "heldout":
        return dataclasses.replace(env_config, randomization=heldout(rc))
    if randomization == "reality":
        return reality_proxy(env_config)
    raise ValueError(f"randomization={randomization!r}: allowed values are {list(RANDOMIZATIONS)}")


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


# --------------------------------------------------------------------------- sweeps


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
        """``env_config`` with the parameter fixed at ``value`` (which may be a tracer)."""
        if self.family == "task":
            return dataclasses.replace(env_config, **{f: value for f in self.fields})
        rc = env_config.randomization
        fam = getattr(rc, self.family)
        if not fam.enabled:
            fam = _nominal_family(fam)
        fixed = (value, value) if self.family == "physics" else value
        fam = dataclasses.replace(fam, **{f: fixed for f in self.fields})
        if self.name == "object_force" and fam.force_probability == 0:
            fam = dataclasses.replace(
                fam, force_probability=randomize.UnmodeledEffects().force_probability
            )
        return dataclasses.replace(
            env_config, randomization=dataclasses.replace(rc, **{self.family: fam})
        )


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
    env_config = env_config if env_config is not None else envs.default_config(task)
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


# --------------------------------------------------------------------------- evaluators


@dataclasses.dataclass
class _Policy:
    """A loaded policy as ``make_evaluator`` wants it: a params factory and its params."""

    factory: Callable[[Any], Callable]
    params: Any
    init_carry: Callable[[int], Any]


def _as_policy(loaded: Any, kind: str) -> _Policy:
    """Params are passed as arguments (not baked into the compiled program as constants)."""
    if kind == "teacher":
        return _Policy(
            lambda p: dataclasses.replace(loaded, params=p[0], normalizer=p[1]).policy(True),
            (loaded.params, loaded.normalizer),
            loaded.initial_carry,
        )
    return _Policy(
        lambda p: dataclasses.replace(loaded, params=p).policy(True),
        loaded.params,
        loaded.initial_carry,
    )


class _Timer:
    """Seconds spent compiling vs running, summed over all evaluators."""

    def __init__(self) -> None:
        self.compile_s = 0.0
        self.run_s = 0.0

    def compile(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        self.compile_s += time.perf_counter() - t0
        return compiled

    def call(self, compiled: Any, *args: Any) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = jax.device_get(compiled(*args))
        self.run_s += time.perf_counter() - t0
        return out


def _evaluate(
    env: Any,
    policy: _Policy,
    episodes: int,
    key: jax.Array,
    timer: _Timer,
    reference: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Per-episode results ``{name: [episodes]}`` of one policy on ``env``."""
    fn = eval_lib.make_evaluator(env, policy.factory, episodes, policy.init_carry, reference)
    return timer.call(timer.compile(fn, policy.params, key), policy.params, key)


def _traced_evaluator(
    env: Any,
    sweep: Sweep,
    policy: _Policy,
    episodes: int,
    reference: Callable | None = None,
) -> Callable:
    """Jitted ``evaluate(params, rng, value)`` for ``env`` with ``sweep``'s parameter = value.

    The tasks read their randomization config only while tracing ``reset`` / ``step``, so a
    shallow copy of ``env`` whose config holds the traced ``value`` is the env built from
    ``sweep.apply(config, value)``, compiled once for every value of the sweep.
    """

    def evaluate(params: Any, rng: jax.Array, value: jax.Array) -> dict[str, jax.Array]:
        swept = copy.copy(env)
        swept.config = sweep.apply(env.config, value)
        fn = eval_lib.make_evaluator(swept, policy.factory, episodes, policy.init_carry, reference)
        return fn(params, rng)

    return jax.jit(evaluate)


def summarize(
    res: dict[str, np.ndarray], headline: str = "success", dt: float | None = None
) -> dict[str, Any]:
    """The JSON summary of per-episode results (see the module docstring)."""
    s = eval_lib.summarize(res, headline, dt)
    out: dict[str, Any] = {
        "success_rate": s["success_rate"],
        "success_ci95": s["success_ci95"],
        "return_mean": s["return_mean"],
        "length_mean": s["length_mean"],
    }
    for key in ("headline_metric", "headline", "consecutive_successes", "goals_per_minute"):
        if key in s:
            out[key] = s[key]
    if "dropped" in res:
        out["drop_rate"] = float(np.mean(res["dropped"]))
    if "action_error" in res:
        out["action_error"] = float(np.mean(res["action_error"]))
    skip = {"return", "length", "success", "action_error"}
    out["metrics"] = {k: float(np.mean(v)) for k, v in res.items() if k not in skip}
    return out


# --------------------------------------------------------------------------- the stage


def _load(run_dir: Path, policy: str) -> tuple[Any, Any]:
    """(loaded policy, loaded teacher or None); FileNotFoundError names the command to run."""
    if policy == "teacher":
        return teacher_stage.load(run_dir), None
    from pipelines import distill_stage  # the student side is heavier to import

    student = distill_stage.load(run_dir)
    return student, teacher_stage.load(run_dir)


def _run_sweep(
    name: str,
    env_config: Any,
    sweep: Sweep,
    cfg: EvaluateConfig,
    roles: list[tuple[str, _Policy, Callable | None]],
    key: jax.Array,
    timer: _Timer,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """One row per value: ``value``, ``success_rate``, ``success_ci95`` (+ the teacher's)."""
    values = sweep.values(cfg.sweep_points)
    for v in values:  # concrete validation first: a traced config is never validated
        sweep.apply(env_config, v).validate()
    rows: list[dict[str, Any]] = [{"value": v} for v in values]
    base = envs.make(name, env_config) if sweep.traced else None
    for role, policy, reference in roles:
        compiled = None
        if base is not None:
            fn = _traced_evaluator(base, sweep, policy, cfg.sweep_episodes, reference)
            compiled = timer.compile(fn, policy.params, key, jp.float32(values[0]))
        for row, v in zip(rows, values, strict=True):
            if compiled is not None:
                res = timer.call(compiled, policy.params, key, jp.float32(v))
            else:
                env = envs.make(name, sweep.apply(env_config, v))
                res = _evaluate(env, policy, cfg.sweep_episodes, key, timer, reference)
            s = eval_lib.summarize(res)
            prefix = "" if role == "policy" else "teacher_"
            row[f"{prefix}success_rate"] = s["success_rate"]
            row[f"{prefix}success_ci95"] = s["success_ci95"]
            say(f"evaluate: {sweep.name}={v} {role} success {s['success_rate']:.3f}")
    return rows


def run(run_dir: str | Path, cfg: EvaluateConfig, verbose: bool = True) -> dict[str, Any]:
    """Evaluates the run directory's ``cfg.policy``; writes and returns the result dict.

    Writes ``DIR/eval/<policy>_<randomization>.json`` and prints :func:`format_table`.
    Raises ``FileNotFoundError`` (naming the command to run first) when the policy is
    missing, ``ValueError`` for an invalid config or a sweep that does not apply to the task.
    """
    t_start = time.perf_counter()
    cfg.validate()
    run_dir = Path(run_dir)
    say = print if verbose else (lambda _: None)
    loaded, teacher = _load(run_dir, cfg.policy)
    name = loaded.env_name
    # tasks with goal levels: the hardest level, curriculum off (envs.curriculum)
    env_config = cur_lib.final_config(loaded.env_config)
    env_config = on_backend(eval_env_config(env_config, cfg.randomization), cfg.backend)
    env_config.validate()
    sweeps = resolve_sweeps(name, env_config, cfg.sweeps)
    policy = _as_policy(loaded, cfg.policy)
    roles: list[tuple[str, _Policy, Callable | None]] = [("policy", policy, None)]
    if teacher is not None:
        roles = [
            ("policy", policy, teacher.policy(deterministic=True)),
            ("teacher", _as_policy(teacher, "teacher"), None),
        ]
    timer = _Timer()
    key = jax.random.PRNGKey(cfg.seed)
    env = envs.make(name, env_config)
    physics = getattr(env, "backend", "none")
    say(
        f"evaluate: {cfg.policy} on {name} ({cfg.randomization}, physics {physics}), "
        f"{cfg.episodes} episodes"
    )
    result: dict[str, Any] = {
        "policy": cfg.policy,
        "task": name,
        "randomization": cfg.randomization,
        "physics_backend": physics,
        "episodes": cfg.episodes,
        "seed": cfg.seed,
    }
    head = (headline_metric(env), env.dt)
    result.update(summarize(_evaluate(env, policy, cfg.episodes, key, timer, roles[0][2]), *head))
    if teacher is not None:
        t = summarize(_evaluate(env, roles[1][1], cfg.episodes, key, timer), *head)
        result["teacher_success_rate"] = t["success_rate"]
        result["teacher_success_ci95"] = t["success_ci95"]
        result["gap"] = t["success_rate"] - result["success_rate"]
        result["headline_gap"] = t["headline"] - result["headline"]
        result["teacher"] = t
    if sweeps:
        result["robustness"] = {
            s.name: _run_sweep(name, env_config, s, cfg, roles, key, timer, say) for s in sweeps
        }
        result["sweep_episodes"] = cfg.sweep_episodes
    result["compile_s"] = timer.compile_s
    result["run_s"] = timer.run_s
    result["eval_s"] = time.perf_counter() - t_start
    result["config"] = config_io.to_dict(cfg)
    result["randomization_config"] = config_io.to_dict(env_config.randomization)
    suffix = "" if cfg.backend == "trained" else f"_{cfg.backend}"
    out = run_dir / "eval" / f"{cfg.policy}_{cfg.randomization}{suffix}.json"
    run_files.write_json(out, result)
    say(format_table(result))
    return result


def format_table(result: dict[str, Any]) -> str:
    """A compact human-readable table of a :func:`run` result."""
    pm = "\u00b1"
    lines = [
        f"{result['policy']} on {result['task']} | randomization={result['randomization']} | "
        f"{result['episodes']} episodes, seed {result['seed']}",
        f"  success       {result['success_rate']:.3f} {pm} {result['success_ci95']:.3f}",
    ]
    if "teacher_success_rate" in result:
        lines.append(
            f"  teacher       {result['teacher_success_rate']:.3f} {pm} "
            f"{result['teacher_success_ci95']:.3f}   gap {result['gap']:+.3f}"
        )
    lines.append(f"  return        {result['return_mean']:.3f}")
    lines.append(f"  length        {result['length_mean']:.1f}")
    if "action_error" in result:
        lines.append(f"  action error  {result['action_error']:.4g}  (vs teacher, student states)")
    if "consecutive_successes" in result:
        c = result["consecutive_successes"]
        lines.append(
            f"  consecutive   {c['mean']:.1f} {pm} {c['std']:.1f}  median {c['median']:.1f}"
        )
    if "drop_rate" in result:
        lines.append(f"  drop rate     {result['drop_rate']:.3f}")
    robustness = result.get("robustness", {})
    if robustness:
        teacher = any("teacher_success_rate" in r for rows in robustness.values() for r in rows)
        lines.append(f"  robustness ({result.get('sweep_episodes', '?')} episodes per value)")
        header = f"    {'sweep':<15}{'value':>8}   {'success':<15}"
        lines.append(header + ("teacher" if teacher else ""))
        for sweep, rows in robustness.items():
            for i, r in enumerate(rows):
                v = r["value"]
                v = f"{v:.4g}" if isinstance(v, float) else str(v)
                cell = f"{r['success_rate']:.3f} {pm} {r['success_ci95']:.3f}"
                line = f"    {sweep if i == 0 else '':<15}{v:>8}   {cell:<15}"
                if "teacher_success_rate" in r:
                    line += f"{r['teacher_success_rate']:.3f}"
                lines.append(line)
    if "eval_s" in result:
        lines.append(
            f"  time          {result['eval_s']:.1f} s (compile {result['compile_s']:.1f} s)"
        )
    return "\n".join(lines)
