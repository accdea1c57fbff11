"""medaug inside MONAI dictionary pipelines, and MONAI transforms inside medaug pipelines.

:class:`MedaugD` runs a medaug pipeline on a MONAI dictionary sample
(``{"image": MetaTensor, "label": MetaTensor, ...}``, channel-first, as
after ``LoadImaged`` + ``EnsureChannelFirstd``) and is usable in
``monai.transforms.Compose``; :class:`MonaiStep` wraps a MONAI transform as a
step of a medaug :class:`~medaug.engine.compose.Compose`.

Conventions
-----------
* A MONAI tensor ``(C, x, y[, z])`` with ``.affine`` (RAS unless
  ``meta["space"] == "LPS"``) becomes medaug images in (z, y, x) order with
  the equivalent LPS grid (:mod:`medaug.interop.geometry`); the way back gives
  a tensor in the same order, the same space, the same affine size (a 4x4
  affine of a 2D image keeps its slice position) and the same device.
* Channels: an intensity entry with ``C > 1`` channels becomes one medaug
  image with channels (``Image.channels == C``, a view of the data where the
  axis order allows); spatial transforms move all channels together,
  intensity transforms draw per channel (``channels: each|same|[k]``).  Label
  entries with several channels (one-hot) become several label maps named
  ``key``, ``key_0001``, ``key_0002`` ... (nnU-Net's channel suffix).
* Label keys are label maps: resampled nearest-neighbour (or per-label linear
  + argmax), never intensity-augmented, never gaining values.  They must hold
  whole non-negative numbers (MONAI loads them as float32: they come back as
  float32 with the same value set).
* Intensity entries come back as float32 (medaug's output) unless they came
  in as float64; labels come back in their input dtype.

Requires MONAI (``pip install medaug[monai]``).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

try:
    import monai  # noqa: F401
    from monai.data import MetaTensor
    from monai.transforms import Compose as _MonaiCompose
    from monai.transforms import MapTransform, Randomizable
except ImportError as _exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "medaug.interop.monai needs MONAI, which is not installed: pip install medaug[monai]"
    ) from _exc

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..errors import GeometryError, ParameterError
from ._convert import channel_names, group_channels, split_channels, stack_channels
from ._steps import MAX_SEED, ForeignApplied, ForeignStep, as_pipeline, seeded
from .geometry import affine_from_grid, embed_affine, grid_from_affine

__all__ = ["MedaugD", "MonaiStep", "MonaiApplied", "sample_from_dict", "dict_from_sample"]

#: Key of the dictionary entry where :class:`MedaugD` records what it applied.
HISTORY_KEY = "medaug_history"


# ---------------------------------------------------------------- conversion
def _geometry_of(value: Any, key: Hashable) -> tuple[torch.Tensor | np.ndarray, np.ndarray, str, int]:
    """Data, affine, space and number of spatial axes of one channel-first dictionary entry."""
    what = f"key '{key}'"
    if isinstance(value, MetaTensor):
        data: torch.Tensor | np.ndarray = value.as_tensor()
        affine = value.affine.detach().cpu().numpy().astype(np.float64)
        if affine.ndim != 2:
            raise ParameterError(
                f"{what}: a batched MetaTensor (affine {tuple(affine.shape)}); MedaugD works on one sample at a "
                "time: put it before the DataLoader's collation"
            )
        space = str(getattr(value.meta.get("space", "RAS"), "value", value.meta.get("space", "RAS")))
        spatial = getattr(value, "spatial_ndim", None)
        if spatial is not None and int(spatial) == data.ndim:
            raise ParameterError(
                f"{what}: the tensor has no channel axis (shape {tuple(data.shape)}); MONAI arrays must be "
                "channel-first: add EnsureChannelFirstd before this transform"
            )
    elif isinstance(value, (torch.Tensor, np.ndarray)):
        data, space = value, "RAS"
        affine = np.eye(4)
    else:
        raise ParameterError(f"{what}: expected a MetaTensor, tensor or array, got {type(value).__name__} "
                             "(load the files first, e.g. with LoadImaged)")
    nsp = data.ndim - 1
    if nsp not in (2, 3):
        raise ParameterError(
            f"{what}: expected a channel-first 2D or 3D image (C, x, y[, z]), got shape {tuple(data.shape)}"
        )
    return data, affine, space, nsp


def sample_from_dict(
    data: Mapping[Hashable, Any],
    keys: Sequence[Hashable],
    label_keys: Sequence[Hashable] = (),
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Sample, dict[Hashable, list[str]]]:
    """A medaug :class:`Sample` from a MONAI dictionary, and the sample names of each key's channels.

    Parameters
    ----------
    data : mapping
        ``{key: MetaTensor | Tensor | ndarray}``, channel-first; plain tensors
        get MONAI's default geometry (identity affine).
    keys, label_keys : sequence
        Intensity entries and label entries to convert.
    metadata : mapping, optional
        Sample metadata (e.g. ``{"modality": "ct"}``).

    Raises
    ------
    GeometryError
        The entries are not on one grid, or an affine has shear.
    ParameterError
        An entry is not channel-first, or names collide.
    """
    images: dict[str, Image] = {}
    names: dict[Hashable, list[str]] = {}
    for key, is_label in [(k, False) for k in keys] + [(k, True) for k in label_keys]:
        value = data[key]
        arr, affine, space, _ = _geometry_of(value, key)
        grid = grid_from_affine(affine, tuple(arr.shape[1:]), space, what=f"key '{key}'")
        chans = channel_names(str(key), int(arr.shape[0]))
        clash = [n for n in chans if n in images]
        if clash:
            raise ParameterError(f"key '{key}': its channel name(s) {clash} clash with another key; rename one")
        meta = getattr(value, "meta", {}) or {}
        path = meta.get("filename_or_obj")
        new = split_channels(arr, grid, chans, is_label=is_label, what=f"key '{key}'",
                             path=str(path) if isinstance(path, str) and path else None)
        images.update(new)
        names[key] = list(new)
    if not images:
        raise ParameterError("none of the keys is in the dictionary")
    md = dict(metadata or {})
    return Sample(**images, metadata=md), names


def _back(value: Any, imgs: list[Image], grid: Grid, is_label: bool) -> Any:
    """The converted result of one key, in the type, space, device and dtype conventions of ``value``."""
    nsp = grid.ndim
    t = stack_channels(imgs)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        in_dtype = value.dtype if isinstance(value, torch.Tensor) else torch.from_numpy(np.empty(0, value.dtype)).dtype
        if is_label or in_dtype in (torch.float64,):
            t = t.to(in_dtype)
        elif not t.is_floating_point():
            t = t.to(torch.float32)
    if isinstance(value, MetaTensor):
        space = str(getattr(value.meta.get("space", "RAS"), "value", value.meta.get("space", "RAS")))
        template = value.affine.detach().cpu().numpy().astype(np.float64)
        small = affine_from_grid(grid, "LPS" if space.upper() == "LPS" else "RAS")
        affine = embed_affine(small, template if template.shape[0] - 1 >= nsp else None)
        meta = dict(value.meta)
        meta.pop("affine", None)
        out = MetaTensor(t.to(value.device), affine=torch.as_tensor(affine, dtype=value.affine.dtype),
                         meta=meta, applied_operations=list(value.applied_operations))
        return out
    if isinstance(value, torch.Tensor):
        return t.to(value.device)
    return t.cpu().numpy()


def dict_from_sample(
    sample: Sample, like: Mapping[Hashable, Any], names: Mapping[Hashable, list[str]]
) -> dict[Hashable, Any]:
    """The entries of ``like`` listed in ``names`` replaced by the (augmented) images of ``sample``."""
    out = dict(like)
    grid = sample.grid
    for key, chans in names.items():
        missing = [n for n in chans if n not in sample]
        if missing:
            raise ParameterError(f"key '{key}': the pipeline removed image(s) {missing}")
        imgs = [sample[n] for n in chans]
        out[key] = _back(like[key], imgs, grid, imgs[0].is_label)
    return out


def _append_history(d: dict[Hashable, Any], key: str | None, entry: dict[str, Any]) -> None:
    if key is None:
        return
    previous = d.get(key)
    calls = json.loads(previous) if isinstance(previous, str) and previous else []
    calls.append(entry)
    d[key] = json.dumps(calls, separators=(",", ":"))


# ---------------------------------------------------------------- medaug in MONAI
class MedaugD(Randomizable, MapTransform):
    """A medaug pipeline as a MONAI dictionary transform.

    Parameters
    ----------
    pipeline : Compose, transform, config list/dict or config file path
        The medaug pipeline (e.g. ``medaug.preset("ct")``).
    keys : str or sequence of str
        Intensity entries (channel-first MetaTensors, tensors or arrays).
    label_keys : str or sequence of str
        Label-map entries (class indices).
    seed : int, optional
        Seed of this transform's own ``numpy.random.Generator``, which draws one
        medaug seed per call.  :meth:`set_random_state` (called by
        ``monai.transforms.Compose.set_random_state`` and by
        ``monai.data.DataLoader`` in each worker) re-seeds it.
    allow_missing_keys : bool
        Skip keys absent from the dictionary instead of raising ``KeyError``.
    history_key : str or None
        Dictionary entry receiving a JSON string: the list of calls so far, each
        ``{"seed": int, "history": [records]}`` (``medaug.replay(record["history"])``
        re-applies one on a medaug Sample; ``medaug.inverse_of`` undoes its
        spatial part).  A string survives ``DataLoader`` collation.  None: not recorded.
    metadata : mapping, optional
        Metadata of the medaug sample (e.g. ``{"modality": "ct"}``).

    Notes
    -----
    All entries must be on one grid (as MONAI's own dictionary transforms
    assume).  Entries move to the pipeline's output grid; each MetaTensor
    keeps its meta dictionary (affine updated, ``applied_operations`` kept:
    MONAI's ``Invertd`` does not see medaug's steps, use the recorded history).
    With a plain ``torch.utils.data.DataLoader`` and workers, every worker
    starts from the same seed: use ``monai.data.DataLoader``.

    Examples
    --------
    >>> import medaug, torch
    >>> from monai.data import MetaTensor
    >>> d = {"image": MetaTensor(torch.zeros(1, 8, 8, 8)), "label": MetaTensor(torch.zeros(1, 8, 8, 8))}
    >>> out = MedaugD(medaug.preset("ct-light"), seed=0)(d)
    >>> out["image"].shape, out["image"].affine.shape
    (torch.Size([1, 8, 8, 8]), torch.Size([4, 4]))
    """

    def __init__(
        self,
        pipeline: Any,
        keys: str | Sequence[str] = ("image",),
        label_keys: str | Sequence[str] = ("label",),
        *,
        seed: int | None = None,
        allow_missing_keys: bool = False,
        history_key: str | None = HISTORY_KEY,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.pipeline = as_pipeline(pipeline)
        self.image_keys = (keys,) if isinstance(keys, str) else tuple(keys)
        self.label_keys = (label_keys,) if isinstance(label_keys, str) else tuple(label_keys)
        both = set(self.image_keys) & set(self.label_keys)
        if both:
            raise ParameterError(f"MedaugD: key(s) {sorted(both)} given both as keys and as label_keys")
        if not self.image_keys and not self.label_keys:
            raise ParameterError("MedaugD needs at least one key")
        MapTransform.__init__(self, self.image_keys + self.label_keys, allow_missing_keys)
        self.history_key = history_key
        self.metadata = dict(metadata or {})
        self._seed: int | None = None
        self.set_random_state(seed=seed)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> MedaugD:
        """Re-seed the generator drawing the medaug seeds (MONAI's ``Randomizable`` protocol)."""
        super().set_random_state(seed=seed, state=state)
        self._rng = np.random.default_rng(int(self.R.randint(MAX_SEED)))
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw a medaug seed (MONAI's ``Randomizable`` protocol); each call draws its own."""
        self._seed = int(self._rng.integers(0, MAX_SEED))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        present = set(self.key_iterator(d))
        keys = [k for k in self.image_keys if k in present]
        label_keys = [k for k in self.label_keys if k in present]
        if not keys and not label_keys:
            return d
        seed = self._seed = int(self._rng.integers(0, MAX_SEED))  # a local copy: safe with thread loaders
        sample, names = sample_from_dict(d, keys, label_keys, self.metadata)
        out = self.pipeline(sample, seed=seed)
        d = dict_from_sample(out, d, names)
        _append_history(d, self.history_key, {"seed": seed, "history": out.history})
        return d

    def __repr__(self) -> str:
        steps = ", ".join(type(t).__name__ for t in self.pipeline.transforms)
        return f"MedaugD([{steps}], keys={self.image_keys}, label_keys={self.label_keys})"


# ---------------------------------------------------------------- MONAI in medaug
def _is_dict_transform(t: Any) -> bool:
    if isinstance(t, MapTransform):
        return True
    if isinstance(t, _MonaiCompose):
        return any(_is_dict_transform(c) for c in t.transforms)
    return False


def _is_intensity(t: Any) -> bool:
    if isinstance(t, _MonaiCompose):
        return all(_is_intensity(c) for c in t.transforms)
    return type(t).__module__.startswith("monai.transforms.intensity")


class MonaiApplied(ForeignApplied):
    """A MONAI transform run with a fixed seed on a medaug sample (see :class:`MonaiStep`)."""

    library = "MONAI"
    step_name = "MonaiStep"

    def apply_sample(self, sample: Sample) -> Sample:
        keys = self.options.get("keys")
        label_keys = self.options.get("label_keys")
        groups = group_channels(sample)
        chosen = [k for k in groups if (k in keys if keys is not None else not sample[k].is_label)]
        chosen_l = [k for k in groups if (k in label_keys if label_keys is not None else sample[k].is_label)]
        unknown = [k for k in [*(keys or []), *(label_keys or [])] if k not in groups]
        if unknown:
            raise ParameterError(f"MonaiStep: key(s) {unknown} are not in the sample (it has {list(groups)})")
        space = "RAS"
        d: dict[str, Any] = {}
        for k in [*chosen, *chosen_l]:
            imgs = [sample[n] for n in groups[k]]
            affine = embed_affine(affine_from_grid(imgs[0].grid, space), size=4)
            meta = {"space": space}
            if imgs[0].path:
                meta["filename_or_obj"] = imgs[0].path
            d[k] = MetaTensor(stack_channels(imgs), affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)
        t = self.transform
        with seeded(self.seed):
            if isinstance(t, Randomizable):
                t.set_random_state(seed=self.seed)
            if _is_dict_transform(t):
                result = t(d)
            else:  # an array transform: each intensity entry on its own (label maps untouched)
                result = dict(d)
                for k in chosen:
                    result[k] = t(d[k])
        if isinstance(result, (list, tuple)):
            if len(result) != 1:
                raise ParameterError(
                    f"MonaiStep: {type(t).__name__} returned {len(result)} samples; a medaug step maps one sample to "
                    "one (use num_samples=1, or run it in the MONAI pipeline after MedaugD)"
                )
            result = result[0]
        if not isinstance(result, Mapping):
            raise ParameterError(
                f"MonaiStep: {type(t).__name__} returned {type(result).__name__}, expected a dictionary"
            )
        images: dict[str, Image] = {n: img for n, img in sample.items() if not any(n in groups[k] for k in d)}
        grid_ref: Grid | None = None
        for k in d:
            if k not in result:
                raise ParameterError(f"MonaiStep: {type(t).__name__} removed key '{k}'")
            value = result[k]
            arr, affine, sp, _ = _geometry_of(value if isinstance(value, (MetaTensor, torch.Tensor, np.ndarray))
                                              else torch.as_tensor(value), k)
            if not isinstance(value, MetaTensor):
                affine, sp = d[k].affine.numpy(), space  # an array transform without meta: geometry unchanged
            grid = grid_from_affine(affine, tuple(arr.shape[1:]), sp, what=f"key '{k}' after {type(t).__name__}")
            if grid.ndim != sample.ndim:
                raise GeometryError(
                    f"MonaiStep: {type(t).__name__} turned the {sample.ndim}D key '{k}' into {grid.ndim}D"
                )
            if grid_ref is not None and (problem := grid_ref.mismatch(grid)):
                raise GeometryError(f"MonaiStep: after {type(t).__name__} the keys are on different grids ({problem})")
            grid_ref = grid
            is_label = sample[groups[k][0]].is_label
            chans = channel_names(k, int(arr.shape[0]))
            new = split_channels(arr, grid, chans, is_label=is_label,
                                 what=f"key '{k}' after {type(t).__name__}", path=sample[groups[k][0]].path)
            if is_label:
                dtype = sample[groups[k][0]].dtype
                new = {n: img.with_data(img.array.astype(dtype)) if isinstance(img.data, np.ndarray) else img
                       for n, img in new.items()}
            images.update(new)
        if grid_ref is not None:
            for n in [n for n in sample if not any(n in groups[k] for k in d)]:
                if problem := grid_ref.mismatch(sample[n].grid):
                    raise GeometryError(
                        f"MonaiStep: {type(t).__name__} changed the grid ({problem}) but '{n}' was not passed to it; "
                        "list it in keys/label_keys"
                    )
        return self.finish(sample, images)


class MonaiStep(ForeignStep):
    """A MONAI transform as a step of a medaug pipeline.

    Parameters
    ----------
    transform : MONAI transform
        A dictionary transform (``...d``), a ``monai.transforms.Compose`` of
        them, or an array transform (applied to each intensity entry on its own,
        label maps untouched: use the dictionary version of spatial transforms).
    keys, label_keys : sequence of str, optional
        medaug images passed to the transform as intensity / label entries
        (default: every intensity image / every label map).  Channels named
        ``image``, ``image_0001`` ... are passed as one multi-channel entry
        ``image``.  Entries are channel-first MetaTensors with RAS affines.
    p : float
        Probability of running the step.
    spatial : bool, optional
        Whether the transform may move voxels.  Default: False for transforms
        from ``monai.transforms.intensity``, True otherwise.  After a spatial
        foreign step the sample's landmarks and boxes are dropped (they cannot
        follow an unknown map); their names go to ``metadata["dropped"]``.

    Notes
    -----
    Each call draws a seed from the medaug generator and runs the transform
    with ``set_random_state(seed=...)`` (for ``Randomizable`` transforms) and
    torch's, NumPy's and Python's global generators seeded in a fork, so the
    medaug seed reproduces the result; the wrapped transform's own random
    state is changed.  Fused resampling does not cross this step: the spatial
    transforms before it are resampled, then it runs, then the ones after it
    are resampled; transforms after it draw their parameters from the grid
    before it.  Its history record holds the transform's description and the
    seed: a history holding one cannot be replayed or inverted.

    Examples
    --------
    >>> import medaug
    >>> from monai.transforms import RandGaussianNoised
    >>> from medaug.spatial import RandomAffine
    >>> step = MonaiStep(RandGaussianNoised(keys="image", prob=1.0, std=10.0))
    >>> out = medaug.Compose([RandomAffine(rotation=5), step])(medaug.shepp_logan_2d(32), seed=0)
    >>> [r["name"] for r in out.history[1:]]
    ['Affine', 'MonaiApplied']
    """

    applied_class = MonaiApplied
    library = "MONAI"

    def __init__(
        self,
        transform: Any,
        keys: Sequence[str] | None = None,
        label_keys: Sequence[str] | None = None,
        *,
        p: float = 1.0,
        spatial: bool | None = None,
    ) -> None:
        if not isinstance(transform, str) and not callable(transform):
            raise ParameterError(f"MonaiStep needs a callable MONAI transform, got {type(transform).__name__}")
        keys = [keys] if isinstance(keys, str) else (None if keys is None else list(keys))
        label_keys = [label_keys] if isinstance(label_keys, str) else (None if label_keys is None else list(label_keys))
        super().__init__(transform, p=p, spatial=spatial, keys=keys, label_keys=label_keys)

    @staticmethod
    def is_spatial(transform: Any) -> bool:
        return not _is_intensity(transform)
