"""Training and evaluation of one network with one strategy and seed, for both tasks.

* ``classification``: the study's CNN, cross-entropy, test accuracy and AUC.
* ``segmentation``: a small U-Net, soft Dice + binary cross-entropy, per-case
  Dice and HD95 (medaug's own :func:`medaug.metrics.segmentation_metrics`).

Every strategy trains for the same number of optimiser steps
(``epochs x ceil(N / batch)``, N = original training cases).  Train accuracy
is measured on the original (unaugmented) training images in evaluation mode.
Curves are evaluated every ``eval_every`` epochs and at the last one; the
final numbers are those of the last epoch (no early stopping on the test set).
Both test sets are evaluated: ``test`` (held-out slices of the training
source) and ``shift`` (the other source).

Speed (profiled; see docs/experiment.md): the networks run in channels-last
memory format, Adam is the fused CPU implementation, evaluation runs under
``torch.inference_mode`` in large batches and only every ``eval_every``
epochs, and on-the-fly augmentation runs in worker processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError
from .data import TaskData, TaskSplits
from .model import NamozovCNN, UNet2D
from .sources import training_source

__all__ = ["TASKS", "RunResult", "TrainConfig", "accuracy", "auc", "predict", "segmentation_scores", "train_run"]

Task = Literal["classification", "segmentation"]
TASKS: tuple[str, str] = ("classification", "segmentation")


@dataclass
class TrainConfig:
    """Training settings of one task, shared by every strategy.

    Parameters
    ----------
    epochs, batch_size, lr, optimizer, weight_decay
        Optimisation: epochs of N images, batch size, learning rate, ``adam`` or ``sgd`` (momentum 0.9).
    dropout, hidden
        The CNN's dense layers (classification).
    width
        The U-Net's first-level channels (segmentation).
    preset, copies
        Preset of the random strategies; random copies per image for ``offline_random``.
    workers
        Augmentation worker processes for the on-the-fly strategies (0: in this process).
    eval_every, curve_cases
        Evaluate the learning curves every this many epochs on the first
        ``curve_cases`` cases of each test set (the final numbers use every case).
    max_steps
        Stop after this many optimiser steps (tests).
    progress
        Show a progress bar.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    dropout: float = 0.5
    hidden: int = 2048
    width: int = 16
    preset: str = "mri"
    copies: int = 3
    workers: int = 1
    eval_every: int = 5
    curve_cases: int = 200
    max_steps: int | None = None
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    """One trained network: summary metrics, per-case values for the paired statistics, curves, weights."""

    task: str
    strategy: str
    seed: int
    seconds: float
    metrics: dict[str, float]
    cases: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None

    def row(self) -> dict[str, Any]:
        return {"task": self.task, "strategy": self.strategy, "seed": self.seed,
                **{k: round(v, 4) for k, v in self.metrics.items()}, "seconds": round(self.seconds, 1)}


# --------------------------------------------------------------------------- metrics
def auc(scores: Sequence[float] | np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann-Whitney) formula, ties sharing their mean rank.

    >>> auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(targets).ravel().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, np.float64)
    sorted_s = s[order]
    # average ranks over runs of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # 1-based mean rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy(pred: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(targets)))


def segmentation_scores(truth: np.ndarray, prob: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-case Dice and HD95 (mm) of the maps ``prob > 0.5`` against ``truth``, by medaug's metrics.

    A case whose prediction is empty has no surface distance; its HD95 is
    counted as the field's diagonal (the largest distance possible in it).  A
    prediction that covers the whole field is measured as any other (its
    surface is the field's border).

    Examples
    --------
    >>> t = np.zeros((1, 8, 8), np.uint8); t[0, 2:5, 2:5] = 1
    >>> d, h = segmentation_scores(t, t.astype(float), (1.0, 1.0))
    >>> float(d[0]), float(h[0])
    (1.0, 0.0)
    """
    from ..metrics import segmentation_metrics

    truth = np.asarray(truth)
    pred = (np.asarray(prob) > 0.5).astype(np.uint8)
    cap = float(np.hypot(*(np.asarray(truth.shape[1:]) * np.asarray(spacing[::-1]))))
    dices = np.empty(truth.shape[0])
    hd95 = np.empty(truth.shape[0])
    sp = [float(s) for s in spacing]
    for i in range(truth.shape[0]):
        m = segmentation_metrics(truth[i], pred[i], labels=[1], spacing=sp)[1]
        dices[i] = m["dice"]
        hd95[i] = m["hd95_mm"] if np.isfinite(m["hd95_mm"]) else cap
    return dices, hd95


# --------------------------------------------------------------------------- networks
def _network(task: Task, size: int, cfg: TrainConfig) -> nn.Module:
    if task == "classification":
        return NamozovCNN(size=size, hidden=cfg.hidden, dropout=cfg.dropout)
    return UNet2D(width=cfg.width, depth=3)


def _dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice over the batch plus binary cross-entropy."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    dice = (2 * inter + 1.0) / (p.sum() + target.sum() + 1.0)
    return (1.0 - dice) + nn.functional.binary_cross_entropy_with_logits(logits, target)


@torch.inference_mode()
def predict(model: nn.Module, images: np.ndarray, batch: int = 250) -> np.ndarray:
    """Probabilities: of class 1 per image (classifier, ``(n,)``) or of the lesion per pixel (U-Net, ``(n, h, w)``)."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).unsqueeze(1)
    out = []
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch].contiguous(memory_format=torch.channels_last))
        out.append(torch.sigmoid(logits[:, 0]) if isinstance(model, UNet2D) else torch.softmax(logits, dim=1)[:, 1])
    return torch.cat(out).numpy().astype(np.float64)


def _evaluate(task: Task, model: nn.Module, data: TaskData, name: str, *,
              curve: int | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Summary metrics (``{name}_acc`` ...) and per-case arrays of one test set; a curve point on its first ``curve`` cases."""
    k = len(data) if curve is None else min(curve, len(data))
    prob = predict(model, data.images[:k])
    if task == "classification":
        correct = (prob > 0.5) == data.targets[:k].astype(bool)
        metrics = {f"{name}_acc": float(correct.mean())}
        if curve is not None:
            return metrics, {}
        metrics[f"{name}_auc"] = auc(prob, data.targets)
        return metrics, {f"{name}_correct": correct, f"{name}_prob": prob.astype(np.float32)}
    if curve is not None:  # curves: Dice only
        from ..metrics import dice

        return {f"{name}_dice": float(np.mean([dice(t, p) for t, p in zip(data.masks[:k], prob > 0.5)]))}, {}
    d, h = segmentation_scores(data.masks, prob, data.spacing)
    return ({f"{name}_dice": float(d.mean()), f"{name}_hd95": float(h.mean())},
            {f"{name}_dice": d, f"{name}_hd95": h})


# --------------------------------------------------------------------------- one run
def train_run(task: Task, strategy: str, splits: TaskSplits, seed: int, cfg: TrainConfig, *,
              fields: Sequence[str | Path] | None = None, keep_state: bool = False) -> RunResult:
    """Train one network with one strategy and seed; evaluate it on the test and shift sets.

    Parameters
    ----------
    task : {"classification", "segmentation"}
    strategy : str
        See :data:`medaug.experiment.sources.STRATEGIES`.
    splits : TaskSplits
        The training cases and the test (and shift) sets.
    seed : int
        Seeds the initialisation, batch order, dropout and augmentation.
    cfg : TrainConfig
    fields : list of path, optional
        Learned deformation fields (strategy ``learned``, see :func:`.sources.learn_fields`).
    keep_state : bool
        Keep the trained weights in the result (for test-time augmentation).
    """
    if task not in TASKS:
        raise ParameterError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    t0 = time.perf_counter()
    train = splits.train
    torch.manual_seed(seed)
    segment = task == "segmentation"
    source = training_source(strategy, train, seed, segment=segment, preset=cfg.preset, copies=cfg.copies,
                             workers=cfg.workers, fields=fields)
    model = _network(task, train.images.shape[-1], cfg).to(memory_format=torch.channels_last)
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                                      fused=True)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        raise ParameterError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")
    loss_fn = _dice_bce if segment else nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    tests = {"test": splits.test, **({"shift": splits.shift} if splits.shift is not None else {})}
    curves: dict[str, list[float]] = {"epoch": [], "loss": []}
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"{task[:8]} {strategy:>14s} seed {seed}", unit="step", leave=True,
                   dynamic_ncols=True)
    step, epoch, losses = 0, 0, []
    metrics: dict[str, float] = {}
    cases: dict[str, np.ndarray] = {}
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for x, y in source.epoch(epoch, cfg.batch_size):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if bar is not None:
                bar.update(1)
            if step >= total:
                break
        last = step >= total or epoch == cfg.epochs - 1
        if last or (epoch + 1) % cfg.eval_every == 0:
            point: dict[str, float] = {}
            if not segment:
                k = len(train) if last else min(cfg.curve_cases, len(train))
                point["train_acc"] = accuracy(predict(model, train.images[:k]) > 0.5, train.targets[:k])
            for name, data in tests.items():
                m, c = _evaluate(task, model, data, name, curve=None if last else cfg.curve_cases)
                point.update(m)
                cases.update(c)
            curves["epoch"].append(epoch + 1)
            curves["loss"].append(float(np.mean(losses)) if losses else float("nan"))
            for k, v in point.items():
                curves.setdefault(k, []).append(v)
            metrics = point
            if bar is not None:
                bar.set_postfix({k: f"{v:.3f}" for k, v in point.items() if k.startswith(("train", "test"))})
        if last:
            break
    if bar is not None:
        bar.close()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()} if keep_state else None
    return RunResult(task, strategy, int(seed), time.perf_counter() - t0, metrics, cases, curves, state)


def load_network(result: RunResult, size: int, cfg: TrainConfig) -> nn.Module:
    """The trained network of a run kept with ``keep_state=True``, in evaluation mode."""
    if result.state is None:
        raise ParameterError(f"the {result.strategy} seed {result.seed} run kept no weights (keep_state=False)")
    model = _network(result.task, size, cfg).to(memory_format=torch.channels_last)  # type: ignore[arg-type]
    model.load_state_dict(result.state)
    return model.eval()
