"""The notebooks' install cell, run as a fresh Colab runtime would: a fresh virtual
environment without the package, the source named in one variable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _install_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "install" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: one cell tagged 'install'"
    return "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_names_a_pinned_source_declared_in_pyproject(path):
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    cell = _install_cell(path)
    line = next(ln for ln in cell.splitlines() if ln.startswith("DEXDISTILL_SOURCE = "))
    default = line.split("=", 1)[1].strip().strip('"')
    assert default.startswith(f"git+{urls['Repository']}@"), default  # pinned: @tag or @commit
    assert '"dexdistill"' not in cell and "'dexdistill'" not in cell, "no bare index name"
    assert _install_cell(NOTEBOOKS[0]) == cell, "every notebook installs the same way"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh venv (no dexdistill, no dependencies) and a wheel of this checkout."""
    root = tmp_path_factory.mktemp("colab")
    src = root / "src"
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "runs", "__pycache__", "docs")
    shutil.copytree(ROOT, src, ignore=skip)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*cmd, "-w", str(root), str(src)], check=True, capture_output=True)
    (wheel,) = root.glob("dexdistill-*.whl")
    venv.create(root / "venv", with_pip=True)
    return root / "venv" / "bin" / "python", wheel


def _run_cell(python: Path, source: str, cwd: Path) -> subprocess.CompletedProcess:
    cell = _install_cell(NOTEBOOKS[0])
    # the dependencies (JAX, MuJoCo, ...) are the test environment's business, not this one's
    env = {**os.environ, "DEXDISTILL_SOURCE": source, "PIP_NO_DEPS": "1", "PYTHONPATH": ""}
    return subprocess.run(
        [str(python), "-c", cell], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_install_cell_installs_the_named_wheel_in_a_fresh_runtime(fresh, tmp_path):
    python, wheel = fresh
    res = _run_cell(python, str(wheel), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    probe = "import importlib.util as u; print(u.find_spec('dexdistill.pipelines').origin)"
    where = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert str(python.parents[1]) in where.stdout, where.stdout + where.stderr
    again = _run_cell(python, "/nowhere/at/all.whl", tmp_path)  # installed: nothing to fetch
    assert again.returncode == 0, again.stderr


def test_an_unreachable_source_fails_with_one_clear_line(tmp_path):
    venv.create(tmp_path / "venv", with_pip=True)
    res = _run_cell(tmp_path / "venv" / "bin" / "python", str(tmp_path / "missing.whl"), tmp_path)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("could not install dexdistill from"), res.stderr
    assert "Traceback" not in res.stderr
