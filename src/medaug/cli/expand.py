"""``medaug expand INPUT OUTPUT``: write N random augmentations (or a parameter grid) of every case."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ._common import (
    add_anonymize_arguments,
    add_channels_argument,
    add_output_argument,
    add_pipeline_arguments,
    pipeline_config_from_args,
    say,
)

CONFIRM_ABOVE = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CSV (image[,label][,target][,case_id]), a folder with images/ [labels/], a "
                        "Medical Segmentation Decathlon task or an nnU-Net v2 dataset")
    add_output_argument(parser, "output folder (never inside INPUT)", positional="OUTPUT")
    add_pipeline_arguments(parser)
    add_channels_argument(parser)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("-n", type=int, help="random augmentations per case (default 4; 0 with --grid)")
    how.add_argument("--grid", metavar="SPEC", help="parameter grid instead of random copies, e.g. "
                     "'scale=0.9:1.1:3,rotation=-10:10:3' (degrees, mm, factors; default: none)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask distributed scheduler address, tcp://host:port (default: none, run locally)")
    parser.add_argument("--include-originals", action="store_true", help="also write each original case (default: off)")
    parser.add_argument("--layout", choices=("same", "medaug", "msd", "nnunet"), default="same",
                        help="output layout (default same: the input's own, so a Decathlon task stays a Decathlon "
                             "task and an nnU-Net dataset stays nnU-Net): medaug = images/ + labels/ in the input's "
                             "format; msd = imagesTr/ + labelsTr/ (.nii.gz, 4D for several channels) + dataset.json; "
                             "nnunet = nnU-Net v2 imagesTr/ (one .nii.gz per channel) + labelsTr/ + dataset.json")
    parser.add_argument("--dataset-name", metavar="DatasetXXX_Name",
                        help="with the msd or nnunet layout: write into OUTPUT/DatasetXXX_Name and name it so in "
                             "dataset.json (default: none)")
    parser.add_argument("--include-test", action="store_true",
                        help="also augment the test images a Decathlon dataset.json lists (unlabelled; written to "
                             "imagesTs/; default: off)")
    parser.add_argument("--keep-identifiers", action="store_true", help="copy the patient ID, study date and study/"
                        "series UIDs of DICOM inputs into the manifest and the output headers (default: nothing "
                        "from a DICOM header reaches the outputs)")
    add_anonymize_arguments(parser)
    parser.add_argument("--yes", action="store_true", help=f"go ahead when the job writes more than {CONFIRM_ABOVE} files (default: off, "
                        "refuse)")


def run(args: argparse.Namespace) -> int:
    from ..datasets.discover import read_cases
    from ..datasets.expand import ExpandJob, parse_grid, run_expand
    from ..errors import JobError, ParameterError, plural

    cases = read_cases(args.input, include_test=args.include_test)
    pipeline = None
    if args.config or args.preset:
        pipeline = pipeline_config_from_args(args, cases[0].channel_names, where=args.input)
    grid = parse_grid(args.grid) if args.grid else []
    n = args.n if args.n is not None else (0 if grid else 4)
    if not grid and n < 1:
        raise ParameterError(f"-n must be at least 1, got {n}")
    if not grid and pipeline is None:
        raise ParameterError("random copies need a pipeline: --preset NAME or --config FILE")
    if pipeline is not None:  # validate before any work; its warnings come once, from the job
        from ..engine.config import pipeline_from_config

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline_from_config(Path(args.config) if args.config else pipeline)  # errors name the config file
    job = ExpandJob(str(args.input), str(args.out), pipeline, n, grid, args.seed, args.include_originals)
    job.layout, job.dataset_name, job.include_test = args.layout, args.dataset_name, args.include_test
    job.channels = args.channels
    job.keep_identifiers = args.keep_identifiers  # run_expand warns
    job.anonymize_ids, job.id_salt, job.id_map = args.anonymize_ids, args.id_salt, args.id_map
    total = len(cases) * job.items_per_case()
    say(args, f"{len(cases)} case(s) x {job.items_per_case()} = {total} output case(s)" + (f" ({plural(len(grid), 'grid point')})" if grid else ""))
    if total > CONFIRM_ABOVE and not args.yes:
        raise ParameterError(f"this writes {plural(total, 'case')} (more than {CONFIRM_ABOVE}); add --yes to go ahead")
    try:
        summary = run_expand(job, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    except JobError as exc:
        print(f"medaug expand: error: {exc}", file=sys.stderr)
        return 1
    where = summary.get("output", args.out)  # OUTPUT/DatasetXXX_Name with --dataset-name
    print(f"wrote {summary['written']} new case(s); manifest has {summary['rows']} row(s): {where}/manifest.csv "
          f"({summary['seconds']:.1f} s)")
    return 0
