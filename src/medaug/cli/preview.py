"""``medaug preview IMAGE [--label L] [--preset NAME | --config FILE] [-n 8] [--seed S] -o FILE.png``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (
    add_anonymize_arguments,
    add_channels_argument,
    add_output_argument,
    add_pipeline_arguments,
    one_case,
    pipeline_from_args,
    pipeline_name,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file or DICOM series folder, or a dataset (CSV, folder, Decathlon or "
                        "nnU-Net) with --case")
    parser.add_argument("--label", help="label map on the same grid, drawn as contours (default: none)")
    parser.add_argument("--case", help="with a dataset: the case to draw (default: the first)")
    parser.add_argument("--channel", type=int, default=None,
                        help="with a multi-channel image: draw the planes of this channel (default: one column per "
                             "channel)")
    add_pipeline_arguments(parser)
    add_channels_argument(parser)
    parser.add_argument("-n", type=int, default=8, help="augmented samples to draw (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--window", help="named CT window: brain, soft_tissue, lung, bone (default by modality)")
    parser.add_argument("--modality", help="ct, mri, xray or ultrasound (default: the preset's)")
    add_output_argument(parser, "output PNG file", kind="file")
    add_anonymize_arguments(parser, "OUT")


def _case(args: argparse.Namespace):
    """The case to draw: the image (and --label) given, or --case of a dataset."""
    from ..datasets.anonymize import anonymize_cases
    from ..datasets.discover import read_cases
    from ..errors import ParameterError, did_you_mean

    path = Path(args.image)
    dataset = path.suffix.lower() == ".csv" or (path.is_dir() and any(
        (path / d).is_dir() for d in ("images", "imagesTr")))
    if not dataset:
        if args.case:
            raise ParameterError("--case goes with a dataset (a CSV or a dataset folder), not an image", path=path)
        return one_case(args, args.out)  # the title shows the case id as the manifest has it (a pseudonym if asked)
    if args.label:
        raise ParameterError("--label goes with an image; a dataset names its own labels", path=path)
    cases = read_cases(path)
    if args.case is None:
        args.case = cases[0].case_id
    found = [c for c in cases if c.case_id == args.case]
    if not found:
        raise ParameterError(f"no case '{args.case}' in the dataset{did_you_mean(args.case, [c.case_id for c in cases])}",
                             path=path)
    if args.anonymize_ids:
        (case,), _ = anonymize_cases(found[:1], args.out, salt=args.id_salt, id_map=args.id_map)
        return case
    return found[0]


def run(args: argparse.Namespace) -> int:
    from ..datasets.cases import case_seed, load_case
    from ..datasets.jobs import naming
    from ..errors import ParameterError
    from ..preview.figures import preview

    if args.n < 1:
        raise ParameterError(f"-n must be at least 1, got {args.n}")
    case = _case(args)
    sample = load_case(case, channels=args.channels)
    pipeline = pipeline_from_args(args, sample["image"].channel_names, where=args.image)
    modality = args.modality or pipeline.modality
    with naming(case.image, pipeline_name(args)):
        outputs = [pipeline(sample, seed=case_seed(args.seed, case.case_id, i)) for i in range(args.n)]
    path = preview(sample, outputs, args.out, modality=modality, window=args.window, channel=args.channel)
    print(f"wrote {path}")
    return 0
