"""Tuned per-task presets, all in one place: each one is a plain :class:`RunConfig`.

A preset is the whole ``dexdistill run`` config (teacher, distill and evaluate stage
configs); ``dexdistill teacher`` / ``distill`` take its stage sections. Flags given on the
command line override a preset's fields. ``*_cpu`` presets finish in minutes on 2 CPU
cores; ``*_gpu`` presets are sized for one H100-class GPU. :data:`DESCRIPTIONS` says what
each is for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dexdistill.distill.dagger import DAggerConfig
from dexdistill.distill.fit import FitConfig
from dexdistill.pipelines.configs import (
    DistillStageConfig,
    EvaluateConfig,
    RunConfig,
    TeacherStageConfig,
)
from dexdistill.student.networks import StudentConfig
from dexdistill.teacher.networks import NetworkConfig
from dexdistill.teacher.ppo import PPOConfig

_SMALL_NET = NetworkConfig(actor_hidden=(64, 64), critic_hidden=(128, 128))
_QUICKSTART_NET = NetworkConfig(actor_hidden=(128, 128), critic_hidden=(128, 128))
"""The quickstart teacher's: a 64-64 actor left seed 1 at 0.84 (6.5M and 8M steps); 128-128
gave 0.914 / 0.953 / 0.961 on seeds 0-2 (docs/history/benchmarks-log-2026-12-01-to-07.md, run H)."""
_MID_NET = NetworkConfig(actor_hidden=(128, 128), critic_hidden=(256, 256))
_GPU_NET = NetworkConfig(actor_hidden=(256, 256, 128), critic_hidden=(512, 256, 128))


def _overrides(*items: tuple[str, Any]) -> tuple[str, ...]:
    """Env overrides as the stage configs store them (``KEY=VALUE`` strings)."""
    return tuple(f"{k}={v!r}" for k, v in items)


def _run(teacher: TeacherStageConfig, distill: DistillStageConfig | None = None) -> RunConfig:
    """A preset from its two training stages; the final evaluation matches their size."""
    distill = distill if distill is not None else DistillStageConfig()
    return RunConfig(
        teacher=teacher,
        distill=distill,
        evaluate=EvaluateConfig(episodes=distill.final_eval_episodes),
    )


def _point_mass(timesteps: int, iterations: int, final_episodes: int) -> RunConfig:
    """The point_mass presets (tests, smoke runs): seconds to minutes on a CPU."""
    return _run(
        TeacherStageConfig(
            env="point_mass",
            ppo=PPOConfig(
                num_timesteps=timesteps,
                num_envs=64,
                discount=0.95,
                network=_SMALL_NET,
            ),
            final_eval_episodes=final_episodes,
        ),
        DistillStageConfig(
            dagger=DAggerConfig(
                iterations=iterations, num_envs=64, unroll_length=40, capacity=1024
            ),
            final_eval_episodes=final_episodes,
        ),
    )


def _manipulation_cpu(
    env: str, overrides: tuple[str, ...], steps: int, dagger: DAggerConfig
) -> RunConfig:
    """The CPU preset shared by the cube tasks: 256 envs on MuJoCo C, curricula in ``overrides``."""
    ppo = PPOConfig(
        num_timesteps=steps,
        num_envs=256,
        unroll_length=16,
        lr_schedule="linear",
        discount=0.99,
        entropy_cost=3e-3,
        network=_MID_NET,
    )
    teacher = TeacherStageConfig(
        env=env,
        env_overrides=overrides,
        ppo=ppo,
        eval_every=100,
        final_eval_episodes=128,
        timing_breakdown=False,
    )
    distill = DistillStageConfig(
        dagger=dagger,
        eval_every=4,
        final_eval_episodes=128,
    )
    return _run(teacher, distill)


def _gpu(env: str, overrides: tuple[str, ...], steps: int, num_envs: int = 8192) -> RunConfig:
    """A GPU preset: thousands of envs on MJX, the CPU presets' models and curricula."""
    ppo = PPOConfig(
        num_timesteps=steps,
        num_envs=num_envs,
        unroll_length=16,
        num_minibatches=8,
        num_epochs=5,
        lr_schedule="kl_adaptive",
        discount=0.99,
        entropy_cost=1e-3,
        network=_GPU_NET,
    )
    return _run(TeacherStageConfig(env=env, env_overrides=overrides, ppo=ppo))


_VALVE_GPU = PPOConfig(
    num_timesteps=50_000_000,
    num_envs=4096,
    unroll_length=16,
    num_minibatches=8,
    network=_GPU_NET,
)

_TRIFINGER = _overrides(("curriculum.enabled", True))
# 20 iterations stopped a trifinger student mid-climb (0.82x its teacher); 60 gave
# 1.06 / 0.84 / 0.80x on three seeds, its fit loss still falling. 150 iterations with
# twice the capacity (the last 64 iterations' data) gave 0.97x on the 0.80x seed and
# 0.85 / 0.88 / 0.97x on three seeds; 4x the updates per iteration did not help. A wider
# student (128-128 encoder, 256 GRU, 256-256 head) on the same teachers gave 0.94 / 0.89 /
# 0.98x, for about twice the distill wall-clock (docs/history/benchmarks-log-2026-12-01-to-07.md).
_TRIFINGER_STUDENT = StudentConfig(
    encoder_hidden=(128, 128), memory_size=256, head_hidden=(256, 256)
)
_TRIFINGER_DAGGER = DAggerConfig(
    iterations=150, num_envs=128, unroll_length=40, capacity=8192, student=_TRIFINGER_STUDENT
)
_HAND_DAGGER = DAggerConfig(iterations=60, num_envs=128, unroll_length=40, capacity=4096)
_HAND = _overrides(("curriculum.enabled", True))
"""Dactyl's task: 3-D goals (``goal_mode='full'``, the default) with the rotation curriculum."""
_HAND_YAW = _overrides(("goal_mode", "yaw"), ("curriculum.enabled", True))
"""The named easier level: goals about the palm normal only."""

PRESETS: dict[str, RunConfig] = {
    "tiny": _point_mass(150_000, iterations=10, final_episodes=256),
    # 128K teacher steps: 0.98-1.0 success on seeds 0-5 (64K: 0.67-0.91, seed luck)
    "smoke": _point_mass(64 * 10 * 200, iterations=6, final_episodes=64),
    "dclaw_valve_cpu": _run(
        TeacherStageConfig(
            env="dclaw_valve",
            ppo=PPOConfig(
                num_timesteps=3_000_000,
                network=_SMALL_NET,
            ),
        ),
        DistillStageConfig(
            dagger=DAggerConfig(iterations=20, num_envs=64, unroll_length=40, capacity=2048)
        ),
    ),
    "quickstart": _run(
        TeacherStageConfig(
            env="dclaw_valve",
            ppo=PPOConfig(
                num_timesteps=6_500_000,
                num_envs=256,
                lr_schedule="linear",
                entropy_cost=0.01,
                network=_QUICKSTART_NET,
            ),
            eval_every=100,
            final_eval_episodes=128,
            timing_breakdown=False,
        ),
        DistillStageConfig(
            dagger=DAggerConfig(
                iterations=14,
                num_envs=128,
                unroll_length=20,
                capacity=2048,
                # 4 passes over a full dataset per iteration: the student keeps up with a
                # 0.95+ teacher (32 x 32 reached 0.73 against 0.98 on seed 0)
                fit=FitConfig(num_updates=128, batch_size=64),
            ),
            eval_every=2,
            final_eval_episodes=128,
        ),
    ),
    "dclaw_valve_gpu": _run(TeacherStageConfig(env="dclaw_valve", ppo=_VALVE_GPU)),
    # a Colab TPU has 8 cores: 2048 envs is 256 per core (a multiple of the device count)
    "dclaw_valve_tpu": _run(
        TeacherStageConfig(env="dclaw_valve", ppo=dataclasses.replace(_VALVE_GPU, num_envs=2048))
    ),
    "trifinger_cube_cpu": _manipulation_cpu(
        "trifinger_cube", _TRIFINGER, 30_000_000, _TRIFINGER_DAGGER
    ),
    "hand_cube_cpu": _manipulation_cpu("hand_cube", _HAND, 100_000_000, _HAND_DAGGER),
    "hand_cube_yaw_cpu": _manipulation_cpu("hand_cube", _HAND_YAW, 24_000_000, _HAND_DAGGER),
    "trifinger_cube_gpu": _gpu("trifinger_cube", _TRIFINGER, 200_000_000),
    "hand_cube_gpu": _gpu("hand_cube", _HAND, 300_000_000),
}
"""Every preset by name (``dexdistill run --preset NAME``)."""

DESCRIPTIONS: dict[str, str] = {
    "tiny": "point_mass, learned in ~15 s on a CPU (tests, smoke runs)",
    "smoke": "the whole pipeline in ~1-2 minutes on a CPU (tests, CI notebooks)",
    "dclaw_valve_cpu": "valve turning on 2 CPU cores in <= 10 minutes",
    "quickstart": "dexdistill run's default: valve teacher + keypoint GRU student, "
    "<= 10 min on 2 cores",
    "dclaw_valve_gpu": "valve turning on one GPU",
    "dclaw_valve_tpu": "valve turning on a TPU (8 cores, e.g. Colab's; not yet measured)",
    "trifinger_cube_cpu": "trifinger_cube with the floor -> lifted -> pose curriculum on "
    "2 CPU cores (teacher <= 60 min)",
    "hand_cube_cpu": "hand_cube, Dactyl's 3-D goals with the rotation curriculum on 2 CPU "
    "cores (teacher <= 150 min)",
    "hand_cube_yaw_cpu": "hand_cube, the easier yaw-only goals with the rotation curriculum "
    "on 2 CPU cores (teacher <= 60 min)",
    "trifinger_cube_gpu": "trifinger_cube with its curriculum on one GPU (8192 envs)",
    "hand_cube_gpu": "hand_cube, 3-D goals with the rotation curriculum on one GPU (8192 envs)",
}


def get(name: str) -> RunConfig:
    """The preset ``name``; a one-line error lists the available ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]


def default_for(env: str) -> str:
    """The preset used for ``env`` when none is given."""
    for name in (f"{env}_cpu", "tiny" if env == "point_mass" else ""):
        if name in PRESETS:
            return name
    return f"{env}_gpu" if f"{env}_gpu" in PRESETS else "tiny"


def for_task(env: str, name: str | None = None) -> RunConfig:
    """Preset ``name`` (default: ``env``'s own) with its teacher set to task ``env``.

    A preset of another task keeps its training settings and drops that task's env
    overrides (``--preset quickstart --env point_mass``).
    """
    preset = get(name or default_for(env))
    if preset.teacher.env == env:
        return preset
    teacher = dataclasses.replace(preset.teacher, env=env, env_overrides=())
    return dataclasses.replace(preset, teacher=teacher)
