"""Fixtures of the review tests: a small expansion folder (2D and 3D phantoms) and a server on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import medaug
from medaug.datasets.expand import ExpandJob, parse_grid, run_expand
from medaug.preview.review import ReviewServer
from medaug.preview.review.browser import CHROMIUM, Chromium, DevTools


@pytest.fixture(scope="module")
def expansion(tmp_path_factory) -> Path:
    """A grid expansion (|rotation| 1, 4, 8 degrees, random noise) of one 2D and one 3D phantom: 6 samples."""
    root = tmp_path_factory.mktemp("review")
    (root / "in" / "images").mkdir(parents=True)
    (root / "in" / "labels").mkdir()
    s3 = medaug.shepp_logan_3d(16, seed=0)
    medaug.save(s3["image"].with_data(s3["image"].array.astype("int16")), root / "in" / "images" / "vol.nii.gz")
    medaug.save(s3["label"], root / "in" / "labels" / "vol.nii.gz")
    s2 = medaug.shepp_logan_2d(32, seed=1)
    medaug.save(s2["image"], root / "in" / "images" / "slice.nii.gz")
    medaug.save(s2["label"], root / "in" / "labels" / "slice.nii.gz")
    job = ExpandJob(str(root / "in"), str(root / "out"), [{"RandomNoise": {"std": [0, 5]}}],
                    grid=parse_grid("rotation=-1|4|8"), seed=3)
    run_expand(job, progress=False)
    return root / "out"


@pytest.fixture
def folder(expansion, tmp_path) -> Path:
    """A fresh copy of the expansion (no verdicts yet)."""
    return Path(shutil.copytree(expansion, tmp_path / "out"))


@pytest.fixture
def server(folder):
    srv = ReviewServer(folder, port=0).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> DevTools:
    """A headless Chromium shared by a module's tests (each test opens its own page)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (tests/preview/ensure_chromium.sh)")
    with Chromium(1280, 800) as page:
        page.send("Network.enable")
        yield page
