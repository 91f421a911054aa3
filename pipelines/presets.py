"""Tuned per-task presets, all in one place.

A preset names a task, its env overrides and the PPO settings of its teacher.
``*_cpu`` presets finish in minutes on 2 CPU cores; ``*_gpu`` presets are sized
for one H100-class GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from distill.dagger import DAggerConfig
from teacher.networks import NetworkConfig
from teacher.ppo import PPOConfig


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named, tuned starting point for a run."""

    env: str
    ppo: PPOConfig
    env_overrides: tuple[tuple[str, Any], ...] = ()
    dagger: DAggerConfig = DAggerConfig()
    """Distillation settings (``dexdistill distill``)."""
    description: str = ""


_SMALL_NET = NetworkConfig(actor_hidden=(64, 64), critic_hidden=(128, 128))
_GPU_NET = NetworkConfig(actor_hidden=(256, 256, 128), critic_hidden=(512, 256, 128))

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        env="point_mass",
        ppo=PPOConfig(
            num_timesteps=150_000,
            num_envs=64,
            unroll_length=10,
            num_minibatches=4,
            num_epochs=4,
            learning_rate=3e-4,
            discount=0.95,
            network=_SMALL_NET,
        ),
        dagger=DAggerConfig(iterations=10, num_envs=64, unroll_length=40, capacity=1024),
        description="point_mass, learned in ~15 s on a CPU (tests, smoke runs)",
    ),
    "dclaw_valve_cpu": Preset(
        env="dclaw_valve",
        ppo=PPOConfig(
            num_timesteps=3_000_000,
            num_envs=128,
            unroll_length=10,
            num_minibatches=4,
            num_epochs=4,
            learning_rate=3e-4,
            discount=0.97,
            network=_SMALL_NET,
        ),
        description="valve turning on 2 CPU cores in <= 10 minutes",
    ),
    "dclaw_valve_gpu": Preset(
        env="dclaw_valve",
        ppo=PPOConfig(
            num_timesteps=50_000_000,
            num_envs=4096,
            unroll_length=16,
            num_minibatches=8,
            num_epochs=4,
            learning_rate=3e-4,
            discount=0.97,
            network=_GPU_NET,
        ),
    ),
    "trifinger_cube_gpu": Preset(
        env="trifinger_cube",
        ppo=PPOConfig(
            num_timesteps=200_000_000,
            num_envs=8192,
            unroll_length=16,
            num_minibatches=8,
            num_epochs=5,
            learning_rate=3e-4,
            lr_schedule="kl_adaptive",
            discount=0.99,
            entropy_cost=1e-3,
            network=_GPU_NET,
        ),
    ),
    "hand_cube_gpu": Preset(
        env="hand_cube",
        ppo=PPOConfig(
            num_timesteps=300_000_000,
            num_envs=8192,
            unroll_length=16,
            num_minibatches=8,
            num_epochs=5,
            learning_rate=3e-4,
            lr_schedule="kl_adaptive",
            discount=0.99,
            entropy_cost=1e-3,
            network=_GPU_NET,
        ),
    ),
}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]


def default_for(env: str) -> str:
    """The preset used for ``env`` when none is given."""
    for name in (f"{env}_cpu", "tiny" if env == "point_mass" else ""):
        if name in PRESETS:
            return name
    return f"{env}_gpu" if f"{env}_gpu" in PRESETS else "tiny"
