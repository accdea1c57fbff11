"""The "standard pipeline" built with each peer library, plus the floor.

Standard pipeline (what every row of the benchmark table runs):

1. random affine: rotation uniform ±10° about each axis, scale uniform
   0.9–1.1 per axis, translation uniform ±5 mm per axis;
2. elastic deformation: B-spline with 7 control points per axis, control
   point displacements up to 7 mm (or the peer's nearest equivalent, see
   each builder);
3. left–right flip with p = 0.5;
4. random gamma, log(gamma) uniform in ±0.3;
5. additive Gaussian noise, sigma = 2 % of the intensity range (0.02 here,
   images are in about [0, 1]);
6. multiplicative polynomial bias field of order 3 (coefficients ±0.5).

Image interpolation is (tri)linear, the label map is resampled with
nearest neighbour, out-of-field voxels are filled with 0.

Every ``build_*`` function takes the numpy inputs ``image`` (float32) and
``label`` (uint8) in numpy array order (z, y, x) — or (y, x) in 2D — with
1 mm spacing and the last axis left–right, does all the untimed
preparation (imports, converting the arrays into the peer's own data
structure and layout, building the transform objects) and returns a
:class:`Built` whose ``step(seed)`` runs the whole pipeline once on that
input and returns ``(image_out, label_out)``.  Only ``step`` is timed.

Layouts: TorchIO and MONAI get the array transposed to (x, y, z) — what
their NIfTI readers produce — so left–right is their spatial axis 0; the
transposed copy is made once, outside the timed region.  batchgeneratorsv2,
Albumentations and the floor work on the (z, y, x) array directly.

A builder raises :class:`PeerUnavailable` when the peer cannot be imported.

TorchIO 2.0 (pre-release, not on PyPI) can only be imported in a process in
which TorchIO 1.x has not been imported: its builders insert the directory
named by the environment variable ``MEDAUG_BENCH_TORCHIO2_PATH`` (a
``pip install --target`` site dir) at the front of ``sys.path``.  The
harness runs every peer in its own fresh child process, so this is safe
there; do not call ``build_torchio2_*`` in a process that already imported
``torchio``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from synthetic import NOISE_STD  # benchmarks/ is on sys.path (run.py and the harness child put it there)

# --------------------------------------------------------------------------
# shared parameters of the standard pipeline
# --------------------------------------------------------------------------
ROTATION_DEG = 10.0
SCALE_RANGE = (0.9, 1.1)
TRANSLATION_MM = 5.0
CONTROL_POINTS = 7
MAX_DISPLACEMENT_MM = 7.0
FLIP_P = 0.5
LOG_GAMMA = 0.3
GAMMA_RANGE = (math.exp(-LOG_GAMMA), math.exp(LOG_GAMMA))  # (0.741, 1.350)
BIAS_ORDER = 3
BIAS_COEFFICIENTS = 0.5

# TorchIO places the B-spline control grid so that (with its default
# locked_borders=2) the control spacing is extent / (n - 2): for the
# 197 x 233 x 189 mm volume and n = 7 that is about 39 / 47 / 38 mm.
# A smoothed-white-noise field has the same correlation length as a cubic
# B-spline field with control spacing h when the Gaussian sigma is
# h / sqrt(3) (both autocorrelations then have variance 2 h^2 / 3), so the
# "nearest equivalent" Gaussian sigma is extent / (5 * sqrt(3)) = 0.1155 x
# extent: about 23 mm here, about 30 px for the 256-px 2D image.
ELASTIC_SIGMA_FRACTION = 1.0 / ((CONTROL_POINTS - 2) * math.sqrt(3.0))  # 0.1155
ELASTIC_SIGMA_3D_MM = 23.0
ELASTIC_SIGMA_2D_PX = 256 * ELASTIC_SIGMA_FRACTION  # 29.6

# MONAI's Rand3DElastic smooths full-resolution uniform(-1, 1) noise with a
# Gaussian of the given sigma and multiplies by "magnitude"; the field's
# largest component is then a small random fraction of the magnitude.
# Measured (benchmarks calibration, 3 draws x 3 axes on the 197x233x189
# grid, sigma 23 voxels): max|field| = 0.00243 x magnitude (0.0020-0.0030).
# So magnitude 2880 gives a largest displacement of about 7 mm.
MONAI_ELASTIC_MAGNITUDE_3D = MAX_DISPLACEMENT_MM / 0.00243  # ~2880
# Same calibration for sigma 8 voxels (the non-default "monai-sigma8" row):
# max|field| = 0.0156 x magnitude (2 draws x 3 axes) -> magnitude ~450 for ~7 mm.
MONAI_ELASTIC_MAGNITUDE_SIGMA8 = MAX_DISPLACEMENT_MM / 0.0156
# MONAI's Rand2DElastic is a real control-point grid: normal(0, 1) offsets x
# magnitude on a grid with the given spacing (px), upsampled bicubically.
# Spacing 51 px = 256 / (7 - 2) as TorchIO's; with ~50 control points the
# largest |offset| is about 2.3 sigma, so magnitude 3 gives ~7 px.
MONAI_ELASTIC_SPACING_2D = 51
MONAI_ELASTIC_MAGNITUDE_2D = 3.0
# Albumentations' ElasticTransform: normal noise scaled to max |.| = 1, blurred
# with sigma (px), times alpha.  Measured (20 draws, 256x256, sigma 29.6):
# max|field| = 0.078 x alpha (0.015-0.18), so alpha 90 gives ~7 px.
ALBU_ELASTIC_ALPHA = MAX_DISPLACEMENT_MM / 0.078  # ~90


class PeerUnavailable(RuntimeError):
    """The peer library cannot be imported in this environment."""


@dataclass
class Built:
    step: Callable[[int], tuple[Any, Any]]
    version: str
    notes: str = ""
    # objects that must stay alive while step is used (inputs, grids, ...)
    keep: list = field(default_factory=list)
    # samples one step augments (a batch call): times are divided by it
    samples_per_step: int = 1


def _xyz(array: np.ndarray) -> np.ndarray:
    """(z, y, x) -> contiguous (x, y, z); (y, x) -> contiguous (x, y)."""
    return np.ascontiguousarray(array.transpose(tuple(range(array.ndim))[::-1]))


def _version(module) -> str:
    return f"{module.__name__} {getattr(module, '__version__', '?')}"


# ==========================================================================
# floor: the least work any implementation of the pipeline has to do
# ==========================================================================
def _floor_grid(shape, seed=0):
    """A fixed affine + smooth elastic sampling grid for grid_sample (computed once, untimed)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    nd = len(shape)
    ang = math.radians(7.0)
    if nd == 3:
        c, s = math.cos(ang), math.sin(ang)
        rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    else:
        c, s = math.cos(ang), math.sin(ang)
        rot = torch.tensor([[c, -s], [s, c]])
    theta = torch.cat([rot * 1.05, torch.full((nd, 1), 0.02)], dim=1)[None]
    grid = F.affine_grid(theta, (1, 1, *shape), align_corners=False)
    # coarse random field (7 points per axis, ~7 px) upsampled to full size
    coarse = (torch.rand((1, nd, *([CONTROL_POINTS] * nd)), generator=g) * 2 - 1) * 7.0
    mode = "trilinear" if nd == 3 else "bilinear"
    field_ = F.interpolate(coarse, size=shape, mode=mode, align_corners=True)[0]
    # voxels -> normalised grid units (grid's last dim is x, y[, z] = reversed array axes)
    scale = torch.tensor([2.0 / n for n in shape[::-1]])
    field_ = field_.movedim(0, -1) * scale
    return (grid[0] + field_).unsqueeze(0).contiguous()


def _build_floor(image, label):
    import torch
    import torch.nn.functional as F

    img = torch.from_numpy(image)[None] if image.ndim > label.ndim else torch.from_numpy(image)[None, None]
    lab = torch.from_numpy(label.astype(np.float32))[None, None]
    grid = _floor_grid(label.shape)

    def step(seed: int):
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        lab_out = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        out.mul_(1.01).add_(0.001)  # one elementwise intensity pass
        return out, lab_out

    return Built(
        step,
        f"torch {torch.__version__}",
        "one linear + one nearest grid_sample on a precomputed grid, one elementwise pass",
        [img, lab, grid],
    )


def build_floor_3d(image, label):
    return _build_floor(image, label)


def build_floor_2d(image, label):
    return _build_floor(image, label)


# ==========================================================================
# TorchIO 1.x (PyPI)
# ==========================================================================
def _import_torchio1():
    try:
        import torchio as tio
    except ImportError as exc:
        raise PeerUnavailable(f"torchio not importable: {exc}") from exc
    if not tio.__version__.startswith("1."):
        raise PeerUnavailable(f"expected TorchIO 1.x, got {tio.__version__}")
    return tio


def _build_torchio(image, label, *, fused: bool):
    import torch

    tio = _import_torchio1()
    two_d = image.ndim == 2
    x = _xyz(image)
    lab = _xyz(label)
    if two_d:  # TorchIO 1.x handles 2D as 3D with a singleton last axis
        x, lab = x[..., None], lab[..., None]
    x_t = torch.from_numpy(x)[None]  # (1, X, Y, Z): spatial axis 0 is left-right
    l_t = torch.from_numpy(lab)[None]
    affine = np.eye(4)  # 1 mm, RAS: axis 0 is R-L, so 'LR' flips axis 0
    if two_d:
        degrees = (0, 0, 0, 0, -ROTATION_DEG, ROTATION_DEG)  # in-plane rotation only
        scales = (*SCALE_RANGE, *SCALE_RANGE, 1, 1)
        translation = (-TRANSLATION_MM, TRANSLATION_MM, -TRANSLATION_MM, TRANSLATION_MM, 0, 0)
        # 5 points on the singleton axis: 4 would be an identity field with locked_borders=2
        ncp = (CONTROL_POINTS, CONTROL_POINTS, 5)
        max_disp = (MAX_DISPLACEMENT_MM, MAX_DISPLACEMENT_MM, 0)
    else:
        degrees = ROTATION_DEG  # uniform(-10, 10) per axis
        scales = SCALE_RANGE  # uniform(0.9, 1.1) per axis (isotropic=False)
        translation = TRANSLATION_MM  # uniform(-5, 5) mm per axis
        ncp = CONTROL_POINTS
        max_disp = MAX_DISPLACEMENT_MM
    affine_kwargs = dict(
        scales=scales,
        degrees=degrees,
        translation=translation,
        default_pad_value=0,
        image_interpolation="linear",
        label_interpolation="nearest",
    )
    # num_control_points=7, max_displacement=7 mm: control displacements are
    # uniform in +-7 mm, locked_borders=2 (default): spacing extent / 5.
    elastic_kwargs = dict(num_control_points=ncp, max_displacement=max_disp, locked_borders=2)
    if fused:
        # TorchIO 1.2's RandomAffineElasticDeformation: one SimpleITK resampling
        spatial = [tio.RandomAffineElasticDeformation(affine_kwargs=affine_kwargs, elastic_kwargs=elastic_kwargs)]
    else:
        spatial = [tio.RandomAffine(**affine_kwargs), tio.RandomElasticDeformation(**elastic_kwargs)]
    transform = tio.Compose(
        [
            *spatial,
            tio.RandomFlip(axes=("LR",), flip_probability=FLIP_P),
            tio.RandomGamma(log_gamma=(-LOG_GAMMA, LOG_GAMMA)),
            tio.RandomNoise(std=(NOISE_STD, NOISE_STD)),
            tio.RandomBiasField(coefficients=BIAS_COEFFICIENTS, order=BIAS_ORDER),
        ]
    )

    def step(seed: int):
        torch.manual_seed(seed)  # TorchIO draws its parameters from torch's RNG
        np.random.seed(seed)
        subject = tio.Subject(
            image=tio.ScalarImage(tensor=x_t, affine=affine),
            label=tio.LabelMap(tensor=l_t, affine=affine),
        )
        out = transform(subject)
        return out["image"].data, out["label"].data

    notes = "RandomAffineElasticDeformation (one SimpleITK resample)" if fused else "RandomAffine + RandomElasticDeformation"
    return Built(step, _version(tio), notes, [x_t, l_t])


def build_torchio_3d(image, label):
    return _build_torchio(image, label, fused=False)


def build_torchio_2d(image, label):
    return _build_torchio(image, label, fused=False)


def build_torchio_fused_3d(image, label):
    return _build_torchio(image, label, fused=True)


def build_torchio_fused_2d(image, label):
    return _build_torchio(image, label, fused=True)


# ==========================================================================
# TorchIO 2.0 alpha (main branch snapshot, not on PyPI)
# ==========================================================================
TORCHIO2_ENV = "MEDAUG_BENCH_TORCHIO2_PATH"


def _import_torchio2():
    path = os.environ.get(TORCHIO2_ENV)
    if not path:
        raise PeerUnavailable(f"set {TORCHIO2_ENV} to a site dir holding TorchIO 2.0 (see benchmarks/README.md)")
    if "torchio" in sys.modules and not sys.modules["torchio"].__version__.startswith("2."):
        raise PeerUnavailable("TorchIO 1.x already imported in this process; TorchIO 2 needs a fresh process")
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import torchio as tio
    except ImportError as exc:
        raise PeerUnavailable(f"TorchIO 2 not importable from {path}: {exc}") from exc
    if not tio.__version__.startswith("2."):
        raise PeerUnavailable(f"expected TorchIO 2.x from {path}, got {tio.__version__} ({tio.__file__})")
    return tio


def _build_torchio2(image, label):
    import torch

    tio = _import_torchio2()
    two_d = label.ndim == 2
    channels = image.ndim > label.ndim  # (C, z, y, x): TorchIO wants (C, x, y, z)
    x = np.ascontiguousarray(image.transpose(0, 3, 2, 1)) if channels else _xyz(image)
    lab = _xyz(label)
    if two_d:
        x, lab = x[..., None], lab[..., None]
    x_t = torch.from_numpy(x) if channels else torch.from_numpy(x)[None]
    l_t = torch.from_numpy(lab)[None]
    affine = np.eye(4)
    r, t = ROTATION_DEG, TRANSLATION_MM
    if two_d:
        degrees = (0, 0, 0, 0, -r, r)
        scales = (*SCALE_RANGE, *SCALE_RANGE, 1, 1)
        translation = (-t, t, -t, t, 0, 0)
        ncp = (CONTROL_POINTS, CONTROL_POINTS, 5)
        max_disp = (MAX_DISPLACEMENT_MM, MAX_DISPLACEMENT_MM, 0.0)  # 3-tuple: fixed per-axis bounds
    else:
        max_disp = MAX_DISPLACEMENT_MM
        degrees = (-r, r)  # 2-tuple: uniform range for every axis (a scalar would be a fixed angle)
        scales = SCALE_RANGE
        translation = (-t, t)
        ncp = CONTROL_POINTS
    # TorchIO 2's Spatial fuses affine + elastic into one grid_sample per image.
    # max_displacement: a scalar is the fixed bound of the control-point
    # displacements (uniform in +-7 mm); locked_borders=2 as in TorchIO 1.
    # BiasField in 2.0 is not polynomial: SynthSeg-style smooth field (coarse
    # normal noise, std 0.5, upsampled, exponentiated) - the nearest equivalent.
    transform = tio.Compose(
        [
            tio.Spatial(
                scales=scales,
                degrees=degrees,
                translation=translation,
                num_control_points=ncp,
                max_displacement=max_disp,
                locked_borders=2,
                image_interpolation="linear",
                label_interpolation="nearest",
                default_pad_value=0.0,
                default_pad_label=0,
            ),
            tio.Flip(axes=("LR",), flip_probability=FLIP_P),
            tio.Gamma(log_gamma=(-LOG_GAMMA, LOG_GAMMA)),
            tio.Noise(std=(NOISE_STD, NOISE_STD)),
            tio.BiasField(std=0.5),
        ]
    )

    def step(seed: int):
        torch.manual_seed(seed)
        np.random.seed(seed)
        subject = tio.Subject(
            image=tio.ScalarImage(x_t, affine=affine),
            label=tio.LabelMap(l_t, affine=affine),
        )
        out = transform(subject)
        return out["image"].data, out["label"].data

    return Built(step, _version(tio), "Spatial (fused affine+elastic) + Flip + Gamma + Noise + BiasField(SynthSeg-style)", [x_t, l_t])


def build_torchio2_3d4(image, label):
    return _build_torchio2(image, label)


def build_floor_3d4(image, label):
    return _build_floor(image, label)


def build_torchio2_3d(image, label):
    return _build_torchio2(image, label)


def build_torchio2_2d(image, label):
    return _build_torchio2(image, label)


# ==========================================================================
# MONAI
# ==========================================================================
def _import_monai():
    try:
        import monai
        from monai import transforms as mt
    except ImportError as exc:
        raise PeerUnavailable(f"monai not importable: {exc}") from exc
    return monai, mt


def _build_monai(image, label, *, variant: str, sigma: float = ELASTIC_SIGMA_3D_MM):
    """variant: 'plain' (RandAffined + elastic), 'lazy' (same, Compose(lazy=True)),
    'fused' (affine parameters given to the elastic transform: one resample).
    ``sigma``: 3D elastic smoothing in voxels (23 = the 7-point B-spline equivalent)."""
    import torch

    monai, mt = _import_monai()
    two_d = image.ndim == 2
    keys = ("image", "label")
    x_t = torch.from_numpy(_xyz(image))[None]  # (1, X, Y[, Z]); spatial axis 0 is left-right
    # MONAI resamples labels through grid_sample in float; giving it float32
    # (as LoadImaged does by default) avoids a cast per transform.
    l_t = torch.from_numpy(_xyz(label).astype(np.float32))[None]
    nd = image.ndim
    rad = math.radians(ROTATION_DEG)
    # MONAI ranges: rotate_range r -> uniform(-r, r) (radians); scale_range s
    # -> 1 + uniform(-s, s); translate_range t -> uniform(-t, t) voxels (= mm here).
    # In 2D one rotation angle (in-plane).
    affine_ranges = dict(
        rotate_range=(rad,) if two_d else (rad, rad, rad),
        scale_range=(SCALE_RANGE[1] - 1.0,) * nd,
        translate_range=(TRANSLATION_MM,) * nd,
    )
    modes = dict(mode=("bilinear", "nearest"), padding_mode=("zeros", "zeros"))
    if two_d:
        # Rand2DElastic is a control-point grid: spacing in px, normal offsets x magnitude
        elastic_cls = mt.Rand2DElasticd
        elastic_params = dict(
            spacing=(MONAI_ELASTIC_SPACING_2D,) * 2,
            magnitude_range=(MONAI_ELASTIC_MAGNITUDE_2D, MONAI_ELASTIC_MAGNITUDE_2D),
        )
    else:
        # Rand3DElastic: full-resolution noise smoothed by a Gaussian (sigma in
        # voxels), x magnitude.  sigma 23 ~ TorchIO's 7-point control spacing
        # (see ELASTIC_SIGMA_3D_MM), magnitude calibrated for ~7 mm max.
        # Not a LazyTransform: in lazy mode pending affines are applied before it.
        elastic_cls = mt.Rand3DElasticd
        # Note: at one torch thread, torch 2.13 runs this 139-tap separable
        # Gaussian through a path that asks for ~40 GB and fails; see
        # build_monai_sigma8_3d for a variant that runs everywhere.
        magnitude = MONAI_ELASTIC_MAGNITUDE_3D if sigma == ELASTIC_SIGMA_3D_MM else MONAI_ELASTIC_MAGNITUDE_SIGMA8
        elastic_params = dict(sigma_range=(sigma, sigma), magnitude_range=(magnitude, magnitude))
    if variant == "fused":
        spatial = [elastic_cls(keys, prob=1.0, **elastic_params, **affine_ranges, **modes)]
    else:
        spatial = [
            mt.RandAffined(keys, prob=1.0, **affine_ranges, **modes),
            elastic_cls(keys, prob=1.0, **elastic_params, **modes),
        ]
    transforms = [
        *spatial,
        mt.RandFlipd(keys, prob=FLIP_P, spatial_axis=0),  # axis 0 = x = left-right in this layout
        # gamma drawn uniformly in (exp(-0.3), exp(0.3)); MONAI rescales to [0,1] around the power
        mt.RandAdjustContrastd("image", prob=1.0, gamma=GAMMA_RANGE),
        mt.RandGaussianNoised("image", prob=1.0, mean=0.0, std=NOISE_STD, sample_std=False),
        # exp(polynomial of degree 3), coefficients uniform(-0.5, 0.5) as TorchIO's
        mt.RandBiasFieldd("image", prob=1.0, degree=BIAS_ORDER, coeff_range=(-BIAS_COEFFICIENTS, BIAS_COEFFICIENTS)),
    ]
    if variant == "lazy":
        # Without `overrides`, pending nearest-neighbour label resampling is
        # executed with the image's bilinear mode and the label gains values
        # (MONAI#7363 / #6850; seen here with 1.6.1).  `overrides` is MONAI's
        # documented way to pin the mode per key when lazy.
        pipeline = mt.Compose(
            transforms,
            lazy=True,
            overrides={
                "image": {"mode": "bilinear", "padding_mode": "zeros"},
                "label": {"mode": "nearest", "padding_mode": "zeros"},
            },
        )
    else:
        pipeline = mt.Compose(transforms)

    def step(seed: int):
        pipeline.set_random_state(seed=seed)
        out = pipeline({"image": x_t, "label": l_t})
        return out["image"], out["label"]

    notes = {
        "plain": "RandAffined + Rand%sElasticd (two resamples)" % ("2D" if two_d else "3D"),
        "lazy": "Compose(lazy=True); the elastic transform is not lazy, so it still resamples separately",
        "fused": "affine ranges passed to Rand%sElasticd (one resample)" % ("2D" if two_d else "3D"),
    }[variant]
    return Built(step, _version(monai), notes, [x_t, l_t])


def build_monai_3d(image, label):
    return _build_monai(image, label, variant="plain")


def build_monai_2d(image, label):
    return _build_monai(image, label, variant="plain")


def build_monai_sigma8_3d(image, label):
    """Not equivalent (much finer, "tutorial-style" warps: sigma 8 voxels), but runs at one thread."""
    return _build_monai(image, label, variant="plain", sigma=8.0)


def build_monai_lazy_3d(image, label):
    return _build_monai(image, label, variant="lazy")


def build_monai_lazy_2d(image, label):
    return _build_monai(image, label, variant="lazy")


def build_monai_fused_3d(image, label):
    return _build_monai(image, label, variant="fused")


def build_monai_fused_2d(image, label):
    return _build_monai(image, label, variant="fused")


# ==========================================================================
# batchgeneratorsv2
# ==========================================================================
def _build_bgv2(image, label, *, elastic: bool = True):
    import torch

    try:
        import batchgeneratorsv2  # noqa: F401 - is the package there?
        from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
        from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
        from batchgeneratorsv2.transforms.local.brightness_gradient import BrightnessGradientAdditiveTransform
        from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
        from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
        from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    except ImportError as exc:
        raise PeerUnavailable(f"batchgeneratorsv2 not importable: {exc}") from exc
    from importlib.metadata import version as _dist_version

    # (z, y, x) or (y, x), voxel space: spacing 1 mm so mm == voxels; a 4-channel input is (C, z, y, x)
    shape = image.shape[-len(label.shape):]
    nd = len(shape)
    img_t = torch.from_numpy(image) if image.ndim > label.ndim else torch.from_numpy(image)[None]  # (C, Z, Y, X)
    seg_t = torch.from_numpy(label.astype(np.int16))[None]  # nnU-Net keeps segmentations as int16
    rad = math.radians(ROTATION_DEG)
    spatial = SpatialTransform(
        patch_size=shape,  # output = whole image (no cropping)
        # bgv2 has no translation parameter: translation comes from where the
        # patch centre is drawn.  random_crop=True with a centre uniform in
        # [s/2 - 5, s/2 + 5] voxels = translation uniform +-5 mm.
        patch_center_dist_from_border=[s / 2 - TRANSLATION_MM for s in shape],
        random_crop=True,
        # elastic: full-resolution normal noise, Gaussian-smoothed (FFT) with
        # sigma = scale x patch size per axis, then scaled so that its largest
        # component is exactly `magnitude` voxels.  scale 0.1155 = the
        # Gaussian equivalent of a 7-point B-spline grid (ELASTIC_SIGMA_FRACTION),
        # magnitude 7 voxels = 7 mm.
        # heavy ("bgv2"): elastic on every sample.  Light ("bgv2-light"): nnU-Net v2's default, p_elastic_deform=0:
        # no elastic.  bgv2's elastic draws full-resolution noise and smooths it with an FFT per axis, which is
        # most of its time, so medaug's ratio to bgv2 depends mainly on this one setting.
        p_elastic_deform=1.0 if elastic else 0.0,
        elastic_deform_scale=ELASTIC_SIGMA_FRACTION,
        elastic_deform_magnitude=MAX_DISPLACEMENT_MM,
        p_rotation=1.0,
        rotation=(-rad, rad),  # radians, drawn per axis
        p_rot_per_axis=1.0,
        p_scaling=1.0,
        scaling=SCALE_RANGE,  # per axis ("larger numbers = smaller objects")
        p_synchronize_scaling_across_axes=0.0,
        mode_seg="nearest",  # like the other peers; nnU-Net's default 'bilinear' one-hots each label
        border_mode_seg="zeros",
        mode_image="bilinear",
        padding_mode_image="zeros",
        center_deformation=True,
    )
    transforms = [
        spatial,
        MirrorTransform(allowed_axes=(nd - 1,)),  # last axis = x = left-right; p 0.5 built in
        GammaTransform(
            gamma=GAMMA_RANGE,
            p_invert_image=0.0,
            synchronize_channels=False,
            p_per_channel=1.0,
            p_retain_stats=0.0,
        ),
        # the parameter is called noise_variance but it is the standard deviation
        GaussianNoiseTransform(noise_variance=(NOISE_STD, NOISE_STD), p_per_channel=1.0, synchronize_channels=True),
        # bgv2 has no multiplicative polynomial bias field.  Nearest equivalent:
        # an additive smooth Gaussian "brightness gradient" (one broad bump,
        # sd 30-60 % of each axis, peak +-20 % of the intensity range).
        BrightnessGradientAdditiveTransform(
            scale=lambda shp, d: np.random.uniform(0.3, 0.6) * shp[d],
            loc=(-0.5, 1.5),
            max_strength=lambda _img, _k: np.random.uniform(-0.2, 0.2),
            same_for_all_channels=True,
            mean_centered=True,
            p_per_channel=1.0,
        ),
    ]
    pipeline = ComposeTransforms(transforms)

    def step(seed: int):
        np.random.seed(seed)  # bgv2 draws from numpy's and torch's global RNGs
        torch.manual_seed(seed)
        out = pipeline(image=img_t, segmentation=seg_t)
        return out["image"], out["segmentation"]

    return Built(
        step,
        f"batchgeneratorsv2 {_dist_version('batchgeneratorsv2')}",
        "SpatialTransform (fused rot+scale+elastic, crop centre = translation) + Mirror + Gamma + GaussianNoise + BrightnessGradientAdditive (no bias field)",
        [img_t, seg_t],
    )


def build_bgv2_3d(image, label):
    return _build_bgv2(image, label)


def build_bgv2_2d(image, label):
    return _build_bgv2(image, label)


def build_bgv2_light_3d(image, label):
    return _build_bgv2(image, label, elastic=False)


def build_bgv2_light_2d(image, label):
    return _build_bgv2(image, label, elastic=False)


def build_bgv2_3d4(image, label):
    return _build_bgv2(image, label)


# ==========================================================================
# Albumentations (2D only)
# ==========================================================================
def build_albumentations_2d(image, label):
    try:
        import albumentations as A
        import cv2
    except ImportError as exc:
        raise PeerUnavailable(f"albumentations not importable: {exc}") from exc
    lin, nn, const = cv2.INTER_LINEAR, cv2.INTER_NEAREST, cv2.BORDER_CONSTANT
    pipeline = A.Compose(
        [
            A.Affine(
                scale={"x": SCALE_RANGE, "y": SCALE_RANGE},  # per axis
                translate_px={"x": (-int(TRANSLATION_MM), int(TRANSLATION_MM)), "y": (-int(TRANSLATION_MM), int(TRANSLATION_MM))},
                rotate=(-ROTATION_DEG, ROTATION_DEG),
                interpolation=lin,
                mask_interpolation=nn,
                border_mode=const,
                fill=0,
                fill_mask=0,
                p=1.0,
            ),
            # dense elastic: normal noise scaled to max 1, Gaussian blur sigma
            # 29.6 px (= 7-point B-spline equivalent), x alpha 90 (~7 px max).
            A.ElasticTransform(
                alpha=ALBU_ELASTIC_ALPHA,
                sigma=ELASTIC_SIGMA_2D_PX,
                interpolation=lin,
                mask_interpolation=nn,
                border_mode=const,
                fill=0,
                fill_mask=0,
                p=1.0,
            ),
            A.HorizontalFlip(p=FLIP_P),
            # gamma_limit is 100 x gamma
            A.RandomGamma(gamma_limit=(100 * GAMMA_RANGE[0], 100 * GAMMA_RANGE[1]), p=1.0),
            # std_range is a fraction of the dtype's max value (1.0 for float32)
            A.GaussNoise(std_range=(NOISE_STD, NOISE_STD), mean_range=(0.0, 0.0), p=1.0),
            # no bias field in Albumentations 2.0.8 (documented gap)
        ],
        seed=0,
    )

    def step(seed: int):
        pipeline.set_random_seed(seed)
        out = pipeline(image=image, mask=label)
        return out["image"], out["mask"]

    return Built(step, _version(A), "Affine + ElasticTransform + HorizontalFlip + RandomGamma + GaussNoise (no bias field)")


# --------------------------------------------------------------------------
# registry: peer name -> {kind: builder function name in this module}
# --------------------------------------------------------------------------
PEERS: dict[str, dict[str, str]] = {
    "floor": {"3d": "build_floor_3d", "2d": "build_floor_2d", "3d4": "build_floor_3d4"},
    "bgv2": {"3d": "build_bgv2_3d", "2d": "build_bgv2_2d", "3d4": "build_bgv2_3d4"},
    "bgv2-light": {"3d": "build_bgv2_light_3d", "2d": "build_bgv2_light_2d"},
    "torchio": {"3d": "build_torchio_3d", "2d": "build_torchio_2d"},
    "torchio-fused": {"3d": "build_torchio_fused_3d", "2d": "build_torchio_fused_2d"},
    "torchio2": {"3d": "build_torchio2_3d", "2d": "build_torchio2_2d", "3d4": "build_torchio2_3d4"},
    "monai": {"3d": "build_monai_3d", "2d": "build_monai_2d"},
    "monai-lazy": {"3d": "build_monai_lazy_3d", "2d": "build_monai_lazy_2d"},
    "monai-fused": {"3d": "build_monai_fused_3d", "2d": "build_monai_fused_2d"},
    "monai-sigma8": {"3d": "build_monai_sigma8_3d"},
    "albumentations": {"2d": "build_albumentations_2d"},
}

#: peers that run when --only is not given
DEFAULT_PEERS = ("floor", "bgv2", "bgv2-light", "torchio", "torchio2", "monai", "monai-lazy", "albumentations")
