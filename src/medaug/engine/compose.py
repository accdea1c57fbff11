"""Pipelines: composition, random choice, and the fused execution of a pipeline.

A pipeline first *resolves*: every random transform draws its parameters from
one ``numpy.random.Generator`` and becomes a deterministic transform.  Then it
*executes* (:mod:`.execute`): each run of consecutive spatial transforms is
resampled once.  Replaying and inverting records lives in :mod:`.record`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..data.sample import Sample
from ..errors import ParameterError
from .execute import FillSpec, execute
from .registry import constraint_checker
from .resample import ResampleOptions
from .transform import (
    Context,
    IntensityTransform,
    RandomIntensityTransform,
    RandomTransform,
    SeedLike,
    SpatialTransform,
    Transform,
    _Base,
    as_generator,
)

__all__ = ["Compose", "OneOf", "SomeOf"]


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
            if isinstance(t, (IntensityTransform, RandomIntensityTransform)):
                t.check_channels()
        self.p = RandomTransform.check_p(p)
        self.fill = _checked_fill(fill)
        self.options = ResampleOptions(interpolation, label_interpolation, backend, tolerance)  # type: ignore[arg-type]
        self.modality = modality
        if modality is not None:
            checker = constraint_checker()
            self.modality = checker.canonical(modality)
            checker.enforce(self, self.modality, on_violation=on_violation)

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
            out.metadata.setdefault("modality", self.modality)
            ranges = {n: (float(img.array.min()), float(img.array.max())) for n, img in out.intensity_images.items()}
            inputs = {n: (float(img.array.min()), float(img.array.max())) for n, img in sample.intensity_images.items()}
            out.history.append(constraint_checker().output_range_check(self.modality, ranges, inputs))
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
    if isinstance(item, RandomIntensityTransform):
        if rng.random() >= item.p:  # type: ignore[attr-defined]
            return
        for chosen in item.channel_draws(ctx):  # one draw per channel, or one for all
            ctx.channel = chosen[0] if chosen else None
            drawn = item.sample(rng, ctx)
            if drawn is not None:
                if chosen is not None:
                    drawn.channels = chosen  # type: ignore[attr-defined]
                out.append(drawn)
        ctx.channel = None
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


def _run_alone(transform: _Base, sample: Sample, seed: SeedLike) -> Sample:
    return Compose([transform])(sample, seed=seed)


_Base._run_alone = staticmethod(_run_alone)  # type: ignore[assignment]
