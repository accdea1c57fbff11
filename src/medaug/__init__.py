"""medaug: physically correct data augmentation for medical images.

The core (images, samples, pipelines, presets, configs, errors) is imported
with ``medaug``; the transforms (``medaug.RandomAffine``, or by role,
``medaug.spatial`` and ``medaug.intensity``), :class:`medaug.AugmentedDataset`
and the other sub-packages (``datasets``, ``registration``, ``metrics``,
``enhance``, ``interop``, ``preview``) are loaded on first use, so that
``import medaug`` and ``medaug --help`` stay fast.

>>> import medaug
>>> sample = medaug.shepp_logan_3d(32, seed=1)
>>> pipeline = medaug.Compose([medaug.RandomAffine(rotation=10, scale=[0.9, 1.1]), medaug.intensity.RandomGamma()])
>>> out = pipeline(sample, seed=0)
>>> set(out.label.label_values()) <= set(sample.label.label_values())
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

#: Sub-packages and names loaded on first use (PEP 562 ``__getattr__``).
_SUBMODULES = ("spatial", "intensity", "datasets", "registration", "metrics", "enhance", "interop", "preview")
_LAZY = {name: "medaug.datasets.torch_dataset" for name in ("AugmentedDataset", "BatchAugmenter", "collate")}
#: Modules whose public names (``__all__``: every transform) are medaug's too.
_TRANSFORMS = ("medaug.spatial", "medaug.intensity")

if TYPE_CHECKING:
    from . import datasets as datasets
    from . import enhance as enhance
    from . import intensity as intensity
    from . import interop as interop
    from . import metrics as metrics
    from . import preview as preview
    from . import registration as registration
    from . import spatial as spatial
    from .datasets.torch_dataset import AugmentedDataset as AugmentedDataset
    from .datasets.torch_dataset import BatchAugmenter as BatchAugmenter
    from .datasets.torch_dataset import collate as collate
    from .intensity import *  # noqa: F403
    from .spatial import *  # noqa: F403


def __getattr__(name: str) -> Any:
    """Load a sub-package, :class:`AugmentedDataset` or a transform on first use."""
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        found = None if name.startswith("_") else next(
            (m for m in map(importlib.import_module, _TRANSFORMS) if name in m.__all__), None)
        if found is None:
            raise AttributeError(f"module 'medaug' has no attribute {name!r}")
        value = getattr(found, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, the ones loaded on first use included (this loads the transforms)."""
    transforms = [n for m in map(importlib.import_module, _TRANSFORMS) for n in m.__all__]
    return sorted({*globals(), *_SUBMODULES, *_LAZY, *transforms})


__all__ = [
    "__version__", "Grid", "Image", "Sample", "load", "save", "shepp_logan_2d", "shepp_logan_3d",
    "Compose", "OneOf", "SomeOf", "inverse_of", "replay",
    "pipeline_from_config", "pipeline_to_config", "save_config", "preset", "tta", "TTAResult",
    "MedaugError", "ImageReadError", "ImageWriteError", "InvalidImageError", "GeometryError", "ParameterError",
    "UnsafePipelineError", "NotInvertibleError", "JobError", *_LAZY, *_SUBMODULES,
]
