"""A pytest plugin: per test, XLA compile and trace time (in-process), cache hits, wall-clock.

Where a cold test suite spends its time (docs/history/benchmarks-log-2026-12-01-to-07.md, "The test suite, cold")::

    DEXDISTILL_TEST_CACHE=$(mktemp -d) PYTHONPATH=benchmarks MUJOCO_GL=egl \\
        python -m pytest -q -m "not slow and not gpu" -n 2 -p compile_profile
    python benchmarks/compile_profile.py          # the table, longest tests first

Each test process appends one JSON line per test to ``$COMPILE_PROFILE_DIR/<pid>.jsonl``
(default ``/tmp/compile_profile``): ``wall``, ``cpu`` (this process only), ``compile``
(XLA backend compiles, seconds, and their count ``n``), ``trace``, ``lower``, ``hits``
(persistent-cache hits) and the ``programs`` that took longest to compile. Tests that run
subprocesses show only their wall-clock: the subprocesses compile on their own.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

OUT = os.environ.get("COMPILE_PROFILE_DIR", "/tmp/compile_profile")
_current: dict[str, Any] = {}


def _on_duration(event: str, secs: float, **kwargs: Any) -> None:
    if not _current:
        return
    if event.endswith("backend_compile_duration"):
        _current["compile"] += secs
        _current["n"] += 1
        _current["programs"][kwargs.get("fun_name", "?")] += secs
    elif event.endswith("jaxpr_trace_duration"):
        _current["trace"] += secs
    elif event.endswith("jaxpr_to_mlir_module_duration"):
        _current["lower"] += secs


def _on_event(event: str, **kwargs: Any) -> None:
    if _current and event.endswith("cache_hits"):
        _current["hits"] += 1


def pytest_configure(config: Any) -> None:
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    jax.monitoring.register_event_listener(_on_event)


def _record(nodeid: str, wall: float, cpu: float) -> None:
    top = sorted(_current["programs"].items(), key=lambda kv: -kv[1])[:8]
    row = {k: v for k, v in _current.items() if k != "programs"}
    row.update(test=nodeid, wall=wall, cpu=cpu, programs=dict(top))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{os.getpid()}.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    _current.update(compile=0.0, trace=0.0, lower=0.0, n=0, hits=0)
    _current["programs"] = defaultdict(float)
    t0, c0 = time.time(), time.process_time()
    yield
    _record(item.nodeid, time.time() - t0, time.process_time() - c0)
    _current.clear()


def main(argv: list[str]) -> int:
    """Prints the recorded tests, longest first (``argv[0]``: how many, default 40)."""
    rows = [
        json.loads(ln)
        for path in glob.glob(os.path.join(OUT, "*.jsonl"))
        for ln in Path(path).read_text().splitlines()
    ]
    if not rows:
        print(f"no profile in {OUT}: run pytest with -p compile_profile first", file=sys.stderr)
        return 1
    rows.sort(key=lambda r: -r["wall"])
    total = {k: sum(r[k] for r in rows) for k in ("wall", "compile", "trace", "lower")}
    print(" ".join(f"{k} {v:.0f} s" for k, v in total.items()), f"({len(rows)} tests)")
    print("  wall  compile    n  hits  test")
    for r in rows[: int(argv[0]) if argv else 40]:
        print(f"{r['wall']:6.1f} {r['compile']:8.1f} {r['n']:4d} {r['hits']:5d}  {r['test']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
