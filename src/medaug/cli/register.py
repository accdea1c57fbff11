"""``medaug register FIXED MOVING --out DIR``: register two images; optionally carry label maps across."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_output_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fixed", help="the image whose grid the result is on")
    parser.add_argument("moving", help="the image that is deformed onto FIXED")
    add_output_argument(parser, "output folder: deformable.nii.gz, registration.json, the moved image")
    parser.add_argument("--apply", nargs="*", default=[], metavar="LABEL",
                        help="label maps in MOVING's space to carry onto FIXED (nearest neighbour), e.g. an atlas "
                        "(default: none)")
    parser.add_argument("--metric", choices=("auto", "correlation", "meansquares", "mattes"), default="auto",
                        help="similarity metric (default auto: normalised correlation)")
    parser.add_argument("--deformable", choices=("auto", "demons", "bspline", "none"), default="auto",
                        help="deformable stage after the affine one (default auto: demons, or bspline with mattes)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds (default 300)")


def run(args: argparse.Namespace) -> int:
    from ..data.image import Image
    from ..data.io import load, save
    from ..data.sample import Sample
    from ..datasets.cases import case_id_from_path
    from ..datasets.jobs import check_outside_inputs
    from ..registration import register

    check_outside_inputs(args.out, [args.fixed, args.moving, *args.apply])
    fixed = load(args.fixed).check_finite()
    moving = load(args.moving).check_finite()
    labels: dict[str, Image] = {}
    for path in args.apply:
        lab = load(path, label=True)
        problem = moving.grid.mismatch(lab.grid)
        if problem:
            from ..errors import GeometryError

            raise GeometryError(f"a label to carry must be on MOVING's grid ({problem})", path=path)
        labels[case_id_from_path(Path(path))] = lab
    result = register(fixed, moving, metric=args.metric, deformable=args.deformable, time_limit=args.time_limit)
    out = Path(args.out)
    saved = result.save(out)
    moved = result.transfer(Sample(image=moving, **labels))
    ext = ".nii.gz"
    save(moved.image.with_data(moved.image.array.astype(moving.dtype, copy=False)) if moving.dtype.kind in "iu" else moved.image,
         out / f"moved{ext}")
    for name in labels:
        save(moved[name], out / f"{name}_on_fixed{ext}")
    print(result.report.summary())
    print(f"wrote {saved['field']}, {saved['record']}, {out / ('moved' + ext)}" + (f" and {len(labels)} label map(s)" if labels else ""))
    return 0 if result.report.usable else 1
