"""Peer comparison: our DAgger (``distill/dagger.py``) vs brax's DAgger (``brax.training.agents.bc``).

Both sides distill the SAME teacher (one ``dexdistill teacher`` run directory,
loaded with ``dexdistill.pipelines.rundir.load_teacher`` on both sides: its orbax checkpoint
restores fine under the brax venv's jax 0.9.2, so no parameter export is needed)
into a keypoint student on the same task (``point_mass``, the distill stage's
env config: the teacher's task with ``point_cloud.source=none``), with the same
number of labelled samples (DAgger iterations x envs x steps, the ``tiny``
preset's ``dagger`` settings: 10 x 64 x 40 = 25,600), then both students are
evaluated with the SAME protocol: our ``envs.evaluate.make_evaluator`` on the
unwrapped env, deterministic student, ``--eval-episodes`` fresh randomized
episodes from one fixed key (``teacher_stage.FINAL_EVAL_KEY`` in chunks of 64,
the distill stage's final-evaluation episodes, identical for every row), success
= ``metrics["success"]`` at the step the episode ends. The teacher is evaluated
on the same episodes in every row.

Our side is built exactly as ``dexdistill distill`` builds it
(``dexdistill.pipelines.stages.distill.build`` + ``shard``, the stage's beta schedule via
``distill.schedules.next_beta``), but the loop is driven here so that the TFDS
dataset writer and orbax checkpoints (which brax's bc does not have) stay out of
the timings. ``--memory none`` is the feed-forward student (like for like with
brax's bc, which has feed-forward students only; the stage's equivalent is
``dexdistill distill --dagger.student.memory none``); ``--memory gru`` is our
default recurrent student.

brax 0.14's training code needs ``jax<0.10`` (``jax.device_put_replicated``),
so the brax side runs in a separate venv. Its setup (as for
``benchmarks/peer_brax_ppo.py``; versions used for the committed results)::

    python3 -m venv /work/venv_brax
    /work/venv_brax/bin/pip install "jax[cpu]<0.10" "brax==0.14.2" "mujoco-mjx<3.17"
    /work/venv_brax/bin/pip install --no-deps -e /work/main
    /work/venv_brax/bin/pip install tyro tqdm importlib_resources
    # resolved: jax==0.9.2 jaxlib==0.9.2 brax==0.14.2 flax==0.12.6 optax==0.2.8
    #           mujoco==4.0.0 mujoco-mjx==3.16.0 orbax-checkpoint==0.12.8

Reproduce (from the repo root; ``--out`` appends to a JSON list, replacing an
earlier entry with the same impl/variant/task/seed/samples/jax version)::

    TEACHER=runs/peer_brax_dagger/teacher
    OUT=docs/bench/peers/peer_brax_dagger_point_mass.json
    .venv/bin/dexdistill teacher --preset tiny --run-dir $TEACHER
    for s in 0 1 2; do
      .venv/bin/python benchmarks/peer_brax_dagger.py --impl ours --memory none \\
          --teacher-run $TEACHER --seed $s --out $OUT
      .venv/bin/python benchmarks/peer_brax_dagger.py --impl ours --memory gru \\
          --teacher-run $TEACHER --seed $s --out $OUT
      /work/venv_brax/bin/python benchmarks/peer_brax_dagger.py --impl brax \\
          --teacher-run $TEACHER --seed $s --out $OUT
      /work/venv_brax/bin/python benchmarks/peer_brax_dagger.py --impl brax \\
          --brax-beta stock --teacher-run $TEACHER --seed $s --out $OUT
    done

Control for the JAX version (our DAgger under the brax venv's jax 0.9.2; the
entry is kept apart from the jax 0.10 one)::

    /work/venv_brax/bin/python benchmarks/peer_brax_dagger.py --impl ours --memory none \\
        --teacher-run $TEACHER --seed 0 --out $OUT

Differences a reader must know (also in each result's ``notes``):

* Aggregation: brax's bc fits each iteration's student on that iteration's
  rollout ONLY (``num_envs x demo_length`` samples, ``epochs`` passes over
  them); earlier iterations' data is dropped. Ours keeps every iteration's
  sequences in the aggregated buffer (capacity 1,024 sequences here, all 640
  kept) and samples minibatches from all of them: DAgger proper.
* Labels: brax calls the teacher again on every minibatch of every epoch while
  fitting (the teacher must read the same observation dict as the student, so
  the adapter's observation holds both ``privileged`` and the student vector);
  ours labels each visited state once, during the rollout. Both use the
  teacher's deterministic action for acting and the same loss: the squared
  error between ``tanh`` of the student's and the teacher's pre-squash means,
  summed over action dimensions (brax's ``bc_loss``; ours ``fit.loss=mse`` on
  ``tanh`` means). The brax teacher callable returns our teacher's pre-squash
  mean (``extras["raw_action"]`` of the deterministic policy) as ``loc``.
* Beta (probability that the teacher acts, drawn per env and step on both
  sides): ``--brax-beta matched`` (default) passes our schedule
  (``0.5 ** iteration``: 1, 0.5, 0.25, ...) as brax's ``dagger_beta_fn``;
  ``--brax-beta stock`` keeps brax's default (teacher at iteration 0, student
  only afterwards).
* Updates: the same 32 Adam steps per iteration of 1,280 samples each, lr 1e-3.
  Ours: 32 sequences x 40 steps drawn with replacement from the buffer, global
  gradient-norm clip 1.0. brax: 16 epochs x 2 shuffled minibatches of 1,280
  single steps of the current rollout (``batch_size=1280``), no clipping (its
  optimizer is a plain ``optax.adam``).
* Student: both read keypoints (2 x 3) and proprio (4). brax's bc network is
  one swish MLP on the concatenated 10-vector (``policy_obs_key="student"``,
  hidden ``--brax-hidden``, default 64-64-128, lecun-uniform init) with running
  observation normalization (its default ``normalize_observations=True``,
  statistics updated from each iteration's data before fitting). Ours (feed-
  forward): a keypoint MLP 64-64 and a proprio MLP 64, concatenated, a 128 head,
  a 0.01-scaled mean layer, no observation normalization. Parameter counts are
  in each result (``student.params``). ``--memory gru`` adds a 128-unit GRU
  trained with truncated BPTT over the 40-step sequences.
* Resets: brax's bc true-resets every env at the start of each of its eval
  chunks (``reset=True``, its default). This script runs one chunk per DAgger
  iteration (to time iterations and log a curve, as ours evaluates after every
  iteration), and ``demo_length`` = ``episode_length`` = 40, so every brax
  rollout is one fresh randomized episode per env; ours auto-resets to fresh
  episodes, which with 40-step rollouts also gives one fresh episode per env
  and rollout. (With a single chunk, stock brax would replay each env's first
  start state, see ``benchmarks/peer_brax_ppo.py``.)
* Timing: ``labelled_sps`` is labelled samples / DAgger time (rollout +
  labelling + fitting) of the steady-state iterations; an iteration during
  which XLA compiled anything counts as warm-up and is left out.
  ``warmup_overhead_s`` is how much longer the warm-up iterations took than the
  steady rate implies (compile + tracing of the DAgger program). brax compiles
  its DAgger scan twice, in its first and second chunk (probably because its
  initial env state has an int32 ``info["steps"]`` from ``scramble_times`` and
  the states of its per-chunk resets a float32 one), so its first two
  iterations are warm-up; ours compiles once. ``xla_compile_s`` is all XLA
  compile time up to the end of training (``jax.monitoring``; the per-iteration
  evaluators included).
  ``wall_clock_s`` runs from loading the teacher to the end of training, per-
  iteration evaluations of 64 episodes included (ours: our evaluator; brax:
  its own ``acting.Evaluator``), the final evaluation not. brax's own ``SPS``
  (which counts every sample once per epoch) is kept as ``brax_reported_sps``.
  Neither side uses a persistent compilation cache.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jp
import numpy as np
import peer_brax_ppo as ppo_peer

with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints warp warnings
    from dexdistill import envs
from dexdistill.distill.dagger import DAggerConfig
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.pipelines import (
    configs,
    presets,
    rundir,
)
from dexdistill.pipelines.rundir import RunDir
from dexdistill.pipelines.stages import (
    distill_setup,
    teacher as teacher_stage,
)
from dexdistill.teacher import ppo

TASK, PRESET = "point_mass", "tiny"
CURVE_EPISODES = 64
"""Episodes of the per-iteration evaluation (the distill stage's ``eval_episodes``);
the final evaluation runs in chunks of this size."""
STUDENT_KEYS = ("keypoints", "proprio")
NOTES = {
    "ours": "aggregated buffer of all iterations (fifo, capacity {capacity} sequences); "
    "teacher labels each state once during the rollout; beta 0.5**i per env and step",
    "brax": "fits on the current iteration's rollout only (no aggregation); teacher "
    "re-labels every minibatch; beta {beta}; true reset of all envs every iteration",
}
BRAX_BETA = {"matched": "0.5**i (ours, via dagger_beta_fn)", "stock": "1 at i=0, then 0 (brax)"}


@dataclasses.dataclass(frozen=True)
class Setup:
    """What both sides share: teacher, task, DAgger budget, seed and the evaluation."""

    teacher_run: Path
    dagger: DAggerConfig
    eval_episodes: int

    @property
    def samples_per_iteration(self) -> int:
        return self.dagger.num_envs * self.dagger.unroll_length

    @property
    def labelled_samples(self) -> int:
        return self.dagger.iterations * self.samples_per_iteration

    @property
    def minibatch_samples(self) -> int:
        return self.dagger.fit.batch_size * self.dagger.unroll_length

    @property
    def brax_epochs(self) -> int:
        """Epochs over one rollout that give brax as many gradient steps as ours."""
        return self.dagger.fit.num_updates * self.minibatch_samples // self.samples_per_iteration

    @property
    def final_key(self) -> jax.Array:
        return jax.random.PRNGKey(teacher_stage.FINAL_EVAL_KEY)

    @property
    def curve_key(self) -> jax.Array:
        key = self.final_key
        return eval_lib.chunk_keys(key, self.eval_episodes, CURVE_EPISODES)[0]


def make_setup(args: argparse.Namespace) -> Setup:
    dcfg = dataclasses.replace(presets.get(PRESET).distill.dagger, seed=args.seed)
    for name in ("iterations", "num_envs", "unroll_length"):
        if getattr(args, name):
            dcfg = dataclasses.replace(dcfg, **{name: getattr(args, name)})
    setup = Setup(Path(args.teacher_run), dcfg, args.eval_episodes)
    unsupported = {
        "mixing": (dcfg.mixing, "step"),
        "beta.kind": (dcfg.beta.kind, "exponential"),
        "fit.loss": (dcfg.fit.loss, "mse"),
        "fit.aux_weight": (dcfg.fit.aux_weight, 0.0),
    }
    for name, (have, want) in unsupported.items():
        if have != want:
            raise ValueError(f"dagger.{name}={have!r}: the brax side only mirrors {want!r}")
    n, mb = setup.samples_per_iteration, setup.minibatch_samples
    if n % mb or (dcfg.fit.num_updates * mb) % n:
        raise ValueError(
            f"num_envs x unroll_length = {n} must be a multiple of the minibatch ({mb} "
            f"samples) and divide num_updates x minibatch ({dcfg.fit.num_updates * mb})"
        )
    dcfg.validate()
    if not RunDir(setup.teacher_run).checkpoints("teacher").is_dir():
        raise FileNotFoundError(
            f"--teacher-run {setup.teacher_run}: no teacher; run "
            f"`dexdistill teacher --preset {PRESET} --run-dir {setup.teacher_run}` first"
        )
    return setup


# --------------------------------------------------------------------------- shared


def load_task(setup: Setup) -> tuple[rundir.LoadedTeacher, Any]:
    """The teacher and the distill stage's env for it (keypoint student: no point cloud)."""
    teacher = rundir.load_teacher(setup.teacher_run)
    if teacher.env_name != TASK:
        raise ValueError(f"--teacher-run: a {teacher.env_name} teacher; this compares {TASK}")
    env_cfg = configs.DistillStageConfig(student="keypoints").env_config(teacher.stage_config)
    return teacher, envs.make(teacher.env_name, env_cfg)


def evaluate_final(
    base: Any,
    student_eval: Callable,
    params: Any,
    teacher: rundir.LoadedTeacher,
    setup: Setup,
) -> dict[str, Any]:
    """Student and teacher on the same ``eval_episodes`` fresh randomized episodes."""
    t = time.perf_counter()
    run = functools.partial(
        eval_lib.evaluate_chunks, key=setup.final_key, episodes=setup.eval_episodes
    )
    student = eval_lib.summarize(run(student_eval, params, chunk=CURVE_EPISODES))
    eval_s = time.perf_counter() - t
    t_eval = eval_lib.make_evaluator(base, ppo.policy_factory(teacher.nets), CURVE_EPISODES)
    ref = eval_lib.summarize(
        run(t_eval, (teacher.params, teacher.normalizer), chunk=CURVE_EPISODES)
    )
    return {
        "eval_episodes": setup.eval_episodes,
        "success_rate": student["success_rate"],
        "success_ci95": student["success_ci95"],
        "return_mean": student["return_mean"],
        "distance_mean": student.get("distance_mean"),
        "teacher_success_rate": ref["success_rate"],
        "teacher_success_ci95": ref["success_ci95"],
        "teacher_return_mean": ref["return_mean"],
        "eval_s": eval_s,
    }


def timing(pieces: list[tuple[int, float]], compiles: list[int]) -> dict[str, Any]:
    """Steady-state rate from per-iteration ``(samples, seconds)``; leading compiling ones are warm-up."""
    warmup = next((i for i, c in enumerate(compiles) if c == 0), len(pieces))
    warmup = min(warmup, len(pieces) - 1)
    out = ppo_peer.throughput(pieces, warmup)
    return {
        "dagger_s": out["train_s"],
        "labelled_sps": out["train_sps"],
        "warmup_overhead_s": out["warmup_overhead_s"],
        "warmup_iterations": warmup,
        "iteration_s": [t for _, t in pieces],
        "iteration_compiles": compiles,
    }


def param_count(tree: Any) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


# --------------------------------------------------------------------------- ours


def run_ours(setup: Setup, memory: str) -> dict[str, Any]:
    from dexdistill.distill import dagger as dagger_lib
    from dexdistill.distill.schedules import next_beta
    from dexdistill.student.networks import make_policy

    clock = ppo_peer.CompileClock()
    t0 = time.perf_counter()
    dcfg = setup.dagger
    cfg = configs.DistillStageConfig(
        student="keypoints",
        dagger=dataclasses.replace(dcfg, student=dataclasses.replace(dcfg.student, memory=memory)),
        eval_episodes=CURVE_EPISODES,
        final_eval_episodes=setup.eval_episodes,
        write_dataset=False,
    )
    cfg.validate()
    st = distill_setup.build(setup.teacher_run, cfg)
    mesh = ppo.make_mesh()
    ds = distill_setup.shard(
        dagger_lib.init_state(st.env, st.nets, st.rollout, st.cfg), mesh, dcfg.num_envs
    )
    factory = lambda p: make_policy(st.nets, p, deterministic=True)
    student_eval = eval_lib.make_evaluator(st.base, factory, CURVE_EPISODES, st.nets.initial_carry)
    startup_s = time.perf_counter() - t0
    pieces: list[tuple[int, float]] = []
    compiles: list[int] = []
    curve = []
    beta, success = 1.0, 0.0
    for i in range(dcfg.iterations):
        beta = next_beta(st.cfg.beta, i, beta, success, 1.0)
        count, t = clock.count, time.perf_counter()
        ds, _, metrics = st.iteration(ds, jp.asarray(beta, jp.float32))
        metrics = jax.device_get(metrics)
        pieces.append((setup.samples_per_iteration, time.perf_counter() - t))
        compiles.append(clock.count - count)
        res = eval_lib.summarize(jax.device_get(student_eval(ds.params, setup.curve_key)))
        success = res["success_rate"]
        curve.append(
            {
                "iteration": i + 1,
                "labelled_samples": (i + 1) * setup.samples_per_iteration,
                "beta": beta,
                "loss": float(metrics["fit/loss"]),
                "return": res["return_mean"],
                "success": success,
            }
        )
        ppo_peer.log(f"[ours/{memory}] {curve[-1]}")
    jax.block_until_ready(ds.params)
    wall_s = time.perf_counter() - t0
    return {
        "student": {
            "arch": f"keypoint MLP 64-64 + proprio MLP 64 -> memory {memory} -> head 128",
            "params": param_count(ds.params),
            "memory": memory,
        },
        "wall_clock_s": wall_s,
        "startup_s": startup_s,
        **timing(pieces, compiles),
        **clock.report(),
        "curve": curve,
        **evaluate_final(st.base, student_eval, ds.params, st.teacher, setup),
    }


# --------------------------------------------------------------------------- brax


def brax_obs(obs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """brax's view of our observation: the teacher's ``privileged`` and the student's vector.

    brax's bc network reads one key (``policy_obs_key``), so the keypoints (flattened) and
    proprio are concatenated into ``student``; the teacher reads ``privileged``.
    """
    kp = obs["keypoints"]
    student = jp.concatenate([kp.reshape(*kp.shape[:-2], -1), obs["proprio"]], axis=-1)
    return {"privileged": obs["privileged"], "student": student}


def make_bc_adapter(base: Any) -> Any:
    """``benchmarks/peer_brax_ppo.py``'s brax env adapter, with the :func:`brax_obs` dict as obs.

    A subclass (not a wrapper): brax wrappers that reset call ``env.unwrapped.reset``.
    """
    parent = type(ppo_peer.make_brax_adapter(base))

    class DictObsAdapter(parent):
        def reset(self, rng: jax.Array) -> Any:
            s = super().reset(rng)
            return s.replace(obs=brax_obs(s.pipeline_state.obs))

        def step(self, state: Any, action: jax.Array) -> Any:
            s = super().step(state, action)
            return s.replace(obs=brax_obs(s.pipeline_state.obs))

        @property
        def observation_size(self) -> dict[str, tuple[int, ...]]:
            spec = jax.eval_shape(brax_obs, base.observation_spec)
            return {k: tuple(v.shape) for k, v in spec.items()}

    return DictObsAdapter()


def make_brax_teacher(teacher: rundir.LoadedTeacher) -> Callable:
    """brax's ``teacher_inference_fn(obs, key) -> (action, {"loc": pre-tanh mean})``."""
    policy = teacher.policy(deterministic=True)

    def teacher_fn(obs: dict[str, jax.Array], key: jax.Array | None) -> tuple[jax.Array, dict]:
        key = jax.random.PRNGKey(0) if key is None else key  # deterministic: unused
        action, _, extras = policy(obs, None, key)
        return action, {"loc": extras["raw_action"]}

    return teacher_fn


def run_brax(setup: Setup, beta_mode: str, hidden: tuple[int, ...]) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):
        from brax.envs.wrappers import training as brax_wrappers
        from brax.training.agents.bc import networks as bc_networks, train as bc_train

    dcfg = setup.dagger
    clock = ppo_peer.CompileClock()
    t0 = time.perf_counter()
    teacher, base = load_task(setup)
    env = brax_wrappers.wrap(make_bc_adapter(base), base.episode_length, action_repeat=1)
    progress: list[dict[str, Any]] = []

    def progress_fn(step: Any, metrics: dict) -> None:
        rec = {
            "iteration": int(step),
            "time": time.perf_counter(),
            "compiles": clock.count,
            "compile_s": clock.seconds,
            "walltime": float(metrics.get("walltime", 0.0)),
            "sps": float(metrics.get("SPS", float("nan"))),
            "return": float(metrics.get("eval/episode_reward", float("nan"))),
            "success_steps": float(metrics.get("eval/episode_success", float("nan"))),
        }
        if "actor_loss" in metrics:  # [iterations, epochs, minibatches]
            rec["loss"] = float(np.mean(np.asarray(metrics["actor_loss"])[-1, -1]))
        progress.append(rec)
        ppo_peer.log(f"[brax/{beta_mode}] {rec}")

    kwargs: dict[str, Any] = {}
    if beta_mode == "matched":
        decay = dcfg.beta.decay
        kwargs["dagger_beta_fn"] = lambda step: jp.power(decay, step.astype(jp.float32))
    network_factory = functools.partial(
        bc_networks.make_bc_networks, policy_hidden_layer_sizes=hidden, policy_obs_key="student"
    )
    make_policy, params, _ = bc_train.train(
        demo_length=dcfg.unroll_length,
        teacher_inference_fn=make_brax_teacher(teacher),
        normalize_observations=True,
        epochs=setup.brax_epochs,
        tanh_squash=True,
        env=env,
        num_envs=dcfg.num_envs,
        num_eval_envs=CURVE_EPISODES,
        eval_length=base.episode_length,
        batch_size=setup.minibatch_samples,
        network_factory=network_factory,
        progress_fn=progress_fn,
        seed=dcfg.seed,
        learning_rate=dcfg.fit.learning_rate,
        dagger_steps=dcfg.iterations,
        num_evals=dcfg.iterations + 1,
        reset=True,
        **kwargs,
    )
    jax.block_until_ready(params)
    wall_s = time.perf_counter() - t0

    def factory(p: Any) -> Callable:
        policy = make_policy(p)
        return lambda obs, carry, key: (policy(brax_obs(obs), None)[0], carry, {})

    student_eval = eval_lib.make_evaluator(base, factory, CURVE_EPISODES)
    chunks = progress[1:]
    pieces = [
        (setup.samples_per_iteration, b["walltime"] - a["walltime"])
        for a, b in zip([{"walltime": 0.0}, *chunks[:-1]], chunks, strict=True)
    ]
    compiles = [b["compiles"] - a["compiles"] for a, b in zip(progress[:-1], chunks, strict=True)]
    curve = [
        {
            "iteration": r["iteration"],
            "labelled_samples": r["iteration"] * setup.samples_per_iteration,
            "loss": r.get("loss"),
            "return": r["return"],
            "success_steps": r["success_steps"],
        }
        for r in chunks
    ]
    return {
        "student": {
            "arch": f"MLP {'-'.join(map(str, hidden))} on concat(keypoints, proprio), "
            "running obs normalization",
            "params": param_count(params[1]),
            "memory": "none",
        },
        "wall_clock_s": wall_s,
        "startup_s": progress[0]["time"] - t0,
        **timing(pieces, compiles),
        "brax_reported_sps": [r["sps"] for r in chunks],
        **clock.report(),
        "curve": curve,
        **evaluate_final(base, student_eval, params, teacher, setup),
    }


# --------------------------------------------------------------------------- main


IDENT_KEYS = ("impl", "variant", "task", "seed", "labelled_samples")
"""A result's identity in the ``--out`` list (plus the jax version): reruns replace it."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=("ours", "brax"), required=True)
    p.add_argument(
        "--teacher-run",
        default="runs/peer_brax_dagger/teacher",
        help="run directory of a point_mass teacher (dexdistill teacher --preset tiny)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", choices=("none", "gru"), default="none", help="ours: student memory")
    p.add_argument(
        "--brax-beta",
        choices=tuple(BRAX_BETA),
        default="matched",
        help="brax: our beta schedule or brax's default",
    )
    p.add_argument(
        "--brax-hidden",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(64, 64, 128),
        help="brax: student MLP hidden sizes, comma-separated",
    )
    for name in ("iterations", "num-envs", "unroll-length"):
        p.add_argument(f"--{name}", type=int, default=0, help="0: the tiny preset's")
    p.add_argument("--eval-episodes", type=int, default=256)
    p.add_argument("--out", type=Path, default=None, help="JSON list to append the result to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup = make_setup(args)
    dcfg = setup.dagger
    if args.impl == "ours":
        variant = f"{args.memory}"
        body = run_ours(setup, args.memory)
        notes = NOTES["ours"].format(capacity=dcfg.capacity)
    else:
        variant = f"beta-{args.brax_beta}"
        body = run_brax(setup, args.brax_beta, args.brax_hidden)
        notes = NOTES["brax"].format(beta=BRAX_BETA[args.brax_beta])
    teacher_cfg = RunDir(setup.teacher_run).read_config()["teacher"]
    result = {
        "impl": args.impl,
        "variant": variant,
        "task": TASK,
        "preset": PRESET,
        "seed": dcfg.seed,
        "labelled_samples": setup.labelled_samples,
        "notes": notes,
        "teacher": {
            "run_dir": str(setup.teacher_run),
            "num_timesteps": teacher_cfg["config"]["ppo"]["num_timesteps"],
            "seed": teacher_cfg["config"]["ppo"]["seed"],
        },
        "versions": ppo_peer.versions(),
        "machine": {
            "device": str(jax.devices()[0]),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "dagger": {
            "iterations": dcfg.iterations,
            "num_envs": dcfg.num_envs,
            "unroll_length": dcfg.unroll_length,
            "updates_per_iteration": dcfg.fit.num_updates,
            "minibatch_samples": setup.minibatch_samples,
            "learning_rate": dcfg.fit.learning_rate,
        }
        | ({"brax_epochs": setup.brax_epochs} if args.impl == "brax" else {}),
        **body,
    }
    result = json.loads(json.dumps(result, default=ppo_peer.jsonable))
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=2))
    if args.out is not None:
        ppo_peer.write_result(args.out, result, IDENT_KEYS)
    return result


if __name__ == "__main__":
    main()
