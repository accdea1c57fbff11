"""The review page on a 4-channel (BraTS-style) expansion, in the MSD layout (4D files) and the nnU-Net layout
(one file per channel): every channel is served, named from dataset.json, and the viewer switches between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medaug.cli.main import main as cli_main
from medaug.datasets.decathlon_demo import write_decathlon_task
from medaug.preview.review import ReviewServer

from ._util import call, get_json

NAMES = ["FLAIR", "T1w", "t1gd", "T2w"]


@pytest.fixture(scope="module")
def expansions(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("brats")
    task = write_decathlon_task(root, "BrainTumour", n_train=1, n_test=0, seed=0)
    out = {}
    for layout in ("msd", "nnunet"):
        out[layout] = root / layout
        assert cli_main(["expand", str(task), str(out[layout]), "--preset", "auto", "-n", "1", "--seed", "5",
                         "--layout", layout, "--quiet"]) == 0
    return out


def _plane(srv, sample: str, which: str, channel: int) -> np.ndarray:
    status, _, body = call(srv, f"/api/plane?sample={sample}&which={which}&axis=0&index=12&channel={channel}")
    assert status == 200, body
    return np.frombuffer(body, "<i2")


def test_every_channel_is_served_with_its_name_in_both_layouts(expansions):
    planes = {}
    for layout, folder in expansions.items():
        with ReviewServer(folder, port=0, mode="open") as srv:
            (sample,) = [s["id"] for s in get_json(srv, "/api/samples")["samples"]]
            for which in ("original", "augmented"):
                for c in range(4):
                    meta = get_json(srv, f"/api/meta?sample={sample}&which={which}&channel={c}")
                    assert (meta["channels"], meta["channel"], meta["channel_names"]) == (4, c, NAMES)
                    planes[layout, which, c] = _plane(srv, sample, which, c)
            status, _, _ = call(srv, f"/api/plane?sample={sample}&which=augmented&axis=0&channel=4")
            assert status == 400
    for which in ("original", "augmented"):
        for c in range(4):  # the same seed gives the same augmentation, whichever layout stores it
            np.testing.assert_array_equal(planes["msd", which, c], planes["nnunet", which, c])
        assert len({planes["msd", which, c].tobytes() for c in range(4)}) == 4  # four different sequences


def test_the_viewer_offers_the_named_channels_and_switches(expansions, browser):
    from .test_review_page import stats

    page = browser
    with ReviewServer(expansions["nnunet"], port=0, mode="open") as srv:
        page.open(srv.url)
        page.settle()
        options = page.eval("[...document.querySelectorAll('select option')].map(o => o.textContent)")
        assert [f"{c}: {n}" for c, n in enumerate(NAMES)] == [o for o in options if ":" in o]
        before = stats(page)
        page.eval("const s = [...document.querySelectorAll('select')].find(x => x.options.length === 4 && "
                  "x.options[0].textContent.includes('FLAIR')); s.value = '3'; s.dispatchEvent(new Event('change'));")
        page.settle()
        after = stats(page)
        assert len(after) == len(before) == 2 and all(a["hash"] != b["hash"] for a, b in zip(after, before))
