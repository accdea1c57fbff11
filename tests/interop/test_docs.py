"""The examples of docs/interop.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from medaug.cli.main import main

pytest.importorskip("monai")
pytest.importorskip("torchio")

DOC = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def test_interop_doc_examples_run(tmp_path, monkeypatch):
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    script = "\n\n".join(f"# --- block {i}\n{b}" for i, b in enumerate(blocks))
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "MonaiApplied" in res.stdout and "TorchioApplied" in res.stdout
    command = re.search(r"```\n(medaug expand Dataset500_Heads .*?)\n```", text, re.S).group(1)
    argv = command.replace("\\\n", " ").split()[1:]
    monkeypatch.chdir(tmp_path)  # the command uses the folder the examples wrote
    assert main([*argv, "--quiet"]) == 0
    out = tmp_path / "nnUNet_raw" / "Dataset501_HeadsAug"
    assert (out / "dataset.json").is_file() and (out / "imagesTr" / "head_000_aug001_0001.nii.gz").is_file()
