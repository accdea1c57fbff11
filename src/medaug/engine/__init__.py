"""The engine: transform base classes, warps, composition, fused resampling, configuration."""

from .compose import Compose, OneOf, SomeOf, execute, inverse_of, replay
from .resample import ResampleOptions
from .transform import Context, IntensityTransform, RandomTransform, SpatialTransform, Transform

__all__ = [
    "Compose", "OneOf", "SomeOf", "execute", "inverse_of", "replay", "ResampleOptions",
    "Context", "IntensityTransform", "RandomTransform", "SpatialTransform", "Transform",
]
