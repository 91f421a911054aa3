"""The resumable, timed iteration loop every training stage runs.

A stage (``teacher_stage``, ``distill_stage``) builds its state and supplies what differs:
one iteration (``step``), what it records after an iteration (``observe``: evaluations,
derived timings), how it checkpoints (``save``) and what its progress line shows
(``postfix``). The loop owns the rest, the same for every stage:

* resuming: restore the latest checkpoint, drop log lines written after it, return the
  stored evaluation of a finished stage (:func:`resume`);
* per iteration: wall-clock time and throughput (``rate_key``), the compile time of the
  first iteration (``compile_s``), the evaluation schedule (``eval_every``, and always the
  last iteration), the checkpoint schedule (``checkpoint_every``, the last iteration, and
  the iteration a ``max_minutes`` limit stops at), one ``metrics.jsonl`` record, progress;
* a time limit every host agrees on (:func:`pipelines.distributed.agree`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dexdistill.pipelines import rundir
from dexdistill.pipelines.io import distributed
from dexdistill.pipelines.io.checkpoints import Checkpointer
from dexdistill.pipelines.io.logs import MetricsLog, Progress


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long a stage runs and when it evaluates and checkpoints."""

    name: str
    """The stage's name in messages and progress lines (``teacher``, ``distill``)."""
    total: int
    """Iterations of a complete stage."""
    eval_every: int
    """Evaluate every this many iterations and at the last (0: never in the loop)."""
    checkpoint_every: int
    """Checkpoint every this many iterations (0: only at the end or the time limit)."""
    max_minutes: float
    """Stop (with a checkpoint) after the iteration that passes this many minutes (0: none)."""
    rate_key: str
    """Name of the per-iteration throughput in the log (``env_steps_per_s`` ...)."""
    work_per_iteration: int
    """Units of ``rate_key`` one iteration does (env steps, labelled samples)."""


@dataclasses.dataclass
class LoopResult:
    """Where the loop ended: the state, the iterations done, whether the stage is complete."""

    state: Any
    iteration: int
    finished: bool


def resume(
    name: str, stage_dir: Path, ckpt: Checkpointer, log: MetricsLog, template: Any
) -> tuple[Any, dict[str, Any] | None, dict[str, Any] | None]:
    """``(state, checkpoint meta or None, stored final evaluation or None)``.

    With a checkpoint, the state is restored into ``template``'s structure and shardings
    and the log is cut after its iteration; a finished stage with an ``eval.json``
    returns that evaluation (nothing left to do)."""
    if ckpt.latest_step() is None:
        return template, None, None
    state, meta = ckpt.restore(template)
    kept = log.truncate_after(int(meta["iteration"]))
    if "record" in meta and (not kept or kept[-1][log.step_key] < meta["iteration"]):
        log.write(meta["record"])  # killed after the checkpoint, before its log line
    final = rundir.RunDir(stage_dir.parent).final_eval(stage_dir.name)
    if meta.get("finished") and final.exists():
        print(f"{name}: already finished at iteration {meta['iteration']}; nothing to do")
        return state, meta, json.loads(final.read_text())
    print(f"{name}: resuming from iteration {meta['iteration']}")
    return state, meta, None


def run(
    cfg: LoopConfig,
    state: Any,
    start: int,
    log: MetricsLog,
    step: Callable[[Any, int], tuple[Any, dict[str, Any]]],
    save: Callable[[Any, int, bool, dict[str, Any]], None],
    observe: Callable[[Any, int, bool, dict[str, Any]], None] = lambda *a: None,
    postfix: Callable[[Any, dict[str, Any]], dict[str, Any]] = lambda s, r: {},
) -> LoopResult:
    """Runs iterations ``start + 1 .. cfg.total`` (or until the time limit).

    ``step(state, i) -> (state, record)`` runs iteration ``i`` (0-based) and returns its
    metrics (raising on non-finite losses); ``observe(state, i, eval_due, record)`` adds
    to the record after timing (evaluations when ``eval_due``); ``save(state, i, finished,
    record)`` checkpoints (and may add to the record; it stores the record in the
    checkpoint's meta as ``record``, so a kill between the checkpoint and the log line loses
    nothing: :func:`resume` writes it back); ``postfix(state, record)`` is the
    progress line's extra fields.
    """
    progress = Progress(cfg.total, start, cfg.name)
    t_start = time.perf_counter()
    i, finished = start, start >= cfg.total
    while i < cfg.total:
        t0 = time.perf_counter()
        state, metrics = step(state, i)
        dt = time.perf_counter() - t0
        i += 1
        record: dict[str, Any] = {"iteration": i, **metrics, "iteration_s": dt}
        record[cfg.rate_key] = cfg.work_per_iteration / dt
        if i == start + 1:
            record["compile_s"] = dt  # the first call: compile + one iteration
        eval_due = bool(cfg.eval_every) and (i % cfg.eval_every == 0 or i == cfg.total)
        observe(state, i, eval_due, record)
        elapsed = time.perf_counter() - t_start
        out_of_time = distributed.agree(cfg.max_minutes > 0 and elapsed > 60 * cfg.max_minutes)
        due = bool(cfg.checkpoint_every) and i % cfg.checkpoint_every == 0
        if i == cfg.total or out_of_time or due:
            finished = i == cfg.total
            save(state, i, finished, record)
        log.write(record)
        progress.update(1, **postfix(state, record))
        if out_of_time:
            break
    progress.close()
    if not finished:
        print(
            f"{cfg.name}: stopped at iteration {i}/{cfg.total} (max_minutes); "
            "rerun the command to continue"
        )
    return LoopResult(state, i, finished)
