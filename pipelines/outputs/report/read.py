"""Reading a run directory's outputs for the report: the files, their records, plot names."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from dexdistill.pipelines import rundir

Record = dict[str, Any]

POLICY_COLORS = {"teacher": "tab:orange", "student": "tab:blue"}
MAX_INLINE_TRIALS = 20
"""Longer lists of consecutive-success trials are listed under the evaluation table."""


def read_json(path: Path) -> Any | None:
    """The parsed file, or ``None`` if it is missing or not (yet) valid JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[Record]:
    """One dict per valid line; a torn last line (a stage killed mid-write) is skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


@dataclasses.dataclass
class RunData:
    """Everything the report reads from a run directory (absent inputs are empty/None)."""

    run_dir: Path
    config: dict[str, Any]
    teacher_metrics: list[Record]
    teacher_eval: dict[str, Any] | None
    student_metrics: list[Record]
    student_eval: dict[str, Any] | None
    evals: list[tuple[str, dict[str, Any]]]
    """``(file name, contents)`` of ``DIR/eval/*.json``, sorted by name."""

    @property
    def task(self) -> str | None:
        for section in ("teacher", "distill"):
            cfg = (self.config.get(section) or {}).get("config") or {}
            if isinstance(cfg.get("env"), str):
                return cfg["env"]
        return None


def load_run(run_dir: str | Path) -> RunData:
    """Reads the run directory; never raises on missing or partial files."""
    rd = rundir.RunDir(run_dir)
    config = read_json(rd.config)
    evals = []
    for path in rd.evaluations():
        data = read_json(path)
        if isinstance(data, dict):
            evals.append((path.name, data))
    return RunData(
        run_dir=rd.root,
        config=config if isinstance(config, dict) else {},
        teacher_metrics=read_jsonl(rd.metrics("teacher")),
        teacher_eval=_as_dict(read_json(rd.final_eval("teacher"))),
        student_metrics=read_jsonl(rd.metrics("student")),
        student_eval=_as_dict(read_json(rd.final_eval("student"))),
        evals=evals,
    )


def _as_dict(x: Any) -> dict[str, Any] | None:
    return x if isinstance(x, dict) else None
