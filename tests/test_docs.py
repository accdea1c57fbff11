"""The documentation runs as written: README.md, docs/*.md and the tutorials (docs/tutorials/*.md).

Each document runs in a fresh interpreter, in an empty folder:

* README.md and docs/*.md: their ``python`` blocks, in order;
* tutorials: their ``python`` and ``bash`` blocks in page order; a ``bash`` block runs with
  ``bash -euo pipefail``, with this interpreter's ``medaug`` first on the PATH.

docs/interop.md is run by tests/interop/test_docs.py (with the command line it documents); a
document without Python blocks is skipped.  The site itself (links, references, the gallery) is
built by ``make docs``; the gallery is also checked against the registry by tests/preview/test_gallery.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_ELSEWHERE = {"interop.md"}
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
#: What a bash block of a tutorial becomes in the tutorial's script.
_SHELL = '''import os as _os, subprocess as _sp, sys as _sys
_env = dict(_os.environ, PATH=_os.path.dirname(_sys.executable) + _os.pathsep + _os.environ.get("PATH", ""))
def _bash(block):
    _sp.run(["bash", "-euo", "pipefail", "-c", block], check=True, env=_env)
'''


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def blocks(path: Path) -> list[tuple[str, str]]:
    """(language, code) of the page's python and bash blocks, in page order."""
    return re.findall(r"```(python|bash)\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="error::UserWarning")
    return subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script], cwd=cwd, env=env,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=300)  # any locale


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if python_blocks(p) and p.name not in RUN_ELSEWHERE],
                         ids=lambda p: p.name)
def test_python_blocks_run_as_written(path: Path, tmp_path: Path) -> None:
    script = "\n\n".join(f"# --- {path.name}, block {i}\n{b}" for i, b in enumerate(python_blocks(path)))
    res = _run(script, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.parametrize("path", [p for p in TUTORIALS if blocks(p)], ids=lambda p: p.name)
def test_tutorials_run_as_written(path: Path, tmp_path: Path) -> None:
    parts = [_SHELL]
    for i, (language, code) in enumerate(blocks(path)):
        parts.append(f"# --- {path.name}, block {i}\n" + (code if language == "python" else f"_bash({code!r})"))
    res = _run("\n\n".join(parts), tmp_path)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])


def test_every_tutorial_runs_code_and_is_in_the_site():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in TUTORIALS:
        assert f"tutorials/{path.name}" in nav, path.name
        if path.name != "index.md":
            assert any(lang == "python" for lang, _ in blocks(path)), path.name


def test_the_readme_starts_with_augment_replay_and_invert() -> None:
    first = python_blocks(ROOT / "README.md")[0]
    for call in ("medaug.preset(", "medaug.replay(", "medaug.inverse_of("):
        assert call in first
    assert (ROOT / "docs" / "tta_uncertainty.png").stat().st_size > 10_000  # the picture docs/tta.md shows


@pytest.mark.parametrize("path", [*DOCUMENTS, *TUTORIALS], ids=lambda p: p.name)
def test_code_fences_pair_up(path):
    """A stray fence (a closing ``` right after a closing one) turned the README's next sections into code."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) % 2 == 0, f"{path.name}: an unclosed code block"
    for opening, closing in zip(fences[::2], fences[1::2]):
        assert closing > opening + 1, f"{path.name}: line {opening + 1}: an empty code block (a stray fence?)"
