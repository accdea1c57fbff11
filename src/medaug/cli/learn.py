"""``medaug learn-deformations INPUT OUT``: register the cases of a dataset and store their deformation fields."""

from __future__ import annotations

import argparse
import sys

from ._common import add_anonymize_arguments, add_output_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CSV (image[,label]), a folder with images/ [labels/], a Medical Segmentation "
                        "Decathlon task or an nnU-Net v2 dataset")
    add_output_argument(parser, "output folder: fields/ and manifest.csv (never inside INPUT)", positional="OUTPUT")
    parser.add_argument("--reference", metavar="CASE", help="register every case onto this case, a case id or its image path (default: none, "
                        "random pairs)")
    parser.add_argument("--pairs", type=int, help="number of random (fixed, moving) pairs; with --reference, "
                        "how many cases to register onto it (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per registration (default 300)")
    parser.add_argument("--metric", choices=("auto", "correlation", "meansquares", "mattes"), default="auto",
                        help="similarity metric (default auto: normalised correlation)")
    parser.add_argument("--deformable", choices=("auto", "demons", "bspline"), default="auto",
                        help="deformable stage after the affine one (default auto: demons, or bspline with mattes)")
    parser.add_argument("--field-size", type=int, default=96, help="largest field size per axis, in voxels (default 96)")
    parser.add_argument("--channel", type=int, default=0, help="for multi-channel images: the channel that drives the "
                        "registration (default 0); the field moves every channel")
    add_anonymize_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..errors import JobError
    from ..registration.learn import LearnJob, run_learn

    job = LearnJob(str(args.input), str(args.out), args.reference, args.pairs, args.seed, args.time_limit,
                   args.metric, args.deformable, args.field_size, args.anonymize_ids, args.id_salt, args.id_map,
                   channel=args.channel)
    try:
        s = run_learn(job, workers=args.workers, progress=not args.quiet)
    except JobError as exc:
        print(f"medaug learn-deformations: error: {exc}", file=sys.stderr)
        return 1
    print(f"registered {s['registered']} new pair(s); manifest has {s['rows']} field(s), {s['usable']} usable "
          f"(fold-free): {args.out}/manifest.csv ({s['seconds']:.1f} s)")
    return 0
