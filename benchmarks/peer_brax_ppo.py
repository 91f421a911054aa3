"""Peer comparison: our PPO (``teacher/ppo.py``) vs brax's PPO on the same task and budget.

Both sides train on the same ``envs`` task with the same budget and
hyper-parameters (taken from ``pipelines/presets.py``: ``tiny`` for
``point_mass``, ``dclaw_valve_cpu`` for ``dclaw_valve``), then are evaluated
with the SAME protocol: our ``envs.evaluate.make_evaluator`` on the
unwrapped env, deterministic actions, ``--eval-episodes`` fresh randomized
episodes from one fixed key per seed (so both sides see identical episodes),
success = ``metrics["success"]`` at the step the episode ends.

brax 0.14's ``ppo.train`` calls ``jax.device_put_replicated``, which JAX 0.10
removed, so the brax side runs in a separate venv with ``jax<0.10``.

Setup of the brax venv (versions that resolved and were used for the committed
results; ``pip`` picks mujoco-mjx 3.16.0 because 3.17 needs jax>=0.10)::

    python3 -m venv /work/venv_brax
    /work/venv_brax/bin/pip install "jax[cpu]<0.10" "brax==0.14.2" "mujoco-mjx<3.17"
    /work/venv_brax/bin/pip install --no-deps -e /work/main
    /work/venv_brax/bin/pip install tyro tqdm importlib_resources
    # resolved: jax==0.9.2 jaxlib==0.9.2 brax==0.14.2 flax==0.12.6 optax==0.2.8
    #           mujoco==4.0.0 mujoco-mjx==3.16.0 orbax-checkpoint==0.12.8

Run both sides (from the repo root; ``--out`` appends to a JSON list, replacing
an earlier entry with the same impl/task/seed/brax_reset/budget/jax version)::

    OUT=docs/bench/peers/peer_brax_ppo_point_mass.json
    for s in 0 1 2; do
      /work/venv/bin/python benchmarks/peer_brax_ppo.py --impl ours --seed $s --out $OUT
      /work/venv_brax/bin/python benchmarks/peer_brax_ppo.py --impl brax --seed $s --out $OUT
      /work/venv_brax/bin/python benchmarks/peer_brax_ppo.py --impl brax --brax-reset fresh \\
          --seed $s --out $OUT
    done

Control for the JAX version (our PPO also runs on the brax venv's jax 0.9.2; the
entry is kept apart from the jax 0.10 one)::

    /work/venv_brax/bin/python benchmarks/peer_brax_ppo.py --impl ours --seed 0 --out $OUT

Smoke test of the heavier task (2 PPO iterations each side)::

    /work/venv/bin/python benchmarks/peer_brax_ppo.py --impl ours --task dclaw_valve \\
        --num-timesteps 2560 --eval-episodes 8
    /work/venv_brax/bin/python benchmarks/peer_brax_ppo.py --impl brax --task dclaw_valve \\
        --num-timesteps 2560 --eval-episodes 8

Differences a reader must know (the reset one is in each result's ``notes``):

* ``--brax-reset first`` (default, brax's stock ``AutoResetWrapper``) returns a
  finished env to its *first* start state: each of the ``num_envs`` training
  envs replays one fixed goal / start / randomized physics for the whole run.
  Our ``AutoReset`` draws a fresh start and fresh physics every episode.
  ``--brax-reset fresh`` swaps in a brax wrapper that resets to a freshly
  sampled state instead, to separate the algorithm from this effect.
* Time limits: the adapter reports ``done`` only for true terminations and lets
  brax's ``EpisodeWrapper`` end the episode at ``episode_length`` with
  ``truncation=1``, so both sides treat the time limit as a truncation
  (no bootstrap through it, the step is excluded from GAE).
* Minibatches: brax shuffles whole ``unroll_length`` sequences, ours single
  transitions; the number of samples per update, epochs and minibatch size match.
  brax recomputes GAE inside the loss for every minibatch with the current
  value network; ours computes advantages once per iteration before the update.
* Networks: same sizes and swish activations; brax's tanh-normal uses
  ``softplus(x) + 0.001`` for the std (initial ~0.69), ours
  ``softplus(x + c) + 0.05`` with an initial std of 0.6 and a 0.01-scaled
  output layer. Ours clips normalized observations to [-5, 5], brax does not.
* Timing: brax trains in ``num_evals - 1`` jitted chunks between its own evals
  (``num_evals - 1`` = the chunks of our progress evals, so both log the same
  curve points); ours dispatches one jitted iteration at a time. ``train_sps``
  leaves out all evaluation time and the compiling warm-up: our first
  iteration, brax's first two chunks (brax compiles its training epoch twice,
  the second time for the differently-sharded state its first epoch returns).
  ``xla_compile_s`` is XLA's compile time up to the end of training
  (``jax.monitoring``; tracing not included), ``wall_clock_s`` everything up to
  the end of training, progress evals included, the final evaluation not.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints warp warnings
    from dexdistill import envs
from dexdistill.envs.evaluation import evaluate as eval_lib
from dexdistill.pipelines import presets
from dexdistill.teacher.ppo import PPOConfig

TASK_PRESETS = {"point_mass": "tiny", "dclaw_valve": "dclaw_valve_cpu"}
CURVE_EPISODES = 128
NOTES = {
    "ours": "envs.wrappers.BatchedAutoReset: fresh start state and physics every episode",
    "brax/first": "brax AutoResetWrapper: each training env replays its first start state "
    "(one fixed goal, start and physics sample per env for the whole run)",
    "brax/fresh": "brax EpisodeWrapper + a fresh-reset wrapper (key from our env's RNG, "
    "as our AutoReset): fresh start state and physics every episode",
}
MAX_CHUNKS = 10


@dataclasses.dataclass(frozen=True)
class Setup:
    """What both sides share: task, PPO settings, seed and the evaluation."""

    task: str
    preset: str
    cfg: PPOConfig
    eval_episodes: int

    @property
    def num_chunks(self) -> int:
        """Training is split into this many chunks with a progress eval after each.

        The largest divisor of the iteration count up to ``MAX_CHUNKS``, so brax
        (which trains ``num_evals - 1`` equal chunks) runs exactly as many
        iterations as ours.
        """
        n = self.cfg.num_iterations
        return max(d for d in range(1, MAX_CHUNKS + 1) if n % d == 0)

    @property
    def iters_per_chunk(self) -> int:
        return self.cfg.num_iterations // self.num_chunks

    @property
    def eval_key(self) -> jax.Array:
        return jax.random.PRNGKey(10_000 + self.cfg.seed)


def make_setup(args: argparse.Namespace) -> Setup:
    preset_name = TASK_PRESETS[args.task]
    preset = presets.get(preset_name)
    if preset.teacher.env != args.task:
        raise ValueError(f"preset {preset_name} is for {preset.teacher.env}, not {args.task}")
    cfg = dataclasses.replace(preset.teacher.ppo, seed=args.seed)
    if args.num_timesteps:
        cfg = dataclasses.replace(cfg, num_timesteps=args.num_timesteps)
    unsupported = {
        "lr_schedule": (cfg.lr_schedule, "constant"),
        "value_clip": (cfg.value_clip, 0.0),
        "network.distribution": (cfg.network.distribution, "tanh_normal"),
        "network.actor_keys": (cfg.network.actor_keys, ("privileged",)),
        "network.critic_keys": (cfg.network.critic_keys, ("privileged",)),
    }
    for name, (have, want) in unsupported.items():
        if have != want:
            raise ValueError(f"{name}={have!r}: the brax side only mirrors {want!r}")
    if cfg.num_envs % cfg.num_minibatches:
        raise ValueError("num_minibatches must divide num_envs (brax batch_size)")
    cfg.validate()
    return Setup(args.task, preset_name, cfg, args.eval_episodes)


# --------------------------------------------------------------------------- shared


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "brax", "flax", "optax", "mujoco", "mujoco-mjx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def evaluate_final(base: Any, policy_factory: Callable, params: Any, setup: Setup) -> dict:
    """Our protocol: deterministic policy, fresh randomized episodes, fixed key per seed."""
    evaluator = eval_lib.make_evaluator(base, policy_factory, setup.eval_episodes)
    t = time.perf_counter()
    summary = eval_lib.summarize(jax.device_get(evaluator(params, setup.eval_key)))
    return {
        "eval_episodes": setup.eval_episodes,
        "success_rate": summary["success_rate"],
        "success_ci95": summary["success_ci95"],
        "return_mean": summary["return_mean"],
        "eval_s": time.perf_counter() - t,
    }


def throughput(pieces: list[tuple[int, float]], warmup: int) -> dict[str, Any]:
    """Steady-state training throughput from timed pieces ``(env_steps, seconds)``.

    The first ``warmup`` pieces (those that compile) are left out of ``train_sps``;
    ``warmup_overhead_s`` is how much longer they took than the steady rate implies.
    """
    warm = pieces[warmup:] or pieces[-1:]
    sps = sum(n for n, _ in warm) / sum(t for _, t in warm)
    head = pieces[:warmup]
    return {
        "train_s": sum(t for _, t in pieces),
        "train_sps": sps,
        "warmup_overhead_s": sum(t for _, t in head) - sum(n for n, _ in head) / sps,
        "piece_sps": [n / t for n, t in pieces],
        "warmup_pieces": warmup,
    }


class CompileClock:
    """Counts XLA backend compilations and their seconds (``jax.monitoring``).

    Only the backend-compile event is summed: tracing events nest (a jitted
    function traced inside another one reports its own duration too).
    """

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **_: Any) -> None:
        if event == self.EVENT:
            self.seconds += duration
            self.count += 1

    def report(self) -> dict[str, float]:
        return {"xla_compile_s": self.seconds, "xla_compiles": self.count}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- ours


def run_ours(setup: Setup) -> dict[str, Any]:
    from dexdistill.envs import wrappers
    from dexdistill.teacher import ppo
    from dexdistill.teacher.networks import make_policy
    from dexdistill.teacher.normalize import normalize

    cfg = setup.cfg
    clock = CompileClock()
    t0 = time.perf_counter()
    base = envs.make(setup.task)
    env = wrappers.wrap_for_training(base, cfg.num_envs)
    nets, iteration = ppo.build(env, cfg)
    ts = ppo.init_state(env, nets, cfg)

    def factory(p: tuple) -> Callable:
        return make_policy(nets, p[0], lambda o: normalize(p[1], o), deterministic=True)

    curve_eval = eval_lib.make_evaluator(base, factory, CURVE_EPISODES)
    curve_key = jax.random.PRNGKey(20_000 + cfg.seed)
    startup_s = time.perf_counter() - t0
    pieces: list[tuple[int, float]] = []
    curve = []
    for chunk in range(setup.num_chunks):
        todo = setup.iters_per_chunk
        if chunk == 0:  # time the first (compiling) iteration on its own
            t = time.perf_counter()
            ts, _ = iteration(ts)
            jax.block_until_ready(ts.params)
            pieces.append((cfg.steps_per_iteration, time.perf_counter() - t))
            todo -= 1
        t = time.perf_counter()
        for _ in range(todo):
            ts, _ = iteration(ts)
        jax.block_until_ready(ts.params)
        if todo:
            pieces.append((todo * cfg.steps_per_iteration, time.perf_counter() - t))
        res = curve_eval((ts.params, ts.normalizer), jax.random.fold_in(curve_key, chunk))
        curve.append(_curve_point(int(ts.env_steps), jax.device_get(res)))
        log(f"[ours] {curve[-1]}")
    wall_s = time.perf_counter() - t0
    return {
        "env_steps": int(ts.env_steps),
        "wall_clock_s": wall_s,
        "startup_s": startup_s,
        "first_iteration_s": pieces[0][1],
        **throughput(pieces, warmup=1),
        **clock.report(),
        "curve": curve,
        **evaluate_final(base, factory, (ts.params, ts.normalizer), setup),
    }


def _curve_point(step: int, results: dict) -> dict[str, float]:
    s = eval_lib.summarize(results)
    return {"step": step, "return": s["return_mean"], "success": s["success_rate"]}


# --------------------------------------------------------------------------- brax


def make_brax_adapter(base: Any) -> Any:
    """A ``brax.envs.base.Env`` around our (unbatched) env.

    ``pipeline_state`` is our whole ``State`` (so brax's auto-reset restores it
    and stepping continues from it), ``obs`` our ``privileged`` vector. ``done``
    is reported for terminations only: brax's ``EpisodeWrapper`` ends episodes at
    ``episode_length`` and marks them truncated, as ours does.
    """
    from brax.envs.base import Env as BraxEnv, State as BraxState

    def to_brax(s: Any) -> BraxState:
        done = s.done * (1.0 - s.info["truncation"])
        return BraxState(
            pipeline_state=s,
            obs=s.obs["privileged"],
            reward=s.reward,
            done=done,
            metrics=dict(s.metrics),
            info={},
        )

    class Adapter(BraxEnv):
        def reset(self, rng: jax.Array) -> BraxState:
            return to_brax(base.reset(rng))

        def step(self, state: BraxState, action: jax.Array) -> BraxState:
            nxt = to_brax(base.step(state.pipeline_state, action))
            # brax wrappers add their own keys (e.g. metrics["reward"]): keep them
            return nxt.replace(metrics={**state.metrics, **nxt.metrics}, info=state.info)

        @property
        def observation_size(self) -> int:
            return int(base.observation_spec["privileged"].shape[0])

        @property
        def action_size(self) -> int:
            return base.action_size

        @property
        def backend(self) -> str:
            return "jax"

    return Adapter()


def make_fresh_wrap_fn() -> Callable:
    """A ``wrap_env_fn`` like brax's default, but auto-resetting to a *fresh* start.

    The key of a fresh start is derived from our env's own RNG, as our
    ``AutoReset`` does; resets are computed only on steps where some env ended.
    """
    import jax.numpy as jp
    from brax.envs.wrappers import training as bw

    class FreshAutoReset(bw.Wrapper):
        def step(self, state: Any, action: jax.Array) -> Any:
            steps = jp.where(state.done, jp.zeros_like(state.info["steps"]), state.info["steps"])
            state.info.update(steps=steps)
            state = self.env.step(state.replace(done=jp.zeros_like(state.done)), action)

            def with_resets(s: Any) -> Any:
                keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(s.pipeline_state.info["rng"])
                fresh = jax.vmap(self.unwrapped.reset)(keys)
                sel = lambda a, b: jax.tree.map(
                    lambda x, y: jp.where(s.done.reshape(-1, *([1] * (x.ndim - 1))), x, y), a, b
                )
                return s.replace(
                    pipeline_state=sel(fresh.pipeline_state, s.pipeline_state),
                    obs=sel(fresh.obs, s.obs),
                )

            return jax.lax.cond(jp.any(state.done > 0), with_resets, lambda s: s, state)

    def wrap(env: Any, episode_length: int, action_repeat: int, randomization_fn: Any) -> Any:
        if randomization_fn is not None:
            raise ValueError("randomization_fn is not supported here")
        env = bw.EpisodeWrapper(bw.VmapWrapper(env), episode_length, action_repeat)
        return FreshAutoReset(env)

    return wrap


def run_brax(setup: Setup, reset_mode: str) -> dict[str, Any]:
    import functools

    with contextlib.redirect_stdout(io.StringIO()):
        from brax.training.agents.ppo import networks as ppo_networks, train as ppo_train

    cfg = setup.cfg
    clock = CompileClock()
    t0 = time.perf_counter()
    base = envs.make(setup.task)
    env = make_brax_adapter(base)
    progress: list[tuple[int, dict, float]] = []

    def progress_fn(step: int, metrics: dict) -> None:
        progress.append((int(step), dict(metrics), time.perf_counter()))
        ret = float(metrics.get("eval/episode_reward", float("nan")))
        log(f"[brax] step={step} eval/episode_reward={ret:.2f}")

    network_factory = functools.partial(
        ppo_networks.make_ppo_networks,
        policy_hidden_layer_sizes=cfg.network.actor_hidden,
        value_hidden_layer_sizes=cfg.network.critic_hidden,
    )
    make_inference, params, _ = ppo_train.train(
        environment=env,
        num_timesteps=cfg.num_timesteps,
        episode_length=base.episode_length,
        wrap_env_fn=make_fresh_wrap_fn() if reset_mode == "fresh" else None,
        num_envs=cfg.num_envs,
        unroll_length=cfg.unroll_length,
        batch_size=cfg.num_envs // cfg.num_minibatches,
        num_minibatches=cfg.num_minibatches,
        num_updates_per_batch=cfg.num_epochs,
        learning_rate=cfg.learning_rate,
        entropy_cost=cfg.entropy_cost,
        discounting=cfg.discount,
        gae_lambda=cfg.gae_lambda,
        clipping_epsilon=cfg.clip_epsilon,
        max_grad_norm=cfg.max_grad_norm,
        vf_loss_coefficient=cfg.value_loss_coef,
        normalize_advantage=cfg.normalize_advantages,
        normalize_observations=cfg.normalize_observations,
        reward_scaling=cfg.reward_scaling,
        network_factory=network_factory,
        seed=cfg.seed,
        num_evals=setup.num_chunks + 1,
        num_eval_envs=CURVE_EPISODES,
        deterministic_eval=True,
        progress_fn=progress_fn,
    )
    jax.block_until_ready(params)
    wall_s = time.perf_counter() - t0

    def factory(p: Any) -> Callable:
        policy = make_inference(p, deterministic=True)
        return lambda obs, carry, key: (policy(obs["privileged"], key)[0], carry, {})

    return {
        **_brax_timing(progress, setup, t0),
        "wall_clock_s": wall_s,
        **clock.report(),
        **evaluate_final(base, factory, params, setup),
    }


def _brax_timing(progress: list[tuple[int, dict, float]], setup: Setup, t0: float) -> dict:
    """Throughput from brax's own per-chunk ``training/sps`` (eval time excluded).

    brax compiles its training epoch twice: for the state made by
    ``device_put_replicated`` and again for the state the first epoch returns
    (different sharding), so the first two chunks are warm-up when there are 3+.
    """
    chunk_steps = setup.iters_per_chunk * setup.cfg.steps_per_iteration
    pieces = [
        (chunk_steps, chunk_steps / float(m["training/sps"]))
        for _, m, _ in progress
        if "training/sps" in m
    ]
    curve = [
        {
            "step": s,
            "return": float(m["eval/episode_reward"]),
            "success_steps": float(m.get("eval/episode_success", float("nan"))),
        }
        for s, m, _ in progress
    ]
    return {
        "env_steps": progress[-1][0],
        "startup_s": progress[0][2] - t0,
        "chunk_iterations": setup.iters_per_chunk,
        **throughput(pieces, warmup=min(2, len(pieces) - 1)),
        "curve": curve,
    }


# --------------------------------------------------------------------------- main


IDENT_KEYS = ("impl", "task", "seed", "brax_reset", "num_timesteps")


def write_result(
    path: Path, result: dict[str, Any], ident_keys: tuple[str, ...] = IDENT_KEYS
) -> None:
    """Adds ``result`` to the JSON list at ``path``, kept sorted by its identity.

    The identity is the values of ``ident_keys`` plus the jax version; an earlier entry
    with the same identity is replaced.
    """

    def ident(r: dict[str, Any]) -> tuple:
        return (*(r.get(k) for k in ident_keys), r.get("versions", {}).get("jax"))

    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if ident(r) != ident(result)] + [result]
    rows.sort(key=lambda r: tuple(str(x) for x in ident(r)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=("ours", "brax"), required=True)
    p.add_argument("--task", choices=tuple(TASK_PRESETS), default="point_mass")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-timesteps", type=int, default=0, help="0: the preset's budget")
    p.add_argument("--eval-episodes", type=int, default=256)
    p.add_argument(
        "--brax-reset",
        choices=("first", "fresh"),
        default="first",
        help="brax side: stock AutoResetWrapper (first start state) or fresh resets",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON list to append the result to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup = make_setup(args)
    cfg = setup.cfg
    body = run_ours(setup) if args.impl == "ours" else run_brax(setup, args.brax_reset)
    result = {
        "impl": args.impl,
        "brax_reset": args.brax_reset if args.impl == "brax" else None,
        "task": setup.task,
        "preset": setup.preset,
        "seed": cfg.seed,
        "num_timesteps": cfg.num_timesteps,
        "notes": NOTES[args.impl if args.impl == "ours" else f"brax/{args.brax_reset}"],
        "versions": versions(),
        "machine": {
            "device": str(jax.devices()[0]),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "ppo": {
            k: getattr(cfg, k)
            for k in (
                "num_envs",
                "unroll_length",
                "num_minibatches",
                "num_epochs",
                "learning_rate",
                "discount",
                "gae_lambda",
                "clip_epsilon",
                "entropy_cost",
                "max_grad_norm",
                "value_loss_coef",
                "reward_scaling",
            )
        }
        | {
            "actor_hidden": list(cfg.network.actor_hidden),
            "critic_hidden": list(cfg.network.critic_hidden),
            "minibatch_size": cfg.steps_per_iteration // cfg.num_minibatches,
        },
        **body,
    }
    result = json.loads(json.dumps(result, default=jsonable))
    print(json.dumps(result, indent=2))
    if args.out is not None:
        write_result(args.out, result)
    return result


def jsonable(x: Any) -> Any:
    if isinstance(x, (np.generic, np.ndarray, jax.Array)):
        return np.asarray(x).tolist()
    return str(x)


if __name__ == "__main__":
    main()
