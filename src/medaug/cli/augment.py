"""``medaug augment IMAGE``: N augmented copies of one case, in its format and geometry, with a manifest."""

from __future__ import annotations

import argparse
import warnings
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
    parser.add_argument("image", help="image file or DICOM series folder")
    parser.add_argument("--label", help="label map on the same grid (default: none)")
    add_pipeline_arguments(parser)
    add_channels_argument(parser)
    parser.add_argument("-n", type=int, default=4, help="number of augmented copies (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_output_argument(parser, "output folder: the copies and manifest.csv (never IMAGE's own folder)")
    parser.add_argument("--keep-identifiers", action="store_true", help="copy the patient ID, study date and study/"
                        "series UIDs of a DICOM input into the manifest and the output headers (default: nothing "
                        "from a DICOM header reaches the outputs)")
    add_anonymize_arguments(parser, "OUT")


def run(args: argparse.Namespace) -> int:
    from ..datasets.anonymize import without_sources
    from ..datasets.cases import case_seed, load_case
    from ..datasets.jobs import check_outside_inputs, naming
    from ..datasets.writing import MANIFEST_COLUMNS, write_csv_atomic, write_item
    from ..errors import ParameterError, plural

    if args.n < 1:
        raise ParameterError(f"-n must be at least 1, got {args.n}")
    if args.anonymize_ids and args.keep_identifiers:
        raise ParameterError("--keep-identifiers copies patient identifiers into the outputs, --anonymize-ids keeps "
                             "them out: choose one")
    check_outside_inputs(args.out, [args.image, args.label], writes=("images", "labels"))
    case = one_case(args, args.out)
    sample = load_case(case, channels=args.channels)
    pipeline = pipeline_from_args(args, sample["image"].channel_names, where=args.image)
    identifiers, columns = None, MANIFEST_COLUMNS
    if args.keep_identifiers:
        from ..data.identifiers import IDENTIFIER_COLUMNS, KEEP_IDENTIFIERS_WARNING, read_identifiers

        warnings.warn(KEEP_IDENTIFIERS_WARNING, stacklevel=1)
        identifiers, columns = read_identifiers(case.image), MANIFEST_COLUMNS + IDENTIFIER_COLUMNS
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    dtypes = {name: img.dtype for name, img in sample.items()}
    rows = []
    for index in range(args.n):
        seed = case_seed(args.seed, case.case_id, index)
        with naming(case.image, pipeline_name(args)):
            out = pipeline(sample, seed=seed)
        row = write_item(out, case, index, seed, outdir, dtypes, layout="medaug", identifiers=identifiers)
        rows.append(without_sources(row) if args.anonymize_ids else row)
    write_csv_atomic(outdir / "manifest.csv", rows, columns)
    print(f"wrote {plural(len(rows), 'augmented copy', 'augmented copies')} of {case.case_id} to {outdir}/ (manifest: {outdir / 'manifest.csv'})")
    return 0
