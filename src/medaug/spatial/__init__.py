"""Spatial transforms: each contributes a coordinate map; the engine resamples once."""

from .affine import Affine, AffineMatrix, RandomAffine, RandomRotation, RandomShear, RandomTranslation, RandomZoom
from .crop import CenterCrop, Crop, Pad, RandomCrop
from .elastic import ElasticBSpline, ElasticDense, RandomElastic
from .flip import Flip, RandomFlip
from .learned import Deformation, LearnedDeformation, RandomLearnedDeformation
from .preprocess import CropForeground, CropToLabel, ForegroundCrop, Reorient, Zoom, crop_foreground
from .radial import RadialDistortion, RandomRadialDistortion
from .resample import Resample

__all__ = [
    "Affine", "AffineMatrix", "RandomAffine", "RandomRotation", "RandomShear", "RandomTranslation", "RandomZoom",
    "Crop", "CenterCrop", "Pad", "RandomCrop",
    "ElasticBSpline", "ElasticDense", "RandomElastic",
    "Flip", "RandomFlip",
    "Deformation", "LearnedDeformation", "RandomLearnedDeformation",
    "RadialDistortion", "RandomRadialDistortion",
    "Resample",
    "CropForeground", "ForegroundCrop", "CropToLabel", "Reorient", "Zoom", "crop_foreground",
]
