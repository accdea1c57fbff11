"""Interoperability with MONAI and TorchIO: adopt medaug one transform at a time.

Both directions are covered, each in a module that imports its library only
when imported itself (the rest of medaug never imports MONAI or TorchIO):

``medaug.interop.monai`` (``pip install medaug[monai]``)
    :class:`~medaug.interop.monai.MedaugD` runs a medaug pipeline on a MONAI
    dictionary sample inside ``monai.transforms.Compose``;
    :class:`~medaug.interop.monai.MonaiStep` wraps a MONAI transform as a step
    of a medaug pipeline.

``medaug.interop.torchio`` (``pip install medaug[torchio]``)
    :class:`~medaug.interop.torchio.MedaugTransform` runs a medaug pipeline on a
    ``torchio.Subject`` inside ``torchio.Compose``;
    :class:`~medaug.interop.torchio.TorchioStep` wraps a TorchIO transform as a
    step of a medaug pipeline.

:mod:`medaug.interop.geometry` converts between medaug's grids (ITK/LPS,
arrays in z, y, x order) and the (x, y, z)-ordered arrays with RAS affines
that MONAI, TorchIO and NiBabel use.  Multi-channel entries become one medaug
image per channel, named ``key``, ``key_0001``, ``key_0002`` ...

Fused resampling does not cross a wrapped foreign step: the spatial
transforms before it are resampled, the step runs, then the spatial
transforms after it are resampled.  A foreign step's history record keeps a
description of the transform and its seed; such a history cannot be replayed
or inverted from the record.  See ``docs/interop.md``.
"""

__all__: list[str] = []
