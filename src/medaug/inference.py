"""Inference with augmentation: test-time augmentation (TTA) of a model on one sample.

:func:`tta` runs a pipeline ``n`` times on one sample, calls a model on each
augmented image, maps every prediction back onto the sample's grid with the
inverse of what was applied (:func:`medaug.inverse_of`: scores resampled
linearly, intensity transforms skipped) and returns the mean prediction with a
per-voxel uncertainty.

A voxel that an augmented field of view did not cover gets no vote from that
copy: each mapped-back prediction comes with its coverage (a map of ones sent
through the same inverse, so 1 inside, 0 outside and fractions at the edge),
and the mean and variance are weighted by it.

It works on NumPy arrays and on torch tensors, on the CPU or on a CUDA device
(the engine's torch backend resamples on the device the tensors live on), in 2D
and 3D.

Examples
--------
>>> import numpy as np
>>> import medaug
>>> from medaug.spatial import RandomAffine
>>> sample = medaug.shepp_logan_2d(48)
>>> def predict(x):  # a threshold "model": probability of tissue brighter than water
...     p = 0.5 * (1.0 + np.tanh((np.asarray(x) - 20.0) / 20.0))
...     return np.stack([1.0 - p, p])
>>> pipeline = medaug.Compose([RandomAffine(rotation=10, scale=0.1)])
>>> result = medaug.tta(predict, sample, pipeline, n=4, seed=0)
>>> result.mean.shape, result.uncertainty.shape
((2, 48, 48), (48, 48))
>>> bool(np.allclose(result.mean.sum(0)[result.coverage > 0.99], 1.0, atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .data.grid import Grid
from .data.image import Image
from .data.sample import Sample
from .engine.compose import Compose
from .engine.record import inverse_of
from .engine.transform import SeedLike, as_generator
from .errors import ParameterError

__all__ = ["tta", "TTAResult"]

Uncertainty = Literal["variance", "entropy"]
_COVERAGE = "__coverage__"
#: Below this coverage a mapped-back prediction is not divided by it (no vote).
_EPS = 1e-6


@dataclass
class TTAResult:
    """The averaged prediction of :func:`tta`, on the input sample's grid.

    Attributes
    ----------
    mean : ndarray or torch.Tensor
        The coverage-weighted mean prediction, shaped as ``predict`` returns
        it: ``(C, *spatial)`` class scores or a ``(*spatial)`` map; 0 where no
        copy covered a voxel.  A tensor (on ``predict``'s device) when
        ``predict`` returns tensors, else float64 NumPy.
    uncertainty : ndarray or torch.Tensor
        Per voxel, ``(*spatial)``: the variance across the copies (summed over
        channels for class scores), or the entropy (nats) of the mean class
        probabilities.
    coverage : ndarray or torch.Tensor
        Per voxel, how many copies covered it (fractional at the edges of a field of view).
    grid : Grid
        The grid of the input sample, which the arrays above are on.
    histories : list of list of dict
        The record of each augmented copy (its run), for replaying one.
    """

    mean: Any
    uncertainty: Any
    coverage: Any
    grid: Grid
    histories: list[list[dict[str, Any]]]

    def images(self) -> dict[str, Image]:
        """The mean (one image per channel: ``mean_0`` ...), ``uncertainty`` and ``coverage`` as medaug images."""
        mean = self.mean if self.mean.ndim == self.grid.ndim + 1 else self.mean[None]
        out = {f"mean_{c}": Image(mean[c], grid=self.grid) for c in range(mean.shape[0])}
        out["uncertainty"] = Image(self.uncertainty, grid=self.grid)
        out["coverage"] = Image(self.coverage, grid=self.grid)
        return out


def tta(
    predict: Callable[[Any], Any],
    sample: Sample,
    pipeline: Compose,
    n: int = 8,
    seed: SeedLike = None,
    *,
    image: str = "image",
    uncertainty: Uncertainty = "variance",
    backend: str | None = None,
) -> TTAResult:
    """Test-time augmentation of ``predict`` on ``sample``.

    Parameters
    ----------
    predict : callable
        Maps an image (the augmented sample's ``image`` data as held: NumPy
        array or torch tensor, array order (z, y, x)) to per-voxel class
        scores ``(C, *spatial)`` (probabilities for ``uncertainty="entropy"``)
        or a regression map ``(*spatial)``, on the augmented grid.
    sample : Sample
        The input; its images may be NumPy arrays or tensors (CPU or CUDA).
    pipeline : Compose
        The augmentation.  Its spatial transforms must be invertible (all of
        medaug's are, except deformations that fold).
    n : int
        Number of augmented copies, 1 to 1000.
    seed : int, Generator or None
        Drives the copies' seeds (None: fresh entropy).
    image : str
        The sample's image passed to ``predict``.
    uncertainty : {"variance", "entropy"}
        What :attr:`TTAResult.uncertainty` holds.
    backend : {"auto", "numba", "torch"}, optional
        Backend of the inverse resampling (CUDA tensors always use torch).

    Returns
    -------
    TTAResult

    Raises
    ------
    ParameterError
        For a bad argument, a prediction of the wrong shape, or a step that cannot be inverted.
    """
    if not isinstance(sample, Sample):
        raise ParameterError(f"tta takes a medaug Sample, got {type(sample).__name__}")
    if not isinstance(pipeline, Compose):
        raise ParameterError(f"tta takes a medaug pipeline (Compose), got {type(pipeline).__name__}")
    if image not in sample or sample[image].is_label:
        raise ParameterError(f"tta: 'image' must name an intensity image of the sample, got {image!r} (has {list(sample)})")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 1000:
        raise ParameterError(f"tta: 'n' must be an integer in [1, 1000], got {n!r}")
    if uncertainty not in ("variance", "entropy"):
        raise ParameterError(f"tta: 'uncertainty' must be 'variance' or 'entropy', got {uncertainty!r}")
    seeds = as_generator(seed).integers(0, 2**63 - 1, size=int(n))
    start = len(sample.history)
    grid = sample.grid
    s0 = s1 = s2 = None  # sums of w, w p and w p^2 over the copies
    as_numpy = True
    histories = []
    for k in seeds.tolist():
        out = pipeline(sample, seed=int(k))
        run = out.history[start:]
        histories.append(run)
        pred = predict(out[image].data)
        as_numpy = as_numpy and not isinstance(pred, torch.Tensor)
        channels = _channels(pred, out.grid)
        back = _map_back(channels, out.grid, run, backend)
        w = back.pop()
        w64 = w.to(torch.float64)
        p = torch.stack(back).to(torch.float64)
        vote = w64 > _EPS
        p_unit = torch.where(vote, p / torch.where(vote, w64, torch.ones_like(w64)), torch.zeros_like(p))
        if s0 is None:
            s0, s1, s2 = w64.clone(), p.clone(), w64 * p_unit * p_unit
        else:
            s0, s1, s2 = s0 + w64, s1 + p, s2 + w64 * p_unit * p_unit
    assert s0 is not None and s1 is not None and s2 is not None
    covered = s0 > _EPS
    denom = torch.where(covered, s0, torch.ones_like(s0))
    mean = torch.where(covered, s1 / denom, torch.zeros_like(s1))
    var = torch.clamp(torch.where(covered, s2 / denom, torch.zeros_like(s2)) - mean * mean, min=0.0)
    scalar = mean.shape[0] == 1 and _is_map(pred, grid.ndim)
    if uncertainty == "entropy":
        if scalar:
            raise ParameterError("tta: uncertainty='entropy' needs class probabilities (C, *spatial) with C >= 2")
        m = torch.clamp(mean, min=0.0)
        unc = -(torch.where(m > 0, m * torch.log(torch.clamp(m, min=1e-300)), torch.zeros_like(m))).sum(0)
    else:
        unc = var.sum(0)
    mean_out = mean[0] if scalar else mean
    results = [mean_out, unc, s0]
    if as_numpy:
        results = [r.cpu().numpy() for r in results]
    return TTAResult(results[0], results[1], results[2], grid, histories)


def _is_map(pred: Any, ndim: int) -> bool:
    return len(tuple(pred.shape)) == ndim


def _channels(pred: Any, grid: Grid) -> list[Any]:
    """The prediction's channels as arrays or tensors on ``grid`` (checked)."""
    if not isinstance(pred, torch.Tensor):
        try:
            pred = np.asarray(pred, dtype=np.float32)
        except (TypeError, ValueError):
            raise ParameterError(f"tta: predict must return an array or tensor, got {type(pred).__name__}") from None
    shape = tuple(pred.shape)
    if shape == grid.shape:
        return [pred]
    if len(shape) == grid.ndim + 1 and shape[1:] == grid.shape and shape[0] >= 1:
        return [pred[c] for c in range(shape[0])]
    raise ParameterError(
        f"tta: predict returned shape {shape}; expected the image's shape {grid.shape} or (C, {', '.join(map(str, grid.shape))})"
    )


def _map_back(channels: list[Any], grid: Grid, run: list[dict[str, Any]], backend: str | None) -> list[torch.Tensor]:
    """The channels and a coverage map sent through the inverse of ``run``, as float tensors."""
    first = channels[0]
    if isinstance(first, torch.Tensor):
        data = [c.to(torch.float32) for c in channels]
        ones = torch.ones(grid.shape, dtype=torch.float32, device=first.device)
    else:
        data = [np.asarray(c, np.float32) for c in channels]
        ones = np.ones(grid.shape, np.float32)
    images = {f"p{i}": Image(d, grid=grid) for i, d in enumerate(data)}
    images[_COVERAGE] = Image(ones, grid=grid)
    undo = inverse_of(run, interpolation="linear", fill=0.0, **({"backend": backend} if backend else {}))
    back = undo(Sample(**images), seed=0)
    out = [back[f"p{i}"].tensor for i in range(len(data))]
    out.append(back[_COVERAGE].tensor)
    return out
