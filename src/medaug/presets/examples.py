"""Typical parameters of every registered transform: what the contract tests run and the docs' gallery pictures.

One table, so that the tests and the pictures show the same transforms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.field import DisplacementField, save_field
from ..data.grid import Grid
from ..intensity.bias_field import polynomial_terms

__all__ = ["example_parameters", "write_example_field", "GROUP"]

#: The children of the group transforms' examples.
GROUP = [{"RandomAffine": {"rotation": 5}}, {"RandomGamma": {"log_gamma": 0.2}}]


def write_example_field(path: str | Path, grid: Grid, amplitude: float = 1.5) -> Path:
    """Save a smooth, fold-free displacement field on ``grid`` (a sine of ``amplitude`` mm per component).

    Parameters
    ----------
    path : str or Path
        Where to write it (a NIfTI or another format :func:`~medaug.data.field.save_field` writes).
    grid : Grid
        The field's grid: its physical extent should cover the samples it is applied to.
    amplitude : float
        Largest displacement per component, in mm.

    Returns
    -------
    Path
        ``path``.
    """
    n = grid.ndim
    axes = np.meshgrid(*[np.linspace(0, np.pi, s) for s in grid.shape], indexing="ij")
    data = np.stack([amplitude * np.sin(axes[(c + 1) % n]) for c in range(n)])
    save_field(DisplacementField(grid, data), path)
    return Path(path)


def example_parameters(name: str, ndim: int, field: str, grid: Grid) -> dict[str, Any] | None:
    """Typical parameters of the transform called ``name`` for an ``ndim``-D sample on ``grid`` (None: none here).

    Parameters
    ----------
    name : str
        A registered transform.
    ndim : {2, 3}
        The sample's dimensionality (per-axis values differ).
    field : str
        Path of a displacement field file over the sample's field of view, for
        the transforms that apply a stored field (``Deformation``, ``LearnedDeformation``,
        ``RandomLearnedDeformation``).
    grid : Grid
        The sample's grid (``Inverse`` records the grid it puts its output back on).

    Examples
    --------
    >>> from medaug import shepp_logan_2d
    >>> example_parameters("RandomGamma", 2, "field.nii.gz", shepp_logan_2d(32).grid)
    {'log_gamma': 0.3}
    """
    three = ndim == 3
    v = (lambda a, b: a if three else b)  # noqa: E731
    return {
        "Affine": {"rotation": v([5.0, -3.0, 8.0], 7.0), "scale": 1.08, "translation": 2.0},
        "AffineMatrix": {"matrix": v([[1, 0.05, 0, 2], [-0.05, 1, 0, -1], [0, 0, 1, 1], [0, 0, 0, 1]],
                                     [[1, 0.05, 2], [-0.05, 1, -1], [0, 0, 1]])},
        "BiasField": {"order": 2, "coefficients": [0.0] + [0.1] * (len(polynomial_terms(2, ndim)) - 1)},
        "Blur": {"std": 1.0},
        "Brightness": {"shift": 20.0},
        "CLAHE": {"clip_limit": 0.02, "tiles": 4},
        "CenterCrop": {"size": v([18, 22, 20], [40, 44])},
        "Clip": {"lo": -500.0, "hi": 500.0},
        "ClipPercentile": {"lower": 1.0, "upper": 99.0},
        "Compose": {"transforms": GROUP, "fill": 0.0, "interpolation": "nearest"},
        "Contrast": {"scale": 1.2, "shift": 10.0, "mean": 0.0},
        "Crop": {"start": v([2, 3, 2], [4, 4]), "size": v([20, 18, 19], [38, 40])},
        "CropForeground": {"margin": 2.0},
        "CropToLabel": {"margin": 3.0},
        "Cutout": {"holes": [v([2, 2, 2, 8, 8, 8], [5, 5, 15, 15])], "fill": "background"},
        "Deformation": {"field": field, "scale": 1.0},
        "ElasticBSpline": {"control_points": 5, "max_displacement": 2.0, "seed": 3},
        "ElasticDense": {"alpha": 1.5, "sigma": 12.0, "seed": 3},
        "Flip": {"axes": ["LR", "AP"]},
        "Gamma": {"gamma": 1.3, "lo": -1000.0, "hi": 1000.0},
        "GaussianField": {"sigma": 10.0, "amplitude": 0.2},
        "Ghosting": {"num_ghosts": 4, "axis": 1, "intensity": 0.5},
        "Gibbs": {"alpha": 0.7},
        "HistogramShift": {"x": [-1000.0, 0.0, 1000.0], "y": [-1000.0, 100.0, 1000.0]},
        "Inverse": {"transform": {"name": "ElasticBSpline", "params": {"control_points": 5, "max_displacement": 2.0,
                                                                         "seed": 3}},
                    "grid": grid.to_dict()},
        "LearnedDeformation": {"field": field, "scale": 0.8},
        "LowResolution": {"axis": 0, "factor": 2.0},
        "Motion": {"degrees": [v([1.0, 2.0, 3.0], [3.0])], "translation": [[1.0] * ndim], "times": [0.5]},
        "Noise": {"kind": "gaussian", "std": 10.0, "seed": 1},
        "OneOf": {"transforms": GROUP, "weights": [1, 2]},
        "Pad": {"before": 2, "after": v([1, 2, 3], [1, 2])},
        "RadialDistortion": {"k1": 0.05},
        "RandomAffine": {"rotation": v([0, 0, 10], 10), "scale": 0.1, "translation": 3, "translation_fraction": 0.02},
        "RandomBiasField": {"order": 2, "coefficients": 0.2},
        "RandomBlur": {"std": [0.5, 1.5]},
        "RandomBrightness": {"shift": 30},
        "RandomCLAHE": {},
        "RandomContrast": {"scale": 0.2, "shift": 10},
        "RandomCrop": {"size": v([16, 16, 16], [32, 32])},
        "RandomCutout": {"num_holes": [1, 2], "size_mm": [4, 8]},
        "RandomElastic": {"control_points": 6, "max_displacement": 3},
        "RandomFlip": {"axes": ["LR"], "p": 1.0},
        "RandomGamma": {"log_gamma": 0.3},
        "RandomGaussianField": {},
        "RandomGhosting": {},
        "RandomGibbs": {},
        "RandomHistogramShift": {},
        "RandomLearnedDeformation": {"fields": [field], "scale": [0.5, 1.0]},
        "RandomLowResolution": {"factor": [1.5, 3.0]},
        "RandomMotion": {"degrees": 5, "translation": 3},
        "RandomNoise": {"std": 20},
        "RandomRadialDistortion": {"k1": 0.1},
        "RandomRotation": {"rotation": 10},
        "RandomScale": {"scale": 0.1},
        "RandomSharpen": {},
        "RandomShear": {"shear": 0.05},
        "RandomSpike": {"intensity": 0.5},
        "RandomTranslation": {"translation": 4},
        "RandomWindow": {"window": "brain", "center_jitter": 10},
        "Reorient": {"orientation": v("RAS", "RA")},
        "Resample": {"spacing": v([1.3, 0.9, 1.5], [1.3, 0.8])},
        "RescaleIntensity": {"out_min": 0.0, "out_max": 1.0},
        "Resize": {"factor": 1.25},
        "Sharpen": {"std": 1.0, "amount": 0.5},
        "SomeOf": {"transforms": GROUP, "n": [1, 2]},
        "Spike": {"positions": [v([0.3, 0.6, 0.5], [0.3, 0.6])], "intensity": 0.5},
        "Window": {"center": 40.0, "width": 400.0},
        "ZNormalize": {},
    }.get(name)
