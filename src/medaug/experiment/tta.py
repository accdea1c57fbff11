"""Test-time augmentation for the segmentation experiment, by :func:`medaug.tta`.

Each test image is predicted on ``views`` random draws of :func:`tta_pipeline`;
:func:`medaug.tta` carries every probability map back onto the original grid by
the inverse of the view's recorded spatial transforms and averages the maps,
each voxel weighted by how much of it the view covered.  The experiment uses
the library's TTA as a user would; there is no second implementation here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..data.image import Image
from ..data.sample import Sample
from ..engine.compose import Compose
from .data import single_thread

__all__ = ["predict_tta", "tta_pipeline"]


def tta_pipeline(rotation: float = 10.0, scale: tuple[float, float] = (0.9, 1.1)) -> Compose:
    """The views: a left-right flip (p = 0.5) and an affine of ±``rotation`` degrees and ``scale``."""
    from ..spatial.affine import RandomAffine
    from ..spatial.flip import RandomFlip

    return Compose([RandomFlip(axes=["LR"], p=0.5), RandomAffine(rotation=rotation, scale=list(scale))], fill=0.0)


def predict_tta(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    spacing: tuple[float, float],
    *,
    views: int = 8,
    seed: int = 0,
    pipeline: Compose | None = None,
) -> np.ndarray:
    """The coverage-weighted mean over ``views`` augmented views, mapped back onto each image's grid.

    Parameters
    ----------
    predict : callable
        Maps a batch of images ``(n, h, w)`` to probability maps ``(n, h, w)``.
    images : ndarray
        The test images, ``(n, h, w)``.
    spacing : (float, float)
        Pixel spacing in mm, (x, y) order.
    views : int
        Number of augmented views per image (1 to 1000).
    seed : int
        Seed of the views: image ``i`` drives :func:`medaug.tta` with the stream ``(seed, 0, i)``.
    pipeline : Compose, optional
        An invertible pipeline (default :func:`tta_pipeline`).

    Returns
    -------
    ndarray
        The averaged probability maps, ``(n, h, w)`` float32 (0 where no view covered a pixel).

    Examples
    --------
    >>> x = np.zeros((2, 16, 16), np.float32); x[:, 4:9, 3:7] = 1
    >>> p = predict_tta(lambda b: b.copy(), x, (1.0, 1.0), views=4)
    >>> bool(np.abs(p - x).mean() < 0.1)
    True
    """
    from ..datasets.torch_dataset import item_seed
    from ..inference import tta

    pipeline = pipeline or tta_pipeline()
    out = np.empty(images.shape, np.float32)

    def one(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(predict(np.asarray(x, np.float32)[None]))[0]

    with single_thread():  # one small image at a time: a second thread only waits (see single_thread)
        for i, img in enumerate(images):
            sample = Sample(image=Image(np.asarray(img, np.float32), spacing=spacing))
            out[i] = tta(one, sample, pipeline, n=views, seed=item_seed(seed, 0, i)).mean
    return out
