"""Base classes: deterministic transforms apply, random transforms only sample.

A :class:`RandomTransform` draws its parameters from an explicit
``numpy.random.Generator`` and returns a deterministic :class:`Transform`
that holds them.  The deterministic transform is the record: its name and
JSON-ready parameters are written to the sample's history, are enough to
replay it and, for spatial ones, to invert it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..errors import ParameterError
from .ranges import is_number, text
from .registry import register

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .pointwise import FusedOps
    from .warp import Warp

__all__ = [
    "Transform",
    "SpatialTransform",
    "IntensityTransform",
    "RandomTransform",
    "PointwiseTransform",
    "RandomIntensityTransform",
    "Context",
    "SeedLike",
    "ChannelChoice",
    "as_generator",
    "to_jsonable",
]

SeedLike = int | np.random.Generator | None
#: Which channels of a multi-channel image an intensity transform draws for: ``"each"``, ``"same"`` or indices.
ChannelChoice = Literal["each", "same"] | list[int]


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Turn an int, a Generator or None into a ``numpy.random.Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(int(seed))
    raise ParameterError(f"seed must be a non-negative int or a numpy.random.Generator, got {type(seed).__name__}")


_PLAIN = (str, int, float, bool, type(None))


def to_jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and tuples into plain JSON types."""
    if type(value) in _PLAIN:  # the common case first (exact types: np.float64, a float subclass, is not one)
        return value
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@functools.cache
def _init_fields(cls: type) -> tuple[str, ...]:
    """The names of a dataclass's ``__init__`` fields, in order (looked up once per class)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


class Context:
    """What a random transform may look at while sampling.

    Attributes
    ----------
    sample : Sample
        The input sample (not yet resampled).
    grid : Grid
        The grid the sample will be on at this point of the pipeline.
    channel : int or None
        The channel a per-channel draw is for (see :class:`RandomIntensityTransform`);
        None for a draw that serves every channel.
    """

    def __init__(self, sample: Sample, grid: Grid | None = None) -> None:
        self.sample = sample
        self.grid = grid if grid is not None else sample.grid
        self.channel: int | None = None

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def modality(self) -> str | None:
        return self.sample.metadata.get("modality")


class _Base:
    """Shared by deterministic and random transforms: naming, config, calling."""

    #: How one transform runs on a sample: as a one-item pipeline (installed by :mod:`medaug.engine.compose`).
    _run_alone: ClassVar[Callable[[_Base, Sample, SeedLike], Sample]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_") and not cls.__dict__.get("__abstract__", False):
            register(cls)

    def __call__(self, sample: Sample, seed: SeedLike = None) -> Sample:
        """Apply to a sample and return a new sample with the history extended (see :class:`Compose`).

        ``seed`` None draws fresh entropy (each call differs) and records the seed used.
        """
        return _Base._run_alone(self, sample, seed)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> _Base:
        """The transform with ``params`` as read from a configuration or a record (which may hold any value).

        Raises
        ------
        ParameterError
            For a bad value; ``TypeError`` for an unknown parameter name.
        """
        built = cls(**params)
        built.check_names()
        return built

    def check_names(self) -> None:
        """Refuse parameters annotated as names (``str`` or ``str | None``, e.g. ``mask``) that hold something else."""
        if not dataclasses.is_dataclass(self):
            return
        for f in dataclasses.fields(self):
            if f.init and f.type in ("str", "str | None", "Optional[str]"):
                text(getattr(self, f.name), f.name, optional=f.type != "str")

    def config_params(self) -> dict[str, Any]:
        """Parameters as they would be written in a configuration file."""
        if dataclasses.is_dataclass(self):
            return {name: to_jsonable(getattr(self, name)) for name in _init_fields(type(self))}
        raise NotImplementedError(f"{type(self).__name__} must define config_params")

    def to_config(self) -> dict[str, Any]:
        return {type(self).__name__: self.config_params()}


class Transform(_Base):
    """A deterministic transform: every parameter fixed."""

    __abstract__ = True

    def record(self) -> dict[str, Any]:
        """The history entry: name and parameters, enough to replay."""
        return {"name": type(self).__name__, "params": self.config_params()}

    def inverse(self, grid: Grid | None = None) -> Transform | None:
        """The transform undoing this one, applied to its output (spatial transforms only)."""
        raise ParameterError(f"{type(self).__name__} cannot be inverted")

    def short(self) -> str:
        """A few characters for picture titles, e.g. ``rot 3.2°``."""
        return type(self).__name__


class SpatialTransform(Transform):
    """A transform that moves voxels: it contributes a coordinate map to the engine.

    Subclasses implement :meth:`warp` (and :meth:`output_grid` when they change
    the grid).  The engine composes the maps of consecutive spatial transforms
    and resamples each image once.
    """

    __abstract__ = True
    #: What to do when this transform's map folds and so cannot be inverted (ends the message).
    fold_hint: ClassVar[str] = "apply a weaker one"

    def output_grid(self, grid: Grid) -> Grid:
        """The grid after this transform (unchanged by default)."""
        return grid

    def warp(self, grid_in: Grid, grid_out: Grid) -> Warp:
        """Map output physical points to input physical points (the pull-back)."""
        raise NotImplementedError

    def inverse(self, grid: Grid | None = None) -> Transform | None:
        """A closed-form inverse that needs no grid (affines, flips), or None.

        None (the default) leaves it to :func:`medaug.engine.inverse.undo`,
        which puts the output back onto ``grid`` through the inverse of this
        transform's map (exact for affine maps, numeric for fields).
        """
        return None

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Write what this transform learned into the sample's metadata (before fill values are chosen).

        For example a foreground crop stores ``metadata["background"] = {name: value}``,
        which the ``"background"`` fill then uses.
        """


@dataclasses.dataclass(eq=False)
class IntensityTransform(Transform):
    """A transform of intensity values; label maps pass through untouched.

    Subclasses implement :meth:`apply_tensor` (torch, CPU or CUDA).  Point-wise
    transforms also describe themselves as fused operations (:meth:`fused_ops`)
    so that the engine can apply them inside the resampling sweep.

    Parameters
    ----------
    channels : list of int, optional
        The channels changed (indices into a multi-channel image's channels);
        every channel if omitted.

    Attributes
    ----------
    mask : str, optional
        Name of a label map (or boolean mask image) restricting the change to
        its non-zero voxels (for the transforms that take one).
    """

    __abstract__ = True

    #: name of a label map (or a boolean mask image) restricting the transform (a field of the subclasses that
    #: take one; left unannotated here so that it stays out of the dataclass fields and their order).
    mask = None
    #: The channels changed (indices into each target image's channels); None: every channel.
    channels: list[int] | None = dataclasses.field(default=None, kw_only=True)

    def check_channels(self) -> None:
        """Validate ``channels`` (subclasses' ``__post_init__`` need not call a base one)."""
        self.channels = _channel_list(self.channels, "channels")

    def config_params(self) -> dict[str, Any]:
        params = super().config_params()
        if params.get("channels") is None:
            params.pop("channels", None)
        return params

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        """The changed values of one channel ``data`` (spatial shape) of ``image``.

        ``channel`` numbers the channel among all intensity channels of the
        sample (:func:`~medaug.engine.execute.channel_layout`): counter-based
        noise keys its stream with it.
        """
        raise NotImplementedError

    def fused_ops(self, grid: Grid) -> FusedOps | None:
        """Operations for the fused kernel, or None when not point-wise."""
        return None

    def targets(self, sample: Sample) -> list[str]:
        """Names of the images this transform changes: every intensity image."""
        return list(sample.intensity_images)


class PointwiseTransform(IntensityTransform):
    """An intensity transform made of fused point-wise operations (:mod:`medaug.engine.pointwise`).

    Subclasses implement :meth:`point_ops`; the engine runs them inside the
    resampling sweep after spatial transforms, or on their own with the same
    arithmetic in PyTorch.  With a ``mask`` they run step-wise, restricted to it.
    """

    __abstract__ = True

    def point_ops(self, grid: Grid) -> FusedOps:
        """The operations for images on ``grid``."""
        raise NotImplementedError

    def fused_ops(self, grid: Grid) -> FusedOps | None:
        return None if self.mask is not None else self.point_ops(grid)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        from .pointwise import apply_ops_torch

        return apply_ops_torch(data, self.point_ops(grid), channel=channel)


class RandomTransform(_Base):
    """Samples a deterministic transform from an explicit generator.

    Attributes
    ----------
    p : float
        Probability of applying the transform, in [0, 1].
    """

    __abstract__ = True

    def sample(self, rng: np.random.Generator, ctx: Context) -> Transform | None:
        """Draw parameters; return the deterministic transform to apply."""
        raise NotImplementedError

    @staticmethod
    def check_p(p: float) -> float:
        """``p`` as a float in [0, 1]."""
        if not is_number(p) or not 0.0 <= float(p) <= 1.0:
            raise ParameterError(f"'p' must be a probability in [0, 1], got {p!r}")
        return float(p) + 0.0


@dataclasses.dataclass(eq=False)
class RandomIntensityTransform(RandomTransform):
    """Samples an :class:`IntensityTransform`, channel by channel.

    Parameters
    ----------
    channels : {"each", "same"} or list of int
        ``"each"`` (default): every channel of a multi-channel image draws its
        own parameters (an MRI sequence's gamma is not another's), and the
        sampled transform changes that channel only; ``"same"``: one draw for
        all channels; a list: only those channels change, each with its own
        draw.  A scalar image has one channel, so the three agree.

    Attributes
    ----------
    mask : str, optional
        Name of a label map (or boolean mask image) restricting the change to
        its non-zero voxels (for the transforms that take one).
    """

    __abstract__ = True

    channels: ChannelChoice = dataclasses.field(default="each", kw_only=True)

    def check_channels(self) -> None:
        """Validate ``channels`` (subclasses' ``__post_init__`` need not call a base one)."""
        if isinstance(self.channels, str) and self.channels in ("each", "same"):
            return
        chosen = None if self.channels is None else _channel_list(self.channels, "channels")
        if chosen is None:  # None would fail when drawing
            raise ParameterError(f"'channels' must be 'each', 'same' or a list of channel indices 0, 1, ..., got {self.channels!r}")
        self.channels = chosen

    def config_params(self) -> dict[str, Any]:
        params = super().config_params()
        if params.get("channels") == type(self).__dataclass_fields__["channels"].default:
            params.pop("channels", None)
        return params

    def channel_draws(self, ctx: Context) -> list[list[int] | None]:
        """The channel sets that each get their own draw: ``[None]`` is one draw for every channel."""
        n = max((img.channels for img in ctx.sample.intensity_images.values()), default=1)
        if self.channels == "same" or (self.channels == "each" and n == 1):
            return [None]
        chosen = range(n) if self.channels == "each" else self.channels
        return [[k] for k in chosen]


def _channel_list(value: Any, name: str) -> list[int] | None:
    """None, or a list of distinct non-negative channel indices."""
    if value is None:
        return None
    items = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(items, Sequence) or isinstance(items, str) or not items or not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < 4096 for k in items
    ):
        raise ParameterError(f"'{name}' must be 'each', 'same' or a list of channel indices 0, 1, ..., got {value!r}")
    if len(set(items)) != len(items):
        raise ParameterError(f"'{name}' lists a channel twice: {value!r}")
    return [int(k) for k in items]
