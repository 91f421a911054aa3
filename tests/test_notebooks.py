"""The notebooks execute top to bottom at smoke scale (what CI runs), and what they made is
checked: each notebook's smoke run is the run an end-to-end test needs, so the suite trains
it once (``check_smoke_run`` in ``test_pipeline.py``, ``check_dagger_smoke_ablation`` in
``test_ablate.py``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_ablate import check_dagger_smoke_ablation
from test_pipeline import check_smoke_run

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CHECKS = {
    "01_quickstart": lambda run_dir, capsys: check_smoke_run(run_dir),
    "02_ablations": check_dagger_smoke_ablation,
}
"""What each notebook's run directory must hold afterwards."""


def test_every_notebook_has_its_check():
    assert sorted(CHECKS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_at_smoke_scale(path, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("DEXDISTILL_NOTEBOOK_SCALE", "smoke")
    monkeypatch.setenv("DEXDISTILL_NOTEBOOK_RUN_DIR", str(run_dir))
    # $DEXDISTILL_CACHE is the tests' compile cache (conftest.py): the notebook finds the
    # programs of the tests' smoke runs there
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "Traceback" not in outputs
    CHECKS[path.stem](run_dir, capsys)
