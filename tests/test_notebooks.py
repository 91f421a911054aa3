"""The notebooks execute top to bottom at smoke scale (what CI runs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_at_smoke_scale(path, tmp_path, monkeypatch):
    monkeypatch.setenv("DEXDISTILL_NOTEBOOK_SCALE", "smoke")
    monkeypatch.setenv("DEXDISTILL_NOTEBOOK_RUN_DIR", str(tmp_path / "run"))
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
