"""Spatial transforms: each contributes a coordinate map; the engine resamples once.

Axes are physical (x, y, z) = (LR, AP, SI) for geometric parameters and array
order (z, y, x) for voxel counts (crops, pads, :class:`Resize` factors), as each
docstring states.  :class:`RandomScale` scales the content (an affine, same
grid); :class:`Resize` and :class:`Resample` change the grid.
"""

from .affine import Affine, AffineMatrix, RandomAffine, RandomRotation, RandomScale, RandomShear, RandomTranslation
from .crop import CenterCrop, Crop, Pad, RandomCrop
from .elastic import ElasticBSpline, ElasticDense, RandomElastic
from .flip import Flip, RandomFlip
from .learned import Deformation, LearnedDeformation, RandomLearnedDeformation
from .preprocess import CropForeground, CropToLabel, Reorient, Resize, crop_foreground
from .radial import RadialDistortion, RandomRadialDistortion
from .resample import Resample

__all__ = [
    "Affine", "AffineMatrix", "RandomAffine", "RandomRotation", "RandomShear", "RandomTranslation", "RandomScale",
    "Crop", "CenterCrop", "Pad", "RandomCrop",
    "ElasticBSpline", "ElasticDense", "RandomElastic",
    "Flip", "RandomFlip",
    "Deformation", "LearnedDeformation", "RandomLearnedDeformation",
    "RadialDistortion", "RandomRadialDistortion",
    "Resample",
    "CropForeground", "CropToLabel", "Reorient", "Resize", "crop_foreground",
]
