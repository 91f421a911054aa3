"""Atomic file writes, the package version and the checkout's commit.

Every file a stage writes goes through :func:`write_atomic` (a temporary file in the same
folder, then a rename), so a kill at any moment leaves either the old file or the new one,
never half of one. Only the primary process of a multi-host run writes
(:mod:`pipelines.distributed`). Orbax checkpoints and the TFDS dataset have their own
atomic commits (``pipelines/checkpoints.py``, ``pipelines/dataset.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from dexdistill.pipelines.io import distributed


def _version() -> str:
    try:
        return metadata.version("dexdistill")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "0.1.0"


VERSION = _version()
"""The package version (installed metadata; a plain checkout says ``0.1.0``)."""


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Writes ``path`` through ``write(tmp_path)``, then renames: no reader sees half a file.
    Creates the folder; a no-op on the other processes of a multi-host run."""
    if not distributed.is_primary():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """``text`` to ``path``, atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON to ``path``, atomically (:func:`write_atomic`)."""
    write_text(path, json.dumps(data, indent=2))


def git_commit() -> str | None:
    """The checkout's commit, if the code runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
