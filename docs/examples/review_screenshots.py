"""Worked example of docs/review.md: review pages of CT, MRI and X-ray expansions, and a visual Turing test.

Run from the repository root (after ``make test`` created .venv and installed Debian's chromium)::

    .venv/bin/python docs/examples/review_screenshots.py --out /tmp/review-example

It builds three small datasets from the data that ships with medaug's
dependencies (no download):

* ``ct``: pydicom's ``CT_small`` (an axial slice through a vertebra, HU) with a
  label map made by thresholds (1 bone, 2 spinal canal, 3 fat);
* ``mri``: nibabel's 3D T1 ``anatomical.nii``;
* ``xray``: a simulated radiograph, the line integrals of attenuation through a
  3D Shepp-Logan head phantom (front to back), 12-bit;

expands each with its modality preset (``medaug expand --preset ct|mri|xray
--include-originals``), opens the review page in headless Chromium and writes
``docs/review_ct.png``, ``review_mri.png``, ``review_xray.png`` and
``review_turing.png``.  Then two *simulated* readers take the Turing test on
the CT expansion through the page's HTTP API (their answers follow a fixed
rule, to show the summary; they are not a result), and the script prints
``medaug review OUT/ct-expanded --summary --suggest-limits 0.5``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
from scipy import ndimage

import medaug
from medaug.cli.main import main as medaug_main
from medaug.data import sample_data as samples
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.presets import preset_config
from medaug.preview.review import ReviewServer, TuringStore, read_samples, turing_items
from medaug.preview.review.browser import Chromium, DevTools

HERE = Path(__file__).resolve().parent
MAX_BYTES = 300_000


# ---------------------------------------------------------------- data
def ct_case(root: Path) -> None:
    """CT_small in HU with a label map: 1 bone (> 200 HU), 2 the spinal canal (enclosed by bone), 3 fat."""
    ct = samples.ct_small()
    hu = ct.array.astype(np.float32)
    smooth = ndimage.median_filter(hu, 3)
    bone = ndimage.binary_opening(smooth > 200)
    closed = ndimage.binary_closing(bone, iterations=6)
    canal = ndimage.binary_fill_holes(closed) & ~closed  # the hole the vertebra's ring encloses
    bone = ndimage.binary_fill_holes(bone) & ~canal  # with its trabecular inside
    pieces, n = ndimage.label(canal)
    if n:  # the largest enclosed region is the canal
        canal = pieces == 1 + int(np.argmax(ndimage.sum(canal, pieces, range(1, n + 1))))
    fat = ndimage.binary_opening((smooth > -190) & (smooth < -30))
    label = np.zeros(hu.shape, np.uint8)
    label[fat] = 3
    label[canal] = 2
    label[bone] = 1
    medaug.save(ct, root / "images" / "ct_small.nii.gz")
    medaug.save(medaug.Image(label, grid=ct.grid, is_label=True), root / "labels" / "ct_small.nii.gz")


def mri_case(root: Path) -> None:
    medaug.save(samples.anatomical_mri(), root / "images" / "anatomical.nii.gz")


def xray_case(root: Path) -> None:
    """A simulated 12-bit radiograph of a head phantom, 432 x 416 pixels of 0.5 mm.

    Line integrals of attenuation front to back through a 3D Shepp-Logan phantom, with attenuation per
    structure (per mm: skull 0.05, brain 0.02, lesion 0.03, ventricles 0.012: CSF made darker than it is,
    so that the ventricles show), in the log domain as a detector's processing gives it, plus quantum noise.
    """
    phantom = medaug.shepp_logan_3d((432, 128, 416), seed=0, spacing=(0.5, 1.5, 0.5))["label"].array
    mu = np.array([0.0, 0.05, 0.02, 0.012, 0.03], np.float32)[phantom]  # by label: air, skull, brain, CSF, lesion
    path = mu.sum(axis=1) * 1.5  # (z, x): through 128 voxels of 1.5 mm
    rows = np.flipud(4095.0 * path / path.max())  # head up: rows run from superior to inferior
    rng = np.random.default_rng(0)
    image = np.clip(rows + rng.normal(0, 25, rows.shape), 0, 4095).astype(np.int16)
    medaug.save(medaug.Image(image, spacing=(0.5, 0.5)), root / "images" / "phantom_skull.nii.gz")


def expand(root: Path, name: str, make, preset: str, n: int) -> Path:
    data = root / name
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "labels").mkdir(exist_ok=True)
    make(data)
    if not any((data / "labels").iterdir()):
        (data / "labels").rmdir()
    out = root / f"{name}-expanded"
    run_expand(ExpandJob(str(data), str(out), preset_config(preset), n=n, seed=1, include_originals=True),
               progress=False)
    return out


# ---------------------------------------------------------------- pictures
# What the page drew as text, recorded in each PNG (chunk "medaug-review") so that a test can tell whether the
# pictures in docs/ still show what the page shows (tests/preview/test_review_docs.py).  The zoom factor of a
# fitted image depends on the fonts (the header's height), so "px/voxel" is left out.
PAGE_TEXT = """(() => {
  const text = (sel) => [...document.querySelectorAll(sel)].filter((e) => !e.closest('[hidden]'))
    .map((e) => e.textContent.trim());
  return {
    title: text('#sample-title, #item-title'), reveal: text('#reveal'),
    panes: [...document.querySelectorAll('.pane')].map((p) => ({
      caption: p.querySelector('.pane-caption').textContent,
      status: p.querySelector('.pane-status').textContent.replace(/ · [0-9.]+ px\\/voxel$/, ''),
      markers: ['top', 'bottom', 'left', 'right'].map((m) => p.querySelector('.marker-' + m).textContent),
      readout: p.querySelector('.pane-readout').textContent,
    })),
    window: text('button.preset.active'), legend: text('.legend-item'), keys: text('#shortcuts tr'),
  };
})()"""


def save_png(page: DevTools, path: Path) -> None:
    """Write a screenshot of the page with the text it drew (:data:`PAGE_TEXT`) as a PNG text chunk, as a
    256-colour PNG when the full-colour one is larger than 300 KB."""
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("medaug-review", json.dumps(page.eval(PAGE_TEXT), ensure_ascii=False, sort_keys=True))
    picture = PILImage.open(io.BytesIO(page.screenshot())).convert("RGB")
    buf = io.BytesIO()
    picture.save(buf, format="PNG", optimize=True, pnginfo=info)
    if buf.tell() > MAX_BYTES:
        buf = io.BytesIO()
        picture.quantize(256).save(buf, format="PNG", optimize=True, pnginfo=info)
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({buf.tell() // 1000} KB)")


def wheel(page: DevTools, selector: str, clicks: int) -> None:
    """Zoom in (clicks > 0) with the mouse wheel over the centre of the first element matching ``selector``."""
    box = page.eval(f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect(); "
                    "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    for _ in range(abs(clicks)):
        page.mouse("mouseWheel", box[0], box[1], deltaX=0, deltaY=-120 if clicks > 0 else 120)
    page.settle()


def point(page: DevTools, pane: int, fx: float, fy: float) -> None:
    """Move the mouse to the point at fractions (fx, fy) of the width and height of pane number ``pane``."""
    box = page.eval(f"(() => {{ const r = document.querySelectorAll('.pane canvas')[{pane}].getBoundingClientRect(); "
                    f"return [r.x + {fx} * r.width, r.y + {fy} * r.height]; }})()")
    page.mouse("mouseMoved", box[0], box[1])
    page.settle()


def click(page: DevTools, text: str) -> None:
    """Click the tool button labelled ``text``."""
    page.eval(f"[...document.querySelectorAll('button')].find(b => b.textContent === '{text}').click()")
    page.settle()


def screenshots(outputs: dict[str, Path], pictures: Path) -> None:
    pictures.mkdir(parents=True, exist_ok=True)
    with Chromium(1280, 720) as page:
        with ReviewServer(outputs["ct"], port=0, mode="open") as srv:
            page.open(srv.url)
            page.key("ArrowRight")  # the first augmented copy (sample 1 is the original's copy)
            page.settle()
            wheel(page, ".pane canvas", 2)
            point(page, 1, 0.5, 0.3)  # the value there, in HU, in both images
            save_png(page, pictures / "review_ct.png")
        with ReviewServer(outputs["mri"], port=0, mode="open") as srv:
            page.open(srv.url)
            page.key("ArrowRight")
            page.settle()
            page.key("t")  # three planes
            page.settle()
            save_png(page, pictures / "review_mri.png")
        with ReviewServer(outputs["xray"], port=0, mode="open") as srv:
            page.open(srv.url)
            page.key("ArrowRight")
            page.settle()
            click(page, "1:1")
            save_png(page, pictures / "review_xray.png")
        with ReviewServer(outputs["ct"], port=0, mode="turing", reviewer="dr_screenshot") as srv:
            page.open(srv.url)
            click(page, "bone")
            save_png(page, pictures / "review_turing.png")


# ---------------------------------------------------------------- simulated readers
def simulated_readers(folder: Path) -> None:
    """Two simulated readers answer every image of the CT expansion through the page's API.

    Rule (to show the summary, not a finding): an augmented image is spotted when its rotation exceeds the
    reader's threshold or its noise is strong; reader_b also calls the original "augmented".
    """
    manifest = read_samples(folder)
    items, _ = turing_items(manifest)
    for reader, threshold in (("reader_a", 3.0), ("reader_b", 4.5)):
        with ReviewServer(folder, port=0, mode="turing", reviewer=reader) as srv:
            tokens = dict(TuringStore(folder).deck(reader, list(items)))
            for token, key in tokens.items():
                item = items[key]
                if item.kind == "original":
                    spotted = reader == "reader_b"
                else:
                    params = {t["name"]: t.get("params", {}) for t in manifest[item.sample_id].transforms}
                    rotation = abs(float(params.get("Affine", {}).get("rotation", 0.0)))
                    spotted = rotation > threshold or float(params.get("Noise", {}).get("std", 0.0)) > 12
                body = json.dumps({"token": token, "answer": "augmented" if spotted else "real", "confidence": 3})
                request = urllib.request.Request(srv.url + "api/turing/answer", data=body.encode(),
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as res:
                    res.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/review-example", help="work folder (emptied first)")
    ap.add_argument("--pictures", default=str(HERE.parent), help="where the PNGs go (default: docs/)")
    args = ap.parse_args()
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    outputs = {"ct": expand(root, "ct", ct_case, "ct", 8), "mri": expand(root, "mri", mri_case, "mri", 3),
               "xray": expand(root, "xray", xray_case, "xray", 4)}
    screenshots(outputs, Path(args.pictures))
    simulated_readers(outputs["ct"])
    medaug_main(["review", str(outputs["ct"]), "--summary", "--suggest-limits", "0.5"])


if __name__ == "__main__":
    main()
