"""Habits the project keeps: the lint rules hold, and the version is written in one place."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import medaug

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e .[dev])")
    res = subprocess.run([ruff, "check", "src", "tests", "benchmarks", "docs/examples"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


def test_the_version_is_the_installed_one_written_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    written = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    assert medaug.__version__ == importlib.metadata.version("medaug") == written
    assert f"## {written}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "__version__ =" not in (ROOT / "src" / "medaug" / "__init__.py").read_text(encoding="utf-8")


def test_no_transform_parameter_is_typed_any() -> None:
    """Every parameter of a registered transform says what it holds (a JSON record may be ``dict[str, Any]``)."""
    import dataclasses

    from medaug.engine.registry import transform_classes

    untyped = sorted(
        f"{name}.{f.name}" for name, cls in transform_classes().items() if dataclasses.is_dataclass(cls)
        for f in dataclasses.fields(cls) if f.init and re.fullmatch(r"(Any|Any \| None|None \| Any)", str(f.type))
    )
    assert not untyped, f"{len(untyped)} transform parameters typed Any: {untyped}"
