"""Beta schedules: the probability that the teacher acts at DAgger iteration i.

``beta = 1`` everywhere is behaviour cloning on teacher data; DAgger lets the
student act (beta -> 0) so that it is labelled on the states *it* visits.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from dexdistill.envs.common import checks

Schedule = Literal["constant", "exponential", "linear", "success_gated"]


@dataclasses.dataclass(frozen=True)
class BetaSchedule:
    """How beta evolves over DAgger iterations."""

    kind: Schedule = "exponential"
    """'constant' ('value'), 'exponential' ('decay ** i'), 'linear' (1 -> 0 over
    'horizon' iterations) or 'success_gated' (halve beta whenever the student's success
    rate reaches 'gate' of the teacher's, else keep it)."""
    value: float = 0.0
    """Beta of the 'constant' schedule, in [0, 1]."""
    decay: float = 0.5
    """Per-iteration factor of the 'exponential' schedule (beta = decay ** i), in [0, 1]."""
    horizon: int = 10
    """Iterations over which the 'linear' schedule goes from 1 to 0."""
    gate: float = 0.8
    """'success_gated' halves beta once student success reaches this fraction of the teacher's."""

    def validate(self) -> None:
        checks.check_types(self, "beta.")
        for name in ("value", "decay"):
            checks.require(f"beta.{name}", getattr(self, name), ge=0, le=1)
        checks.require("beta.horizon", self.horizon, ge=1)


def next_beta(
    schedule: BetaSchedule,
    iteration: int,
    previous: float,
    student_success: float,
    teacher_success: float,
) -> float:
    """Beta for ``iteration`` (0-based), given the last beta and evaluation results."""
    if schedule.kind == "constant":
        return schedule.value
    if schedule.kind == "exponential":
        return schedule.decay**iteration
    if schedule.kind == "linear":
        return max(0.0, 1.0 - iteration / schedule.horizon)
    if iteration == 0:
        return 1.0
    ready = student_success >= schedule.gate * teacher_success
    return previous * 0.5 if ready else previous
