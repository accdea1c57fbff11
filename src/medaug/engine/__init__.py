"""The engine: transform base classes, warps, composition, fused execution, records, configuration.

Rooms, from the bottom: :mod:`.registry` (what upper layers plug in), :mod:`.ranges`
(reading numbers and ranges, with bounds), :mod:`.transform` (base classes),
:mod:`.warp` and :mod:`.resample` (coordinate maps and the one resampling),
:mod:`.pointwise` (fused intensity operations), :mod:`.execute` (running
resolved transforms), :mod:`.inverse` (undoing any spatial transform),
:mod:`.compose` (pipelines), :mod:`.record` (the run's record: replay and
inverse), :mod:`.config` (YAML/JSON).  The engine imports nothing
above :mod:`medaug.data`.
"""

from .compose import Compose, OneOf, SomeOf
from .execute import execute
from .inverse import Inverse
from .ranges import Range
from .record import inverse_of, replay
from .resample import ResampleOptions
from .transform import Context, IntensityTransform, RandomTransform, SpatialTransform, Transform

__all__ = [
    "Compose", "OneOf", "SomeOf", "execute", "Inverse", "inverse_of", "replay", "Range", "ResampleOptions",
    "Context", "IntensityTransform", "RandomTransform", "SpatialTransform", "Transform",
]
