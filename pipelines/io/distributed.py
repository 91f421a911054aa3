"""Several processes (hosts) running one stage: who writes, and agreeing on decisions.

With ``DEXDISTILL_MULTIHOST=1`` (:func:`pipelines.runtime.setup`) every process runs the
same stage program on its own devices, and the env batch is sharded over the devices of
all of them (``jax.devices()``). Then:

* only the primary process (index 0) writes files: ``config.json``, ``metrics.jsonl``,
  ``eval.json``, the dataset, videos, progress lines (:func:`is_primary`);
* orbax checkpoints are written by all processes together (each its shards, the primary
  the metadata): :class:`pipelines.checkpoints.Checkpointer` is called everywhere;
* a decision one process makes from its own clock (stop at ``max_minutes``) is taken from
  the primary (:func:`agree`), so that every process reaches the same collectives;
* arrays sharded over processes come to the host through :func:`to_host` (an all-gather).

With one process every helper is the plain single-host operation.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def is_primary() -> bool:
    """Whether this process writes the run directory's files (process 0)."""
    return jax.process_index() == 0


def agree(flag: bool) -> bool:
    """The primary process's ``flag`` on every process (``flag`` itself with one)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def to_host(tree: Any) -> Any:
    """``tree`` as numpy arrays on every process; with several processes an all-gather of
    arrays sharded over them (call it on every process)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
