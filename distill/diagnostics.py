"""How much a student leans on inputs it should not need (the copycat check).

``proprio`` ends with the last executed action. On teacher-acted DAgger steps that action
came from the privileged teacher, so a student can score well by copying it (Codevilla et
al.'s "copycat" problem in imitation). :func:`last_action_reliance` measures it: the
student's action error to the teacher on stored sequences with that part of ``proprio``
as recorded, zeroed, and shuffled across sequences. A large increase means the student
uses it; then train with ``student.proprio_last_action=none``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jp

from dexdistill.distill import buffer as buffer_lib, fit as fit_lib
from dexdistill.student.networks import StudentNetworks, without_last_action


def _action_error(nets: StudentNetworks, params: Any, seq: dict[str, Any]) -> jax.Array:
    mean, _, _ = fit_lib.unroll(nets, params, seq)
    t_mean = jp.swapaxes(seq["teacher_mean"], 0, 1)
    return jp.mean(jp.sum((mean - t_mean) ** 2, axis=-1))


def _with_proprio(seq: dict[str, Any], fn: Any) -> dict[str, Any]:
    out = dict(seq)
    out["obs"] = {**seq["obs"], "proprio": fn(seq["obs"]["proprio"])}
    if "prefix_obs" in seq:
        out["prefix_obs"] = {**seq["prefix_obs"], "proprio": fn(seq["prefix_obs"]["proprio"])}
    return out


def last_action_reliance(
    nets: StudentNetworks, params: Any, buf: buffer_lib.Buffer, key: jax.Array, n: int = 256
) -> dict[str, jax.Array]:
    """Action error on ``n`` stored sequences: as recorded, last action zeroed, shuffled.

    Returns ``action_error``, ``action_error_last_action_zeroed``,
    ``action_error_last_action_shuffled`` (mean squared error summed over action dims).
    """
    k_sample, k_perm = jax.random.split(key)
    seq = buffer_lib.sample(buf, k_sample, n)
    a = nets.action_size
    perm = jax.random.permutation(k_perm, n)

    def shuffle(p: jax.Array) -> jax.Array:
        last = p[..., -a:][perm]  # another sequence's last actions, same time steps
        return jp.concatenate([p[..., :-a], last], axis=-1)

    return {
        "action_error": _action_error(nets, params, seq),
        "action_error_last_action_zeroed": _action_error(
            nets, params, _with_proprio(seq, lambda p: without_last_action(p, a))
        ),
        "action_error_last_action_shuffled": _action_error(
            nets, params, _with_proprio(seq, shuffle)
        ),
    }
