"""On-the-fly augmentation for PyTorch training.

Every item is augmented afresh from a random stream keyed by ``(seed, epoch,
index)``: distinct for every case and epoch, the same whichever DataLoader
worker draws it, and reproducible by re-running with the same seed.  The
classic bug of workers repeating one another's "random" augmentation cannot
happen, because no global random state is involved.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.image import Image
from ..data.sample import Sample
from ..engine.compose import Compose, layout_mismatch
from ..errors import ParameterError
from ..spatial.crop import Crop
from .cases import Case, case_id_problem, load_case
from .discover import read_cases
from .jobs import output_path

__all__ = ["AugmentedDataset", "BatchAugmenter", "collate", "item_seed"]


def item_seed(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item: a function of (seed, epoch, index) only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]))


def _as_cases(cases: Any) -> list[Case]:
    if isinstance(cases, (str, Path)):
        return read_cases(cases)
    out = []
    for i, c in enumerate(cases):
        if isinstance(c, Case):
            out.append(c)
        elif isinstance(c, (str, Path)):
            p = Path(c)
            out.append(Case(p.name.split(".")[0] or f"case{i}", p))
        elif isinstance(c, dict):
            if "image" not in c:
                raise ParameterError(f"case {i}: a dict case needs an 'image' path")
            img = Path(c["image"])
            out.append(Case(str(c.get("case_id") or img.name.split(".")[0]), img,
                            Path(c["label"]) if c.get("label") else None, c.get("target")))
        elif isinstance(c, Sample):
            out.append(c)  # type: ignore[arg-type]  # in-memory samples are allowed too
        else:
            raise ParameterError(f"case {i}: expected a path, a dict, a Case or a Sample, got {type(c).__name__}")
    return out


class AugmentedDataset(Dataset):
    """A map-style dataset that reads cases and augments them at every access.

    Parameters
    ----------
    cases : list, str or Path
        Paths, ``{"image", "label", "target"}`` dicts, :class:`Case` objects or
        in-memory :class:`Sample` objects; or a CSV / dataset folder (see :func:`read_cases`).
    pipeline : Compose or callable
        The augmentation pipeline (``pipeline(sample, seed=generator)``).
    seed : int
        One seed for everything.
    preprocess : Compose, optional
        Deterministic preprocessing applied once per case, before caching.
    cache : {None, "memory"} or path
        Keep decoded, preprocessed cases in memory (per worker) or as ``.npz`` files in a folder.
    patch_size : sequence of int, optional
        Return random patches of this size (array order); the spatial pipeline
        runs on the patch's region only.
    foreground_fraction : float
        Share of patches centred on a foreground voxel (label > 0) of ``label_name``.
    label_name : str
        Label map used for foreground sampling.

    Examples
    --------
    >>> import medaug
    >>> from torch.utils.data import DataLoader
    >>> cases = [medaug.shepp_logan_3d(32, seed=i) for i in range(4)]
    >>> ds = AugmentedDataset(cases, medaug.preset("ct-light"), seed=0)
    >>> batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate)))
    >>> tuple(batch["image"].shape)
    (2, 1, 32, 32, 32)
    """

    def __init__(
        self,
        cases: Any,
        pipeline: Compose | Callable[..., Sample] | None,
        seed: int = 0,
        *,
        preprocess: Compose | None = None,
        cache: str | Path | None = None,
        patch_size: Sequence[int] | None = None,
        foreground_fraction: float = 0.0,
        label_name: str = "label",
    ) -> None:
        self.cases = _as_cases(cases)
        self.pipeline = pipeline
        self.seed = int(seed)
        self.preprocess = preprocess
        if cache not in (None, "memory") and not isinstance(cache, (str, Path)):
            raise ParameterError(f"cache must be None, 'memory' or a folder, got {cache!r}")
        self.cache = cache
        self._memory: dict[int, Sample] = {}
        self.patch_size = None if patch_size is None else tuple(int(s) for s in patch_size)
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ParameterError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
        self.foreground_fraction = float(foreground_fraction)
        self.label_name = label_name
        self._epoch = multiprocessing.Value("q", 0, lock=False)
        self._foreground: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- epochs
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; shared with worker processes (also persistent ones started by fork)."""
        self._epoch.value = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def __len__(self) -> int:
        return len(self.cases)

    # ---------------------------------------------------------------- loading
    def load(self, index: int) -> Sample:
        """The decoded, preprocessed case (cached as configured)."""
        if index in self._memory:
            return self._memory[index]
        case = self.cases[index]
        sample = self._from_disk_cache(index)
        if sample is None:
            sample = case if isinstance(case, Sample) else load_case(case)
            if self.preprocess is not None:
                sample = self.preprocess(sample, seed=0)
            self._to_disk_cache(index, sample)
        if self.cache == "memory":
            self._memory[index] = sample
        return sample

    def _cache_file(self, index: int) -> Path | None:
        if self.cache in (None, "memory"):
            return None
        case = self.cases[index]
        cid = str(case.metadata.get("case_id", "")) if isinstance(case, Sample) else case.case_id
        name = f"{index:06d}_{cid}.npz" if cid and case_id_problem(cid) is None else f"{index:06d}.npz"
        return output_path(Path(self.cache), name)

    def _to_disk_cache(self, index: int, sample: Sample) -> None:
        path = self._cache_file(index)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"img_{k}": v.array for k, v in sample.items()}
        meta = {
            "grid": sample.grid.to_dict(),
            "labels": [k for k, v in sample.items() if v.is_label],
            "target": sample.target,
            "channels": {k: list(v.channel_names or []) for k, v in sample.items() if v.channel_axis},
            "metadata": {k: v for k, v in sample.metadata.items() if isinstance(v, (str, int, float, list))},
            "points": {k: v.tolist() for k, v in sample.points.items()},
        }
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)

    def _from_disk_cache(self, index: int) -> Sample | None:
        path = self._cache_file(index)
        if path is None or not path.exists():
            return None
        from ..data.grid import Grid

        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            g = meta["grid"]
            grid = Grid(tuple(reversed(g["size"])), g["spacing"], g["origin"], g["direction"])
            channels = meta.get("channels", {})
            images = {
                k[4:]: Image(data[k], grid=grid, is_label=k[4:] in meta["labels"], channel_axis=k[4:] in channels,
                             channel_names=channels.get(k[4:]) or None)
                for k in data.files if k.startswith("img_")
            }
        return Sample(**images, target=meta["target"], metadata=meta["metadata"], points=meta["points"])

    # ---------------------------------------------------------------- items
    def augment(self, index: int, epoch: int | None = None) -> Sample:
        """The augmented sample of ``index`` at ``epoch`` (default: the current epoch)."""
        rng = item_seed(self.seed, self.epoch if epoch is None else epoch, index)
        sample = self.load(index)
        steps: list[Any] = []
        if self.patch_size is not None:
            steps.append(self._patch(index, sample, rng))
        if self.pipeline is None and not steps:
            return sample
        pipeline = self.pipeline
        if steps:
            inner = [pipeline] if pipeline is not None else []
            options = pipeline.options if isinstance(pipeline, Compose) else None
            pipeline = Compose([*steps, *inner], fill=getattr(pipeline, "fill", "background"),
                               interpolation=options.interpolation if options else "linear",
                               label_interpolation=options.label_interpolation if options else "nearest",
                               backend=options.backend if options else "auto")
        return pipeline(sample, seed=rng)

    def _patch(self, index: int, sample: Sample, rng: np.random.Generator) -> Crop:
        shape = np.asarray(sample.grid.shape)
        size = np.asarray(self.patch_size)
        if size.size != shape.size:
            raise ParameterError(f"patch_size {tuple(size)} does not match the {shape.size}D case {index}")
        use_fg = self.foreground_fraction > 0 and rng.random() < self.foreground_fraction
        centre = None
        if use_fg and self.label_name in sample:
            fg = self._foreground.get(index)
            if fg is None:
                fg = np.flatnonzero(sample[self.label_name].array.reshape(-1) > 0)
                self._foreground[index] = fg
            if fg.size:
                centre = np.array(np.unravel_index(int(fg[rng.integers(fg.size)]), tuple(shape)))
        if centre is None:
            centre = np.array([rng.integers(0, s) for s in shape])
        start = centre - size // 2
        return Crop(start=start.astype(int).tolist(), size=size.tolist())

    def __getitem__(self, index: int) -> dict[str, Any]:
        out = self.augment(int(index))
        return to_item(out, index)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The items of a DataLoader batch: augmented in one :meth:`Compose.batch` call when they share a layout.

        Each item is what ``dataset[index]`` gives (same stream, same output);
        with patches, a pipeline that is not a ``Compose`` or cases of
        different sizes, the items are augmented one by one.
        """
        indices = [int(i) for i in indices]
        if self.patch_size is not None or not isinstance(self.pipeline, Compose) or len(indices) < 2:
            return [self[i] for i in indices]
        samples = [self.load(i) for i in indices]
        if any(layout_mismatch(samples[0], s) for s in samples[1:]):
            return [self[i] for i in indices]  # cases of different sizes: one by one
        outs = self.pipeline.batch(samples, seeds=[item_seed(self.seed, self.epoch, i) for i in indices])
        return [to_item(out, i) for out, i in zip(outs, indices)]


def to_item(sample: Sample, index: int) -> dict[str, Any]:
    """Tensors (channel first: ``(C, z, y, x)``, C = 1 for a scalar image) plus geometry and history of one sample."""
    item: dict[str, Any] = {"index": index}
    for name, img in sample.items():
        t = img.tensor
        t = t.long() if img.is_label else t.float()
        item[name] = t if img.channel_axis else t.unsqueeze(0)
    if sample.target is not None:
        item["target"] = torch.as_tensor(sample.target)
    g = sample.grid
    item["spacing"] = torch.tensor(g.spacing, dtype=torch.float64)
    item["origin"] = torch.tensor(g.origin, dtype=torch.float64)
    item["direction"] = torch.tensor(np.array(g.direction), dtype=torch.float64)
    item["history"] = json.dumps(sample.history, separators=(",", ":"))
    item["case_id"] = str(sample.metadata.get("case_id", index))
    return item


def collate(
    batch: list[dict[str, Any]],
    *,
    mix: Callable[..., Any] | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """Stack a list of items into a batch; strings and histories stay lists.

    Parameters
    ----------
    mix : callable, optional
        A batch-level transform on the stacked batch dict (e.g. Mixup or CutMix
        from :mod:`medaug.intensity.mix`), called as ``mix(batch, rng)``.
    rng : numpy.random.Generator, optional
        Generator for ``mix``.
    """
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    if mix is not None:
        out = mix(out, rng if rng is not None else np.random.default_rng())
    return out


class BatchAugmenter:
    """Augment a collated batch on a device (a CUDA GPU when given) in one :meth:`Compose.batch` call, in the main process.

    Use it with a dataset built without a pipeline: the DataLoader workers only
    read and stack; the augmentation runs where the tensors are.  Item ``i`` of
    the batch uses the stream ``(seed, epoch, batch["index"][i])``, the same as
    :class:`AugmentedDataset` would, so moving augmentation to the GPU does not
    change what is drawn.

    Parameters
    ----------
    pipeline : Compose
        The augmentation pipeline (run with the PyTorch backend on the device).
    device : str or torch.device
        Where to augment: ``"cuda"``, ``"cuda:1"`` or ``"cpu"``.
    seed : int
        The same seed as the dataset's.
    """

    def __init__(self, pipeline: Compose, device: str | torch.device = "cuda", seed: int = 0) -> None:
        self.pipeline = pipeline
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ParameterError("BatchAugmenter: CUDA was asked for but torch.cuda.is_available() is False")
        self.seed = int(seed)

    def __call__(self, batch: dict[str, Any], epoch: int = 0) -> dict[str, Any]:
        from ..data.grid import Grid

        names = [k for k in ("image", "label") if k in batch] + [
            k for k, v in batch.items() if isinstance(v, torch.Tensor) and v.ndim >= 3 and k not in ("image", "label", "direction")
        ]
        label_names = {k for k in names if not torch.is_floating_point(batch[k])}
        samples, indices = [], []
        for i, index in enumerate(batch["index"].tolist() if isinstance(batch["index"], torch.Tensor) else batch["index"]):
            shape = tuple(batch[names[0]][i, 0].shape)
            grid = Grid(shape, batch["spacing"][i].tolist(), batch["origin"][i].tolist(), batch["direction"][i].numpy())
            images = {  # several channels stay one multi-channel image; one channel is a scalar image
                k: Image(batch[k][i].to(self.device) if batch[k].shape[1] > 1 else batch[k][i, 0].to(self.device),
                         grid=grid, is_label=k in label_names, channel_axis=batch[k].shape[1] > 1)
                for k in names
            }
            case = batch["case_id"][i] if isinstance(batch.get("case_id"), list) else None
            samples.append(Sample(**images, target=batch["target"][i] if "target" in batch else None,
                                  metadata={"case_id": case} if case is not None else None))
            indices.append(int(index))
        outs = self.pipeline.batch(samples, seeds=[item_seed(self.seed, epoch, i) for i in indices])
        merged = collate([to_item(out, i) for out, i in zip(outs, indices)])
        for key, value in batch.items():
            merged.setdefault(key, value)
        merged["case_id"] = batch.get("case_id", merged.get("case_id"))
        return merged
