"""``--preset auto``: the preset of each channel, from the channel names a dataset gives.

A Decathlon or nnU-Net ``dataset.json`` names the input channels (``"CT"``,
``"FLAIR"``, ``"T1w"``, ``"ADC"`` ...).  :func:`channel_modality` maps a name
to a modality; :func:`preset_for_channels` gives the modality's preset when
every channel has the same one, and otherwise one pipeline whose spatial
part (shared by every channel: they move together) comes from the strictest
modality present and whose intensity transforms of each modality are limited
to that modality's channels (``channels: [...]``).  Such a pipeline names the
modality of each channel (``channel_modalities``): every part is checked
against its modality's rules, and each output records the range check of
each modality over its channels, as a single-modality preset records its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..engine.config import pipeline_from_config
from ..engine.registry import transform_class
from ..engine.transform import IntensityTransform, RandomIntensityTransform
from ..errors import ParameterError
from . import preset_config

__all__ = ["channel_modality", "preset_for_channels", "CHANNEL_NAMES"]

#: Channel names (lower case, letters and digits only) by modality.
CHANNEL_NAMES: dict[str, tuple[str, ...]] = {
    "ct": ("ct", "cta", "ncct", "cect", "ctangiography", "noncontrastct", "venousct", "arterialct", "portalvenous",
           "ctvenous", "ctarterial"),
    "mri": ("mri", "mr", "t1", "t1w", "t1c", "t1ce", "t1gd", "t1post", "t1contrast", "t2", "t2w", "t2star", "flair",
            "t2flair", "adc", "dwi", "pd", "pdw", "swi", "dce", "bold", "epi", "nonenhanced", "hbv", "mprage"),
    "xray": ("xray", "cr", "dx", "radiograph", "mammography", "mg", "fluoroscopy"),
    "ultrasound": ("us", "ultrasound", "echo", "echocardiography", "bmode"),
}
#: Strictest first: the spatial part of a mixed pipeline comes from the first modality present.
_STRICTNESS = ("ct", "xray", "ultrasound", "mri")


def channel_modality(name: str) -> str | None:
    """The modality (``ct``, ``mri``, ``xray``, ``ultrasound``) a channel name stands for, or None.

    Examples
    --------
    >>> [channel_modality(n) for n in ("FLAIR", "T1w", "t1gd", "CT", "ADC", "RGB")]
    ['mri', 'mri', 'mri', 'ct', 'mri', None]
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return next((m for m, names in CHANNEL_NAMES.items() if key in names), None)


def _is_intensity(item: dict[str, Any]) -> bool:
    cls = transform_class(next(iter(item)))
    return cls is not None and issubclass(cls, (IntensityTransform, RandomIntensityTransform))


def preset_for_channels(names: Sequence[str] | None, *, where: str | None = None) -> dict[str, Any]:
    """A pipeline config for channels called ``names`` (see the module notes).

    Raises
    ------
    ParameterError
        No names (the dataset does not name its channels), or a name no
        modality claims; the message lists the names understood and says to
        pass ``--preset NAME`` instead.
    UnsafePipelineError
        A part of a mixed pipeline breaks its modality's rules (cannot happen
        with the shipped presets; kept as the check).
    """
    if not names:
        raise ParameterError("--preset auto needs the channel names of the dataset (dataset.json 'modality' or "
                             "'channel_names'); choose a preset with --preset NAME (see 'medaug presets')", path=where)
    mods = [channel_modality(n) for n in names]
    unknown = [n for n, m in zip(names, mods) if m is None]
    if unknown:
        known = "; ".join(f"{m}: {', '.join(v[:6])} ..." for m, v in CHANNEL_NAMES.items())
        raise ParameterError(f"--preset auto cannot tell the modality of channel(s) {unknown} (understood: {known}); "
                             "choose a preset with --preset NAME", path=where)
    present = sorted(set(mods), key=_STRICTNESS.index)  # type: ignore[arg-type]
    if len(present) == 1:
        return preset_config(present[0])  # type: ignore[arg-type]
    base = preset_config(present[0])  # type: ignore[arg-type]
    transforms = [item for item in base["transforms"] if not _is_intensity(item)]
    for modality in present:
        chosen = [k for k, m in enumerate(mods) if m == modality]
        parts = [item for item in preset_config(modality)["transforms"] if _is_intensity(item)]  # type: ignore[arg-type]
        for item in parts:
            ((name, params),) = item.items()
            transforms.append({name: {**(params or {}), "channels": chosen}})
    config = {"transforms": transforms, "fill": "background", "channel_modalities": mods}
    pipeline_from_config(config)  # each modality's rules on the spatial part and its own intensity part
    return config
