"""``medaug compare A B``: image-quality metrics (PSNR, SSIM, MAE, MSE) or, with ``--labels``,
segmentation metrics per label value (Dice, IoU, Hausdorff, HD95, ASD in mm).

A is the reference.  Both images must be on the same grid.
"""

from __future__ import annotations

import argparse
import json

from ..errors import GeometryError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  medaug compare original.nii.gz denoised.nii.gz\n"
        "  medaug compare ct.dcm ct_clahe.nii.gz --data-range 4000 --json\n"
        "  medaug compare truth_labels.nii.gz predicted_labels.nii.gz --labels"
    )
    p.add_argument("a", metavar="A", help="reference image (or label map with --labels)")
    p.add_argument("b", metavar="B", help="image to compare with A, on the same grid")
    p.add_argument("--labels", action="store_true", help="A and B are label maps: Dice, IoU, Hausdorff, HD95, ASD (mm) per label (default: off)")
    p.add_argument("--label", type=int, action="append", dest="only", metavar="VALUE",
                   help="with --labels: evaluate only this label value, repeatable (default: every label)")
    p.add_argument("--data-range", type=float, help="data range R for PSNR and SSIM, in image units (default: A's max - min)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON, non-finite numbers as \"inf\"/\"nan\" (default: off)")


def _fmt(v: float, digits: int = 4) -> str:
    return "inf" if v == float("inf") else f"{v:.{digits}g}"


def run(args: argparse.Namespace) -> int:
    from ..data.io import load
    from ..errors import ParameterError
    from ..metrics import image_metrics, jsonable, segmentation_metrics

    if args.labels and args.data_range is not None:
        raise ParameterError("--data-range applies to image comparisons, not with --labels")
    if args.only and not args.labels:
        raise ParameterError("--label VALUE needs --labels")
    a = load(args.a, label=args.labels)
    b = load(args.b, label=args.labels)
    problem = a.grid.mismatch(b.grid)
    if problem:
        raise GeometryError(
            f"{args.a} and {args.b} are not on the same grid: {problem}; resample B onto A first "
            "(e.g. Resample(reference=A) in a pipeline)"
        )
    if args.labels:
        per_label = segmentation_metrics(a, b, labels=args.only)
        if args.json:
            print(json.dumps(jsonable({"a": args.a, "b": args.b, "kind": "labels", "spacing": list(a.spacing),
                                       "labels": per_label}), indent=2, allow_nan=False))
            return 0
        if not per_label:
            print("no non-zero label in A or B")
            return 0
        print(
            f"{'label':>5}  {'dice':>7}  {'iou':>7}  {'HD mm':>8}  {'HD95 mm':>8}  {'ASD mm':>8}  "
            f"{'voxels A':>9}  {'voxels B':>9}"
        )
        for value, m in per_label.items():
            print(
                f"{value:>5}  {m['dice']:>7.4f}  {m['iou']:>7.4f}  {_fmt(m['hausdorff_mm']):>8}  {_fmt(m['hd95_mm']):>8}  "
                f"{_fmt(m['asd_mm']):>8}  {m['voxels_a']:>9}  {m['voxels_b']:>9}"
            )
        return 0
    m = image_metrics(a, b, data_range=args.data_range)
    if args.json:
        print(json.dumps(jsonable({"a": args.a, "b": args.b, "kind": "image", **m}), indent=2, allow_nan=False))
        return 0
    source = "given" if m["data_range_source"] == "given" else "A max - min"
    same = "identical images; " if m["psnr"] == float("inf") else ""
    print(
        f"PSNR {_fmt(m['psnr'], 5)} dB ({same}data range {m['data_range']:.6g}, {source}) | SSIM {m['ssim']:.4f} | "
        f"MAE {_fmt(m['mae'])} | MSE {_fmt(m['mse'])}"
    )
    return 0
