"""The worked example of docs/review.md runs as documented: CT, MRI and X-ray review pages, a Turing test, the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from medaug.preview.review.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (tests/preview/ensure_chromium.sh)")
def test_review_example_runs_and_draws_small_pictures(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "review_screenshots.py"), "--out", str(tmp_path / "ex"),
         "--pictures", str(tmp_path / "pics")],
        capture_output=True, encoding="utf-8", timeout=240, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # the tables hold en dashes and degree signs
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("review_ct", "review_mri", "review_xray", "review_turing"):
        png = tmp_path / "pics" / f"{name}.png"
        assert 20_000 < png.stat().st_size < 300_000, name
        # the pictures in docs/ are current: they show what the page shows now (each PNG records the text the page
        # drew on and beside the images: title, captions, slice and window, markers, readout, keys, tools)
        made = PILImage.open(png).text.get("medaug-review")
        assert made and json.loads(made)["panes"], name
        assert PILImage.open(ROOT / "docs" / f"{name}.png").text.get("medaug-review") == made, (
            f"docs/{name}.png is out of date: run docs/examples/review_screenshots.py")
    assert "visual Turing test: 2 reader(s), 18 reading(s)" in res.stdout
    assert "all readers pooled" in res.stdout and "-> Affine |rotation| (deg): keep to" in res.stdout
