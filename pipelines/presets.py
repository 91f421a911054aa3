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
    student: str = "keypoints"
    """``keypoints`` or ``pointcloud``: the student ``dexdistill run`` distills."""
    teacher_eval_every: int = 50
    student_eval_every: int = 1
    """Evaluate the student every this many DAgger iterations (and after the last)."""
    eval_episodes: int = 64
    final_eval_episodes: int = 256
    timing_breakdown: bool = True
    """Time one rollout alone (one more compile) to split teacher time into collect/update."""
    description: str = ""

    def env_override_strings(self) -> tuple[str, ...]:
        return tuple(f"{k}={v!r}" for k, v in self.env_overrides)

    def teacher_config(self) -> Any:
        """The ``dexdistill teacher`` settings of this preset."""
        from pipelines.teacher_stage import TeacherStageConfig

        return TeacherStageConfig(
            env=self.env,
            env_overrides=self.env_override_strings(),
            ppo=self.ppo,
            eval_every=self.teacher_eval_every,
            eval_episodes=self.eval_episodes,
            final_eval_episodes=self.final_eval_episodes,
            timing_breakdown=self.timing_breakdown,
        )

    def distill_config(self) -> Any:
        """The ``dexdistill distill`` settings of this preset."""
        from pipelines.distill_stage import DistillStageConfig

        return DistillStageConfig(
            student=self.student,
            dagger=self.dagger,
            eval_every=self.student_eval_every,
            eval_episodes=self.eval_episodes,
            final_eval_episodes=self.final_eval_episodes,
        )


_SMALL_NET = NetworkConfig(actor_hidden=(64, 64), critic_hidden=(128, 128))
_MID_NET = NetworkConfig(actor_hidden=(128, 128), critic_hidden=(256, 256))
_GPU_NET = NetworkConfig(actor_hidden=(256, 256, 128), critic_hidden=(512, 256, 128))


def _manipulation_cpu(
    env: str, overrides: tuple[tuple[str, Any], ...], steps: int, description: str
) -> Preset:
    """The CPU preset shared by the cube tasks: 256 envs on MuJoCo C, curricula in ``overrides``."""
    return Preset(
        env=env,
        env_overrides=overrides,
        ppo=PPOConfig(
            num_timesteps=steps,
            num_envs=256,
            unroll_length=16,
            num_minibatches=4,
            num_epochs=4,
            learning_rate=3e-4,
            lr_schedule="linear",
            discount=0.99,
            entropy_cost=3e-3,
            network=_MID_NET,
        ),
        # 20 iterations stopped a trifinger student mid-climb (0.82x its teacher); 60: 1.06x
        dagger=DAggerConfig(iterations=60, num_envs=128, unroll_length=40, capacity=4096),
        teacher_eval_every=100,
        student_eval_every=4,
        eval_episodes=64,
        final_eval_episodes=128,
        timing_breakdown=False,
        description=description,
    )


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
    "smoke": Preset(
        env="point_mass",
        ppo=PPOConfig(
            num_timesteps=64 * 10 * 100,
            num_envs=64,
            unroll_length=10,
            num_minibatches=4,
            num_epochs=4,
            learning_rate=3e-4,
            discount=0.95,
            network=_SMALL_NET,
        ),
        dagger=DAggerConfig(iterations=6, num_envs=64, unroll_length=40, capacity=1024),
        teacher_eval_every=50,
        eval_episodes=64,
        final_eval_episodes=64,
        description="the whole pipeline in ~1-2 minutes on a CPU (tests, CI notebooks)",
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
        dagger=DAggerConfig(iterations=20, num_envs=64, unroll_length=40, capacity=2048),
        description="valve turning on 2 CPU cores in <= 10 minutes",
    ),
    "quickstart": Preset(
        env="dclaw_valve",
        ppo=PPOConfig(
            num_timesteps=4_500_000,
            num_envs=256,
            unroll_length=10,
            num_minibatches=4,
            num_epochs=4,
            learning_rate=3e-4,
            lr_schedule="linear",
            discount=0.97,
            entropy_cost=0.01,
            network=_SMALL_NET,
        ),
        dagger=DAggerConfig(iterations=16, num_envs=128, unroll_length=20, capacity=2048),
        teacher_eval_every=100,
        student_eval_every=2,
        eval_episodes=64,
        final_eval_episodes=128,
        timing_breakdown=False,
        description="dexdistill run's default: valve teacher + keypoint GRU student, <= 10 min on 2 cores",
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
    "trifinger_cube_cpu": _manipulation_cpu(
        "trifinger_cube",
        (("curriculum.enabled", True),),
        30_000_000,
        "trifinger_cube with the floor -> lifted -> pose curriculum on 2 CPU cores "
        "(teacher <= 60 min)",
    ),
    "hand_cube_cpu": _manipulation_cpu(
        "hand_cube",
        (("goal_mode", "yaw"), ("curriculum.enabled", True)),
        12_000_000,
        "hand_cube, yaw goals with the rotation curriculum on 2 CPU cores (teacher <= 60 min)",
    ),
    "trifinger_cube_gpu": Preset(
        env="trifinger_cube",
        env_overrides=(("curriculum.enabled", True),),
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
        env_overrides=(("curriculum.enabled", True),),
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
