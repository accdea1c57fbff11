"""medaug: physically correct data augmentation for medical images.

>>> import medaug
>>> sample = medaug.shepp_logan_3d(32, seed=1)
>>> pipeline = medaug.pipeline_from_config([{"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1]}}])
>>> out = pipeline(sample, seed=0)
>>> set(out.label.label_values()) <= set(sample.label.label_values())
True
"""

from __future__ import annotations

from ._version import __version__
from .data.grid import Grid
from .data.image import Image
from .data.io import load, save
from .data.phantoms import shepp_logan_2d, shepp_logan_3d
from .data.sample import Sample
from .engine.compose import Compose, OneOf, SomeOf
from .engine.config import pipeline_from_config, pipeline_to_config, save_config
from .engine.record import inverse_of, replay
from .engine.registry import add_providers
from .errors import (
    GeometryError,
    ImageReadError,
    ImageWriteError,
    InvalidImageError,
    JobError,
    MedaugError,
    NotInvertibleError,
    ParameterError,
    UnsafePipelineError,
)
from .inference import TTAResult, tta
from .presets import preset

# The modules that define transforms and the modality constraints, imported when a configuration,
# a record or a modality first needs them: the engine never imports them itself.
add_providers("medaug.spatial", "medaug.intensity", "medaug.presets.constraints")


__all__ = [
    "__version__", "Grid", "Image", "Sample", "load", "save", "shepp_logan_2d", "shepp_logan_3d",
    "Compose", "OneOf", "SomeOf", "inverse_of", "replay",
    "pipeline_from_config", "pipeline_to_config", "save_config", "preset", "tta", "TTAResult",
    "MedaugError", "ImageReadError", "ImageWriteError", "InvalidImageError", "GeometryError", "ParameterError",
    "UnsafePipelineError", "NotInvertibleError", "JobError",
]
