"""Pipelines: composition, random choice, and the fused execution of a pipeline.

A pipeline first *resolves*: every random transform draws its parameters from
one ``numpy.random.Generator`` and becomes a deterministic transform.  Then it
*executes* (:mod:`.execute`): each run of consecutive spatial transforms is
resampled once.  Replaying and inverting records lives in :mod:`.record`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._version import __version__
from ..data.sample import Sample
from ..errors import ParameterError, plural
from .execute import FillSpec, Resampling, Step, execute, execute_batch, name_sample
from .ranges import BIG, Range, is_number, number, numbers
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
    to_jsonable,
)

__all__ = ["Compose", "OneOf", "SomeOf", "MAX_DEPTH", "layout_mismatch"]


_OPTION_DEFAULTS: dict[str, Any] = {
    "fill": "background", "interpolation": "linear", "label_interpolation": "nearest", "backend": "auto", "tolerance": 0.1,
}
#: How deeply groups may nest (a config is checked against it; Python's own limit is far above).
MAX_DEPTH = 16


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
        -1000 HU in CT; the default).  A dict gives one per image name.  Label maps fill with 0.
    interpolation, label_interpolation, backend, tolerance : optional
        See :class:`~medaug.engine.resample.ResampleOptions` (defaults ``linear``,
        ``nearest``, ``auto``, 0.1 voxel).
    modality : str, optional
        The modality the pipeline is meant for (``ct``, ``mri``, ``xray``,
        ``ultrasound``).  The pipeline is checked against the modality's
        constraints when built, and every output gets a range check in its history.
    channel_modalities : sequence of str, optional
        Instead of ``modality``, for images whose channels come from several
        modalities (e.g. CT and MRI; ``--preset auto`` on such a dataset): one
        modality per channel.  Each modality's constraints are checked on the
        transforms that reach its channels (the spatial ones, and the intensity
        ones whose ``channels`` include one of them), and every output gets a
        range check per modality, over its channels, in its history.
    on_violation : {"error", "warn", "strict"}
        With ``modality`` or ``channel_modalities``: raise
        :class:`~medaug.errors.UnsafePipelineError` on errors and warn on
        warnings (``error``), only warn (``warn``), or raise on both (``strict``).

    Notes
    -----
    Options left unset are inherited: a nested group without options of its
    own uses its parent's, and its spatial transforms are resampled together
    with the parent's neighbouring ones.  A nested group that sets any of
    ``fill``, ``interpolation``, ``label_interpolation``, ``backend`` or
    ``tolerance`` resamples its spatial transforms on their own, with its
    options (the others inherited).  Set options are kept in the saved config.

    Calling a pipeline without ``seed`` draws fresh entropy: each call gives a
    new augmentation, and the seed used is recorded in the history's ``run``
    entry, so the call stays repeatable (:mod:`medaug.engine.record`).

    Examples
    --------
    >>> from medaug import Compose, shepp_logan_2d
    >>> from medaug.spatial import RandomAffine
    >>> pipeline = Compose([RandomAffine(rotation=10)])
    >>> out = pipeline(shepp_logan_2d(64), seed=0)
    >>> [entry.get("name", "run") for entry in out.history]
    ['run', 'Affine']
    >>> out.history[0]["run"]["seed"]
    0
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        *,
        p: float = 1.0,
        fill: FillSpec = None,
        interpolation: str | None = None,
        label_interpolation: str | None = None,
        backend: str | None = None,
        tolerance: float | None = None,
        modality: str | None = None,
        on_violation: str = "error",
        channel_modalities: Sequence[str] | None = None,
    ) -> None:
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
            raise ParameterError(f"a pipeline takes a list of transforms, got {type(transforms).__name__}")
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, _Base):
                raise ParameterError(f"pipeline items must be medaug transforms, got {type(t).__name__}")
            if isinstance(t, (IntensityTransform, RandomIntensityTransform)):
                t.check_channels()
        if _depth(self) > MAX_DEPTH:
            raise ParameterError(f"groups (Compose, OneOf, SomeOf) nest more than {MAX_DEPTH} deep; flatten the pipeline")
        self.p = RandomTransform.check_p(p)
        given = {"fill": fill, "interpolation": interpolation, "label_interpolation": label_interpolation,
                 "backend": backend, "tolerance": tolerance}
        #: The resampling options set on this group (the others are inherited).
        self.settings: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if "fill" in self.settings:
            self.settings["fill"] = _checked_fill(self.settings["fill"])
        if "tolerance" in self.settings:
            self.settings["tolerance"] = number(self.settings["tolerance"], "tolerance", (1e-3, 10.0), unit="voxels")
        self._resampling = Resampling().with_settings(self.settings)
        self.modality = modality
        if modality is not None:
            checker = constraint_checker()
            self.modality = checker.canonical(modality)
            checker.enforce(self, self.modality, on_violation=on_violation)
        #: One modality per channel (a pipeline for channels of several modalities), or None.
        self.channel_modalities: list[str] | None = None
        if channel_modalities is not None:
            if modality is not None:
                raise ParameterError("give 'modality' (one for every channel) or 'channel_modalities' (one per "
                                     "channel), not both")
            if isinstance(channel_modalities, (str, bytes)) or not channel_modalities:
                raise ParameterError(f"'channel_modalities' must be a list of one modality per channel, got "
                                     f"{channel_modalities!r}")
            checker = constraint_checker()
            self.channel_modalities = [checker.canonical(str(m)) for m in channel_modalities]
            for m, chosen in self._modality_channels().items():
                checker.enforce(_ChannelView(self, chosen), m, on_violation=on_violation)

    @property
    def options(self) -> ResampleOptions:
        """The resampling options this group uses at the top of a pipeline (unset ones at their defaults)."""
        return self._resampling.options

    @property
    def fill(self) -> FillSpec:
        """The fill this group uses at the top of a pipeline."""
        return self._resampling.fill

    # ------------------------------------------------------------ running
    def __call__(self, sample: Sample, seed: SeedLike = None) -> Sample:
        """Apply the pipeline to ``sample``.

        Parameters
        ----------
        sample : Sample
        seed : int, numpy.random.Generator or None
            None (default) draws fresh entropy: every call differs.  The seed
            used (or the generator's state) is recorded in the history.
        """
        if not isinstance(sample, Sample):
            raise ParameterError(f"a pipeline takes a medaug Sample, got {type(sample).__name__}")
        start, steps = self._prepare(sample, seed)
        return self._finish(execute(start, steps), sample)

    def batch(self, samples: Sequence[Sample], seeds: Sequence[SeedLike] | None = None) -> list[Sample]:
        """Apply the pipeline to several samples of one size in one call.

        Each sample draws its parameters from its own seed, exactly as
        ``pipeline(samples[i], seed=seeds[i])`` would, and gets the same output
        and history (bit for bit on CPU; within float rounding on the torch
        backend).  The resampling sweeps of all samples run together: one
        kernel launch over every sample's rows on CPU, batched ``grid_sample``
        calls with the torch backend (CPU or CUDA).

        Parameters
        ----------
        samples : sequence of Sample
            Samples with the same image names, spatial size and channels
            (spacing, origin, direction and dtypes may differ).  For a collated
            batch of tensors use :class:`~medaug.datasets.torch_dataset.BatchAugmenter`.
        seeds : sequence of (int, numpy.random.Generator or None), optional
            One per sample; None (default) draws fresh entropy for each.

        Returns
        -------
        list of Sample
            The augmented samples, in order.  With the numba backend the arrays
            of one batch are views of one block of memory.

        Raises
        ------
        ParameterError
            When the samples differ in size, channels or image names
            (naming the first that does), or ``seeds`` has the wrong length.
        MedaugError
            From the sample that failed, its message led by ``batch sample i``
            and its ``case_id`` when the metadata has one.

        Examples
        --------
        >>> from medaug import Compose, shepp_logan_2d
        >>> from medaug.spatial import RandomAffine
        >>> pipeline = Compose([RandomAffine(rotation=10)])
        >>> samples = [shepp_logan_2d(32, seed=i) for i in range(4)]
        >>> outs = pipeline.batch(samples, seeds=[0, 1, 2, 3])
        >>> bool((outs[2]["image"].array == pipeline(samples[2], seed=2)["image"].array).all())
        True
        """
        samples = list(samples)
        seeds = [None] * len(samples) if seeds is None else list(seeds)
        if len(seeds) != len(samples):
            raise ParameterError(f"batch: {plural(len(seeds), 'seed')} for {plural(len(samples), 'sample')}; give one seed per sample")
        for i, sample in enumerate(samples):
            if not isinstance(sample, Sample):
                raise ParameterError(f"batch sample {i}: a pipeline takes medaug Samples, got {type(sample).__name__}")
            problem = layout_mismatch(samples[0], sample)
            if problem:
                case = sample.metadata.get("case_id")
                raise ParameterError(
                    f"batch sample {i}{f' (case {case!r})' if case is not None else ''} does not match sample 0: "
                    f"{problem}; a batch holds samples of one size and layout (crop or resample them first, "
                    "or call the pipeline on each)"
                )
        prepared = []
        for i, (sample, seed) in enumerate(zip(samples, seeds)):
            with name_sample(i, sample):
                prepared.append(self._prepare(sample, seed))
        outs = execute_batch([p[0] for p in prepared], [p[1] for p in prepared])
        finished = []
        for i, (out, sample) in enumerate(zip(outs, samples)):
            with name_sample(i, sample):
                finished.append(self._finish(out, sample))
        return finished

    def _prepare(self, sample: Sample, seed: SeedLike) -> tuple[Sample, list[Step]]:
        """Draw every parameter from ``seed``'s stream: the sample with its run header, and the steps to execute."""
        seed_record, rng = _seeded(seed)
        resolved: list[Step] = []
        self.resolve(rng, Context(sample), resolved)
        header = {"run": {"medaug": __version__, "pipeline": self.to_config(), "seed": seed_record,
                          "grid": sample.grid.to_dict()}}
        return sample.replace(history=[*sample.history, header]), resolved

    def _finish(self, out: Sample, sample: Sample) -> Sample:
        """The modality's tag and output range check, when the pipeline has a modality (one per channel modality)."""
        if self.modality is not None:
            out.metadata.setdefault("modality", self.modality)
            ranges = {n: (float(img.array.min()), float(img.array.max())) for n, img in out.intensity_images.items()}
            inputs = {n: (float(img.array.min()), float(img.array.max())) for n, img in sample.intensity_images.items()}
            out.history.append(constraint_checker().output_range_check(self.modality, ranges, inputs))
        elif self.channel_modalities is not None:
            n = len(self.channel_modalities)
            for m, chosen in self._modality_channels().items():
                ranges, inputs = ({name: _channel_range(img.array, chosen, img.channel_axis)
                                   for name, img in s.intensity_images.items() if img.channels == n}
                                  for s in (out, sample))
                record = constraint_checker().output_range_check(m, ranges, inputs)
                record["params"]["channels"] = chosen
                out.history.append(record)
        return out

    def _modality_channels(self) -> dict[str, list[int]]:
        """Each modality of ``channel_modalities`` and its channels, in order of first appearance."""
        found: dict[str, list[int]] = {}
        for k, m in enumerate(self.channel_modalities or []):
            found.setdefault(m, []).append(k)
        return found

    def resolve(self, rng: np.random.Generator, ctx: Context, out: list[Step], parent: Resampling | None = None) -> None:
        """Draw every random parameter; append the deterministic transforms, with their resampling, to ``out``."""
        if rng.random() >= self.p:
            return
        # a group without options of its own shares its parent's resampling object: resampled together
        resampling = self._resampling if parent is None else parent.with_settings(self.settings)
        for item in self._chosen(rng):
            _resolve_item(item, rng, ctx, out, resampling)

    def _chosen(self, rng: np.random.Generator) -> list[_Base]:
        """The items this group applies, in order (all of them for a Compose)."""
        return self.transforms

    # ------------------------------------------------------------ config
    def config_params(self) -> dict[str, Any]:
        return {"transforms": [_child_config(t) for t in self.transforms], "p": self.p, **self._options_dict(nested=True)}

    def to_config(self) -> Any:
        """A list of ``{Name: params}`` items, or a dict when options differ from defaults."""
        items = [_child_config(t) for t in self.transforms]
        extra = self._options_dict()
        if not extra and self.p == 1.0:
            return items
        return {"transforms": items, **({"p": self.p} if self.p != 1.0 else {}), **extra}

    def _options_dict(self, nested: bool = False) -> dict[str, Any]:
        """The options set on this group: all of them when nested, those that differ from the defaults at the top."""
        d = {k: v for k, v in self.settings.items() if nested or v != _OPTION_DEFAULTS[k]}
        if self.modality is not None:
            d["modality"] = self.modality
        if self.channel_modalities is not None:
            d["channel_modalities"] = list(self.channel_modalities)
        return d

    def walk(self) -> Iterable[_Base]:
        """Every transform in this pipeline, nested groups included."""
        for t in self.transforms:
            yield t
            if isinstance(t, Compose):
                yield from t.walk()

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"{type(self).__name__}([\n  {inner}\n])"


def _channel_range(arr: np.ndarray, channels: list[int], channel_axis: bool) -> tuple[float, float]:
    """(min, max) of ``channels`` of an image's array (the whole array without a channel axis)."""
    part = arr[channels] if channel_axis else arr
    return float(part.min()), float(part.max())


class _ChannelView:
    """The transforms of a pipeline that reach some channels: what one modality's constraints are checked on.

    Spatial transforms and groups move every channel; an intensity transform
    counts when its ``channels`` are all of them (None, ``"each"``,
    ``"same"``) or include one of ``channels``.
    """

    def __init__(self, pipeline: Compose, channels: list[int]) -> None:
        self.pipeline, self.channels = pipeline, set(channels)

    def walk(self) -> Iterable[_Base]:
        for t in self.pipeline.walk():
            chosen = getattr(t, "channels", None) if isinstance(t, (IntensityTransform, RandomIntensityTransform)) else None
            if not isinstance(chosen, list) or self.channels & set(chosen):
                yield t


class OneOf(Compose):
    """Apply exactly one of the transforms, chosen with ``weights`` (resampling options as :class:`Compose`).

    Parameters
    ----------
    transforms : sequence
        The transforms to choose from.
    weights : list of float, optional
        Relative weights, one per transform (non-negative, positive sum); equal if omitted.
    p : float
        Probability of applying the group.
    """

    def __init__(self, transforms: Sequence[Any], weights: Sequence[float] | None = None, *, p: float = 1.0,
                 **options: Any) -> None:
        super().__init__(transforms, p=p, **options)
        if not self.transforms:
            raise ParameterError("OneOf needs at least one transform")
        w = np.ones(len(self.transforms)) if weights is None else np.asarray(
            numbers(weights, "weights", (0.0, BIG), sizes=(len(self.transforms),)), float)
        if w.sum() <= 0:
            raise ParameterError(
                f"OneOf 'weights' must be {len(self.transforms)} non-negative numbers with a positive sum, got {weights}"
            )
        self.weights = w / w.sum()

    def _chosen(self, rng: np.random.Generator) -> list[_Base]:
        return [self.transforms[int(rng.choice(len(self.transforms), p=self.weights))]]

    def config_params(self) -> dict[str, Any]:
        return {"transforms": [_child_config(t) for t in self.transforms], "weights": self.weights.tolist(), "p": self.p,
                **self._options_dict(nested=True)}

    def to_config(self) -> Any:
        return {"OneOf": self.config_params()}


class SomeOf(Compose):
    """Apply ``n`` of the transforms (a number or a [min, max] range), in their order (options as :class:`Compose`).

    Parameters
    ----------
    transforms : sequence
        The transforms to choose from.
    n : int or [min, max]
        How many to apply (a range draws the count), at most ``len(transforms)``.
    p : float
        Probability of applying the group.
    """

    def __init__(self, transforms: Sequence[Any], n: int | Sequence[int] = 1, *, p: float = 1.0, **options: Any) -> None:
        super().__init__(transforms, p=p, **options)
        lo, hi = Range("exact", bounds=(0, len(self.transforms))).ints(n, "n")
        self.n = (lo, hi)

    def _chosen(self, rng: np.random.Generator) -> list[_Base]:
        k = int(rng.integers(self.n[0], self.n[1] + 1))
        chosen = sorted(rng.choice(len(self.transforms), size=k, replace=False).tolist())
        return [self.transforms[i] for i in chosen]

    def config_params(self) -> dict[str, Any]:
        n: Any = self.n[0] if self.n[0] == self.n[1] else list(self.n)
        return {"transforms": [_child_config(t) for t in self.transforms], "n": n, "p": self.p,
                **self._options_dict(nested=True)}

    def to_config(self) -> Any:
        return {"SomeOf": self.config_params()}


def _child_config(item: _Base) -> Any:
    """The config item of a child; a nested plain Compose is ``{"Compose": {...}}`` (its top-level form is a list)."""
    if type(item) is Compose:
        return {"Compose": item.config_params()}
    return item.to_config()


def _resolve_item(item: _Base, rng: np.random.Generator, ctx: Context, out: list[Step], resampling: Resampling) -> None:
    if isinstance(item, Compose):
        item.resolve(rng, ctx, out, resampling)
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
                out.append((drawn, resampling))
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
    out.append((t, resampling))


def _checked_fill(fill: FillSpec) -> FillSpec:
    """``fill`` if every value is a finite number, ``"min"``, ``"background"`` or None; else a ParameterError now,
    not when the first image is resampled (a bad config must stop a job before it starts)."""
    for value in fill.values() if isinstance(fill, dict) else [fill]:
        if value is None or (isinstance(value, str) and value in ("min", "background")):
            continue
        if is_number(value):
            number(value, "fill", (-BIG, BIG))
            continue
        if isinstance(value, (list, tuple)) and value and all(is_number(v) for v in value):  # one per channel
            for v in value:
                number(v, "fill", (-BIG, BIG))
            continue
        raise ParameterError(
            f"fill must be a finite number, 'min' or 'background' (or a mapping image name -> one of these), "
            f"got {fill!r}"
        )
    return fill


def layout_mismatch(a: Sample, b: Sample) -> str | None:
    """How ``b``'s images differ from ``a``'s in name, spatial size, channels or role; None when they agree."""
    if list(a) != list(b):
        return f"images {list(b)} vs {list(a)}"
    for name in a:
        x, y = a[name], b[name]
        if x.shape != y.shape:
            return f"'{name}' has size {y.grid.size_xyz} vs {x.grid.size_xyz}"
        if (x.channels, x.channel_axis, x.is_label) != (y.channels, y.channel_axis, y.is_label):
            return f"'{name}' has {y.channels} channel(s) vs {x.channels} (or a different role)"
    return None


def _depth(item: _Base) -> int:
    """How many groups deep ``item`` nests (1 for a group of transforms)."""
    if not isinstance(item, Compose):
        return 0
    return 1 + max((_depth(t) for t in item.transforms), default=0)


def _seeded(seed: SeedLike) -> tuple[Any, np.random.Generator]:
    """The generator for ``seed`` and what the history records of it.

    None draws a fresh 63-bit seed from the operating system's entropy and
    records it; an int is recorded as is; a Generator is recorded by its state
    before the pipeline draws from it.
    """
    if seed is None:
        seed = secrets.randbits(63)
    if isinstance(seed, np.random.Generator):
        return {"generator": to_jsonable(seed.bit_generator.state)}, seed
    rng = as_generator(seed)
    return int(seed), rng


def _run_alone(transform: _Base, sample: Sample, seed: SeedLike) -> Sample:
    return Compose([transform])(sample, seed=seed)


_Base._run_alone = staticmethod(_run_alone)
