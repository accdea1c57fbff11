"""Worked example: learn deformations between real MRI slices and use them as augmentation.

Run from the repository root (after ``make demo`` or ``make test`` created .venv)::

    .venv/bin/python docs/examples/learned_deformations.py --out /tmp/learned-example

It builds a small dataset of 2D "patients" from the real EPI MRI that ships with
nibabel (axial slices 8..17 of example4d.nii.gz: the brain's outline and
ventricles change from slice to slice much as they differ between patients),
with a brain/ventricle label map per slice, then runs the commands a user
would run::

    medaug learn-deformations DATA OUT/fields --reference slice12
    (a pipeline with RandomLearnedDeformation, and one with RandomElastic)

and draws ``docs/learned_deformations.png``: the original slice, four samples
with learned deformations and four with random elastic deformations, the label
contour on each.  It prints the registration time per pair.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import medaug
from medaug.data import sample_data
from medaug.data.grid import Grid
from medaug.data.image import Image

HERE = Path(__file__).resolve().parent


def build_dataset(root: Path) -> list[str]:
    """Slices 8..17 of the EPI volume as 2D NIfTI images with labels (1 brain, 2 dark CSF inside it)."""
    vol = sample_data.epi_mri()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    ids = []
    for k in range(8, 18):
        arr = vol.array[k].astype(np.float32)
        grid = Grid(arr.shape, vol.spacing[:2], vol.origin[:2])
        thr = _otsu(arr)
        brain = ndimage.binary_fill_holes(ndimage.binary_opening(arr > thr, iterations=2))
        lab, n = ndimage.label(brain)
        if n > 1:  # keep the largest component
            brain = lab == (1 + int(np.argmax(ndimage.sum(brain, lab, range(1, n + 1)))))
        inner = ndimage.binary_erosion(brain, iterations=4)
        csf = inner & (arr < np.percentile(arr[inner], 15)) if inner.any() else np.zeros_like(inner)
        label = brain.astype(np.uint8) + csf.astype(np.uint8)
        cid = f"slice{k:02d}"
        medaug.save(Image(arr, grid=grid), root / "images" / f"{cid}.nii.gz")
        medaug.save(Image(label, grid=grid, is_label=True), root / "labels" / f"{cid}.nii.gz")
        ids.append(cid)
    return ids


def _otsu(arr: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(arr))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/learned-example")
    ap.add_argument("--picture", default=str(HERE.parent / "learned_deformations.png"))
    args = ap.parse_args()
    out = Path(args.out)
    data = out / "data"
    build_dataset(data)
    medaug_cmd = [str(Path(sys.executable).with_name("medaug"))]
    t0 = time.perf_counter()
    fields = out / "fields"
    subprocess.run([*medaug_cmd, "learn-deformations", str(data), str(fields), "--reference", "slice12", "--quiet"],
                   check=True)
    wall = time.perf_counter() - t0
    with (fields / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    secs = np.array([float(r["seconds"]) for r in rows])
    print(f"{len(rows)} pairs registered in {wall:.1f} s wall; per pair {secs.mean():.2f} s mean "
          f"({secs.min():.2f}..{secs.max():.2f}); usable {sum(r['usable'] == 'True' for r in rows)}; "
          f"NCC after affine -> deformable: "
          f"{np.mean([float(r['ncc_after_affine']) for r in rows]):.3f} -> {np.mean([float(r['ncc_after']) for r in rows]):.3f}; "
          f"Jacobian {min(float(r['jacobian_min']) for r in rows):.2f}..{max(float(r['jacobian_max']) for r in rows):.2f}")
    case = medaug.Sample(image=medaug.load(data / "images" / "slice15.nii.gz"),
                         label=medaug.load(data / "labels" / "slice15.nii.gz", label=True))
    learned = medaug.pipeline_from_config([{"RandomLearnedDeformation": {"fields": str(fields), "scale": [0.5, 1.0]}}])
    elastic = medaug.pipeline_from_config([{"RandomElastic": {"control_points": 7, "max_displacement": 8.0}}])
    t1 = time.perf_counter()
    a = [learned(case, seed=s) for s in range(4)]
    t_learned = (time.perf_counter() - t1) / 4
    t1 = time.perf_counter()
    b = [elastic(case, seed=s) for s in range(4)]
    t_elastic = (time.perf_counter() - t1) / 4
    print(f"augmentation per sample: learned {1000 * t_learned:.1f} ms, random elastic {1000 * t_elastic:.1f} ms")
    for s in a:
        assert set(s.label.label_values()) <= set(case.label.label_values())
    draw(case, a, b, Path(args.picture))
    print(f"picture: {args.picture}")
    return 0


def draw(case: medaug.Sample, learned: list, elastic: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show(ax, s, title):
        img = s.image.array
        sx, sy = s.image.spacing
        ax.imshow(img, cmap="gray", origin="lower", aspect=sy / sx, vmin=np.percentile(case.image.array, 1),
                  vmax=np.percentile(case.image.array, 99.5))
        ax.contour(s.label.array, levels=[0.5, 1.5], colors=["#ffbf00", "#00c8ff"], linewidths=0.7, origin="lower")
        ax.set_title(title, fontsize=8)
        ax.axis("off")

    fig, axes = plt.subplots(2, 5, figsize=(12, 5.4))
    show(axes[0, 0], case, "original (slice 15)")
    show(axes[1, 0], case, "original (slice 15)")
    for i, s in enumerate(learned):
        p = s.history[1]["params"]
        show(axes[0, i + 1], s, f"learned: {Path(p['field']).name.split('__')[0]} ×{p['scale']:.2f}")
    for i, s in enumerate(elastic):
        p = s.history[1]["params"]
        show(axes[1, i + 1], s, f"random elastic {p['max_displacement']:.1f} mm")
    fig.suptitle("Learned deformations (top: shapes of other slices, registered onto slice 12) vs random elastic (bottom)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
