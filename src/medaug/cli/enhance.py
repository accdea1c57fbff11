"""``medaug enhance IN OUT --method M``: CLAHE, N4 bias correction, denoising or unsharp masking.

The output keeps the input's grid (size, spacing, origin, direction) and, for
integer images, its dtype (``--float32`` writes float32 instead).  One line
reports what was done; ``--json`` prints the full report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ImageWriteError, ParameterError
from ._common import add_output_argument

# option destination -> methods it applies to
_APPLIES: dict[str, tuple[str, ...]] = {
    "clip_limit": ("clahe",),
    "tiles": ("clahe",),
    "lo": ("clahe",),
    "hi": ("clahe",),
    "shrink": ("n4",),
    "save_field": ("n4",),
    "no_mask": ("n4",),
    "control_points": ("n4",),
    "iterations": ("n4", "denoise"),
    "denoiser": ("denoise",),
    "time_step": ("denoise",),
    "range_sigma": ("denoise",),
    "strength": ("denoise",),
    "patch_size": ("denoise",),
    "patch_distance": ("denoise",),
    "sigma_mm": ("denoise", "unsharp"),
    "amount": ("unsharp",),
    "threshold": ("unsharp",),
}

_DENOISER_OPTIONS = {
    "iterations": "curvature",
    "time_step": "curvature",
    "sigma_mm": "bilateral",
    "range_sigma": "bilateral",
    "strength": "nlm",
    "patch_size": "nlm",
    "patch_distance": "nlm",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..enhance import DENOISERS, METHODS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "methods:\n" + "\n".join(f"  {k:<8} {v}" for k, v in METHODS.items()) + (
        "\n\nexamples:\n"
        "  medaug enhance ct.dcm -o ct_clahe.nii.gz --method clahe --clip-limit 0.02 --lo -160 --hi 240\n"
        "  medaug enhance t1.nii.gz -o t1_n4.nii.gz --method n4 --shrink 4 --save-field field.nii.gz\n"
        "  medaug enhance xray.png -o xray_dn.png --method denoise --denoiser nlm"
    )
    p.add_argument("input", metavar="IN", help="image file (NIfTI, MetaImage, NRRD, DICOM file or folder, PNG ...)")
    add_output_argument(p, "output file; the format follows the extension", kind="file", positional="OUT")
    p.add_argument("--method", required=True, choices=list(METHODS), help="what to do, see the methods below (required)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: off)")
    p.add_argument("--float32", action="store_true", help="write float32 (default: integer images keep their dtype)")
    g = p.add_argument_group("clahe")
    g.add_argument("--clip-limit", type=float, help="clip limit in (0, 1] (default 0.01)")
    g.add_argument("--tiles", help="tiles per axis: N or N,N[,N] in array order (default 8)")
    g.add_argument("--lo", type=float, help="lower end of the intensity range to equalise, in image units (default: image min)")
    g.add_argument("--hi", type=float, help="upper end of the intensity range to equalise, in image units (default: image max)")
    g = p.add_argument_group("n4")
    g.add_argument("--shrink", type=int, help="shrink factor for the fit (default 4)")
    g.add_argument("--iterations", help="n4: iterations per level, e.g. 50,50,50,50; denoise curvature: N (default 5)")
    g.add_argument("--control-points", type=int, help="control points of the coarsest mesh (default 4)")
    g.add_argument("--no-mask", action="store_true", help="fit everywhere instead of inside Otsu's foreground (default: off)")
    g.add_argument("--save-field", metavar="FIELD", help="also write the estimated bias field, e.g. field.nii.gz (default: none)")
    g = p.add_argument_group("denoise")
    g.add_argument("--denoiser", choices=list(DENOISERS), help="curvature (default), bilateral or nlm")
    g.add_argument("--time-step", type=float, help="curvature: time step (default 0.0625)")
    g.add_argument("--range-sigma", type=float, help="bilateral: intensity sigma (default 3x the estimated noise)")
    g.add_argument("--strength", type=float, help="nlm: filtering strength h (default 0.8x the estimated noise)")
    g.add_argument("--patch-size", type=int, help="nlm: patch size in voxels (default 5)")
    g.add_argument("--patch-distance", type=int, help="nlm: search distance in voxels (default 6)")
    g = p.add_argument_group("unsharp (and bilateral)")
    g.add_argument("--sigma-mm", type=float, help="Gaussian sigma in mm (unsharp default 1; bilateral default 2 voxels)")
    g.add_argument("--amount", type=float, help="unsharp strength (default 0.5)")
    g.add_argument("--threshold", type=float, help="unsharp threshold in image units (default 0)")


def _ints(text: str, name: str) -> list[int]:
    try:
        vals = [int(v) for v in str(text).replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise ParameterError(f"--{name} must be integers separated by commas, got {text!r}") from None
    if not vals:
        raise ParameterError(f"--{name} must be integers separated by commas, got {text!r}")
    return vals


def _check_output(path: str, what: str) -> None:
    from ..data.io import SUPPORTED_FORMATS
    from ..data.io._formats import _extension

    p = Path(path)
    ext = _extension(p)
    if SUPPORTED_FORMATS.get(ext) in (None, "DICOM"):
        raise ImageWriteError(
            f"cannot write {what} as '{ext or p.name}'; use .nii.gz, .nii, .mha, .nrrd, or for 2D .png/.tif", path=path
        )
    if not p.parent.is_dir():
        raise ImageWriteError(f"the folder {p.parent} does not exist; create it first", path=path)


def run(args: argparse.Namespace) -> int:
    from ..data.io import load, save
    from ..enhance import clahe, denoise, n4_bias_correction, unsharp_mask

    method = args.method
    for dest, methods in _APPLIES.items():
        value = getattr(args, dest, None)
        if value not in (None, False) and method not in methods:
            flag = "--" + dest.replace("_", "-")
            raise ParameterError(f"{flag} applies to --method {' or '.join(methods)}, not {method}")
    if args.denoiser is None and method == "denoise":
        args.denoiser = "curvature"
    if method == "denoise":
        for dest, denoiser in _DENOISER_OPTIONS.items():
            if getattr(args, dest) is not None and args.denoiser != denoiser:
                flag = "--" + dest.replace("_", "-")
                raise ParameterError(f"{flag} applies to --denoiser {denoiser}, not {args.denoiser}")
    _check_output(args.out, "the output")
    if args.save_field:
        _check_output(args.save_field, "the field")
    image = load(args.input)
    keep = not args.float32
    field = None
    kw: dict[str, Any]
    if method == "clahe":
        kw = {k: getattr(args, k) for k in ("clip_limit", "lo", "hi") if getattr(args, k) is not None}
        if args.tiles is not None:
            t = _ints(args.tiles, "tiles")
            kw["tiles"] = t[0] if len(t) == 1 else tuple(t)
        out, report = clahe(image, keep_dtype=keep, **kw)
    elif method == "n4":
        kw = {}
        if args.shrink is not None:
            kw["shrink"] = args.shrink
        if args.iterations is not None:
            kw["iterations"] = _ints(args.iterations, "iterations")
        if args.control_points is not None:
            kw["control_points"] = args.control_points
        if args.no_mask:
            kw["mask"] = None
        out, report, field = n4_bias_correction(image, keep_dtype=keep, **kw)
    elif method == "denoise":
        names = ("time_step", "sigma_mm", "range_sigma", "patch_size", "patch_distance")
        kw = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
        if args.strength is not None:
            kw["h"] = args.strength
        if args.iterations is not None:
            it = _ints(args.iterations, "iterations")
            if len(it) != 1:
                raise ParameterError(f"--iterations with --denoiser curvature takes one number, got {args.iterations!r}")
            kw["iterations"] = it[0]
        out, report = denoise(image, args.denoiser, keep_dtype=keep, **kw)
    else:
        kw = {k: getattr(args, k) for k in ("sigma_mm", "amount", "threshold") if getattr(args, k) is not None}
        out, report = unsharp_mask(image, keep_dtype=keep, **kw)
    save(out, args.out)
    if field is not None and args.save_field:
        save(field, args.save_field)
    if args.json:
        d = {"input": str(args.input), "output": str(args.out), **report.to_dict()}
        if field is not None and args.save_field:
            d["field"] = str(args.save_field)
        print(json.dumps(d, indent=2))
    else:
        extra = f" (field: {args.save_field})" if field is not None and args.save_field else ""
        print(f"{args.out}{extra}: {report.one_line()}")
    return 0
