"""The whole experiment: both tasks, every strategy and seed, test-time augmentation, statistics, files.

For each seed: build the classification task and train the CNN once per
strategy; build the segmentation task, learn deformation fields between its
training cases (for ``learned``) and train the U-Net once per strategy.  Then
apply test-time augmentation to the segmentation strategy with the best mean
in-distribution Dice, compare every strategy with ``none`` (and TTA with the
same model without it) on both test sets, and write the result files after
every run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.progress import count_line
from ..errors import ParameterError, plural
from ..metrics import jsonable
from .data import LesionTaskConfig, TaskSplits, load_task, make_task
from .report import compare, format_tables, machine, model_path, read_results, summarize, write_results
from .sources import STRATEGIES, learn_fields
from .train import RunResult, TrainConfig, load_network, predict, segmentation_scores, train_run
from .tta import predict_tta

__all__ = ["ExperimentSettings", "run_experiment"]


@dataclass
class ExperimentSettings:
    """Everything that defines a run of ``medaug experiment``.

    Parameters
    ----------
    tasks : list of str
        ``classification`` and/or ``segmentation``.
    strategies : dict
        Per task, the strategies to train (``none`` is the reference of every comparison).
    seeds : list of int
    classification, segmentation : TrainConfig
        Training settings per task.
    classification_task, segmentation_task : LesionTaskConfig
        The data of each task (the segmentation task has a lesion in every case).
    tta_views : int
        Views of test-time augmentation (1: none).
    n_boot : int
        Bootstrap replicates per comparison.
    learned_cases : int
        Training cases registered onto the first for the ``learned`` strategy.
    data : str, optional
        A user's labelled CSV or folder replacing the built-in classification task.
    """

    tasks: list[str]
    strategies: dict[str, list[str]]
    seeds: list[int]
    classification: TrainConfig
    segmentation: TrainConfig
    classification_task: LesionTaskConfig
    segmentation_task: LesionTaskConfig
    tta_views: int = 8
    n_boot: int = 10_000
    learned_cases: int = 8
    data: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("meta")
        return d


def _check(settings: ExperimentSettings) -> None:
    for task, names in settings.strategies.items():
        if "none" not in names:
            raise ParameterError(f"the {task} strategies must include 'none', the reference of every comparison")
        bad = [s for s in names if s not in STRATEGIES]
        if bad:
            raise ParameterError(f"unknown strategy {', '.join(bad)}; choose from {', '.join(STRATEGIES)}")
    if settings.data and "segmentation" in settings.tasks:
        raise ParameterError("--data replaces the classification task only; add --tasks classification")


#: what a resumed run may change: which runs to do, and how they are carried out (not what they compute)
_FREE = {"tasks", "strategies", "seeds", "n_boot", "tta_views"}
_FREE_TRAIN = {"workers", "progress"}


def _design(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide what a run computes (a resumed run must keep them)."""
    d = {k: v for k, v in settings.items() if k not in _FREE}
    for task in ("classification", "segmentation"):
        if isinstance(d.get(task), dict):
            d[task] = {k: v for k, v in d[task].items() if k not in _FREE_TRAIN}
    return json.loads(json.dumps(jsonable(d)))


def _previous(out: Path, settings: ExperimentSettings) -> tuple[dict[str, Any], list[RunResult]]:
    """The meta and runs a previous run with the same design left in ``out`` (nothing when it holds none)."""
    found = read_results(out)
    if found is None:
        return {}, []
    doc, results = found
    before, now = _design(doc.get("settings", {})), _design(settings.to_dict())
    if before != now:
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        raise ParameterError(f"holds a run with other settings ({', '.join(changed)} differ); rerun with the same "
                             "options to resume it, or choose another --out", path=out)
    return doc, results


def run_experiment(settings: ExperimentSettings, out: str | Path, log: Callable[[str], None] = print, *,
                   stats_only: bool = False) -> tuple[list[RunResult], list[dict[str, Any]], dict[str, Path]]:
    """Run the experiment, writing its files to ``out`` after every run; the results, comparisons and file paths.

    A folder that holds runs of the same design (an interrupted or shorter
    run) is resumed: the runs it holds are kept, not trained again.  With
    ``stats_only`` nothing is trained: the statistics and files are made from
    the runs ``out`` holds, on the seeds where both sides of a comparison exist.
    """
    _check(settings)
    out = Path(out)
    prior_meta, prior = _previous(out, settings)
    if stats_only and not prior:
        raise ParameterError("holds no finished run (results.json): nothing to compute statistics on", path=out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    meta = {**settings.meta, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "settings": settings.to_dict(),
            "strategies": {s: STRATEGIES[s] for names in settings.strategies.values() for s in names}}
    if prior_meta:
        meta["earlier"] = [*prior_meta.get("earlier", []),
                           {k: prior_meta.get(k) for k in ("started", "finished", "seconds", "command", "machine")}]
    done = {(r.task, r.strategy, r.seed): r for r in prior}
    results: list[RunResult] = list(prior) if stats_only else []
    wanted = [(task, s, seed) for seed in settings.seeds for task in settings.tasks for s in settings.strategies[task]]
    if prior and not stats_only:
        log(f"resuming: {sum(k in done for k in wanted)} of {plural(len(wanted), 'run')} done in {out}")

    def save(comparisons: list[dict[str, Any]] | None = None) -> dict[str, Path]:
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        return write_results(out, results, meta, comparisons or [])

    def needed(task: str, seed: int) -> bool:
        return any((task, s, seed) not in done for s in settings.strategies[task])

    total = len(wanted) + (len(settings.seeds) if "segmentation" in settings.tasks and settings.tta_views > 1 else 0)
    kept = [0]  # runs taken from the folder: the time left is estimated from the runs trained now

    def counted() -> str:  # "[3 of 12 runs, about 4 min left]" before each trained run's line
        return f"[{count_line(len(results), total, time.perf_counter() - t0, 'runs', earlier=kept[0])}]"

    def run_or_keep(key: tuple[str, str, int], train: Callable[..., RunResult], *args: Any) -> None:
        """The run the folder holds, or ``train(*args)`` logged with the count."""
        if key in done:
            results.append(done[key])
            kept[0] += 1
            return
        results.append(train(*args))
        log(f"  {counted()} {key[0]} {key[1]:>14s} seed {key[2]}: {_shown(results[-1])}")

    user = load_task(settings.data, size=settings.classification_task.size) if settings.data else None
    seg_tests: dict[int, TaskSplits | None] = {}
    for seed in [] if stats_only else settings.seeds:
        if "classification" in settings.tasks:
            splits = None
            if needed("classification", seed):
                splits = user if user is not None else _build(seed, settings.classification_task, "classification", log)
            for strategy in settings.strategies["classification"]:
                run_or_keep(("classification", strategy, seed), _train, "classification", strategy, splits, seed,
                            settings.classification)
                save()
        if "segmentation" in settings.tasks:
            splits = None
            tta_done = any(r.task == "segmentation" and r.strategy.endswith("+tta") and r.seed == seed for r in prior)
            if needed("segmentation", seed) or not tta_done:
                splits = _build(seed, settings.segmentation_task, "segmentation", log)
            fields = None
            if "learned" in settings.strategies["segmentation"] and ("segmentation", "learned", seed) not in done:
                assert splits is not None
                t1 = time.perf_counter()
                fields = learn_fields(splits.train, out / "learned" / f"seed{seed}", cases=settings.learned_cases)
                log(f"  segmentation seed {seed}: {len(fields)} of "
                    f"{plural(settings.learned_cases - 1, 'learned deformation field')} kept (registration improved the match) in {time.perf_counter() - t1:.1f} s")
            for strategy in settings.strategies["segmentation"]:
                run_or_keep(("segmentation", strategy, seed), _train, "segmentation", strategy, splits, seed,
                            settings.segmentation, fields)
                save()
            seg_tests[seed] = splits
    pairs = [(task, s, "none") for task in settings.tasks for s in settings.strategies[task] if s != "none"]
    tta_runs = [r for r in results if r.strategy.endswith("+tta")]
    if seg_tests and settings.tta_views > 1:
        best = _best_segmenter(results)
        log(f"test-time augmentation ({plural(settings.tta_views, 'view')}) on '{best}', the best mean in-distribution Dice")
        for seed, seg_splits in seg_tests.items():
            if seg_splits is None and ("segmentation", f"{best}+tta", seed) not in done:
                seg_splits = _build(seed, settings.segmentation_task, "segmentation", log)
            run_or_keep(("segmentation", f"{best}+tta", seed), _tta_run, results, best, seed, seg_splits, settings, out)
            save()
        pairs.append(("segmentation", f"{best}+tta", best))
    elif tta_runs:  # statistics only: the TTA runs the folder holds
        best = tta_runs[0].strategy[: -len("+tta")]
        pairs.append(("segmentation", f"{best}+tta", best))
    for r in results:
        r.state = None
    t1 = time.perf_counter()
    comparisons = compare(results, pairs, n_boot=settings.n_boot)
    log(f"statistics: {plural(len(comparisons), 'comparison')}, {plural(settings.n_boot, 'bootstrap replicate')} each, "
        f"{time.perf_counter() - t1:.1f} s")
    meta["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = save(comparisons)
    log("")
    log(format_tables(summarize(results), comparisons))
    return results, comparisons, paths


def _build(seed: int, cfg: LesionTaskConfig, task: str, log: Callable[[str], None]) -> TaskSplits:
    t1 = time.perf_counter()
    splits = make_task(seed, cfg)
    n_shift = len(splits.shift) if splits.shift is not None else 0
    log(f"{task} seed {seed}: cases: {len(splits.train)} training, {len(splits.test)} test, {n_shift} shift "
        f"({cfg.size}x{cfg.size}, trained on {cfg.train_source}) in {time.perf_counter() - t1:.1f} s")
    return splits


def _train(task: str, strategy: str, splits: TaskSplits, seed: int, cfg: TrainConfig,
           fields: list[Path] | None = None) -> RunResult:
    return train_run(task, strategy, splits, seed, cfg, fields=fields, keep_state=task == "segmentation")  # type: ignore[arg-type]


def _shown(r: RunResult) -> str:
    values = ", ".join(f"{k} {100 * v:.1f}" if not k.endswith(("hd95", "auc")) else f"{k} {v:.3g}"
                       for k, v in r.metrics.items())
    return f"{values} ({r.seconds:.0f} s)"


def _best_segmenter(results: list[RunResult]) -> str:
    means: dict[str, list[float]] = {}
    for r in results:
        if r.task == "segmentation" and not r.strategy.endswith("+tta"):
            means.setdefault(r.strategy, []).append(r.metrics["test_dice"])
    return max(means, key=lambda s: float(np.mean(means[s])))


def _tta_run(results: list[RunResult], best: str, seed: int, splits: TaskSplits, settings: ExperimentSettings,
             out: Path) -> RunResult:
    t1 = time.perf_counter()
    run = next(r for r in results if r.task == "segmentation" and r.strategy == best and r.seed == seed)
    if run.state is None:
        raise ParameterError(f"the weights of segmentation {best} seed {seed} were not kept "
                             f"({model_path(out, 'segmentation', best, seed)} is missing): test-time augmentation "
                             "needs them; rerun in an empty --out", path=out)
    model = load_network(run, splits.train.images.shape[-1], settings.segmentation)
    metrics: dict[str, float] = {}
    cases: dict[str, np.ndarray] = {}
    tests = {"test": splits.test, **({"shift": splits.shift} if splits.shift is not None else {})}
    for name, data in tests.items():
        prob = predict_tta(lambda b: predict(model, b), data.images, data.spacing, views=settings.tta_views, seed=seed)
        d, h = segmentation_scores(data.masks, prob, data.spacing)
        metrics.update({f"{name}_dice": float(d.mean()), f"{name}_hd95": float(h.mean())})
        cases.update({f"{name}_dice": d, f"{name}_hd95": h})
    return RunResult("segmentation", f"{best}+tta", seed, time.perf_counter() - t1, metrics, cases)
