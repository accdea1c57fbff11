"""``medaug preview IMAGE [--label L] [--preset NAME | --config FILE] [-n 8] [--seed S] -o FILE.png``."""

from __future__ import annotations

import argparse

from ._common import add_anonymize_arguments, add_pipeline_arguments, one_case, pipeline_from_args, pipeline_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file or DICOM series folder")
    parser.add_argument("--label", help="label map on the same grid (drawn as contours)")
    add_pipeline_arguments(parser)
    parser.add_argument("-n", type=int, default=8, help="augmented samples to draw (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", help="named CT window: brain, soft_tissue, lung, bone (default by modality)")
    parser.add_argument("--modality", help="ct, mri, xray or ultrasound (default: the preset's)")
    parser.add_argument("-o", "--out", required=True, help="output PNG")
    add_anonymize_arguments(parser, "OUT")


def run(args: argparse.Namespace) -> int:
    from ..datasets.cases import case_seed, load_case
    from ..datasets.jobs import naming
    from ..errors import ParameterError
    from ..preview.figures import preview

    if args.n < 1:
        raise ParameterError(f"-n must be at least 1, got {args.n}")
    pipeline = pipeline_from_args(args)
    case = one_case(args, args.out)  # the title shows the case id as the manifest has it (a pseudonym if asked)
    sample = load_case(case)
    modality = args.modality or pipeline.modality
    with naming(case.image, pipeline_name(args)):
        outputs = [pipeline(sample, seed=case_seed(args.seed, case.case_id, i)) for i in range(args.n)]
    path = preview(sample, outputs, args.out, modality=modality, window=args.window)
    print(f"wrote {path}")
    return 0
