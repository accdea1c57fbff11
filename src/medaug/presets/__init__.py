"""Modality presets (ready pipelines with radiological ranges) and the constraints that check pipelines.

>>> import medaug
>>> pipeline = medaug.preset("ct")
>>> pipeline.modality
'ct'
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from ..engine.compose import Compose
from ..engine.config import pipeline_from_config
from ..errors import ParameterError, did_you_mean
from . import ct, mri, ultrasound, xray

__all__ = ["PRESETS", "PresetName", "preset", "preset_config", "preset_names"]

#: The names :func:`preset` takes (the keys of :data:`PRESETS`).
PresetName = Literal["ct", "ct-light", "mri", "mri-heavy", "xray", "ultrasound"]

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


def preset(name: PresetName, **options: Any) -> Compose:
    """A ready pipeline for a modality, with radiologically plausible ranges and the modality's constraints.

    Parameters
    ----------
    name : {"ct", "ct-light", "mri", "mri-heavy", "xray", "ultrasound"}
        The preset (case-insensitive); ``medaug presets`` prints each one's transforms and ranges.

        * ``ct``: CT in HU: rotation up to 7°, scale 0.92-1.08, shift 5 % of the field of
          view, mild elastic, noise and blur in HU, clipped to [-1024, 3071] HU; fill -1000 HU (air).
        * ``ct-light``: a lighter ``ct``: rotation 4°, scale 0.96-1.04, noise; no elastic.
        * ``mri``: rotation 10°, scale 0.9-1.1, elastic, left-right flip, bias field, gamma,
          Rician noise relative to the range, occasional motion and ghosting; fill 0.
        * ``mri-heavy``: a stronger ``mri`` at the edge of the MRI limits: rotation 15°,
          scale 0.85-1.15, and blur.
        * ``xray``: rotation 10°, scale 0.9-1.1, mild elastic, exposure contrast, gamma, noise
          relative to the range, occasional CLAHE; fill with the background value.
        * ``ultrasound``: rotation 10°, scale 0.9-1.1, elastic, multiplicative speckle, gain; fill 0.
    **options
        Pipeline options overriding the preset's (``fill``, ``interpolation``, ``on_violation`` ...).

    Returns
    -------
    Compose
        The pipeline; its ``modality`` is the preset's (``ct``, ``mri``, ``xray`` or ``ultrasound``).

    Raises
    ------
    ParameterError
        For an unknown name, with the closest one and the list.

    Examples
    --------
    >>> import medaug
    >>> p = medaug.preset("mri")
    >>> p.modality, type(p.transforms[0]).__name__
    ('mri', 'RandomAffine')
    """
    return pipeline_from_config(preset_config(name), **options)
