"""Policy evaluation on fresh randomized episodes (teacher or student).

``make_evaluator`` returns a jitted ``evaluate(policy_params, rng) -> per-episode
results``: ``num_episodes`` environments run one episode each (no auto-reset)
in one ``lax.scan`` (long horizons: scanned segments until every episode has ended); each episode's return, length and its metrics *at the step
it ended* (e.g. ``success`` at the end, ``consecutive_successes``) are reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jp
import numpy as np

from dexdistill.envs.base import Env, State

PolicyFactory = Callable[[Any], Callable]
"""``params -> policy(obs [B, ...], carry, key) -> (action, carry, extras)``."""


def make_evaluator(
    env: Env,
    make_policy: PolicyFactory,
    num_episodes: int,
    init_carry: Callable[[int], Any] = lambda b: None,
    reference: Callable | None = None,
    record: Callable[[State], Any] | None = None,
) -> Callable[[Any, jax.Array], dict[str, jax.Array]]:
    """Returns jitted ``evaluate(params, rng) -> {name: [num_episodes]}`` for an unbatched ``env``.

    With a ``reference`` policy (e.g. the teacher, feed-forward), each episode also
    reports ``action_error``: the mean over its steps of ``|mean - reference mean|^2``
    on the states the evaluated policy visits.

    With ``record(state) -> pytree`` (batched state in, batched leaves out), the first
    episode is also recorded: ``out["frames"] = {"first": tree, "steps": tree [T, ...],
    "alive": [T]}`` (``alive[t]``: the episode had not ended before step ``t``), e.g. to
    render a video of an evaluated episode without compiling another rollout.

    ``evaluate(params, rng, level)`` starts every episode at goal ``level`` (int32 [],
    a task with :attr:`goal_levels`) instead of the env's own; one compile serves all levels,
    and the env's own (``level`` omitted) as well: ``reset`` is ``reset_at_level`` at its
    ``start_level``, so the level is always a traced argument.
    """
    reset = jax.vmap(env.reset)
    step = jax.vmap(env.step)
    horizon = env.episode_length

    def evaluate(params: Any, rng: jax.Array, level: Any = None) -> dict[str, jax.Array]:
        policy = make_policy(params)
        k_reset, k_act = jax.random.split(rng)
        keys = jax.random.split(k_reset, num_episodes)
        if level is None:
            state = reset(keys)
        else:  # goal level of a task with a curriculum (envs.curriculum); traced
            state = jax.vmap(lambda k: env.reset_at_level(k, level))(keys)
        alive = jp.ones((num_episodes,))
        ret = jp.zeros((num_episodes,))
        length = jp.zeros((num_episodes,))
        final = jax.tree.map(jp.zeros_like, state.metrics)
        final["action_error"] = jp.zeros((num_episodes,))

        def body(carry: tuple, key: jax.Array) -> tuple[tuple, None]:
            state, pcarry, alive, ret, length, final = carry
            action, pcarry, extras = policy(state.obs, pcarry, key)
            if reference is not None:
                ref_mean = reference(state.obs, None, key)[2]["mean"]
                err = jp.sum((extras["mean"] - ref_mean) ** 2, axis=-1)
                final = {**final, "action_error": final["action_error"] + alive * err}
            nxt: State = step(state, action)
            ret = ret + alive * nxt.reward
            length = length + alive
            ending = alive * nxt.done
            ended = jax.tree.map(
                lambda f, m: jp.where(ending > 0, m, f),
                {k: final[k] for k in nxt.metrics},
                nxt.metrics,
            )
            final = {**final, **ended}
            frame = None
            if record is not None:
                frame = (jax.tree.map(lambda x: x[0], record(nxt)), alive[0] > 0)
            alive = alive * (1.0 - nxt.done)
            return (nxt, pcarry, alive, ret, length, final), frame

        first = None if record is None else jax.tree.map(lambda x: x[0], record(state))
        carry0 = (state, init_carry(num_episodes), alive, ret, length, final)
        carry, frames = _run_segments(body, carry0, k_act, horizon, record is not None)
        state, _, alive, ret, length, final = carry
        ended = {k: jp.where(alive > 0, state.metrics[k], final[k]) for k in state.metrics}
        out = {"return": ret, "length": length, **final, **ended}
        if reference is None:
            out.pop("action_error")
        else:
            out["action_error"] = out["action_error"] / jp.maximum(length, 1.0)
        if record is not None:
            out["frames"] = {"first": first, "steps": frames[0], "alive": frames[1]}
        return out

    jitted = jax.jit(evaluate)
    if not getattr(env, "goal_levels", ()):
        return jitted
    return _AtLevel(jitted, int(env.start_level))


def _segment_length(horizon: int, longest: int = 512) -> int:
    """Steps per scanned segment: the whole horizon up to ``longest``, else its largest
    divisor in ``[64, longest]`` (the horizon itself when it has none)."""
    if horizon <= longest:
        return horizon
    for seg in range(longest, 63, -1):
        if horizon % seg == 0:
            return seg
    return horizon


def _run_segments(
    body: Callable, carry0: tuple, key: jax.Array, horizon: int, recording: bool
) -> tuple[tuple, Any]:
    """Runs ``body`` (a scan body whose carry's third item is ``alive [B]``) for ``horizon``
    steps, stopping early once every episode has ended.

    Short horizons are one ``lax.scan`` (keys: ``split(key, horizon)``). Long ones (e.g.
    hand_cube's Dactyl trials, up to 10,000 steps, most ending far earlier) are a
    ``lax.while_loop`` over scanned segments that stops when no episode is alive; recorded
    frames (``[horizon, ...]``, zeros after the stop) are written segment by segment.
    """
    seg = _segment_length(horizon)
    if seg == horizon:
        return jax.lax.scan(body, carry0, jax.random.split(key, horizon))
    n_seg = horizon // seg

    def keys(i: jax.Array) -> jax.Array:
        return jax.random.split(jax.random.fold_in(key, i), seg)

    frame_shape = jax.eval_shape(lambda c: body(c, keys(0))[1], carry0) if recording else None
    frames0 = (
        jax.tree.map(lambda f: jp.zeros((horizon, *f.shape), f.dtype), frame_shape)
        if recording
        else None
    )

    def cond(loop: tuple) -> jax.Array:
        i, carry, _ = loop
        return (i < n_seg) & jp.any(carry[2] > 0)

    def step(loop: tuple) -> tuple:
        i, carry, frames = loop
        carry, seg_frames = jax.lax.scan(body, carry, keys(i))
        if recording:
            frames = jax.tree.map(
                lambda buf, f: jax.lax.dynamic_update_slice_in_dim(buf, f, i * seg, 0),
                frames,
                seg_frames,
            )
        return i + 1, carry, frames

    _, carry, frames = jax.lax.while_loop(cond, step, (jp.zeros((), jp.int32), carry0, frames0))
    return carry, frames


@dataclasses.dataclass(frozen=True)
class _AtLevel:
    """An evaluator of a task with goal levels whose ``level`` defaults to the env's
    ``start_level``: one program for the env's own episodes and for every level. Wraps the
    jitted function, its ``lower(...)`` and that one's ``compile()`` alike."""

    fn: Any
    start: int

    def _level(self, level: Any) -> jax.Array:
        return jp.asarray(self.start if level is None else level, jp.int32)

    def __call__(self, params: Any, rng: jax.Array, level: Any = None) -> Any:
        return self.fn(params, rng, self._level(level))

    def lower(self, params: Any, rng: jax.Array, level: Any = None) -> _AtLevel:
        return _AtLevel(self.fn.lower(params, rng, self._level(level)), self.start)

    def compile(self) -> _AtLevel:
        return _AtLevel(self.fn.compile(), self.start)


def summarize(
    results: dict[str, Any],
    headline: str = "success",
    dt: float | None = None,
    table: bool = True,
) -> dict[str, Any]:
    """Means of the per-episode results, a 95% interval of the success rate, and the
    ``headline`` metric (the task's, see :func:`envs.base.headline_metric`) as ``headline``.

    With ``consecutive_successes`` (hand_cube) the summary also has Dactyl's table
    (:func:`dactyl_table`; unless ``table`` is False, as in per-iteration logs) and, given
    the control period ``dt`` (s), ``goals_per_minute``.
    """
    out: dict[str, Any] = {
        f"{k}_mean": float(np.mean(v)) for k, v in results.items() if k != "frames"
    }
    if "success" in results:
        s = np.asarray(results["success"], np.float64)
        p, n = s.mean(), len(s)
        half = 1.96 * np.sqrt(max(p * (1 - p), 1e-12) / n)
        out["success_rate"] = float(p)
        out["success_ci95"] = float(half)
    if headline in results:
        out["headline_metric"] = headline
        out["headline"] = float(np.mean(results[headline]))
    if "consecutive_successes" in results:
        if table:
            out["consecutive_successes"] = dactyl_table(results["consecutive_successes"])
        if dt is not None and "length" in results:
            minutes = float(np.sum(results["length"])) * dt / 60.0
            total = float(np.sum(results["consecutive_successes"]))
            out["goals_per_minute"] = total / max(minutes, 1e-9)
    return out


def record(
    res: dict[str, np.ndarray], headline: str = "success", dt: float | None = None
) -> dict[str, Any]:
    """The body every evaluation file stores (the run directory's one evaluation schema,
    ``dexdistill.pipelines.rundir``): :func:`summarize` (every metric's mean as
    ``<name>_mean``, success rate and interval, the headline and Dactyl's table, goals per
    minute), plus ``drop_rate``, ``action_error`` where measured, and ``metrics`` (every
    metric's mean by name)."""
    out = summarize({k: v for k, v in res.items() if k != "frames"}, headline, dt)
    if "dropped" in res:
        out["drop_rate"] = float(np.mean(res["dropped"]))
    if "action_error" in res:
        out["action_error"] = float(np.mean(res["action_error"]))
    skip = {"return", "length", "success", "action_error", "frames"}
    out["metrics"] = {k: float(np.mean(v)) for k, v in res.items() if k not in skip}
    return out


def headline(summary: dict[str, Any]) -> float:
    """The headline number of a :func:`summarize` result (older results: the success rate)."""
    return float(summary.get("headline", summary.get("success_rate", float("nan"))))


def dactyl_table(consecutive: Any) -> dict[str, Any]:
    """Consecutive successes as Dactyl's Table 3: mean, std, median, sorted trials."""
    c = np.sort(np.asarray(consecutive, np.float64))
    return {
        "mean": float(c.mean()),
        "std": float(c.std()),
        "median": float(np.median(c)),
        "trials": [int(x) for x in c],
    }


def evaluate_chunks(
    evaluate: Callable[[Any, jax.Array], dict[str, jax.Array]],
    params: Any,
    key: jax.Array,
    episodes: int,
    chunk: int,
    level: int | None = None,
) -> dict[str, np.ndarray]:
    """Runs a ``chunk``-episode ``evaluate`` ``ceil(episodes / chunk)`` times with fresh keys.

    One compiled evaluator then serves evaluations of any size (the periodic and the
    final one, teacher and student), which saves a compile per size on slow machines.
    Results are concatenated and cut to ``episodes``; recorded ``frames`` (see
    :func:`make_evaluator`) are the first chunk's.
    """
    extra = () if level is None else (jp.asarray(level, jp.int32),)
    parts = [jax.device_get(evaluate(params, k, *extra)) for k in chunk_keys(key, episodes, chunk)]
    frames = [p.pop("frames", None) for p in parts][0]
    out = {k: np.concatenate([np.asarray(p[k]) for p in parts])[:episodes] for k in parts[0]}
    return out if frames is None else {**out, "frames": frames}


def chunk_keys(key: jax.Array, episodes: int, chunk: int) -> list[jax.Array]:
    """The keys :func:`evaluate_chunks` uses: ``key`` itself for one chunk, else a split."""
    n = -(-episodes // chunk)
    return [key] if n == 1 else list(jax.random.split(key, n))
