"""One import name: the wheel holds only ``dexdistill/``, every module imports from it
outside the checkout, and the layers import each other only downwards."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPS = ("envs", "teacher", "student", "distill", "pipelines")


def _packages_on_disk() -> set[str]:
    return {
        "dexdistill." + ".".join(p.parent.relative_to(ROOT).parts)
        for top in TOPS
        for p in (ROOT / top).rglob("__init__.py")
    }


def test_pyproject_lists_every_package_folder() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == _packages_on_disk()
    assert cfg["package-dir"] == {f"dexdistill.{t}": t for t in TOPS}


def _modules(pkg_root: Path) -> list[str]:
    out = []
    for path in sorted(pkg_root.rglob("*.py")):
        parts = path.relative_to(pkg_root.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # a copy: an in-tree build would leave build/ in the checkout
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "runs", "__pycache__", "docs")
    shutil.copytree(ROOT, src, ignore=skip)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-q", "-w", str(out), str(src)], check=True, capture_output=True)
    (path,) = out.glob("dexdistill-*.whl")
    return path


def test_wheel_holds_nothing_but_dexdistill(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"dexdistill"}
    assert all(f"dexdistill/{t}/__init__.py" in names for t in TOPS)
    entry = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry[0]).decode()
    assert "dexdistill = dexdistill.pipelines.cli:main" in text


def test_every_module_imports_from_the_wheel_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    """Unpacked in a folder that also holds a stranger's ``envs/`` (the trap of bare names),
    every module of the wheel imports, and from the wheel, not from the checkout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("raise ImportError('a stranger envs')\n")
    modules = _modules(site / "dexdistill")
    script = (
        "import importlib, sys\n"
        # the checkout's editable install must not answer: only the unpacked wheel may
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        f"site = {str(site)!r}\n"
        f"for name in {modules!r}:\n"
        "    mod = importlib.import_module(name)\n"
        "    assert mod.__file__.startswith(site), (name, mod.__file__)\n"
        "print(len(sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "MUJOCO_GL": "egl"}
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-2000:]


def _project_imports(path: Path) -> set[str]:
    """The project packages (``envs``, ``teacher``, ...) a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] in TOPS:
                found.add(f"bare {parts[0]}")
            if parts[0] == "dexdistill" and len(parts) > 1:
                found.add(parts[1])
    return found


ALLOWED = {
    "envs": {"envs"},
    "teacher": {"envs", "teacher"},
    "student": {"envs", "student"},
    "distill": {"envs", "teacher", "student", "distill"},
    "pipelines": set(TOPS),
}
"""The layer rule (docs/architecture.md): the core never imports ``pipelines``; ``envs``
imports no other project package; ``teacher`` and ``student`` not each other."""


@pytest.mark.parametrize("top", TOPS)
def test_layers_import_only_downwards(top: str) -> None:
    wrong = {}
    for path in (ROOT / top).rglob("*.py"):
        extra = _project_imports(path) - ALLOWED[top]
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert not wrong


def test_nothing_imports_a_bare_top_level_folder() -> None:
    paths = [p for d in (*TOPS, "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    bare = {
        str(p.relative_to(ROOT)): sorted(i for i in _project_imports(p) if i.startswith("bare"))
        for p in paths
    }
    assert not {k: v for k, v in bare.items() if v}


def test_presets_import_without_the_stages_or_their_io():
    """Presets are data: importing them loads no stage, orbax or TFDS."""
    script = (
        "import sys\n"
        "import dexdistill.pipelines.presets\n"
        "heavy = ('orbax', 'tensorflow_datasets', 'dexdistill.pipelines.stages',\n"
        "         'dexdistill.pipelines.io.checkpoints', 'dexdistill.pipelines.outputs')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr
