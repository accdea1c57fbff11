"""Pipelines: composition, random choice, and the fused execution of a pipeline.

A pipeline first *resolves*: every random transform draws its parameters from
one ``numpy.random.Generator`` and becomes a deterministic transform.  Then it
*executes*: each run of consecutive spatial transforms is composed into one
warp and every image is resampled once, with the point-wise intensity
transforms that follow the run applied in the same sweep; other intensity
transforms run on the result.  The applied transforms are the sample's history.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..data.image import Image
from ..data.sample import Sample
from ..errors import ParameterError
from .pointwise import FusedOps
from .resample import ResampleOptions, plan_coordinates, resample_arrays
from .transform import (
    Context,
    IntensityTransform,
    RandomTransform,
    SeedLike,
    SpatialTransform,
    Transform,
    _Base,
    as_generator,
)
from .warp import compose

__all__ = ["Compose", "OneOf", "SomeOf", "execute", "replay", "inverse_of", "FillSpec"]

FillSpec = float | str | dict[str, float | str] | None


class Compose(_Base):
    """Apply transforms in order, resampling once per run of spatial transforms.

    Parameters
    ----------
    transforms : sequence
        Transforms (random or deterministic) or nested ``Compose``/``OneOf``/``SomeOf``.
    p : float
        Probability of applying the whole group.
    fill : float, str or dict, optional
        Value outside the field of view for intensity images: a number, ``"min"``,
        or ``"background"`` (median of the image's outer shell, e.g. air at about
        -1000 HU in CT).  A dict gives one per image name.  Label maps fill with 0.
    interpolation, label_interpolation, backend, tolerance
        See :class:`~medaug.engine.resample.ResampleOptions`.
    modality : str, optional
        The modality the pipeline is meant for (``ct``, ``mri``, ``xray``,
        ``ultrasound``).  The pipeline is checked against the modality's
        constraints when built, and every output gets a range check in its history.
    on_violation : {"error", "warn", "strict"}
        With ``modality``: raise :class:`~medaug.errors.UnsafePipelineError` on
        errors and warn on warnings (``error``), only warn (``warn``), or raise on
        both (``strict``).

    Examples
    --------
    >>> from medaug import Compose, shepp_logan_2d
    >>> from medaug.spatial import RandomAffine
    >>> pipeline = Compose([RandomAffine(rotation=10)])
    >>> out = pipeline(shepp_logan_2d(64), seed=0)
    >>> out.history[0]["name"]
    'Affine'
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        *,
        p: float = 1.0,
        fill: FillSpec = "background",
        interpolation: str = "linear",
        label_interpolation: str = "nearest",
        backend: str = "auto",
        tolerance: float = 0.1,
        modality: str | None = None,
        on_violation: str = "error",
    ) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, _Base):
                raise ParameterError(f"pipeline items must be medaug transforms, got {type(t).__name__}")
        self.p = RandomTransform.check_p(p)
        self.fill = _checked_fill(fill)
        self.options = ResampleOptions(interpolation, label_interpolation, backend, tolerance)  # type: ignore[arg-type]
        self.modality = modality
        if modality is not None:
            from ..presets.constraints import _modality, enforce

            self.modality = _modality(modality)
            enforce(self, self.modality, on_violation=on_violation)  # type: ignore[arg-type]

    # ------------------------------------------------------------ running
    def __call__(self, sample: Sample, seed: SeedLike = 0) -> Sample:
        """Apply the pipeline to ``sample`` with ``seed`` (an int or a Generator)."""
        if not isinstance(sample, Sample):
            raise ParameterError(f"a pipeline takes a medaug Sample, got {type(sample).__name__}")
        rng = as_generator(seed)
        resolved: list[Transform] = []
        self.resolve(rng, Context(sample), resolved)
        out = execute(sample, resolved, self.options, self.fill)
        if self.modality is not None:
            from ..presets.constraints import output_range_check

            out.metadata.setdefault("modality", self.modality)
            ranges = {n: (float(img.array.min()), float(img.array.max())) for n, img in out.intensity_images.items()}
            inputs = {n: (float(img.array.min()), float(img.array.max())) for n, img in sample.intensity_images.items()}
            out.history.append(output_range_check(self.modality, ranges, inputs))
        return out

    def resolve(self, rng: np.random.Generator, ctx: Context, out: list[Transform]) -> None:
        """Draw every random parameter; append the deterministic transforms to ``out``."""
        if rng.random() >= self.p:
            return
        for item in self.transforms:
            _resolve_item(item, rng, ctx, out)

    # ------------------------------------------------------------ config
    def config_params(self) -> dict[str, Any]:
        return {"transforms": [_child_config(t) for t in self.transforms], "p": self.p}

    def to_config(self) -> Any:
        """A list of ``{Name: params}`` items, or a dict when options differ from defaults."""
        items = [_child_config(t) for t in self.transforms]
        extra = self._options_dict()
        if not extra and self.p == 1.0:
            return items
        return {"transforms": items, **({"p": self.p} if self.p != 1.0 else {}), **extra}

    def _options_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.fill != "background":
            d["fill"] = self.fill
        o = self.options
        if o.interpolation != "linear":
            d["interpolation"] = o.interpolation
        if o.label_interpolation != "nearest":
            d["label_interpolation"] = o.label_interpolation
        if o.backend != "auto":
            d["backend"] = o.backend
        if o.tolerance != 0.1:
            d["tolerance"] = o.tolerance
        if self.modality is not None:
            d["modality"] = self.modality
        return d

    def walk(self) -> Iterable[_Base]:
        """Every transform in this pipeline, nested groups included."""
        for t in self.transforms:
            yield t
            if isinstance(t, (Compose, OneOf, SomeOf)):
                yield from t.walk()

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"{type(self).__name__}([\n  {inner}\n])"


class OneOf(Compose):
    """Apply exactly one of the transforms, chosen with ``weights``."""

    def __init__(self, transforms: Sequence[Any], weights: Sequence[float] | None = None, *, p: float = 1.0) -> None:
        super().__init__(transforms, p=p)
        if not self.transforms:
            raise ParameterError("OneOf needs at least one transform")
        w = np.ones(len(self.transforms)) if weights is None else np.asarray(weights, float)
        if w.shape != (len(self.transforms),) or (w < 0).any() or w.sum() <= 0:
            raise ParameterError(
                f"OneOf 'weights' must be {len(self.transforms)} non-negative numbers with a positive sum, got {weights}"
            )
        self.weights = w / w.sum()

    def resolve(self, rng, ctx, out) -> None:
        if rng.random() >= self.p:
            return
        i = int(rng.choice(len(self.transforms), p=self.weights))
        _resolve_item(self.transforms[i], rng, ctx, out)

    def config_params(self) -> dict[str, Any]:
        return {"transforms": [_child_config(t) for t in self.transforms], "weights": self.weights.tolist(), "p": self.p}

    def to_config(self) -> Any:
        return {"OneOf": self.config_params()}


class SomeOf(Compose):
    """Apply ``n`` of the transforms (a number or a [min, max] range), in their order."""

    def __init__(self, transforms: Sequence[Any], n: int | Sequence[int] = 1, *, p: float = 1.0) -> None:
        super().__init__(transforms, p=p)
        lo, hi = (n, n) if isinstance(n, (int, np.integer)) else tuple(n)
        if not (0 <= lo <= hi <= len(self.transforms)):
            raise ParameterError(f"SomeOf 'n' must be within [0, {len(self.transforms)}], got {n}")
        self.n = (int(lo), int(hi))

    def resolve(self, rng, ctx, out) -> None:
        if rng.random() >= self.p:
            return
        k = int(rng.integers(self.n[0], self.n[1] + 1))
        chosen = sorted(rng.choice(len(self.transforms), size=k, replace=False).tolist())
        for i in chosen:
            _resolve_item(self.transforms[i], rng, ctx, out)

    def config_params(self) -> dict[str, Any]:
        n: Any = self.n[0] if self.n[0] == self.n[1] else list(self.n)
        return {"transforms": [_child_config(t) for t in self.transforms], "n": n, "p": self.p}

    def to_config(self) -> Any:
        return {"SomeOf": self.config_params()}


def _child_config(item: _Base) -> Any:
    """The config item of a child; a nested plain Compose is ``{"Compose": {...}}`` (its top-level form is a list)."""
    if type(item) is Compose:
        return {"Compose": item.config_params()}
    return item.to_config()


def _resolve_item(item: _Base, rng: np.random.Generator, ctx: Context, out: list[Transform]) -> None:
    if isinstance(item, Compose):
        item.resolve(rng, ctx, out)
        return
    if isinstance(item, RandomTransform):
        if not getattr(item, "draws_own_p", False) and rng.random() >= item.p:  # type: ignore[attr-defined]
            return
        t = item.sample(rng, ctx)
        if t is None:
            return
    elif isinstance(item, Transform):
        t = item
    else:  # pragma: no cover
        raise ParameterError(f"cannot resolve {item!r}")
    if isinstance(t, SpatialTransform):
        ctx.grid = t.output_grid(ctx.grid)
    out.append(t)


# ---------------------------------------------------------------- execution
def execute(sample: Sample, transforms: Sequence[Transform], options: ResampleOptions | None = None, fill: FillSpec = "background") -> Sample:
    """Apply deterministic transforms, fusing spatial runs and the point-wise ops after them."""
    options = options or ResampleOptions()
    cur = sample.replace()
    i = 0
    ts = list(transforms)
    while i < len(ts):
        t = ts[i]
        if isinstance(t, SpatialTransform):
            run: list[SpatialTransform] = []
            while i < len(ts) and isinstance(ts[i], SpatialTransform):
                run.append(ts[i])  # type: ignore[arg-type]
                i += 1
            grid = cur.grid
            for s in run:
                grid = s.output_grid(grid)
            ops = FusedOps()
            fused: list[IntensityTransform] = []
            while i < len(ts) and isinstance(ts[i], IntensityTransform):
                o = ts[i].fused_ops(grid)  # type: ignore[union-attr]
                if o is None:
                    break
                ops.extend(o)
                fused.append(ts[i])  # type: ignore[arg-type]
                i += 1
            cur = _apply_spatial(cur, run, ops, options, fill)
            cur.history.extend(s.record() for s in run)
            cur.history.extend(f.record() for f in fused)
        elif isinstance(t, IntensityTransform):
            cur = apply_intensity(cur, t)
            cur.history.append(t.record())
            i += 1
        else:
            apply = getattr(t, "apply_sample", None)
            if apply is None:
                raise ParameterError(f"{type(t).__name__} cannot be applied to a sample")
            cur = apply(cur)
            cur.history.append(t.record())
            i += 1
    return cur


def _checked_fill(fill: FillSpec) -> FillSpec:
    """``fill`` if every value is a finite number, ``"min"``, ``"background"`` or None; else a ParameterError now,
    not when the first image is resampled (a bad config must stop a job before it starts)."""
    for value in fill.values() if isinstance(fill, dict) else [fill]:
        if value is None or (isinstance(value, str) and value in ("min", "background")):
            continue
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and abs(value) < 1e300:
            continue  # (also false for NaN)
        raise ParameterError(
            f"fill must be a finite number, 'min' or 'background' (or a mapping image name -> one of these), "
            f"got {fill!r}"
        )
    return fill


def resolve_fill(spec: FillSpec, name: str, image: Image, metadata: dict[str, Any] | None = None) -> float:
    """The numeric fill value of one intensity image.

    ``"background"`` uses ``metadata["background"][name]`` when an earlier step
    measured it (e.g. a foreground crop), else the median of the outer shell.
    """
    if isinstance(spec, dict):
        spec = spec.get(name, "background")
    if spec is None:
        spec = "background"
    if isinstance(spec, (int, float, np.number)) and not isinstance(spec, bool):
        return float(spec)
    arr = image.array
    if spec == "min":
        return float(arr.min())
    if spec == "background":
        known = (metadata or {}).get("background", {})
        if name in known:
            return float(known[name])
        return border_median(arr)
    raise ParameterError(f"fill must be a number, 'min' or 'background', got {spec!r} for '{name}'")


def border_median(arr: np.ndarray) -> float:
    """Median of the voxels on the outer faces of an array (the background, e.g. air)."""
    faces = []
    for axis in range(arr.ndim):
        faces.append(np.take(arr, [0, arr.shape[axis] - 1], axis=axis).ravel())
    return float(np.median(np.concatenate(faces)))


def _apply_spatial(cur: Sample, run: list[SpatialTransform], ops: FusedOps, options: ResampleOptions, fill: FillSpec) -> Sample:
    grid_in = cur.grid
    grid = grid_in
    warps = []
    for s in run:
        nxt = s.output_grid(grid)
        warps.append(s.warp(grid, nxt))
        grid = nxt
    chain = compose(warps)
    t0 = time.perf_counter()
    coords = plan_coordinates(chain, grid_in, grid, options.tolerance)
    names_i = list(cur.intensity_images)
    names_l = list(cur.label_maps)
    metadata = dict(cur.metadata)
    for s in run:
        s.update_metadata(metadata)
    fills = [resolve_fill(fill, n, cur[n], metadata) for n in names_i]
    outs, louts = resample_arrays(
        coords,
        [cur[n].data for n in names_i],
        fills,
        [cur[n].data for n in names_l],
        0,
        ops,
        options,
    )
    images: dict[str, Image] = {}
    for n, arr in zip(names_i, outs):
        images[n] = cur[n].with_data(arr, grid)
    for n, arr in zip(names_l, louts):
        images[n] = cur[n].with_data(arr, grid)
    new = cur.replace(images, metadata=metadata)
    new.points = {k: chain.forward(v) for k, v in cur.points.items()}
    new.boxes = {k: _map_boxes(chain, v) for k, v in cur.boxes.items()}
    new.metadata["resampling"] = {
        "fill": dict(zip(names_i, fills)),
        "seconds": round(time.perf_counter() - t0, 4),
        "lattice_error_voxels": round(coords.lattice_error, 5),
    }
    return new


def _map_boxes(chain, boxes: np.ndarray) -> np.ndarray:
    if boxes.size == 0:
        return boxes
    n = boxes.shape[1] // 2
    out = np.empty_like(boxes)
    bits = np.array(np.meshgrid(*([[0, 1]] * n), indexing="ij")).reshape(n, -1).T
    for i, b in enumerate(boxes):
        lo, hi = b[:n], b[n:]
        corners = np.where(bits == 0, lo, hi)
        mapped = chain.forward(corners)
        out[i, :n], out[i, n:] = mapped.min(0), mapped.max(0)
    return out


def apply_intensity(cur: Sample, t: IntensityTransform) -> Sample:
    """Apply one intensity transform to its target images (label maps untouched)."""
    import torch

    images: dict[str, Image] = {}
    mask = None
    if t.mask is not None:
        if t.mask not in cur:
            raise ParameterError(f"{type(t).__name__}: mask '{t.mask}' is not in the sample (has {list(cur)})")
        mask = cur[t.mask].tensor != 0
    for channel, name in enumerate(t.targets(cur)):
        img = cur[name]
        data = img.tensor.to(torch.float32)
        new = t.apply_tensor(data, img.grid, img, channel=channel)
        if mask is not None:
            new = torch.where(mask.to(new.device), new, data)
        images[name] = img.with_data(new if isinstance(img.data, torch.Tensor) else new.cpu().numpy())
    return cur.replace(images)


# ---------------------------------------------------------------- replay & inverse
def _records(history: Iterable[dict[str, Any]]) -> list[Transform]:
    out = []
    for rec in history:
        if rec.get("check"):  # reports such as the output range check are not transforms
            continue
        if rec.get("replayable") is False:  # e.g. a wrapped MONAI/TorchIO transform (medaug.interop)
            raise ParameterError(
                f"history entry {rec.get('name')!r} cannot be rebuilt from its record, so this history cannot be "
                f"replayed or inverted: {rec.get('note') or 'it was recorded without replayable parameters'}"
            )
        cls = _Base.registry.get(rec.get("name", ""))
        if cls is None or not issubclass(cls, Transform):
            raise ParameterError(f"history entry {rec.get('name')!r} is not a known deterministic transform")
        out.append(cls(**rec.get("params", {})))
    return out


def replay(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline that re-applies exactly the transforms recorded in ``history``."""
    return Compose(_records(history), **options)


def inverse_of(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline undoing the spatial transforms of ``history`` (intensity ones are skipped).

    Use it for test-time augmentation: map a prediction made on an augmented
    sample back onto the original grid.  Raises :class:`ParameterError` when a
    spatial transform in the history cannot be inverted.
    """
    inv = [t.inverse() for t in reversed(_records(history)) if isinstance(t, SpatialTransform)]
    options.setdefault("fill", 0.0)
    return Compose(inv, **options)

