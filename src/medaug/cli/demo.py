"""``medaug demo [--out DIR]``: the main job on built-in sample data.

Augments real sample images shipped with pydicom and nibabel (a CT slice in
HU, an MR slice, a 3D T1 MR volume) and a 3D head phantom with its label map,
each several times with its modality preset; writes the augmented files with
a manifest and a preview picture per case, and prints where they are.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._common import add_output_argument, say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_output_argument(parser, "output folder", default="medaug-demo")
    parser.add_argument("-n", type=int, default=4, help="augmented copies per case (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from ..data.io import save
    from ..data.phantoms import shepp_logan_3d
    from ..data.sample_data import sample_paths
    from ..datasets.cases import Case, case_seed, load_case
    from ..datasets.writing import write_csv_atomic, write_item
    from ..errors import plural
    from ..presets import preset
    from ..preview.figures import preview

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = sample_paths()
    phantom = shepp_logan_3d(96, seed=args.seed, spacing=(1.0, 1.0, 2.0))
    originals = out / "originals"
    originals.mkdir(exist_ok=True)
    save(phantom["image"], originals / "phantom.nii.gz")
    save(phantom["label"], originals / "phantom_label.nii.gz")
    cases = [
        (Case("ct_small", paths["ct_small"]), "ct"),
        (Case("mr_small", paths["mr_small"]), "mri"),
        (Case("anatomical_mri", paths["anatomical_mri"]), "mri"),
        (Case("phantom", originals / "phantom.nii.gz", originals / "phantom_label.nii.gz"), "ct"),
    ]
    rows = []
    t0 = time.perf_counter()
    for case, preset_name in cases:
        sample = load_case(case)
        sample.metadata["modality"] = preset_name
        pipeline = preset(preset_name)
        dtypes = {name: img.dtype for name, img in sample.items()}
        outputs = []
        for index in range(args.n):
            seed = case_seed(args.seed, case.case_id, index)
            result = pipeline(sample, seed=seed)
            outputs.append(result)
            rows.append(write_item(result, case, index, seed, out, dtypes, layout="medaug"))
        picture = preview(sample, outputs, out / f"preview_{case.case_id}.png", modality=preset_name,
                          title=f"{case.case_id}: preset '{preset_name}', {plural(args.n, 'augmentation')}")
        say(args, f"{case.case_id:15s} {sample.reference.ndim}D {str(sample.reference.shape):16s} preset {preset_name:4s} -> {picture}")
    write_csv_atomic(out / "manifest.csv", rows)
    print(f"\n{plural(len(rows), 'augmented file')} in {out / 'images'} (labels in {out / 'labels'}), "
          f"parameters in {out / 'manifest.csv'}, {time.perf_counter() - t0:.1f} s")
    return 0
