"""Batch-level mixing (Mixup, CutMix) and per-sample coarse dropout (Cutout).

Mixup and CutMix take a *list* of samples (a batch) and return a new list;
they are not pipeline transforms, are not in the transform registry and are
not written to ``history`` (which only holds replayable per-sample
transforms).  What they did is stored in ``sample.metadata["mix"]``.

Soft targets
------------
* Classification: ``sample.target`` (an int class, or a probability vector)
  becomes a float64 NumPy vector of length ``num_classes`` that sums to 1.
* Segmentation: for every label map ``name``, ``sample.metadata["soft_labels"][name]``
  holds the class probabilities as a float32 array of shape ``(C, *image.shape)``
  (channel ``c`` = probability of label value ``c``), summing to 1 at every
  voxel; a NumPy array, or a tensor on the label map's device when the label
  map is a tensor.  Soft labels already present (an earlier mix) are mixed
  again rather than rebuilt from the hard map.
* The hard label map stays a valid label map: Mixup keeps each sample's own
  map (its weight ``lam`` is always >= 0.5, so it is the argmax of the soft
  labels); CutMix pastes the partner's labels inside the box, which is exact.

Images are mixed voxel by voxel in array order; all samples must hold the same
image names with the same shapes.  Points and boxes are left as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..engine.execute import border_median
from ..engine.ranges import INTENSITY, Range, RangeLike, number
from ..engine.transform import (
    ChannelChoice,
    Context,
    IntensityTransform,
    RandomIntensityTransform,
    SeedLike,
    as_generator,
)
from ..errors import GeometryError, ParameterError

#: Holes per sample.
NUM_HOLES = (0, 1000)
#: Hole sides in mm.
SIZE_MM = (0.0, 1e4)
#: Largest voxel index of a hole corner.
MAX_INDEX = 1 << 16

__all__ = ["mixup", "cutmix", "Mixup", "CutMix", "Cutout", "RandomCutout"]


# ------------------------------------------------------------------ helpers
def _check_batch(samples: list[Sample]) -> None:
    if not isinstance(samples, (list, tuple)) or not samples or not all(isinstance(s, Sample) for s in samples):
        raise ParameterError("mixing needs a non-empty list of medaug Samples")
    ref = samples[0]
    for k, s in enumerate(samples[1:], 1):
        if set(s) != set(ref):
            raise ParameterError(
                f"sample {k} has images {sorted(s)} but sample 0 has {sorted(ref)}"
                "; mixing needs the same names"
            )
        for name in ref:
            if s[name].shape != ref[name].shape or s[name].is_label != ref[name].is_label:
                raise GeometryError(
                    f"'{name}' of sample {k} has shape {s[name].shape}, sample 0 {ref[name].shape}"
                    "; crop or resample to one shape first"
                )


def _check_alpha(alpha: float) -> float:
    return number(alpha, "alpha", (0.0, 1e3), low_open=True)


def _targets(samples: list[Sample], num_classes: int | None) -> np.ndarray | None:
    """(N, C) probability vectors, or None when no sample has a target."""
    raw = [s.target for s in samples]
    if all(t is None for t in raw):
        return None
    if any(t is None for t in raw):
        raise ParameterError("some samples have a 'target' and others not; mixing needs all or none")
    vecs: list[np.ndarray | int] = []
    for t in raw:
        a = np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t)
        if a.ndim == 0:
            if float(a) != int(a) or int(a) < 0:
                raise ParameterError(f"a class target must be a non-negative integer, got {t!r}")
            vecs.append(int(a))
        elif a.ndim == 1:
            a = a.astype(np.float64)
            if (a < 0).any() or abs(a.sum() - 1.0) > 1e-4:
                raise ParameterError(f"a vector target must be probabilities summing to 1, got {a.tolist()}")
            vecs.append(a / a.sum())
        else:
            raise ParameterError(f"a target must be an int class or a probability vector, got shape {a.shape}")
    need = max(v + 1 if isinstance(v, int) else v.size for v in vecs)
    c = need if num_classes is None else int(num_classes)
    if c < need:
        raise ParameterError(f"'num_classes' is {num_classes} but the targets need {need}")
    out = np.zeros((len(vecs), c))
    for i, v in enumerate(vecs):
        if isinstance(v, int):
            out[i, v] = 1.0
        elif v.size != c:
            raise ParameterError(f"vector target {i} has {v.size} classes, expected {c}")
        else:
            out[i] = v
    return out


def _num_label_classes(samples: list[Sample], name: str, num_classes: int | None) -> int:
    top = 0
    for k, s in enumerate(samples):
        t = s[name].tensor
        if (t.dtype.is_floating_point and not torch.equal(t, torch.round(t))) or t.min() < 0:
            raise ParameterError(f"label map '{name}' of sample {k} must hold non-negative integers")
        top = max(top, int(t.max()))
        prev = s.metadata.get("soft_labels", {}).get(name)
        if prev is not None:
            top = max(top, prev.shape[0] - 1)
    if num_classes is not None and int(num_classes) <= top:
        raise ParameterError(f"'num_classes' is {num_classes} but label map '{name}' holds the value {top}")
    return top + 1 if num_classes is None else int(num_classes)


def _soft(sample: Sample, name: str, c: int, device: torch.device) -> torch.Tensor:
    prev = sample.metadata.get("soft_labels", {}).get(name)
    if prev is not None:
        p = torch.as_tensor(prev, device=device, dtype=torch.float32)
        if p.shape[0] < c:
            p = torch.cat([p, p.new_zeros((c - p.shape[0], *p.shape[1:]))])
        return p
    lab = sample[name].tensor.to(device).long()
    return F.one_hot(lab, c).movedim(-1, 0).to(torch.float32)


def _like(template: Any, t: torch.Tensor) -> Any:
    return t if isinstance(template, torch.Tensor) else t.cpu().numpy()


def _partners(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.permutation(n)


def _finish(s: Sample, images: dict[str, Image], soft: dict[str, Any], target: np.ndarray | None, info: dict) -> Sample:
    meta = dict(s.metadata)
    if soft:
        meta["soft_labels"] = {**meta.get("soft_labels", {}), **soft}
    meta["mix"] = info
    return s.replace(images, target=target if target is not None else s.target, metadata=meta)


# ------------------------------------------------------------------ mixup
def mixup(samples: list[Sample], rng: SeedLike, alpha: float = 0.4, num_classes: int | None = None) -> list[Sample]:
    """Mixup: ``x_i' = lam_i x_i + (1 - lam_i) x_j`` with a random partner ``j`` from the batch.

    Parameters
    ----------
    samples : list of Sample
        The batch; same image names and shapes.
    rng : int or numpy.random.Generator
        Source of the partners and weights.
    alpha : float
        ``lam ~ Beta(alpha, alpha)``, then ``lam = max(lam, 1 - lam)`` so that
        every output is dominated by its own sample.
    num_classes : int, optional
        Number of classes of the targets and label maps (inferred when omitted).

    Returns
    -------
    list of Sample
        New samples; intensity images mixed (float32), soft targets as described
        in the module docstring, ``metadata["mix"] = {"method", "lam", "partner"}``.
    """
    _check_batch(samples)
    g = as_generator(rng)
    a = _check_alpha(alpha)
    n = len(samples)
    perm = _partners(g, n)
    lams = g.beta(a, a, size=n)
    lams = np.maximum(lams, 1.0 - lams)
    targets = _targets(samples, num_classes)
    ref = samples[0]
    ncls = {name: _num_label_classes(samples, name, num_classes) for name in ref.label_maps}
    out = []
    for i, s in enumerate(samples):
        j, lam = int(perm[i]), float(lams[i])
        other = samples[j]
        images = {}
        for name, img in s.intensity_images.items():
            x = img.tensor.to(torch.float32)
            y = other[name].tensor.to(device=x.device, dtype=torch.float32)
            images[name] = img.with_data(_like(img.data, lam * x + (1.0 - lam) * y))
        soft = {}
        for name, lab in s.label_maps.items():
            dev = lab.tensor.device
            p = lam * _soft(s, name, ncls[name], dev) + (1.0 - lam) * _soft(other, name, ncls[name], dev)
            soft[name] = _like(lab.data, p)
        target = None if targets is None else lam * targets[i] + (1.0 - lam) * targets[j]
        out.append(_finish(s, images, soft, target, {"method": "mixup", "lam": lam, "partner": j}))
    return out


# ------------------------------------------------------------------ cutmix
def _box(rng: np.random.Generator, shape: tuple[int, ...], lam: float) -> tuple[list[int], list[int]]:
    """Array-order (start, stop) of a box holding about ``1 - lam`` of the voxels, centred anywhere."""
    frac = (1.0 - lam) ** (1.0 / len(shape))
    start, stop = [], []
    for n in shape:
        side = int(round(n * frac))
        c = int(rng.integers(0, n))
        start.append(int(np.clip(c - side // 2, 0, n)))
        stop.append(int(np.clip(c - side // 2 + side, 0, n)))
    return start, stop


def cutmix(samples: list[Sample], rng: SeedLike, alpha: float = 1.0, num_classes: int | None = None) -> list[Sample]:
    """CutMix: paste a box of a random partner's images and label maps into each sample.

    ``lam ~ Beta(alpha, alpha)`` sets the box volume (about ``1 - lam`` of the
    image, same fraction per axis, centre uniform, clipped at the border);
    ``lam`` is then recomputed as the fraction of voxels kept, and weights the
    targets and soft labels.

    Parameters
    ----------
    samples : list of Sample
    rng : int or numpy.random.Generator
    alpha : float
    num_classes : int, optional

    Returns
    -------
    list of Sample
        ``metadata["mix"] = {"method", "lam", "partner", "box"}``, the box as
        voxel indices ``[x0, y0, (z0), x1, y1, (z1)]`` (half-open).
    """
    _check_batch(samples)
    g = as_generator(rng)
    a = _check_alpha(alpha)
    n = len(samples)
    perm = _partners(g, n)
    targets = _targets(samples, num_classes)
    ref = samples[0]
    ncls = {name: _num_label_classes(samples, name, num_classes) for name in ref.label_maps}
    out = []
    for i, s in enumerate(samples):
        j = int(perm[i])
        other = samples[j]
        shape = s.reference.shape
        start, stop = _box(g, shape, float(g.beta(a, a)))
        region = tuple(slice(b, e) for b, e in zip(start, stop))
        lam = 1.0 - float(np.prod([e - b for b, e in zip(start, stop)])) / float(np.prod(shape))
        images = {}
        for name, img in s.items():
            x = img.tensor.clone() if img.is_label else img.tensor.to(torch.float32).clone()
            x[region] = other[name].tensor.to(device=x.device, dtype=x.dtype)[region]
            images[name] = img.with_data(_like(img.data, x))
        soft = {}
        for name, lab in s.label_maps.items():
            dev = lab.tensor.device
            p = _soft(s, name, ncls[name], dev).clone()
            p[(slice(None), *region)] = _soft(other, name, ncls[name], dev)[(slice(None), *region)]
            soft[name] = _like(lab.data, p)
        target = None if targets is None else lam * targets[i] + (1.0 - lam) * targets[j]
        box = [*start[::-1], *stop[::-1]]
        out.append(_finish(s, images, soft, target, {"method": "cutmix", "lam": lam, "partner": j, "box": box}))
    return out


@dataclass
class Mixup:
    """Batch Mixup as an object: ``Mixup(alpha=0.4)(samples, rng)``; see :func:`mixup`."""

    alpha: float = 0.4
    num_classes: int | None = None

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)

    def __call__(self, samples: list[Sample], rng: SeedLike = None) -> list[Sample]:
        return mixup(samples, rng, self.alpha, self.num_classes)


@dataclass
class CutMix:
    """Batch CutMix as an object: ``CutMix(alpha=1.0)(samples, rng)``; see :func:`cutmix`."""

    alpha: float = 1.0
    num_classes: int | None = None

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)

    def __call__(self, samples: list[Sample], rng: SeedLike = None) -> list[Sample]:
        return cutmix(samples, rng, self.alpha, self.num_classes)


# ------------------------------------------------------------------ cutout
def _check_fill(fill: Any, who: str) -> float | str:
    if isinstance(fill, str):
        if fill not in ("background", "min"):
            raise ParameterError(f"{who} 'fill' must be a number, 'background' or 'min', got {fill!r}")
        return fill
    return number(fill, "fill", INTENSITY)


@dataclass
class Cutout(IntensityTransform):
    """Coarse dropout: set boxes of the intensity images to a fill value (label maps untouched).

    Parameters
    ----------
    holes : list
        Boxes as voxel indices ``[x0, y0, (z0), x1, y1, (z1)]`` (half-open, x/y/z
        order, as ``Sample.boxes`` but in voxels of the grid the transform runs on).
    fill : float or {"background", "min"}
        A value in image units, the median of the image's outer shell
        (``background``, e.g. air in CT) or its minimum.
    mask : str, optional
        Restrict the change to the non-zero voxels of this label map.
    """

    holes: list[list[int]] | tuple[list[int], ...] = ()
    fill: float | str = "background"
    mask: str | None = None

    def __post_init__(self) -> None:
        self.fill = _check_fill(self.fill, "Cutout")
        if not isinstance(self.holes, (list, tuple)) or len(self.holes) > NUM_HOLES[1]:
            raise ParameterError(f"Cutout 'holes' must be a list of at most {NUM_HOLES[1]} boxes, got {self.holes!r}")
        holes = []
        for h in self.holes:
            ok = isinstance(h, (list, tuple)) and len(h) in (4, 6)
            vals = [number(v, "holes", (-MAX_INDEX, MAX_INDEX)) for v in h] if ok else []
            k = len(vals) // 2
            if not ok or any(v != int(v) for v in vals) or any(vals[i] > vals[i + k] for i in range(k)):
                raise ParameterError(f"Cutout holes are [x0, y0, (z0), x1, y1, (z1)] voxel indices with x0 <= x1 ..., got {h!r}")
            holes.append([int(v) for v in vals])
        self.holes = holes

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        out = data.to(torch.float32).clone()
        if isinstance(self.fill, float):
            value = self.fill
        elif self.fill == "min":
            value = float(out.min())
        else:
            value = border_median(data.detach().cpu().numpy())
        for h in self.holes:
            k = len(h) // 2
            if k != data.ndim:
                raise ParameterError(f"Cutout hole {h} does not match a {data.ndim}D image")
            region = tuple(slice(max(h[i], 0), max(h[i + k], 0)) for i in reversed(range(k)))
            out[region] = value
        return out

    def short(self) -> str:
        return f"cutout ×{len(self.holes)}"


@dataclass
class RandomCutout(RandomIntensityTransform):
    """Random coarse dropout of box-shaped holes sized in mm.

    Parameters
    ----------
    num_holes : int or [min, max]
        Integer range of the number of holes.
    size_mm : float or [min, max]
        Side length of a hole in mm, drawn per axis; ``s`` means exactly s.
    fill : float or {"background", "min"}
        See :class:`Cutout`.
    mask : str, optional
    p : float
    channels : {"same", "each"} or list of int
        ``"same"`` (default here): the holes cut through every channel, as a
        missing region does; see :class:`~medaug.engine.transform.RandomIntensityTransform`.
    """

    num_holes: int | tuple[int, int] | list[int] = (1, 4)
    size_mm: RangeLike = (10.0, 30.0)
    fill: float | str = "background"
    mask: str | None = None
    p: float = 1.0
    channels: ChannelChoice = dataclasses.field(default="same", kw_only=True)

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._n = Range("exact", bounds=NUM_HOLES).ints(self.num_holes, "num_holes")
        self._size = Range("exact", bounds=SIZE_MM, unit="mm").parse(self.size_mm, "size_mm")
        self.fill = _check_fill(self.fill, "RandomCutout")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Cutout:
        size_xyz = np.asarray(ctx.grid.size_xyz)
        spacing = np.asarray(ctx.grid.spacing)
        holes = []
        for _ in range(int(rng.integers(self._n[0], self._n[1] + 1))):
            side = np.maximum(np.round(rng.uniform(*self._size, size=ctx.ndim) / spacing), 1).astype(int)
            centre = rng.integers(0, size_xyz)
            lo = np.clip(centre - side // 2, 0, size_xyz)
            hi = np.clip(centre - side // 2 + side, 0, size_xyz)
            holes.append([*lo.tolist(), *hi.tolist()])
        return Cutout(holes=holes, fill=self.fill, mask=self.mask)
