"""Modality presets (ready pipelines with radiological ranges) and the constraints that check pipelines.

>>> import medaug
>>> pipeline = medaug.preset("ct")
>>> pipeline.modality
'ct'
"""

from __future__ import annotations

import copy
from typing import Any

from ..engine.compose import Compose
from ..engine.config import pipeline_from_config
from ..errors import ParameterError, did_you_mean
from . import ct, mri, ultrasound, xray

__all__ = ["PRESETS", "preset", "preset_config", "preset_names"]

#: name -> (modality, description, config list, fill)
PRESETS: dict[str, tuple[str, str, list[dict[str, Any]], Any]] = {
    "ct": ("ct", ct.DESCRIPTION, ct.CONFIG, ct.FILL),
    "ct-light": ("ct", "CT, lighter: " + ct.DESCRIPTION, ct.LIGHT, ct.FILL),
    "mri": ("mri", mri.DESCRIPTION, mri.CONFIG, mri.FILL),
    "mri-heavy": ("mri", "MRI, stronger (at the edge of the MRI limits): " + mri.DESCRIPTION, mri.HEAVY, mri.FILL),
    "xray": ("xray", xray.DESCRIPTION, xray.CONFIG, xray.FILL),
    "ultrasound": ("ultrasound", ultrasound.DESCRIPTION, ultrasound.CONFIG, ultrasound.FILL),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_config(name: str) -> dict[str, Any]:
    """The preset as a configuration dict (``transforms`` plus pipeline options)."""
    key = str(name).lower()
    if key not in PRESETS:
        raise ParameterError(f"unknown preset '{name}'{did_you_mean(key, PRESETS)}; choose one of {', '.join(PRESETS)}")
    modality, _, config, fill = PRESETS[key]
    return {"transforms": copy.deepcopy(config), "fill": fill, "modality": modality}


def preset(name: str, **options: Any) -> Compose:
    """A ready pipeline for a modality: ``ct``, ``ct-light``, ``mri``, ``mri-heavy``, ``xray``, ``ultrasound``."""
    return pipeline_from_config(preset_config(name), **options)
