"""``medaug learn-deformations INPUT OUT``: register the cases of a dataset and store their deformation fields."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import add_anonymize_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CSV (image[,label]), a folder with images/ [labels/], a Medical Segmentation "
                        "Decathlon task or an nnU-Net v2 dataset")
    parser.add_argument("output", help="output folder (fields/, manifest.csv; never inside INPUT)")
    parser.add_argument("--reference", metavar="CASE", help="register every case onto this case (a case id or its image path)")
    parser.add_argument("--pairs", type=int, help="number of random (fixed, moving) pairs; with --reference, "
                        "how many cases to register onto it (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per registration (default 300)")
    parser.add_argument("--metric", choices=("auto", "correlation", "meansquares", "mattes"), default="auto")
    parser.add_argument("--deformable", choices=("auto", "demons", "bspline"), default="auto")
    parser.add_argument("--field-size", type=int, default=96, help="largest field size per axis (default 96)")
    parser.add_argument("--channel", type=int, default=0, help="for multi-channel images: the channel that drives the "
                        "registration (default 0); the field moves every channel")
    add_anonymize_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar (and no note when kernels compile)")


def run(args: argparse.Namespace) -> int:
    from ..errors import JobError
    from ..registration.learn import LearnJob, run_learn

    job = LearnJob(str(args.input), str(args.output), args.reference, args.pairs, args.seed, args.time_limit,
                   args.metric, args.deformable, args.field_size, args.anonymize_ids, args.id_salt, args.id_map,
                   channel=args.channel)
    if args.quiet:
        os.environ["MEDAUG_QUIET"] = "1"  # the kernels' compile note, in this process and its workers
    try:
        s = run_learn(job, workers=args.workers, progress=not args.quiet)
    except JobError as exc:
        print(f"medaug learn-deformations: error: {exc}", file=sys.stderr)
        return 1
    print(f"registered {s['registered']} new pair(s); manifest has {s['rows']} field(s), {s['usable']} usable "
          f"(fold-free): {args.output}/manifest.csv ({s['seconds']:.1f} s)")
    return 0
