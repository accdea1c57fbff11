"""The training images of each augmentation strategy: fixed pools made once, or on-the-fly datasets.

A source yields ``(x, y)`` batches for one "epoch" of N images (N = original
training cases): ``x`` is ``(n, 1, h, w)`` float32 in channels-last memory
format, ``y`` the class indices ``(n,)`` (classification) or the lesion maps
``(n, 1, h, w)`` as float (segmentation).  Every strategy therefore trains for
the same number of optimiser steps.  Offline pools of 4N images are walked in
shuffled passes, N images per epoch.

On-the-fly strategies augment in DataLoader worker processes on one torch
thread each (``workers``), overlapping augmentation with training; tiny
per-image operations with several threads on a loaded machine wait for the
other thread far longer than they compute (see :func:`.data.single_thread`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.sample import Sample
from ..errors import ParameterError
from .data import TaskData, single_thread

__all__ = ["STRATEGIES", "Pool", "OnTheFly", "learn_fields", "learned_pipeline", "training_source"]

#: strategy -> one-line description
STRATEGIES: dict[str, str] = {
    "none": "originals only (the study's Set1)",
    "offline4x": "originals + horizontal flip + vertical flip + 90° rotation, made once (the study's Set2, 4N)",
    "onthefly": "medaug AugmentedDataset with the preset, new random augmentation every epoch",
    "offline_random": "originals + random preset copies made once (4N with 3 copies)",
    "learned": "on the fly, the preset with its random elastic deformation replaced by deformations "
               "learned between training cases (RandomLearnedDeformation)",
}

Batch = tuple[torch.Tensor, torch.Tensor]


def _as_x(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, np.float32) if isinstance(images, np.ndarray) else images).float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last)


def _as_y(targets: np.ndarray | torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(targets)
    if y.ndim == 1:
        return y.long()
    return (y.unsqueeze(1) if y.ndim == 3 else y).float().contiguous(memory_format=torch.channels_last)


class Pool:
    """A fixed pool of images and targets; each epoch draws ``n`` of them, walking through shuffled passes."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, n: int, seed: int) -> None:
        self.images = _as_x(images)
        self.targets = _as_y(targets)
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

    def epoch(self, epoch: int, batch_size: int) -> Iterator[Batch]:
        idx = torch.from_numpy(self._take(self.n))
        for i in range(0, self.n, batch_size):
            j = idx[i:i + batch_size]
            yield self.images[j], self.targets[j]


def _one_thread(worker_id: int) -> None:
    torch.set_num_threads(1)


class OnTheFly:
    """medaug's AugmentedDataset: every epoch a new augmentation of each original, shuffled.

    With ``workers > 0`` each epoch's augmentation runs in that many DataLoader
    worker processes (one torch thread each, forked after a warm-up call here,
    so they inherit the compiled kernels); with 0 it runs in this process on one thread.
    """

    def __init__(self, samples: list[Sample], pipeline: Any, seed: int, *, segment: bool, workers: int = 1) -> None:
        from ..datasets.torch_dataset import AugmentedDataset

        self.dataset = AugmentedDataset(samples, pipeline, seed=seed)
        self.n = len(samples)
        self.segment = segment
        self.workers = int(workers)
        self.generator = torch.Generator().manual_seed(int(seed) * 1000 + 17)
        with single_thread():
            self.dataset.augment(0, epoch=2**31 - 1)  # warm-up (an epoch never trained): JIT kernels, field caches

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int, batch_size: int) -> Iterator[Batch]:
        from torch.utils.data import DataLoader

        from ..datasets.torch_dataset import collate

        self.dataset.set_epoch(epoch)
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=True, generator=self.generator,
                            collate_fn=collate, num_workers=self.workers,
                            worker_init_fn=_one_thread if self.workers > 0 else None)
        batches = iter(loader)
        while True:
            if self.workers > 0:
                batch = next(batches, None)
            else:
                with single_thread():
                    batch = next(batches, None)
            if batch is None:
                return
            y = batch["label"] if self.segment else batch["target"]
            yield _as_x(batch["image"]), _as_y(y)


# --------------------------------------------------------------------------- offline pools
def _arrays(samples: Sequence[Sample], segment: bool) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([s["image"].array.astype(np.float32) for s in samples])
    if segment:
        return images, np.stack([s["label"].array.astype(np.uint8) for s in samples])
    return images, np.asarray([int(s.target) for s in samples], np.int64)


def _pool_of(samples: list[Sample], makers: Sequence[Any], segment: bool, n: int, seed: int) -> Pool:
    """A pool of the originals followed by one augmented copy per maker (``maker(sample, index) -> Sample``)."""
    parts = [_arrays(samples, segment)]
    with single_thread():
        for make in makers:
            parts.append(_arrays([make(s, i) for i, s in enumerate(samples)], segment))
    return Pool(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), n, seed)


def _offline4x_makers() -> list[Any]:
    from ..engine.compose import Compose
    from ..spatial.affine import Affine
    from ..spatial.flip import Flip

    ops = [Compose([Flip(axes=["LR"])], fill=0.0), Compose([Flip(axes=["AP"])], fill=0.0),
           Compose([Affine(rotation=90.0)], fill=0.0)]
    return [lambda s, i, op=op: op(s, seed=0) for op in ops]


def _random_makers(pipeline: Any, seed: int, copies: int) -> list[Any]:
    from ..datasets.torch_dataset import item_seed

    return [lambda s, i, k=k: pipeline(s, seed=item_seed(seed, k + 1, i)) for k in range(copies)]


# --------------------------------------------------------------------------- learned deformations
def learn_fields(train: TaskData, folder: str | Path, *, cases: int = 8, progress: bool = False) -> list[Path]:
    """Register ``cases`` training cases onto the first with ``medaug learn-deformations``; the fields kept.

    The cases are written as NIfTI files to ``folder/cases`` and the job's
    output (fields and manifest) goes to ``folder/fields``; a re-run resumes.
    A field is kept when the job marked it usable (no fold) and the
    registration improved the match (NCC after > NCC before), as
    docs/registration.md advises: a failed registration encodes an
    implausible shape.

    Raises
    ------
    ParameterError
        When no registration passes.
    """
    import csv

    from .. import save
    from ..data.image import Image
    from ..registration.learn import LearnJob, run_learn

    if cases < 2:
        raise ParameterError(f"learning deformations needs at least 2 training cases, got {cases}")
    folder = Path(folder)
    images = folder / "cases" / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids = train.case_ids or [f"case{i:04d}" for i in range(len(train))]
    chosen = list(range(min(cases, len(train))))
    for i in chosen:
        path = images / f"{ids[i]}.nii.gz"
        if not path.exists():
            save(Image(train.images[i], spacing=train.spacing), path)
    out = folder / "fields"
    run_learn(LearnJob(input=str(folder / "cases"), output=str(out), reference=ids[chosen[0]]),
              workers=1, progress=progress)
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    kept = [out / r["field"] for r in rows
            if r["usable"] == "True" and float(r["ncc_after"]) > float(r["ncc_before"])]
    if not kept:
        raise ParameterError(f"no registration between the training cases improved the match; see {out / 'manifest.csv'}")
    return sorted(kept)


def learned_pipeline(preset_name: str, fields: str | Path | Sequence[str | Path],
                     scale: tuple[float, float] = (0.3, 1.0)) -> Any:
    """The preset with its ``RandomElastic`` step replaced by ``RandomLearnedDeformation`` on ``fields``.

    ``fields`` is a ``learn-deformations`` output folder or a list of field files.
    """
    from ..engine.config import pipeline_from_config
    from ..presets import preset_config

    config = preset_config(preset_name)
    steps = config["transforms"]
    names = [next(iter(step)) for step in steps]
    if "RandomElastic" not in names:
        raise ParameterError(f"preset '{preset_name}' has no RandomElastic step for the learned deformations to replace")
    k = names.index("RandomElastic")
    p = steps[k]["RandomElastic"].get("p", 1.0)
    listed = str(fields) if isinstance(fields, (str, Path)) else [str(f) for f in fields]
    steps[k] = {"RandomLearnedDeformation": {"fields": listed, "scale": list(scale), "p": p}}
    return pipeline_from_config(config)


# --------------------------------------------------------------------------- dispatch
def training_source(strategy: str, train: TaskData, seed: int, *, segment: bool, preset: str = "mri", copies: int = 3,
                    workers: int = 1, fields: Sequence[str | Path] | None = None) -> Pool | OnTheFly:
    """The training images of a strategy (an offline pool or an on-the-fly dataset).

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    train : TaskData
        The original training cases.
    seed : int
        Seed of the pool order and of the augmentation draws.
    segment : bool
        Targets are the lesion maps (segmentation) instead of the classes.
    preset, copies, workers
        Preset name, random copies for ``offline_random``, augmentation worker
        processes for the on-the-fly strategies.
    fields : list of path, optional
        The fields kept by :func:`learn_fields` (needed by ``learned``).
    """
    from ..presets import preset as make_preset

    if strategy not in STRATEGIES:
        raise ParameterError(f"unknown strategy '{strategy}'; choose from {', '.join(STRATEGIES)}")
    n = len(train)
    samples = train.samples(label=segment)
    if strategy == "none":
        return _pool_of(samples, [], segment, n, seed)
    if strategy == "offline4x":
        return _pool_of(samples, _offline4x_makers(), segment, n, seed)
    if strategy == "offline_random":
        return _pool_of(samples, _random_makers(make_preset(preset), seed, copies), segment, n, seed)
    if strategy == "learned":
        if fields is None:
            raise ParameterError("the 'learned' strategy needs learned fields (learn_fields)")
        pipeline = learned_pipeline(preset, fields)
    else:
        pipeline = make_preset(preset)
    return OnTheFly(samples, pipeline, seed, segment=segment, workers=workers)
