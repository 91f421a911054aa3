"""Metrics as JSON lines (+ TensorBoard event files) and progress display."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dexdistill.pipelines.io import distributed, files


def _clean(v: Any) -> Any:
    if isinstance(v, bool | str | None):
        return v
    if isinstance(v, int) or (hasattr(v, "dtype") and v.dtype.kind in "iu"):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None


def _parse(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line) if line else None
    except json.JSONDecodeError:
        return None


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with JSON values only (numpy scalars as numbers, non-finite as None)."""
    return {k: _clean(v) for k, v in record.items()}


class MetricsLog:
    """Appends one JSON object per line; can drop lines past a resumed step."""

    def __init__(self, path: str | Path, step_key: str = "iteration", tensorboard: bool = True):
        self.path = Path(path)
        self.writes = distributed.is_primary()  # other processes of a multi-host run: no-op
        tensorboard = tensorboard and self.writes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.step_key = step_key
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(self.path.parent / "tb"))
            except ImportError:  # optional
                self._tb = None

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Removes records with ``step_key > step`` (written after the last checkpoint);
        returns the records kept (none on the processes that do not write)."""
        if not self.writes or not self.path.exists():
            return []
        keep = [r for r in self.read() if r[self.step_key] <= step]
        files.write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))
        return keep

    def write(self, record: dict[str, Any]) -> None:
        if not self.writes:
            return
        record = clean_record(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            step = int(record[self.step_key])
            for k, v in record.items():
                if isinstance(v, float) and k != self.step_key:
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def read(self) -> list[dict[str, Any]]:
        """Every complete record; a line cut short by a kill (the last) is skipped."""
        return read_records(self.path)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The complete records of a ``metrics.jsonl`` (none if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [r for r in map(_parse, path.read_text().splitlines()) if r is not None]


def notebook_tqdm() -> Any | None:
    """tqdm's notebook bar when running in a Jupyter or Colab kernel with ipywidgets (the
    bar needs them), else None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = shell is not None and (
        type(shell).__name__ == "ZMQInteractiveShell" or "google.colab" in sys.modules
    )
    if not kernel:
        return None
    try:
        import ipywidgets  # noqa: F401  (tqdm.notebook draws with them)
        from tqdm.notebook import tqdm as bar
    except ImportError:
        return None
    return bar


class Progress:
    """A tqdm bar on a terminal or in a notebook (Jupyter, Colab); periodic plain lines
    otherwise (CI logs, a notebook without ipywidgets)."""

    def __init__(
        self, total: int, initial: int, desc: str, unit: str = "it", every_s: float = 15.0
    ):
        self.tty = sys.stderr.isatty()
        self.quiet = not distributed.is_primary()  # one progress line per run, not per host
        self.total, self.n, self.desc = total, initial, desc
        notebook = notebook_tqdm()
        bar = notebook or (tqdm if self.tty else None)
        self._bar = (
            bar(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
            if bar is not None and not self.quiet
            else None
        )
        self._every, self._last = every_s, 0.0
        self._t0 = time.perf_counter()
        self._n0 = initial

    def update(self, n: int, **postfix: Any) -> None:
        self.n += n
        text = {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()}
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(text, refresh=False)
            return
        if self.quiet:
            return
        now = time.perf_counter()
        if now - self._last >= self._every or self.n >= self.total:
            self._last = now
            rate = (self.n - self._n0) / max(now - self._t0, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else float("nan")
            items = " ".join(f"{k}={v}" for k, v in text.items())
            print(
                f"[{self.desc}] {self.n}/{self.total} {items} eta={eta:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
