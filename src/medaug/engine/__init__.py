"""The engine: transform base classes, warps, composition, fused execution, records, configuration.

Rooms, from the bottom: :mod:`.registry` (what upper layers plug in), :mod:`.transform`
(base classes), :mod:`.warp` and :mod:`.resample` (coordinate maps and the one
resampling), :mod:`.pointwise` (fused intensity operations), :mod:`.execute`
(running resolved transforms), :mod:`.compose` (pipelines), :mod:`.record`
(replay and inverse), :mod:`.config` (YAML/JSON).  The engine imports nothing
above :mod:`medaug.data`.
"""

from .compose import Compose, OneOf, SomeOf
from .execute import execute
from .record import inverse_of, replay
from .resample import ResampleOptions
from .transform import Context, IntensityTransform, RandomTransform, SpatialTransform, Transform

__all__ = [
    "Compose", "OneOf", "SomeOf", "execute", "inverse_of", "replay", "ResampleOptions",
    "Context", "IntensityTransform", "RandomTransform", "SpatialTransform", "Transform",
]
