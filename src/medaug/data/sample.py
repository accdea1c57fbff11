"""A sample: everything that travels together through a pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import GeometryError, ParameterError
from .image import Image

__all__ = ["Sample"]

_RESERVED = {"points", "boxes", "target", "metadata", "history"}


class Sample(Mapping[str, Image]):
    """Named images on one physical grid, with points, boxes, target and metadata.

    Parameters
    ----------
    **images : Image
        Intensity images and label maps by name (``image=``, ``label=``, ``t2=`` ...).
        Intensity images of one sample must share a grid; label maps too.
    points : dict of str to (N, ndim) array, optional
        Landmarks in physical coordinates (mm, x/y/z order).
    boxes : dict of str to (N, 2*ndim) array, optional
        Axis-aligned boxes ``[min_x, min_y, (min_z), max_x, max_y, (max_z)]`` in mm.
    target : any, optional
        A class target (int, or a probability vector after Mixup/CutMix).
    metadata : dict, optional
        Free metadata: ``modality``, ``case_id`` ...
    history : list of dict, optional
        What was applied so far: ``{"name": ..., "params": {...}}`` records.

    Examples
    --------
    >>> import numpy as np
    >>> from medaug import Image, Sample
    >>> s = Sample(image=Image(np.zeros((8, 8), np.float32)), metadata={"modality": "xray"})
    >>> s["image"] is s.image
    True
    """

    def __init__(
        self,
        *,
        points: Mapping[str, Any] | None = None,
        boxes: Mapping[str, Any] | None = None,
        target: Any = None,
        metadata: Mapping[str, Any] | None = None,
        history: list[dict[str, Any]] | None = None,
        **images: Image | None,
    ) -> None:
        imgs: dict[str, Image] = {}
        for name, img in images.items():
            if img is None:
                continue
            if not isinstance(img, Image):
                raise ParameterError(f"sample entry '{name}' must be a medaug Image, got {type(img).__name__}")
            imgs[name] = img
        if not imgs:
            raise ParameterError("a sample needs at least one image")
        self._images = imgs
        ndim = next(iter(imgs.values())).ndim
        self.points = {k: _points(v, ndim, f"points '{k}'") for k, v in (points or {}).items()}
        self.boxes = {k: _points(v, 2 * ndim, f"boxes '{k}'") for k, v in (boxes or {}).items()}
        self.target = target
        self.metadata = dict(metadata or {})
        self.history = list(history or [])
        self.check_geometry()

    # ------------------------------------------------------------ mapping
    def __getitem__(self, key: str) -> Image:
        return self._images[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._images)

    def __len__(self) -> int:
        return len(self._images)

    def __getattr__(self, name: str) -> Image:
        images = self.__dict__.get("_images")
        if images is not None and name in images:
            return images[name]
        raise AttributeError(name)

    # ------------------------------------------------------------ views
    @property
    def ndim(self) -> int:
        return next(iter(self._images.values())).ndim

    @property
    def intensity_images(self) -> dict[str, Image]:
        return {k: v for k, v in self._images.items() if not v.is_label}

    @property
    def label_maps(self) -> dict[str, Image]:
        return {k: v for k, v in self._images.items() if v.is_label}

    @property
    def reference(self) -> Image:
        """The first intensity image (or the first image): its grid is the sample's grid."""
        intensity = self.intensity_images
        return next(iter(intensity.values())) if intensity else next(iter(self._images.values()))

    @property
    def grid(self):
        return self.reference.grid

    def check_geometry(self) -> None:
        """Raise :class:`GeometryError` when the images are not on one grid."""
        ref_name, ref = next(iter(self._images.items()))
        for name, img in self._images.items():
            if img.ndim != ref.ndim:
                raise GeometryError(f"'{name}' is {img.ndim}D but '{ref_name}' is {ref.ndim}D", path=img.path)
            problem = ref.grid.mismatch(img.grid)
            if problem:
                raise GeometryError(
                    f"'{name}' ({img.path or 'in memory'}) and '{ref_name}' ({ref.path or 'in memory'}) "
                    f"are not on the same grid: {problem}; resample one onto the other first",
                )

    def replace(self, images: Mapping[str, Image] | None = None, **fields: Any) -> Sample:
        """A new sample with some images or fields replaced (the input is not modified)."""
        new = object.__new__(type(self))  # a shallow copy (copy.copy goes through __getattr__'s misses, ~10 us)
        new.__dict__.update(self.__dict__)
        new._images = {**self._images, **(images or {})}
        new.points = dict(self.points)
        new.boxes = dict(self.boxes)
        new.metadata = dict(self.metadata)
        new.history = list(self.history)
        for key, value in fields.items():
            if key not in _RESERVED:
                raise ParameterError(f"unknown sample field '{key}'")
            setattr(new, key, value)
        return new

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self._images.items()]
        if self.points:
            parts.append(f"points={ {k: v.shape for k, v in self.points.items()} }")
        if self.target is not None:
            parts.append(f"target={self.target!r}")
        return "Sample(" + ", ".join(parts) + ")"


def _points(value: Any, width: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1 and arr.size == width:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ParameterError(f"{what} must be an (N, {width}) array of physical coordinates, got shape {arr.shape}")
    return arr
