"""Strategies, the training loop, metrics, tables and plots of the augmentation experiment.

Every strategy trains the same network for the same number of optimiser
steps (``epochs x ceil(N / batch)``, N = original training cases): an
"epoch" is N images drawn from the strategy's training source.  For the
offline pools (4N images) an epoch therefore covers a quarter of the pool;
the comparison is at equal compute, not at equal passes over a pool.
Train accuracy is always measured on the original (unaugmented) training
images, in evaluation mode, so that the strategies are comparable.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.sample import Sample
from ..errors import ParameterError
from .data import TaskData, single_thread
from .model import NamozovCNN

__all__ = [
    "PAPER",
    "STRATEGIES",
    "RunResult",
    "TrainConfig",
    "accuracy",
    "auc",
    "format_table",
    "plot_curves",
    "summarize",
    "train_run",
    "training_source",
    "write_results",
]

#: strategy -> one-line description
STRATEGIES: dict[str, str] = {
    "none": "originals only (the study's Set1)",
    "offline4x": "originals + horizontal flip + vertical flip + 90° rotation, made once (the study's Set2, 4N)",
    "onthefly": "medaug AugmentedDataset with the preset, new random augmentation every epoch",
    "offline_random": "originals + random preset copies made once (4N with 3 copies)",
}

#: the study's numbers (Namozov & Cho), in per cent
PAPER: dict[str, dict[str, float]] = {
    "none": {"train_acc": 85.7, "test_acc": 72.6, "label": "Set1 (no augmentation)"},
    "offline4x": {"train_acc": 93.2, "test_acc": 92.25, "label": "Set2 (flips + 90° rotation, 4N)"},
}


@dataclass
class TrainConfig:
    """Training settings shared by every strategy."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    dropout: float = 0.5
    hidden: int = 2048
    preset: str = "mri"
    copies: int = 3
    max_steps: int | None = None  # tests: stop after this many steps
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    strategy: str
    seed: int
    train_acc: float
    test_acc: float
    auc: float
    seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "seed": self.seed, "train_acc": round(self.train_acc, 4),
                "test_acc": round(self.test_acc, 4), "auc": round(self.auc, 4)}


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


# --------------------------------------------------------------------------- training sources
def _samples_to_arrays(samples: Sequence[Sample]) -> np.ndarray:
    return np.stack([s["image"].array.astype(np.float32) for s in samples])


def _offline4x(samples: list[Sample]) -> np.ndarray:
    from ..engine.compose import Compose
    from ..spatial.affine import Affine
    from ..spatial.flip import Flip

    ops = [Compose([Flip(axes=["LR"])], fill=0.0), Compose([Flip(axes=["AP"])], fill=0.0),
           Compose([Affine(rotation=90.0)], fill=0.0)]
    out = [_samples_to_arrays(samples)]
    with single_thread():
        for op in ops:
            out.append(_samples_to_arrays([op(s, seed=0) for s in samples]))
    return np.concatenate(out)


def _offline_random(samples: list[Sample], pipeline: Any, seed: int, copies: int) -> np.ndarray:
    from ..datasets.torch_dataset import item_seed

    out = [_samples_to_arrays(samples)]
    with single_thread():
        for k in range(copies):
            out.append(_samples_to_arrays([pipeline(s, seed=item_seed(seed, k + 1, i)) for i, s in enumerate(samples)]))
    return np.concatenate(out)


class _Pool:
    """A fixed pool of images; each epoch draws ``n`` of them, walking through shuffled passes."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, n: int, seed: int) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images, np.float32)).unsqueeze(1)
        self.targets = torch.from_numpy(np.asarray(targets, np.int64))
        self.n = int(n)
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 11]))
        self._queue: list[int] = []

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _take(self, k: int) -> np.ndarray:
        while len(self._queue) < k:
            self._queue.extend(self.rng.permutation(len(self)).tolist())
        out, self._queue = self._queue[:k], self._queue[k:]
        return np.asarray(out)

    def epoch(self, epoch: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._take(self.n)
        for i in range(0, self.n, batch_size):
            j = torch.from_numpy(idx[i:i + batch_size])
            yield self.images[j], self.targets[j]


class _OnTheFly:
    """medaug's AugmentedDataset: every epoch a new augmentation of each original, shuffled."""

    def __init__(self, samples: list[Sample], pipeline: Any, seed: int) -> None:
        from ..datasets.torch_dataset import AugmentedDataset

        self.dataset = AugmentedDataset(samples, pipeline, seed=seed)
        self.n = len(samples)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torch.utils.data import DataLoader

        from ..datasets.torch_dataset import collate

        self.dataset.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=True, generator=gen,
                            collate_fn=collate, num_workers=0)
        batches = iter(loader)
        while True:
            with single_thread():  # augment on one thread, train on all (see data.single_thread)
                batch = next(batches, None)
            if batch is None:
                return
            yield batch["image"].float(), batch["target"].long()


def training_source(strategy: str, train: TaskData, seed: int, cfg: TrainConfig) -> _Pool | _OnTheFly:
    """The training images of a strategy (an offline pool or an on-the-fly dataset)."""
    from ..presets import preset

    if strategy not in STRATEGIES:
        raise ParameterError(f"unknown strategy '{strategy}'; choose from {', '.join(STRATEGIES)}")
    n = len(train)
    if strategy == "none":
        return _Pool(train.images, train.targets, n, seed)
    samples = train.samples()
    if strategy == "offline4x":
        return _Pool(_offline4x(samples), np.tile(train.targets, 4), n, seed)
    pipeline = preset(cfg.preset)
    if strategy == "offline_random":
        return _Pool(_offline_random(samples, pipeline, seed, cfg.copies), np.tile(train.targets, cfg.copies + 1), n, seed)
    return _OnTheFly(samples, pipeline, seed)


# --------------------------------------------------------------------------- loop
@torch.no_grad()
def _predict(model: nn.Module, images: np.ndarray, batch: int = 250) -> np.ndarray:
    """Softmax probability of class 1 for each image."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).unsqueeze(1)
    out = [torch.softmax(model(x[i:i + batch]), dim=1)[:, 1] for i in range(0, x.shape[0], batch)]
    return torch.cat(out).numpy().astype(np.float64)


def train_run(strategy: str, train: TaskData, test: TaskData, seed: int, cfg: TrainConfig) -> RunResult:
    """Train one network with one strategy and seed; accuracies and AUC on the originals and the test set."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    source = training_source(strategy, train, seed, cfg)
    size = train.images.shape[-1]
    model = NamozovCNN(size=size, hidden=cfg.hidden, dropout=cfg.dropout)
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        raise ParameterError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    curves: dict[str, list[float]] = {"epoch": [], "train_acc": [], "test_acc": [], "loss": []}
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"{strategy:>14s} seed {seed}", unit="step", leave=True, dynamic_ncols=True)
    step = 0
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
        tr_acc = accuracy(_predict(model, train.images) > 0.5, train.targets)
        te_prob = _predict(model, test.images)
        te_acc = accuracy(te_prob > 0.5, test.targets)
        curves["epoch"].append(epoch + 1)
        curves["train_acc"].append(tr_acc)
        curves["test_acc"].append(te_acc)
        curves["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        if bar is not None:
            bar.set_postfix(loss=f"{curves['loss'][-1]:.3f}", train=f"{tr_acc:.3f}", test=f"{te_acc:.3f}")
        if step >= total:
            break
    if bar is not None:
        bar.close()
    te_prob = _predict(model, test.images)
    return RunResult(strategy, int(seed), curves["train_acc"][-1], curves["test_acc"][-1],
                     auc(te_prob, test.targets), time.perf_counter() - t0, curves)


# --------------------------------------------------------------------------- reporting
def summarize(results: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation (ddof=1 when >1 seed) per strategy, in run order."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        out.setdefault(r.strategy, {"runs": []})["runs"].append(r)
    for entry in out.values():
        runs = entry.pop("runs")
        entry["seeds"] = [r.seed for r in runs]
        for key in ("train_acc", "test_acc", "auc", "seconds"):
            v = np.asarray([getattr(r, key) for r in runs], np.float64)
            entry[key] = float(np.mean(v))
            entry[key + "_std"] = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return out


def format_table(summary: dict[str, dict[str, Any]], *, markdown: bool = False) -> str:
    """The results table with the study's numbers beside ours (accuracies in %)."""
    head = ["strategy", "seeds", "train acc %", "test acc %", "test AUC", "paper train %", "paper test %"]
    rows = []
    for name, e in summary.items():
        paper = PAPER.get(name)
        one = len(e["seeds"]) == 1  # no spread from a single seed

        def pm(mean: float, std: float, scale: float, digits: int, one: bool = one) -> str:
            return f"{scale * mean:.{digits}f}" if one else f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"

        rows.append([
            name, str(len(e["seeds"])),
            pm(e["train_acc"], e["train_acc_std"], 100, 1),
            pm(e["test_acc"], e["test_acc_std"], 100, 1),
            pm(e["auc"], e["auc_std"], 1, 3),
            f"{paper['train_acc']:g}" if paper else "–",
            f"{paper['test_acc']:g}" if paper else "–",
        ])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    lines.append("paper: Namozov & Cho, Set1 = no augmentation (train 85.7 %, test 72.6 %), "
                 "Set2 = flips + 90° rotation, 4N (train 93.2 %, test 92.25 %)")
    return "\n".join(lines)


def plot_curves(results: Sequence[RunResult], path: str | Path, title: str = "") -> Path:
    """Train (dashed) and test (solid) accuracy per epoch, mean over seeds with a ±1 std band."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.strategy, []).append(r)
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, runs) in enumerate(groups.items()):
        n = min(len(r.curves["epoch"]) for r in runs)
        if n == 0:
            continue
        ep = np.asarray(runs[0].curves["epoch"][:n])
        c = colors[k % len(colors)]
        for key, style in (("train_acc", "--"), ("test_acc", "-")):
            v = 100 * np.asarray([r.curves[key][:n] for r in runs])
            m = v.mean(0)
            ax.plot(ep, m, style, color=c, label=f"{name} {'train' if key == 'train_acc' else 'test'}")
            if v.shape[0] > 1:
                s = v.std(0, ddof=1)
                ax.fill_between(ep, m - s, m + s, color=c, alpha=0.12 if key == "test_acc" else 0.06, linewidth=0)
    ax.axhline(50, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("epoch (N training images seen per epoch, equal steps for all strategies)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(40, 101)
    ax.set_title(title or "Train (dashed, on the originals) and test (solid) accuracy, mean ± std over seeds")
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def machine() -> dict[str, Any]:
    """CPU model, core count, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}


def write_results(out: str | Path, results: Sequence[RunResult], meta: dict[str, Any]) -> dict[str, Path]:
    """``results.csv`` (strategy,seed,train_acc,test_acc,auc), ``results.json`` (everything) and ``curves.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    tmp = csv_path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["strategy", "seed", "train_acc", "test_acc", "auc"])
        w.writeheader()
        for r in results:
            w.writerow(r.row())
    tmp.replace(csv_path)
    summary = summarize(results)
    doc = {
        **meta,
        "summary": summary,
        "paper": PAPER,
        "runs": [{**r.row(), "seconds": round(r.seconds, 1), "curves": r.curves} for r in results],
    }
    json_path = out / "results.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(json_path)
    png = plot_curves(results, out / "curves.png")
    return {"csv": csv_path, "json": json_path, "png": png}
