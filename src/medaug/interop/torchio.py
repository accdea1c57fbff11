"""medaug inside TorchIO pipelines, and TorchIO transforms inside medaug pipelines.

:class:`MedaugTransform` is a ``torchio.Transform``: it runs a medaug pipeline
on a ``torchio.Subject`` and is usable in ``torchio.Compose`` and with
``torchio.SubjectsDataset``; :class:`TorchioStep` wraps a TorchIO transform as
a step of a medaug :class:`~medaug.engine.compose.Compose`.

Conventions
-----------
* A TorchIO image (``ScalarImage`` or ``LabelMap``) holds a 4D tensor
  ``(C, W, H, D)`` = ``(C, x, y, z)`` and a 4x4 RAS affine; it becomes medaug
  images in (z, y, x) order with the equivalent LPS grid
  (:mod:`medaug.interop.geometry`).  An image with ``D == 1`` whose two
  in-plane axes lie in the world's x/y plane (TorchIO's 2D images) is a 2D
  medaug image; the way back gives ``(C, W, H, 1)`` with the slice position kept.
* Channels: a ``ScalarImage`` with ``C > 1`` becomes one medaug image with
  channels, moved together by spatial transforms, with per-channel draws of
  intensity transforms; a ``LabelMap`` with ``C > 1`` (one-hot) becomes label
  maps named ``name``, ``name_0001`` ... (nnU-Net's suffix).
* ``LabelMap`` images are label maps (nearest neighbour, value set kept, no
  intensity change); other images are intensity images, returned as float32.
* The result is a new ``Subject`` (the input is not modified) with new images
  of the same classes and the same extra attributes.

Requires TorchIO (``pip install medaug[torchio]``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import torchio as tio
    from torchio.constants import LABEL, TYPE
    from torchio.data.image import PROTECTED_KEYS
except ImportError as _exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "medaug.interop.torchio needs TorchIO, which is not installed: pip install medaug[torchio]"
    ) from _exc

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..engine.compose import Compose
from ..engine.record import applied, inverse_of, replay
from ..errors import GeometryError, ParameterError
from ._convert import channel_names, group_channels, split_channels, stack_channels
from ._steps import MAX_SEED, ForeignApplied, ForeignStep, as_pipeline, seeded
from .geometry import affine_from_grid, embed_affine, grid_from_affine, is_in_plane

__all__ = ["MedaugTransform", "TorchioStep", "TorchioApplied", "sample_from_subject", "subject_from_sample"]

#: Subject entry where :class:`MedaugTransform` records what it applied.
HISTORY_KEY = "medaug_history"

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def _grid_of(image: tio.Image, name: str) -> Grid:
    """The medaug grid of a TorchIO image: 2D when ``D == 1`` and the image lies in an axial plane."""
    affine = np.asarray(image.affine, dtype=np.float64)
    w, h, d = (int(s) for s in image.data.shape[1:])
    if d == 1 and is_in_plane(_FLIP @ affine, 2):
        return grid_from_affine(affine, (w, h), "RAS", what=f"image '{name}'")
    return grid_from_affine(affine, (w, h, d), "RAS", what=f"image '{name}'")


def sample_from_subject(
    subject: tio.Subject,
    names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Sample, dict[str, list[str]]]:
    """A medaug :class:`Sample` from a TorchIO subject, and the sample names of each image's channels.

    Parameters
    ----------
    subject : torchio.Subject
        Its ``LabelMap`` images become label maps, the others intensity images.
    names : sequence of str, optional
        The subject images to convert (default: all).
    metadata : mapping, optional
        Sample metadata (e.g. ``{"modality": "mri"}``).
    """
    images: dict[str, Image] = {}
    groups: dict[str, list[str]] = {}
    for name, image in subject.get_images_dict(intensity_only=False).items():
        if names is not None and name not in names:
            continue
        is_label = image[TYPE] == LABEL
        grid = _grid_of(image, name)
        chans = channel_names(name, int(image.data.shape[0]))
        clash = [n for n in chans if n in images]
        if clash:
            raise ParameterError(f"image '{name}': its channel name(s) {clash} clash with another image; rename one")
        path = str(image.path) if image.path else None
        new = split_channels(image.data, grid, chans, is_label=is_label, what=f"image '{name}'", path=path)
        images.update(new)
        groups[name] = list(new)
    if not images:
        raise ParameterError("the subject has no image to augment")
    return Sample(**images, metadata=dict(metadata or {})), groups


def _new_image(old: tio.Image, tensor: torch.Tensor, affine: np.ndarray) -> tio.Image:
    """An image of ``old``'s class with new data and affine; path and extra attributes kept."""
    extra = {k: v for k, v in old.items() if k not in PROTECTED_KEYS}
    return type(old)(
        path=old.path, type=old[TYPE], tensor=tensor, affine=affine, check_nans=old.check_nans,
        reader=old.reader, verify_path=False, **extra,
    )


def subject_from_sample(sample: Sample, like: tio.Subject, groups: Mapping[str, list[str]]) -> tio.Subject:
    """A new subject: ``like`` with the images listed in ``groups`` replaced by those of ``sample``."""
    out = copy.copy(like)
    out.applied_transforms = list(getattr(like, "applied_transforms", []))
    for name, chans in groups.items():
        missing = [n for n in chans if n not in sample]
        if missing:
            raise ParameterError(f"image '{name}': the pipeline removed image(s) {missing}")
        old = like[name]
        imgs = [sample[n] for n in chans]
        grid = imgs[0].grid
        if grid.ndim == 2:
            template = np.asarray(old.affine, dtype=np.float64)
            affine = embed_affine(affine_from_grid(grid, "RAS"), template)
        else:
            affine = affine_from_grid(grid, "RAS")
        t = stack_channels(imgs, spatial_ndim=3)
        old_dtype = old.data.dtype
        t = t.to(old_dtype) if old[TYPE] == LABEL else (t if t.is_floating_point() else t.to(torch.float32))
        if old_dtype == torch.float64 and old[TYPE] != LABEL:
            t = t.to(torch.float64)
        out[name] = _new_image(old, t.to(old.data.device), affine)
    out.update_attributes()
    return out


def _append_history(subject: tio.Subject, key: str | None, entry: dict[str, Any]) -> None:
    if key is None:
        return
    previous = subject.get(key)
    calls = json.loads(previous) if isinstance(previous, str) and previous else []
    calls.append(entry)
    subject[key] = json.dumps(calls, separators=(",", ":"))
    subject.update_attributes()


# ---------------------------------------------------------------- medaug in TorchIO
class MedaugTransform(tio.Transform):
    """A medaug pipeline as a TorchIO transform.

    Parameters
    ----------
    pipeline : Compose, transform, config list/dict or config file path
        The medaug pipeline.
    seed : int, optional
        None (default): each call draws its medaug seed from PyTorch's global
        generator, as TorchIO's random transforms do (``torch.manual_seed``
        reproduces a run; ``DataLoader`` workers differ).  An int: from this
        transform's own ``numpy.random.Generator`` seeded with it.
    metadata : mapping, optional
        Metadata of the medaug sample (e.g. ``{"modality": "mri"}``).
    history_key : str or None
        Subject entry receiving a JSON string: the list of calls so far, each
        ``{"seed": int, "history": [records]}``.  None: not recorded there.
    record : list of dict, optional
        The medaug record (history entries of one call) that ``pipeline``
        replays; set when TorchIO rebuilds this transform from a subject's
        history, and what its inverse undoes.
    **kwargs
        TorchIO's ``p``, ``include``, ``exclude``, ``keep``, ``copy`` (default False:
        the input subject is never modified, the output is a new subject).

    Notes
    -----
    Each call is also added to the subject's TorchIO history
    (``subject.applied_transforms``) with the deterministic pipeline it
    applied, so ``subject.get_composed_history()`` reproduces it and
    ``subject.get_inverse_transform()`` undoes its spatial part (intensity
    steps are skipped).  All selected images must share one grid.

    Examples
    --------
    >>> import medaug, torch, torchio as tio
    >>> subject = tio.Subject(t1=tio.ScalarImage(tensor=torch.rand(1, 16, 16, 16)))
    >>> out = MedaugTransform(medaug.preset("mri"), seed=0)(subject)
    >>> out["t1"].shape, out is subject
    ((1, 16, 16, 16), False)
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        seed: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        history_key: str | None = HISTORY_KEY,
        record: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("copy", False)
        super().__init__(**kwargs)
        self.pipeline = as_pipeline(pipeline)
        self.record = None if record is None else list(record)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.metadata = dict(metadata or {})
        self.history_key = history_key
        self.invert_transform = False
        self.args_names = ["seed", "history_key"]

    def _draw_seed(self) -> int:
        if self._rng is not None:
            return int(self._rng.integers(0, MAX_SEED))
        return int(torch.randint(0, MAX_SEED, (1,)).item())

    def _pipeline_to_run(self) -> Compose:
        return self._inverse_pipeline() if self.invert_transform else self.pipeline

    def _inverse_pipeline(self) -> Compose:
        if self.record is None:
            raise ParameterError(
                "only a deterministic MedaugTransform (as rebuilt from a subject's history) can be inverted; "
                "use subject.get_inverse_transform()"
            )
        return inverse_of(self.record, **self._options())

    def is_invertible(self) -> bool:
        """True for a deterministic pipeline whose spatial steps can all be inverted (TorchIO's protocol)."""
        try:
            self._inverse_pipeline()
        except ParameterError:
            return False
        return True

    def _options(self) -> dict[str, Any]:
        o = self.pipeline.options
        return {"interpolation": o.interpolation, "label_interpolation": o.label_interpolation, "backend": o.backend,
                "tolerance": o.tolerance}

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        seed = self._draw_seed()
        selected = list(subject.get_images_dict(intensity_only=False, include=self.include, exclude=self.exclude))
        if not selected:
            return subject
        sample, groups = sample_from_subject(subject, selected, self.metadata)
        result = self._pipeline_to_run()(sample, seed=seed)
        out = subject_from_sample(result, subject, groups)
        _append_history(out, self.history_key, {"seed": seed, "history": result.history})
        run = result.history[len(sample.history):]
        try:
            replayed = replay(run).to_config()
        except ParameterError:  # a foreign step: not replayable, which TorchIO learns when it rebuilds this
            replayed = {"transforms": [{r["name"]: r.get("params", {})} for r in applied(run)]}
        args = {"pipeline": replayed, "record": run, "seed": seed,
                "history_key": self.history_key, "include": self.include, "exclude": self.exclude, "copy": self.copy}
        out.add_transform(self, args)
        return out

    def _add_transform_to_subject_history(self, subject: tio.Subject) -> None:
        """Recorded by :meth:`apply_transform` with the deterministic pipeline it applied."""

    def __repr__(self) -> str:
        steps = ", ".join(type(t).__name__ for t in self.pipeline.transforms)
        inv = ", invert=True" if self.invert_transform else ""
        return f"MedaugTransform([{steps}], seed={self.seed}{inv})"


# ---------------------------------------------------------------- TorchIO in medaug
class TorchioApplied(ForeignApplied):
    """A TorchIO transform run with a fixed seed on a medaug sample (see :class:`TorchioStep`)."""

    library = "TorchIO"
    step_name = "TorchioStep"

    def apply_sample(self, sample: Sample) -> Sample:
        groups = group_channels(sample)
        subject_images: dict[str, tio.Image] = {}
        for name, members in groups.items():
            imgs = [sample[n] for n in members]
            grid = imgs[0].grid
            affine = embed_affine(affine_from_grid(grid, "RAS"), size=4)
            cls = tio.LabelMap if imgs[0].is_label else tio.ScalarImage
            subject_images[name] = cls(tensor=stack_channels(imgs, spatial_ndim=3), affine=affine)
        subject = tio.Subject(subject_images)
        t = self.transform
        with seeded(self.seed):
            result = t(subject)
        if not isinstance(result, tio.Subject):
            raise ParameterError(
                f"TorchioStep: {type(t).__name__} returned {type(result).__name__}, expected a Subject"
            )
        images: dict[str, Image] = {}
        grid_ref: Grid | None = None
        for name, image in result.get_images_dict(intensity_only=False).items():
            grid = _grid_of(image, name)
            if grid.ndim != sample.ndim:
                if sample.ndim == 2:
                    raise GeometryError(
                        f"TorchioStep: {type(t).__name__} moved the 2D image '{name}' out of its plane "
                        f"(shape {tuple(image.data.shape)})"
                    )
                raise GeometryError(f"TorchioStep: {type(t).__name__} turned the 3D image '{name}' into a 2D one")
            if grid_ref is not None and (problem := grid_ref.mismatch(grid)):
                raise GeometryError(
                    f"TorchioStep: after {type(t).__name__} the images are on different grids ({problem})"
                )
            grid_ref = grid
            is_label = image[TYPE] == LABEL
            members = groups.get(name, [])
            path = sample[members[0]].path if members else None
            new = split_channels(image.data, grid, channel_names(name, int(image.data.shape[0])), is_label=is_label,
                                 what=f"image '{name}' after {type(t).__name__}", path=path)
            if is_label and members:
                dtype = sample[members[0]].dtype
                new = {n: img.with_data(img.array.astype(dtype)) if isinstance(img.data, np.ndarray) else img
                       for n, img in new.items()}
            images.update(new)
        return self.finish(sample, images)


class TorchioStep(ForeignStep):
    """A TorchIO transform as a step of a medaug pipeline.

    Parameters
    ----------
    transform : torchio.Transform
        Any TorchIO transform or ``torchio.Compose``.  It receives a
        ``torchio.Subject`` with one ``ScalarImage`` per intensity image (channels
        ``image``, ``image_0001`` ... as one multi-channel image) and one
        ``LabelMap`` per label map, with RAS affines; 2D images are ``(C, W, H, 1)``.
    p : float
        Probability of running the step.
    spatial : bool, optional
        Whether the transform may move voxels.  Default: False for
        ``torchio.IntensityTransform`` (and a ``Compose`` of them), True
        otherwise.  After a spatial foreign step the sample's landmarks and
        boxes are dropped; their names go to ``metadata["dropped"]``.

    Notes
    -----
    TorchIO draws from PyTorch's global generator: each call draws a seed from
    the medaug generator and runs the transform with torch's (and NumPy's and
    Python's) global generators seeded in a fork (``torch.random.fork_rng``),
    so the medaug seed reproduces the result and the global state is left
    untouched.  Fused resampling does not cross this step (the spatial
    transforms before it are resampled, then it runs, then the next ones);
    transforms after it draw their parameters from the grid before it.  Its
    history record keeps the transform's ``repr`` and the seed: a history
    holding one cannot be replayed or inverted.

    Examples
    --------
    >>> import medaug, torchio as tio
    >>> from medaug.spatial import RandomAffine
    >>> pipeline = medaug.Compose([RandomAffine(rotation=5), TorchioStep(tio.RandomNoise(std=5))])
    >>> out = pipeline(medaug.shepp_logan_3d(24), seed=0)
    >>> [r["name"] for r in out.history[1:]]
    ['Affine', 'TorchioApplied']
    """

    applied_class = TorchioApplied
    library = "TorchIO"

    def __init__(self, transform: Any, *, p: float = 1.0, spatial: bool | None = None) -> None:
        if not isinstance(transform, str) and not isinstance(transform, tio.Transform) and not callable(transform):
            raise ParameterError(f"TorchioStep needs a TorchIO transform, got {type(transform).__name__}")
        super().__init__(transform, p=p, spatial=spatial)

    @staticmethod
    def is_spatial(transform: Any) -> bool:
        if isinstance(transform, tio.Compose):
            return any(TorchioStep.is_spatial(t) for t in transform.transforms)
        return not isinstance(transform, tio.IntensityTransform)
