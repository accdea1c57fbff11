"""``medaug experiment``: does augmentation help? Train the study's CNN with several strategies and seeds.

Builds a balanced lesion-classification task from real brain MRI shipped with
nibabel (or reads your labelled CSV / folder with ``--data``), trains the CNN
of Namozov & Cho once per strategy and seed, and writes ``results.csv``,
``results.json`` and ``curves.png`` (learning curves) to ``--out``, printing a
table with the study's numbers beside ours.  ``--quick`` runs a shortened
version (fewer epochs, one seed) in a few minutes.  See docs/experiment.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_STRATEGIES = "none,offline4x,onthefly,offline_random"
FULL = {"epochs": 40, "seeds": "0,1,2"}
QUICK = {"epochs": 25, "seeds": "0"}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return values


def _strategy_list(text: str) -> list[str]:
    from ..experiment.train import STRATEGIES

    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in STRATEGIES]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown strategy {', '.join(bad) or '(none given)'}; choose from {', '.join(STRATEGIES)}")
    return list(dict.fromkeys(values))


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"short run: {QUICK['epochs']} epochs, seed {QUICK['seeds']} (a few minutes on 2 cores)")
    parser.add_argument("--strategies", type=_strategy_list, default=None,
                        help=f"comma-separated strategies (default {DEFAULT_STRATEGIES})")
    parser.add_argument("--seeds", type=_int_list, default=None,
                        help=f"comma-separated seeds (default {FULL['seeds']}; --quick: {QUICK['seeds']})")
    parser.add_argument("--out", default="medaug-experiment", help="output folder (default ./medaug-experiment)")
    parser.add_argument("--data", default=None, metavar="CSV_or_FOLDER",
                        help="your labelled data instead of the built-in task: a CSV with columns image,target "
                             "(target 0/1; an optional split column train/test, else 20 %% is held out)")
    parser.add_argument("--epochs", type=_positive, default=None,
                        help=f"epochs of N images (default {FULL['epochs']}; --quick: {QUICK['epochs']})")
    parser.add_argument("--size", type=_positive, default=32, help="image height and width, divisible by 8 (default 32)")
    parser.add_argument("--n-train", type=_positive, default=500, help="training cases of the built-in task (default 500)")
    parser.add_argument("--n-test", type=_positive, default=100, help="test cases of the built-in task (default 100)")
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("--lr", type=float, default=2e-4, help="learning rate (default 2e-4)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--preset", default="mri", help="preset for onthefly and offline_random (default mri)")
    parser.add_argument("--copies", type=_positive, default=3, help="random copies per image for offline_random (default 3: 4N)")
    parser.add_argument("--threads", type=_positive, default=2, help="torch threads (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def resolve(args: argparse.Namespace) -> tuple[list[str], list[int], int]:
    """Strategies, seeds and epochs after applying the --quick defaults."""
    mode = QUICK if args.quick else FULL
    strategies = args.strategies or _strategy_list(DEFAULT_STRATEGIES)
    seeds = args.seeds or _int_list(mode["seeds"])
    epochs = args.epochs or int(mode["epochs"])
    return strategies, seeds, epochs


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ParameterError
    from ..experiment.data import LesionTaskConfig, load_task, make_task
    from ..experiment.train import (
        PAPER,
        STRATEGIES,
        TrainConfig,
        format_table,
        machine,
        summarize,
        train_run,
        write_results,
    )
    from ..presets import preset_config

    torch.set_num_threads(args.threads)
    strategies, seeds, epochs = resolve(args)
    if args.size % 8:
        raise ParameterError(f"--size must be divisible by 8, got {args.size}")
    preset_config(args.preset)  # unknown preset: a clear error before any work
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = LesionTaskConfig(size=args.size, n_train=args.n_train, n_test=args.n_test)
    cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                      preset=args.preset, copies=args.copies, progress=not args.no_progress)
    started = datetime.now(timezone.utc)
    meta = {
        "command": "medaug experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["experiment"]
        else "medaug experiment",
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": bool(args.quick),
        "strategies": {s: STRATEGIES[s] for s in strategies},
        "seeds": seeds,
        "data": str(args.data) if args.data else "built-in lesion task (nibabel anatomical.nii + example4d.nii.gz)",
        "task": task.to_dict() if not args.data else {"size": args.size},
        "train": cfg.to_dict(),
    }
    print(f"medaug experiment: strategies {', '.join(strategies)}; seeds {', '.join(map(str, seeds))}; "
          f"{epochs} epochs; {args.threads} threads; output {out}")
    t0 = time.perf_counter()
    user_data = load_task(args.data, size=args.size, seed=0) if args.data else None
    if user_data is not None:
        tr, te = user_data
        print(f"data: {args.data}: {len(tr)} training cases ({int(tr.targets.sum())} positive), "
              f"{len(te)} test cases ({int(te.targets.sum())} positive), {args.size}x{args.size}")
    results = []
    for seed in seeds:
        if user_data is None:
            t1 = time.perf_counter()
            tr, te = make_task(seed, task, progress=not args.no_progress)
            print(f"seed {seed}: built {len(tr)} training and {len(te)} test cases ({args.size}x{args.size}) "
                  f"in {time.perf_counter() - t1:.1f} s")
        for strategy in strategies:
            r = train_run(strategy, tr, te, seed, cfg)
            results.append(r)
            print(f"  {strategy:>14s} seed {seed}: train {100 * r.train_acc:.1f} %, test {100 * r.test_acc:.1f} %, "
                  f"AUC {r.auc:.3f} ({r.seconds:.0f} s)", flush=True)
            meta["seconds"] = round(time.perf_counter() - t0, 1)
            write_results(out, results, meta)  # after every run: partial results survive an interruption
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    meta["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = write_results(out, results, meta)
    print()
    print(format_table(summarize(results)))
    missing = [s for s in PAPER if s not in strategies]
    if missing:
        print(f"(the study's rows for {', '.join(missing)} have no run here)")
    print(f"\n{len(results)} runs in {meta['seconds'] / 60:.1f} min; results: {paths['csv']}, {paths['json']}; "
          f"learning curves: {paths['png']}")
    return 0
