"""``dexdistill bench distill``: what DAgger's labelling and aggregation cost.

For each task and batch size it times (after compiling, best of ``repeats``):

* ``plain``: the student alone rolling out ``unroll_length`` steps (policy + env step);
* ``labelled``: the DAgger collection - the same rollout with the teacher labelling
  every state (mean and std) and the sequences inserted into the aggregated buffer;
* ``iteration``: a whole DAgger iteration (collection + ``fit.num_updates`` updates).

``labelling_overhead = plain samples/s / labelled samples/s - 1`` is the cost of
labelling + aggregation on top of a plain student rollout (target <= 0.3). The
teacher has the preset's architecture with freshly initialized weights (the
compute is the same as a trained one's).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax
import jax.numpy as jp

from dexdistill import envs
from dexdistill.distill import buffer as buffer_lib, dagger
from dexdistill.envs import wrappers
from dexdistill.envs.common import checks
from dexdistill.pipelines import presets
from dexdistill.pipelines.configs import RunConfig, StudentKind
from dexdistill.pipelines.experiments.bench import machine, timed, validate_common, write_results
from dexdistill.student.networks import make_networks, make_policy
from dexdistill.teacher import normalize as norm_lib
from dexdistill.teacher.networks import (
    make_networks as teacher_networks,
    make_policy as teacher_policy,
)


@dataclasses.dataclass(frozen=True)
class BenchDistillConfig:
    """Options of 'dexdistill bench distill'."""

    tasks: tuple[str, ...] = ("point_mass", "dclaw_valve")
    """Tasks to measure, each with its default preset's (untrained) teacher and student."""
    batch_sizes: tuple[int, ...] = (64,)
    """Numbers of parallel envs (DAgger num_envs) to time every task at."""
    student: StudentKind = "keypoints"
    """'keypoints' or 'pointcloud'."""
    unroll_length: int = 40
    """DAgger steps per env per iteration."""
    repeats: int = 2
    """Timed runs after the compiling one; the best is reported."""
    out: str = "bench_out/distill.json"
    """JSON file the results are written to; a markdown table goes next to it (same name, .md)."""

    def validate(self) -> None:
        """Raises a one-line 'ValueError' naming the first bad field."""
        checks.check_types(self)
        validate_common(self.tasks, self.batch_sizes, self.repeats)
        checks.require("unroll_length", self.unroll_length, ge=1)


def _teacher(base: Any, preset: RunConfig) -> Any:
    nets = teacher_networks(preset.teacher.ppo.network, base.observation_spec, base.action_size)
    params = nets.init(jax.random.PRNGKey(1), base.observation_spec)
    network = preset.teacher.ppo.network
    stats = norm_lib.init_stats(base.observation_spec, (*network.actor_keys, *network.critic_keys))
    return teacher_policy(nets, params, lambda o: norm_lib.normalize(stats, o), True)


def _plain_fn(env: Any, nets: Any, steps: int) -> Any:
    def run(params: Any, state: envs.State, carry: Any, key: jax.Array) -> jax.Array:
        policy = make_policy(nets, params)

        def body(c: tuple, k: jax.Array) -> tuple[tuple, jax.Array]:
            s, h = c
            action, h, _ = policy(s.obs, h, k)
            nxt = env.step(s, action)
            return (nxt, nets.reset_carry(h, nxt.done > 0)), nxt.reward

        return jax.lax.scan(body, (state, carry), jax.random.split(key, steps))[1]

    return jax.jit(run)


def _labelled_fn(rollout: Any, policy: str) -> Any:
    def run(ds: dagger.DistillState, key: jax.Array) -> buffer_lib.Buffer:
        _, labelled = rollout(ds.params, ds.carry, jp.zeros(()), key)
        return buffer_lib.add(ds.buffer, dagger.sequence_major(labelled), key, policy)

    return jax.jit(run)


def bench_task(name: str, batch: int, cfg: BenchDistillConfig) -> dict[str, Any]:
    """Plain vs. labelled vs. full-iteration samples/s for one task and batch size."""
    preset = presets.get(presets.default_for(name))
    modality = {"keypoints": "keypoints", "pointcloud": "point_cloud"}[cfg.student]
    config = envs.default_config(name)
    if modality == "keypoints" and hasattr(config, "point_cloud"):
        config = envs.with_overrides(config, {"point_cloud.source": "none"})
    base = envs.make(name, config)
    dcfg = dataclasses.replace(
        preset.distill.dagger,
        num_envs=batch,
        unroll_length=cfg.unroll_length,
        student=dataclasses.replace(preset.distill.dagger.student, modality=modality),
    )
    env = wrappers.wrap_for_training(base, batch)
    nets = make_networks(dcfg.student, base.observation_spec, base.action_size)
    rollout, iteration = dagger.make_iteration(env, _teacher(base, preset), nets, dcfg)
    ds = dagger.init_state(env, nets, rollout, dcfg)
    key = jax.random.PRNGKey(0)
    samples = batch * cfg.unroll_length
    row: dict[str, Any] = {"task": name, "batch": batch, "student": cfg.student}
    plain = _plain_fn(env, nets, cfg.unroll_length)
    first, best = timed(
        plain, ds.params, ds.carry.env_state, ds.carry.student_carry, key, repeats=cfg.repeats
    )
    row.update(plain_compile_s=first - best, plain_sps=samples / best)
    first, best = timed(_labelled_fn(rollout, dcfg.dataset_policy), ds, key, repeats=cfg.repeats)
    row.update(labelled_compile_s=first - best, labelled_sps=samples / best)
    step = jax.jit(lambda d, b: iteration(d, b)[2])  # metrics only; ``ds`` is not donated here
    first, best = timed(step, ds, jp.zeros(()), repeats=cfg.repeats)
    row.update(iteration_compile_s=first - best, iteration_sps=samples / best)
    row["labelling_overhead"] = row["plain_sps"] / row["labelled_sps"] - 1.0
    print(
        json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
        flush=True,
    )
    return row


def run(cfg: BenchDistillConfig) -> dict[str, Any]:
    """Runs the benchmark, writes ``cfg.out`` (+ ``.md``) and returns the results."""
    cfg.validate()
    results = {
        **machine(),
        "config": dataclasses.asdict(cfg),
        "rows": [bench_task(t, b, cfg) for t in cfg.tasks for b in cfg.batch_sizes],
    }
    write_results(results, cfg.out, to_markdown(results))
    return results


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Device: {results['device_kind']} ({results['cpu_count']} CPUs), jax {results['jax']}, "
        f"unroll {results['config']['unroll_length']} steps.",
        "",
        "| task | batch | student | plain samples/s | labelled samples/s | overhead | "
        "iteration samples/s | compile (plain / labelled / iteration, s) |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['task']} | {r['batch']} | {r['student']} | {r['plain_sps']:.0f} | "
            f"{r['labelled_sps']:.0f} | {100 * r['labelling_overhead']:.0f}% | "
            f"{r['iteration_sps']:.0f} | {r['plain_compile_s']:.0f} / "
            f"{r['labelled_compile_s']:.0f} / {r['iteration_compile_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"
