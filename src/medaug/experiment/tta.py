"""Test-time augmentation for the segmentation experiment: predict on augmented views, map back, average.

This is the experiment's one TTA step, written against :func:`medaug.inverse_of`
for invertible (flip and affine) pipelines; when ``medaug.tta`` is available it
is the place to switch to it.

View 0 is the image itself; each further view is a random draw of
:func:`tta_pipeline`.  The probability map predicted on a view is carried back
onto the original grid by the inverse of the view's recorded spatial
transforms (linear interpolation, 0 outside the view), and the maps of all
views are averaged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
    """Mean over ``views`` of the predictions mapped back onto the original grid.

    Parameters
    ----------
    predict : callable
        Maps a batch of images ``(n, h, w)`` to probability maps ``(n, h, w)``.
    images : ndarray
        The test images, ``(n, h, w)``.
    spacing : (float, float)
        Pixel spacing in mm.
    views : int
        Number of views including the unaugmented one (1: no TTA).
    seed : int
        Seed of the views (view ``k`` of image ``i`` uses the stream ``(seed, k, i)``).
    pipeline : Compose, optional
        An invertible pipeline (default :func:`tta_pipeline`).

    Returns
    -------
    ndarray
        The averaged probability maps, ``(n, h, w)`` float32.

    Examples
    --------
    >>> x = np.zeros((2, 16, 16), np.float32); x[:, 4:9, 3:7] = 1
    >>> p = predict_tta(lambda b: b.copy(), x, (1.0, 1.0), views=4)
    >>> bool(np.abs(p - x).mean() < 0.1)
    True
    """
    from ..datasets.torch_dataset import item_seed
    from ..engine.record import inverse_of

    pipeline = pipeline or tta_pipeline()
    total = np.asarray(predict(images), np.float64)
    for k in range(1, views):
        with single_thread():
            outs = [pipeline(Sample(image=Image(img, spacing=spacing)), seed=item_seed(seed, k, i))
                    for i, img in enumerate(images)]
        probs = np.asarray(predict(np.stack([o["image"].array.astype(np.float32) for o in outs])))
        with single_thread():
            for i, (o, p) in enumerate(zip(outs, probs)):
                back = inverse_of(o.history)(Sample(image=Image(p.astype(np.float32), grid=o["image"].grid)))
                total[i] += back["image"].array
    return (total / views).astype(np.float32)
