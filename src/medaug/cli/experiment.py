"""``medaug experiment``: does augmentation help? Classification and segmentation, in-distribution and under a scanner shift.

Builds a lesion-classification and a lesion-segmentation task from real brain
MRI shipped with nibabel (trained on one source, tested on held-out slices of
it and on the other source), trains the study's CNN and a small U-Net once
per strategy and seed, applies test-time augmentation to the best
segmentation model, and compares every strategy with ``none``: the paired
difference per seed with a 95 % bootstrap interval over test cases and seeds,
and McNemar's test for classification.  Writes ``results.csv``,
``comparisons.csv``, ``results.json``, ``cases.npz``, ``curves.png`` and
``summary.png`` to ``--out``.  ``--quick`` is a small version (a few minutes).
See docs/experiment.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

from ._common import add_output_argument, say

TASKS = "classification,segmentation"
CLASSIFICATION = "none,offline4x,onthefly,offline_random"
SEGMENTATION = "none,offline_random,onthefly,learned"
FULL = {"seeds": "0,1,2,3,4", "size": 64, "epochs": 40, "seg_epochs": 80, "n_test": 1000, "tta_views": 8, "threads": 2}
# a busy shared machine: one training thread (with two, each small operation waits for the other, loaded, core)
QUICK = {"seeds": "0", "size": 32, "epochs": 15, "seg_epochs": 25, "n_test": 500, "tta_views": 4, "threads": 1}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return list(dict.fromkeys(values))


def _strategy_list(text: str) -> list[str]:
    from ..experiment.sources import STRATEGIES

    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in STRATEGIES]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown strategy {', '.join(bad) or '(none given)'}; choose from {', '.join(STRATEGIES)}")
    if "none" not in values:
        raise argparse.ArgumentTypeError("the strategies must include 'none', the reference of every comparison")
    return list(dict.fromkeys(values))


def _task_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in TASKS.split(",")]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown task {', '.join(bad) or '(none given)'}; choose from {TASKS}")
    return list(dict.fromkeys(values))


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a learning rate in (0, 1), got {v}")
    return v


def _size(text: str) -> int:
    v = _positive(text)
    if v % 8:
        raise argparse.ArgumentTypeError(f"expected a multiple of 8, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    q, f = QUICK, FULL
    parser.add_argument("--quick", action="store_true",
                        help=f"small run: {q['size']}x{q['size']}, seed {q['seeds']}, {q['epochs']}/{q['seg_epochs']} "
                             "epochs, a few minutes on 2 cores (default: off, the full study)")
    parser.add_argument("--tasks", type=_task_list, default=None, help=f"comma-separated tasks (default {TASKS})")
    parser.add_argument("--strategies", type=_strategy_list, default=None,
                        help=f"classification strategies, including none (default {CLASSIFICATION})")
    parser.add_argument("--seg-strategies", type=_strategy_list, default=None,
                        help=f"segmentation strategies, including none (default {SEGMENTATION})")
    parser.add_argument("--seeds", type=_int_list, default=None,
                        help=f"comma-separated seeds (default {f['seeds']}; --quick: {q['seeds']})")
    add_output_argument(parser, "output folder", default="medaug-experiment")
    parser.add_argument("--data", default=None, metavar="CSV_or_FOLDER",
                        help="your labelled data instead of the built-in classification task: a CSV with columns "
                             "image,target (target 0/1; an optional split column train/test, else 20 %% is held out; default: none)")
    parser.add_argument("--train-source", choices=("t1", "epi"), default="t1",
                        help="the MRI source the networks train on; the other one is the scanner shift (default t1)")
    parser.add_argument("--size", type=_size, default=None,
                        help=f"image height and width in pixels, a multiple of 8 (default {f['size']}; --quick: {q['size']})")
    parser.add_argument("--epochs", type=_positive, default=None,
                        help=f"classification epochs of N images (default {f['epochs']}; --quick: {q['epochs']})")
    parser.add_argument("--seg-epochs", type=_positive, default=None,
                        help=f"segmentation epochs (default {f['seg_epochs']}; --quick: {q['seg_epochs']})")
    parser.add_argument("--n-train", type=_positive, default=500, help="classification training cases (default 500)")
    parser.add_argument("--seg-n-train", type=_positive, default=40, help="segmentation training cases (default 40)")
    parser.add_argument("--n-test", type=_positive, default=None,
                        help=f"cases in each test set, in-distribution and shift (default {f['n_test']}; "
                             f"--quick: {q['n_test']})")
    parser.add_argument("--batch-size", type=_positive, default=32, help="classification batch size (default 32)")
    parser.add_argument("--seg-batch-size", type=_positive, default=8, help="segmentation batch size (default 8)")
    parser.add_argument("--lr", type=_rate, default=2e-4, help="classification learning rate (default 2e-4)")
    parser.add_argument("--seg-lr", type=_rate, default=1e-3, help="segmentation learning rate (default 1e-3)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="optimizer (default adam)")
    parser.add_argument("--preset", default="mri", help="preset of the random strategies (default mri)")
    parser.add_argument("--copies", type=_positive, default=3, help="random copies per image for offline_random (default 3: 4N)")
    parser.add_argument("--tta-views", type=_positive, default=None,
                        help=f"test-time augmentation views, 1 for none (default {f['tta_views']}; --quick: {q['tta_views']})")
    parser.add_argument("--bootstrap", type=_positive, default=10_000, help="bootstrap replicates (default 10000)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help=f"torch threads for training (default {f['threads']}; --quick: {q['threads']})")
    parser.add_argument("--workers", type=int, default=1, choices=(0, 1, 2),
                        help="augmentation worker processes of the on-the-fly strategies (default 1)")
    parser.add_argument("--stats-only", action="store_true",
                        help="train nothing: the statistics, tables and figures of the runs --out already holds "
                             "(e.g. of an interrupted run, on the seeds it finished; default: off)")
    parser.add_argument("--no-progress", action="store_true", help="deprecated spelling of --quiet (default: off)")


class Resolved(NamedTuple):
    """The effective choices of one invocation."""

    tasks: list[str]
    classification: list[str]
    segmentation: list[str]
    seeds: list[int]
    size: int
    epochs: int
    seg_epochs: int
    n_test: int
    tta_views: int
    threads: int


def resolve(args: argparse.Namespace) -> Resolved:
    """The effective values after applying the --quick or full defaults."""
    mode = QUICK if args.quick else FULL
    return Resolved(
        tasks=args.tasks or _task_list(TASKS),
        classification=args.strategies or _strategy_list(CLASSIFICATION),
        segmentation=args.seg_strategies or _strategy_list(SEGMENTATION),
        seeds=args.seeds or _int_list(str(mode["seeds"])),
        size=args.size or int(mode["size"]),
        epochs=args.epochs or int(mode["epochs"]),
        seg_epochs=args.seg_epochs or int(mode["seg_epochs"]),
        n_test=args.n_test or int(mode["n_test"]),
        tta_views=args.tta_views or int(mode["tta_views"]),
        threads=args.threads or int(mode["threads"]),
    )


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..datasets.jobs import check_outside_inputs
    from ..errors import plural
    from ..experiment.data import LesionTaskConfig
    from ..experiment.run import ExperimentSettings, run_experiment
    from ..experiment.train import TrainConfig
    from ..presets import preset_config

    check_outside_inputs(args.out, [args.data])
    v = resolve(args)
    torch.set_num_threads(v.threads)
    preset_config(args.preset)  # unknown preset: a clear error before any work
    common = {"optimizer": args.optimizer, "preset": args.preset, "copies": args.copies, "workers": args.workers,
              "progress": not (args.quiet or args.no_progress)}
    settings = ExperimentSettings(
        tasks=v.tasks,
        strategies={"classification": v.classification, "segmentation": v.segmentation},
        seeds=v.seeds,
        classification=TrainConfig(epochs=v.epochs, batch_size=args.batch_size, lr=args.lr, **common),
        segmentation=TrainConfig(epochs=v.seg_epochs, batch_size=args.seg_batch_size, lr=args.seg_lr, eval_every=10,
                                 **common),
        classification_task=LesionTaskConfig(size=v.size, n_train=args.n_train, n_test=v.n_test, n_shift=v.n_test,
                                             train_source=args.train_source),
        segmentation_task=LesionTaskConfig(size=v.size, n_train=args.seg_n_train, n_test=v.n_test, n_shift=v.n_test,
                                           train_source=args.train_source, positive_fraction=1.0),
        tta_views=v.tta_views,
        n_boot=args.bootstrap,
        data=args.data,
        meta={"command": "medaug experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:])
              if sys.argv[1:2] == ["experiment"] else "medaug experiment", "quick": bool(args.quick)},
    )
    out = Path(args.out)
    say(args, f"medaug experiment: tasks {', '.join(settings.tasks)}; seeds {', '.join(map(str, settings.seeds))}; "
          f"{v.size}x{v.size}; trained on {args.train_source}; {plural(v.threads, 'thread')}; output {out}")
    t0 = time.perf_counter()
    try:
        results, comparisons, paths = run_experiment(settings, out, log=lambda s: print(s, flush=True),
                                                     stats_only=args.stats_only)
    except KeyboardInterrupt:  # the files are written after every run
        raise KeyboardInterrupt(f"interrupted: the runs finished so far are kept in {out}; run the same command "
                                "again to resume") from None
    print(f"\n{plural(len(results), 'run')} in {(time.perf_counter() - t0) / 60:.1f} min; results: {paths['csv']}, "
          f"{paths.get('comparisons', paths['json'])}, {paths['json']}; figures: {paths['png']}"
          + (f", {paths['summary_png']}" if "summary_png" in paths else ""))
    return 0
