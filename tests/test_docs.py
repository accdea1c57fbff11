"""The Python blocks of README.md and docs/*.md run as written (each document in a fresh interpreter, in an empty folder).

docs/interop.md is run by tests/interop/test_docs.py (with the command line it documents); a
document without Python blocks is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_ELSEWHERE = {"interop.md"}
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if python_blocks(p) and p.name not in RUN_ELSEWHERE],
                         ids=lambda p: p.name)
def test_python_blocks_run_as_written(path: Path, tmp_path: Path) -> None:
    script = "\n\n".join(f"# --- {path.name}, block {i}\n{b}" for i, b in enumerate(python_blocks(path)))
    res = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def test_the_readme_starts_with_augment_replay_and_invert() -> None:
    first = python_blocks(ROOT / "README.md")[0]
    for call in ("medaug.preset(", "medaug.replay(", "medaug.inverse_of("):
        assert call in first
    assert (ROOT / "docs" / "tta_uncertainty.png").stat().st_size > 10_000  # the picture docs/tta.md shows
