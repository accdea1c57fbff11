"""The worked example of docs/registration.md runs as documented (real MRI from nibabel's test data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_learned_deformations_example_runs(tmp_path):
    picture = tmp_path / "picture.png"
    res = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "learned_deformations.py"), "--out", str(tmp_path / "ex"),
         "--picture", str(picture)],
        capture_output=True, text=True, timeout=240,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "9 pairs registered" in res.stdout and "usable 9" in res.stdout
    assert picture.stat().st_size > 20_000
