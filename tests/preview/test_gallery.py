"""The docs' transform gallery against the registry: every transform has one entry and one picture, none stale."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medaug.engine.registry import transform_classes
from medaug.presets.catalog import transform_entries
from medaug.preview.gallery import PAGES, gallery_sample_for, gallery_samples, write_gallery


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    return folder, write_gallery(folder)


def test_every_registered_transform_has_one_entry_and_one_picture(gallery):
    folder, pictures = gallery
    registered = {n for n, c in transform_classes().items() if not c.__module__.startswith("medaug.interop")}
    assert set(pictures) == registered
    assert {p.stem for p in (folder / "img").glob("*.png")} == registered  # no stale picture
    headings: list[str] = []
    for page in PAGES:
        text = (folder / f"{page}.md").read_text(encoding="utf-8")
        names = re.findall(r"^## (\w+)$", text, re.M)
        headings += names
        for name in names:
            assert f"![{name}](img/{name}.png)" in text
    assert sorted(headings) == sorted(registered)  # each once, no stale entry
    index = (folder / "index.md").read_text(encoding="utf-8")
    assert all(f"[{n}](" in index for n in registered)
    assert not list(folder.glob("field_*"))  # the example fields are not left in the site


def test_pictures_are_small_pngs(gallery):
    folder, pictures = gallery
    for path in pictures.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 400_000, path


def test_entries_show_parameters_units_presets_and_rules(gallery):
    folder, _ = gallery
    spatial = (folder / "spatial.md").read_text(encoding="utf-8")
    entry = spatial[spatial.index("## RandomAffine\n"):spatial.index("## RandomCrop\n")]
    assert "| `rotation` | float or list | `0.0` | degrees | [-360, 360] |" in entry
    assert "used by presets: ct, ct-light, mri, mri-heavy, xray, ultrasound" in entry
    assert "- ct: **limited** — \\|rotation\\| <= 10" not in entry  # rules are a list, not a table: no escaping
    assert "- ct: **limited** — |rotation| <= 10 (error" in entry
    intensity = (folder / "intensity.md").read_text(encoding="utf-8")
    assert "- ct: **not allowed**" in intensity[intensity.index("## RandomMotion\n"):]


def test_samples_have_labels_and_each_transform_is_shown_on_a_modality_that_allows_it():
    samples = gallery_samples()
    assert set(samples) == {"ct", "mri", "xray", "ultrasound"}
    for modality, s in samples.items():
        assert s.metadata["modality"] == modality
        assert np.count_nonzero(s.label.array) > 0
    for entry in transform_entries().values():
        assert entry.verdict(gallery_sample_for(entry)).status in ("allowed", "limited", "discouraged"), entry.name
