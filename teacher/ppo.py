"""PPO with privileged observations and an asymmetric critic, written for JAX >= 0.10.

One call of the function returned by :func:`make_iteration` is one PPO iteration,
jitted as a whole: a ``lax.scan`` rollout of ``unroll_length`` steps in
``num_envs`` environments, then ``num_epochs`` x ``num_minibatches`` gradient
steps, also scanned. Environments are split across all local devices by
sharding the env-batch axis of the training state (:func:`shard_state`);
parameters are replicated and XLA averages gradients across devices.

Recurrent actor or critic (``network.actor_memory`` / ``critic_memory``): the
per-env hidden states live in ``TrainState.carry`` across iterations and are
zeroed at the start of each new episode (``state.done`` marks the last step of
one; the env batch auto-resets). The rollout stores the hidden states it started
from and, per step, whether the step starts an episode; the update recomputes
log-probs and values by unrolling the networks over the whole ``[T]`` rollout of
each env from those states (truncated BPTT over ``unroll_length``), with
minibatches that split the env axis instead of single steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dexdistill.envs.base import Env, State, headline_metric
from dexdistill.envs.common import checks
from dexdistill.envs.tasks import curriculum as cur_lib
from dexdistill.teacher import normalize as norm_lib
from dexdistill.teacher.networks import NetworkConfig, TeacherNetworks, make_networks, make_policy

LrSchedule = Literal["constant", "linear", "kl_adaptive"]


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters (defaults: the CPU-sized 'dclaw_valve' teacher)."""

    num_timesteps: int = 3_000_000
    """Environment steps to train for."""
    num_envs: int = 128
    """Parallel environments stepped per iteration (split across local devices)."""
    unroll_length: int = 10
    """Steps per env per iteration; an iteration collects 'num_envs * unroll_length' steps."""
    num_minibatches: int = 4
    """Minibatches (gradient steps) per epoch; they split the envs with a recurrent network."""
    num_epochs: int = 4
    """Passes over each iteration's rollout, reshuffled every pass."""
    learning_rate: float = 3e-4
    """Adam step size (the initial one under a 'linear' or 'kl_adaptive' schedule)."""
    lr_schedule: LrSchedule = "constant"
    """'constant', 'linear' (decay to 0), or 'kl_adaptive' (rsl_rl style)."""
    desired_kl: float = 0.01
    """Target KL for 'kl_adaptive'."""
    discount: float = 0.97
    """Per-step reward discount (gamma), in [0, 1]."""
    gae_lambda: float = 0.95
    """GAE lambda, in [0, 1]: 0 gives one-step TD advantages, 1 Monte-Carlo returns."""
    clip_epsilon: float = 0.2
    """PPO ratio clip: the surrogate clips new/old probability ratios to [1 - eps, 1 + eps]."""
    value_clip: float = 0.0
    """Clip range of the value update around the old value (0: unclipped)."""
    value_loss_coef: float = 0.5
    """Weight of the critic's value loss in the total loss."""
    entropy_cost: float = 1e-3
    """Weight of the policy-entropy bonus subtracted from the total loss."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm before each Adam step."""
    reward_scaling: float = 1.0
    """Factor on rewards before advantages and value targets (logged rewards are unscaled)."""
    normalize_observations: bool = True
    """Standardize observations by running mean/std from the rollouts (off: raw, clipped to +-5)."""
    normalize_advantages: bool = True
    """Standardize advantages to zero mean, unit std within each minibatch."""
    seed: int = 0
    """Random seed for parameter initialization, environment resets and sampling."""
    network: NetworkConfig = NetworkConfig()

    def validate(self) -> None:
        checks.check_types(self, "ppo.")
        positive = ("num_timesteps", "num_envs", "unroll_length", "num_minibatches", "num_epochs")
        for name in positive:
            checks.require(f"ppo.{name}", getattr(self, name), ge=1)
        if self.network.recurrent and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"ppo.num_minibatches={self.num_minibatches}: must divide num_envs={self.num_envs} "
                "with a recurrent actor or critic (minibatches split the env axis)"
            )
        if (self.num_envs * self.unroll_length) % self.num_minibatches:
            raise ValueError(
                f"ppo.num_minibatches={self.num_minibatches}: must divide num_envs * unroll_length "
                f"= {self.num_envs * self.unroll_length}"
            )
        for name in ("discount", "gae_lambda"):
            checks.require(f"ppo.{name}", getattr(self, name), ge=0, le=1)
        for name in ("learning_rate", "clip_epsilon", "reward_scaling"):
            checks.require(f"ppo.{name}", getattr(self, name), gt=0)

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def num_iterations(self) -> int:
        return -(-self.num_timesteps // self.steps_per_iteration)


@struct.dataclass
class TrainState:
    """Everything a PPO run needs to continue exactly: saved by one orbax call."""

    params: dict[str, Any]
    opt_state: Any
    normalizer: norm_lib.RunningStats
    env_state: State
    rng: jax.Array
    iteration: jax.Array
    env_steps: jax.Array
    learning_rate: jax.Array
    carry: dict[str, Any] = struct.field(default_factory=lambda: {"actor": None, "critic": None})
    """Per-env hidden states ``{"actor", "critic"}`` (``None`` for a feed-forward network)."""
    curriculum: cur_lib.CurriculumState = struct.field(default_factory=lambda: cur_lib.init(None))
    """The task's goal curriculum (a fixed dummy when the task runs none)."""


@struct.dataclass
class Transition:
    """One rollout step for a batch: leaves are ``[T, B, ...]`` after the scan."""

    obs: dict[str, jax.Array]
    raw_action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    termination: jax.Array
    truncation: jax.Array
    first: jax.Array
    """1 where the previous step ended an episode: recurrent states are zeroed before this one."""


# --------------------------------------------------------------------------- losses


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    bootstrap: jax.Array,
    terminations: jax.Array,
    truncations: jax.Array,
    discount: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation over ``[T, B]`` arrays.

    ``values[t]`` is V(s_t), ``bootstrap`` is V(s_T) ``[B]``. A terminated step
    does not bootstrap; a truncated step (time limit, next state is a fresh
    episode) is excluded: its advantage is 0 and it cuts the recursion.
    Returns (advantages ``[T, B]``, value targets ``[T, B]``).
    """
    next_values = jp.concatenate([values[1:], bootstrap[None]], axis=0)
    keep = 1.0 - truncations
    deltas = (rewards + discount * (1.0 - terminations) * next_values - values) * keep

    def body(acc: jax.Array, x: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        delta, term, kp = x
        acc = delta + discount * lam * (1.0 - term) * kp * acc
        return acc, acc

    _, adv = jax.lax.scan(
        body, jp.zeros_like(bootstrap), (deltas, terminations, keep), reverse=True
    )
    return adv, adv + values


def ppo_loss(
    params: dict[str, Any],
    nets: TeacherNetworks,
    batch: dict[str, Any],
    key: jax.Array,
    cfg: PPOConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + value loss - entropy bonus on a flat minibatch ``[N, ...]``.

    A recurrent minibatch is ``[T, N, ...]`` whole rollouts of ``N`` envs with their
    initial hidden states ``batch["carry"]`` and episode starts ``batch["first"]``.
    """
    if "carry" in batch:
        carry, first = batch["carry"], batch["first"]
        logits, _ = nets.unroll_logits(params, batch["obs"], carry["actor"], first)
        values, _ = nets.unroll_value(params, batch["obs"], carry["critic"], first)
    else:
        logits = nets.logits(params, batch["obs"])
        values = nets.value(params, batch["obs"])
    log_prob = nets.dist.log_prob(logits, batch["raw_action"])
    ratio = jp.exp(log_prob - batch["log_prob"])
    adv = batch["advantages"]
    if cfg.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    surrogate = jp.minimum(
        ratio * adv, jp.clip(ratio, 1 - cfg.clip_epsilon, 1 + cfg.clip_epsilon) * adv
    )
    policy_loss = -jp.mean(surrogate * batch["mask"]) / jp.maximum(jp.mean(batch["mask"]), 1e-6)
    v_err = (batch["targets"] - values) ** 2
    if cfg.value_clip > 0:
        clipped = batch["values"] + jp.clip(
            values - batch["values"], -cfg.value_clip, cfg.value_clip
        )
        v_err = jp.maximum(v_err, (batch["targets"] - clipped) ** 2)
    value_loss = 0.5 * jp.mean(v_err * batch["mask"]) / jp.maximum(jp.mean(batch["mask"]), 1e-6)
    entropy = jp.mean(nets.dist.entropy(logits, key))
    total = policy_loss + cfg.value_loss_coef * value_loss - cfg.entropy_cost * entropy
    # k3 estimator E[(r - 1) - log r]: unbiased and never negative (the plain mean of
    # log(old/new) can be, which made the kl_adaptive rule raise the learning rate)
    log_ratio = log_prob - batch["log_prob"]
    approx_kl = jp.mean(jp.expm1(log_ratio) - log_ratio)
    clip_frac = jp.mean(jp.abs(ratio - 1.0) > cfg.clip_epsilon)
    return total, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": approx_kl,
        "clip_fraction": clip_frac,
    }


# --------------------------------------------------------------------------- training


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    """Adam with global-norm clipping; the learning rate is a state hyper-parameter."""
    return optax.inject_hyperparams(
        lambda learning_rate: optax.chain(
            optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(learning_rate)
        )
    )(learning_rate=cfg.learning_rate)


def init_state(env: Env, nets: TeacherNetworks, cfg: PPOConfig) -> TrainState:
    """A fresh training state: parameters, optimizer, normalizer and envs from ``cfg.seed``."""
    rng = jax.random.PRNGKey(cfg.seed)
    rng, k_params, k_env = jax.random.split(rng, 3)
    spec = env.observation_spec
    params = nets.init(k_params, spec)
    keys = tuple(cfg.network.actor_keys) + tuple(cfg.network.critic_keys)
    return TrainState(
        params=params,
        opt_state=jax.jit(make_optimizer(cfg).init)(params),  # one program, not eager ops
        normalizer=norm_lib.init_stats(spec, keys),
        env_state=jax.jit(env.reset)(k_env),
        rng=rng,
        iteration=jp.zeros((), jp.int32),
        env_steps=jp.zeros((), jp.int32),
        learning_rate=jp.asarray(cfg.learning_rate, jp.float32),
        carry={
            "actor": nets.initial_carry(cfg.num_envs),
            "critic": nets.initial_critic_carry(cfg.num_envs),
        },
        curriculum=cur_lib.init(cur_lib.config_of(env)),
    )


def policy_factory(nets: TeacherNetworks, deterministic: bool = True) -> Callable[[Any], Any]:
    """``(params, normalizer) -> policy``: a trained teacher's policy on raw observations
    (the evaluator's and the DAgger labeller's view of a :class:`TrainState`)."""
    return lambda p: make_policy(nets, p[0], lambda o: norm_lib.normalize(p[1], o), deterministic)


def rollout(
    env: Env, nets: TeacherNetworks, ts: TrainState, key: jax.Array, unroll: int
) -> tuple[State, Transition, dict[str, jax.Array], Any]:
    """``unroll`` steps from ``ts``: (final env state, transitions, metrics, final actor carry).

    The actor's carry starts from ``ts.carry["actor"]`` and is zeroed before every step
    whose state starts an episode (``state.done`` of the previous step).
    """
    policy = make_policy(nets, ts.params, lambda o: norm_lib.normalize(ts.normalizer, o))

    def step(c: tuple[State, Any], k: jax.Array) -> tuple[tuple[State, Any], tuple]:
        state, carry = c
        first = jp.asarray(state.done > 0, jp.float32)
        action, carry, extras = policy(state.obs, nets.reset_carry(carry, first), k)
        nxt = env.step(state, action)
        trunc = nxt.info["truncation"]
        tr = Transition(
            obs=state.obs,
            raw_action=extras["raw_action"],
            log_prob=extras["log_prob"],
            reward=nxt.reward,
            termination=nxt.done * (1.0 - trunc),
            truncation=trunc,
            first=first,
        )
        return (nxt, carry), (tr, nxt.metrics)

    init = (ts.env_state, ts.carry["actor"])
    (final, carry), (traj, metrics) = jax.lax.scan(step, init, jax.random.split(key, unroll))
    return final, traj, metrics, carry


def _episode_metrics(metrics: dict[str, jax.Array], done: jax.Array) -> dict[str, jax.Array]:
    """Means of metrics over the episodes that ended in this rollout ([T, B] masks); NaN
    (``null`` in ``metrics.jsonl``) when none ended, so a curve has no spurious zeros."""
    n = jp.sum(done)
    mean = lambda v: jp.where(n > 0, jp.sum(v * done) / jp.maximum(n, 1.0), jp.nan)  # noqa: E731
    out = {f"episode/{k}": mean(v) for k, v in metrics.items()}
    out["episode/count"] = n
    return out


def make_iteration(
    env: Env, nets: TeacherNetworks, cfg: PPOConfig
) -> Callable[[TrainState], tuple[TrainState, dict]]:
    """Returns the jitted ``iteration(ts) -> (ts, metrics)``; ``env`` is batched."""
    optimizer = make_optimizer(cfg)
    total_iters = cfg.num_iterations
    advance = _curriculum_update(env)

    def iteration(ts: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        rng, k_roll, k_update = jax.random.split(ts.rng, 3)
        env_state, traj, metrics, actor_carry = rollout(env, nets, ts, k_roll, cfg.unroll_length)
        normalizer = (
            norm_lib.update(ts.normalizer, traj.obs)
            if cfg.normalize_observations
            else ts.normalizer
        )
        norm = lambda o: norm_lib.normalize(normalizer, o)
        obs_n = norm(traj.obs)
        critic_carry = ts.carry["critic"]
        if nets.critic_recurrent:
            values, critic_carry = nets.unroll_value(ts.params, obs_n, critic_carry, traj.first)
            last_first = jp.asarray(env_state.done > 0, jp.float32)
            bootstrap, _ = nets.step_value(
                ts.params, norm(env_state.obs), nets.reset_carry(critic_carry, last_first)
            )
        else:
            values = nets.value(ts.params, obs_n, batch_dims=2)
            bootstrap = nets.value(ts.params, norm(env_state.obs), batch_dims=1)
        rewards = traj.reward * cfg.reward_scaling
        adv, targets = compute_gae(
            rewards,
            values,
            bootstrap,
            traj.termination,
            traj.truncation,
            cfg.discount,
            cfg.gae_lambda,
        )
        data = {
            "obs": obs_n,
            "raw_action": traj.raw_action,
            "log_prob": traj.log_prob,
            "advantages": adv,
            "targets": targets,
            "values": values,
            "mask": 1.0 - traj.truncation,
        }
        lr = _learning_rate(ts, cfg, total_iters)
        if cfg.network.recurrent:
            params, opt_state, lr, losses = _update_recurrent(
                ts.params,
                ts.opt_state,
                data,
                traj.first,
                ts.carry,
                k_update,
                lr,
                nets,
                optimizer,
                cfg,
            )
        else:
            flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), data)
            params, opt_state, lr, losses = _update(
                ts.params, ts.opt_state, flat, k_update, lr, nets, optimizer, cfg
            )
        done = jp.asarray(traj.termination + traj.truncation > 0, jp.float32)
        cur, env_state = advance(ts.curriculum, env_state, metrics, done)
        out = {
            **_episode_metrics(metrics, done),
            "curriculum/level": cur.level,
            "curriculum/window_mean": cur_lib.window_mean(cur),
            **losses,
            "learning_rate": lr,
            "reward_mean": jp.mean(traj.reward),
        }
        new = TrainState(
            params=params,
            opt_state=opt_state,
            normalizer=normalizer,
            env_state=env_state,
            rng=rng,
            iteration=ts.iteration + 1,
            env_steps=ts.env_steps + cfg.steps_per_iteration,
            learning_rate=lr,
            carry={"actor": actor_carry, "critic": critic_carry},
            curriculum=cur,
        )
        return new, out

    return jax.jit(iteration, donate_argnums=0)


def _curriculum_update(env: Env) -> Callable:
    """``(curriculum, env_state, metrics [T, B], done [T, B]) -> (curriculum, env_state)``:
    the window gets the headline metric of this rollout's ended episodes that started at
    the current level (an episode still running from the level before an advance would
    otherwise count toward the next advance); new episodes start at the (possibly
    advanced) level. The identity for a task without a curriculum."""
    ccfg = cur_lib.config_of(env)
    levels = len(cur_lib.levels_of(env))
    key = headline_metric(env)

    def advance(cs: cur_lib.CurriculumState, state: State, metrics: dict, done: jax.Array):
        if ccfg is None:
            return cs, state
        if "start_level" in metrics:  # episodes begun before the last advance do not count
            done = done * (metrics["start_level"] == cs.level.astype(jp.float32))
        total, count = jp.sum(metrics[key] * done), jp.sum(done)
        cs = cur_lib.update(ccfg, cs, total, count, levels)
        return cs, cur_lib.set_level(state, cs.level)

    return advance


def _learning_rate(ts: TrainState, cfg: PPOConfig, total_iters: int) -> jax.Array:
    if cfg.lr_schedule == "linear":
        frac = 1.0 - ts.iteration.astype(jp.float32) / total_iters
        return cfg.learning_rate * jp.maximum(frac, 0.0)
    return ts.learning_rate


def _epochs(
    state: tuple,
    key: jax.Array,
    minibatches: Callable[[jax.Array], Any],
    nets: TeacherNetworks,
    optimizer: optax.GradientTransformation,
    cfg: PPOConfig,
) -> tuple[tuple, dict[str, jax.Array]]:
    """``num_epochs`` passes of ``num_minibatches`` gradient steps from ``state``
    ``(params, opt_state, lr)``; ``minibatches(key)`` draws one epoch's shuffled minibatches
    (leading axis ``num_minibatches``). Returns the new state and the mean loss terms."""
    sgd_step = _sgd_step(nets, optimizer, cfg)

    def epoch(carry: tuple, k: jax.Array) -> tuple[tuple, dict[str, jax.Array]]:
        k_perm, k_loss = jax.random.split(k)
        keys = jax.random.split(k_loss, cfg.num_minibatches)
        return jax.lax.scan(sgd_step, carry, (minibatches(k_perm), keys))

    state, aux = jax.lax.scan(epoch, state, jax.random.split(key, cfg.num_epochs))
    return state, jax.tree.map(jp.mean, aux)


def _update(
    params: dict[str, Any],
    opt_state: Any,
    flat: dict[str, Any],
    key: jax.Array,
    lr: jax.Array,
    nets: TeacherNetworks,
    optimizer: optax.GradientTransformation,
    cfg: PPOConfig,
) -> tuple[dict[str, Any], Any, jax.Array, dict[str, jax.Array]]:
    """Gradient steps on single transitions ``flat [N, ...]``, shuffled every epoch."""
    n = flat["advantages"].shape[0]
    mb = n // cfg.num_minibatches

    def minibatches(k: jax.Array) -> dict[str, Any]:
        perm = jax.random.permutation(k, n)
        return jax.tree.map(lambda x: x[perm].reshape(cfg.num_minibatches, mb, *x.shape[1:]), flat)

    (params, opt_state, lr), aux = _epochs(
        (params, opt_state, lr), key, minibatches, nets, optimizer, cfg
    )
    return params, opt_state, lr, aux


def _update_recurrent(
    params: dict[str, Any],
    opt_state: Any,
    data: dict[str, Any],
    first: jax.Array,
    carry: dict[str, Any],
    key: jax.Array,
    lr: jax.Array,
    nets: TeacherNetworks,
    optimizer: optax.GradientTransformation,
    cfg: PPOConfig,
) -> tuple[dict[str, Any], Any, jax.Array, dict[str, jax.Array]]:
    """Gradient steps on whole ``[T]`` rollouts: minibatches are subsets of the envs.

    ``data`` leaves are ``[T, B, ...]``; ``carry`` holds the hidden states ``[B, ...]``
    the rollout started from and ``first [T, B]`` its episode starts.
    """
    b = first.shape[1]
    mb = b // cfg.num_minibatches
    seqs = {**data, "first": first}

    def minibatches(k: jax.Array) -> dict[str, Any]:
        perm = jax.random.permutation(k, b)
        # [T, B, ...] -> [num_minibatches, T, mb, ...]; carries [B, ...] -> [num_minibatches, mb, ...]
        split_t = (
            lambda x: jp.swapaxes(  # noqa: E731
                x[:, perm].reshape(x.shape[0], cfg.num_minibatches, mb, *x.shape[2:]), 0, 1
            )
        )
        split_b = lambda x: x[perm].reshape(cfg.num_minibatches, mb, *x.shape[1:])  # noqa: E731
        return {**jax.tree.map(split_t, seqs), "carry": jax.tree.map(split_b, carry)}

    (params, opt_state, lr), aux = _epochs(
        (params, opt_state, lr), key, minibatches, nets, optimizer, cfg
    )
    return params, opt_state, lr, aux


def _sgd_step(
    nets: TeacherNetworks, optimizer: optax.GradientTransformation, cfg: PPOConfig
) -> Callable[[tuple, tuple], tuple[tuple, dict[str, jax.Array]]]:
    """One gradient step on a minibatch, with the ``kl_adaptive`` learning-rate rule."""
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)

    def sgd_step(carry: tuple, batch_key: tuple) -> tuple[tuple, dict[str, jax.Array]]:
        params, opt_state, lr = carry
        batch, k = batch_key
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})
        (_, aux), grads = grad_fn(params, nets, batch, k, cfg)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if cfg.lr_schedule == "kl_adaptive":
            kl = aux["approx_kl"]
            lr = jp.where(
                kl > 2.0 * cfg.desired_kl,
                lr / 1.5,
                jp.where(kl < 0.5 * cfg.desired_kl, lr * 1.5, lr),
            )
            lr = jp.clip(lr, 1e-5, 1e-2)
        return (params, opt_state, lr), aux

    return sgd_step


# --------------------------------------------------------------------------- devices


def make_mesh() -> Mesh:
    """A 1-D mesh ``("data",)`` over all local devices."""
    return Mesh(np.array(jax.devices()), ("data",))


def shard_state(ts: TrainState, mesh: Mesh, num_envs: int) -> TrainState:
    """Splits leaves whose leading axis is the env batch across devices; replicates the rest."""
    if num_envs % mesh.size:
        raise ValueError(
            f"ppo.num_envs={num_envs}: must be a multiple of the device count {mesh.size}"
        )
    batched = NamedSharding(mesh, PartitionSpec("data"))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = lambda tree: jax.tree.map(
        lambda x: jax.device_put(x, batched if x.ndim and x.shape[0] == num_envs else replicated),
        tree,
    )
    rest = ts.replace(env_state=None, carry=None)
    rest = jax.tree.map(lambda x: jax.device_put(x, replicated), rest)
    return rest.replace(env_state=split(ts.env_state), carry=split(ts.carry))


def build(env: Env, cfg: PPOConfig) -> tuple[TeacherNetworks, Callable]:
    """Validates ``cfg`` and returns (networks, jitted iteration) for a batched env."""
    cfg.validate()
    nets = make_networks(cfg.network, env.observation_spec, env.action_size)
    return nets, make_iteration(env, nets, cfg)
