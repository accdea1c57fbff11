"""MRI k-space artifacts: motion, ghosting, spikes and Gibbs ringing (2D and 3D, ``torch.fft``).

The image is taken to k-space with a centred FFT (``fftshift(fftn(v))``),
changed there, and brought back.  A non-negative input is a magnitude
image, as scanners reconstruct it: the magnitude of the result is kept, so
the output stays non-negative.  A signed input keeps the real part.  Either
way an unchanged spectrum returns the input (up to float rounding).  Axes are index axes in (x, y, z) order, as ``spacing``:
0 = x (array columns), 1 = y (rows), 2 = z (slices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.axes import array_axis, axis_choices, index_axis, pick_axis
from ..data.grid import Grid
from ..data.image import Image
from ..engine.ranges import Range, RangeLike, count, number, numbers, warn_if_radians
from ..engine.transform import Context, IntensityTransform, RandomIntensityTransform
from ..errors import ParameterError
from .lowres import AxisChoice

__all__ = [
    "Motion", "RandomMotion", "Ghosting", "RandomGhosting", "Spike", "RandomSpike", "Gibbs", "RandomGibbs",
    "kspace", "image_from_kspace",
]

#: Moved copies of a motion artefact.
NUM_TRANSFORMS = (1, 32)
DEGREES = Range("symmetric", bounds=(-180.0, 180.0), unit="degrees")
TRANSLATION = Range("symmetric", bounds=(-1e3, 1e3), unit="mm")
NUM_GHOSTS = (1, 1000)
NUM_SPIKES = (0, 1000)
#: Spike heights relative to the k-space maximum.
SPIKE = Range("symmetric", bounds=(-100.0, 100.0))


# ------------------------------------------------------------------ helpers
def kspace(data: torch.Tensor) -> torch.Tensor:
    """Centred spectrum of a real 2D/3D tensor (DC at index ``n // 2`` of every axis)."""
    return torch.fft.fftshift(torch.fft.fftn(data.to(torch.float32)))


def image_from_kspace(spectrum: torch.Tensor, magnitude: bool = False) -> torch.Tensor:
    """The inverse of :func:`kspace`, float32: its magnitude (``magnitude=True``) or its real part."""
    back = torch.fft.ifftn(torch.fft.ifftshift(spectrum))
    return (back.abs() if magnitude else back.real).to(torch.float32)


def _is_magnitude(data: torch.Tensor) -> bool:
    """A magnitude image: no negative value."""
    return bool((data >= 0).all())


def _along(vec: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[axis] = -1
    return vec.view(shape)


# ------------------------------------------------------------------ motion
@dataclass
class Motion(IntensityTransform):
    """Rigid motion during the acquisition: k-space segments from rigidly moved copies.

    The image is moved ``len(degrees)`` times (each a rotation about the grid
    centre and a translation, resampled by medaug's engine with the
    ``"background"`` fill).  k-space is split along the phase-encode axis at
    ``times``; the segment holding the centre of k-space comes from the
    unmoved image, the others from the moved copies in order (after Shaw et
    al. 2019 and TorchIO's ``Motion``).

    Parameters
    ----------
    degrees : list
        One rotation per moved copy: ``[angle]`` in 2D, ``[ax, ay, az]`` in 3D (degrees).
    translation : list
        One translation per moved copy, in mm (x, y, z).
    times : list of float
        Increasing split points in (0, 1) along the phase-encode axis, one per moved copy.
    axis : int
        Phase-encode index axis (0 = x, 1 = y, 2 = z).
    mask : str, optional
        Restrict the change to the non-zero voxels of this label map.
    """

    degrees: list[list[float]] | tuple[list[float], ...] = ()
    translation: list[list[float]] | tuple[list[float], ...] = ()
    times: list[float] | tuple[float, ...] = ()
    axis: int = 1
    mask: str | None = None

    def __post_init__(self) -> None:
        self.axis = index_axis(self.axis)
        for name in ("degrees", "translation", "times"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) > NUM_TRANSFORMS[1]:
                raise ParameterError(f"Motion '{name}' must be a list of at most {NUM_TRANSFORMS[1]} entries, got {value!r}")
        self.degrees = [numbers(d, "degrees", DEGREES.bounds, sizes=(1, 3)) for d in self.degrees]
        self.translation = [numbers(t, "translation", TRANSLATION.bounds, sizes=(2, 3)) for t in self.translation]
        self.times = [number(t, "times", (0.0, 1.0)) for t in self.times]
        n = len(self.times)
        if len(self.degrees) != n or len(self.translation) != n:
            raise ParameterError(
                "Motion needs one 'degrees', 'translation' and 'times' entry per moved copy"
                f", got {len(self.degrees)}, {len(self.translation)}, {n}"
            )
        t = np.asarray(self.times)
        if n and (t.min() <= 0 or t.max() >= 1 or (np.diff(t) < 0).any()):
            raise ParameterError(f"Motion 'times' must be increasing and inside (0, 1), got {self.times}")

    def _copies(self, data: torch.Tensor, grid: Grid) -> list[torch.Tensor]:
        from ..data.sample import Sample
        from ..engine.execute import execute
        from ..spatial.affine import Affine

        tmp = Sample(image=Image(data, grid=grid))
        out = [data]
        for rot, tr in zip(self.degrees, self.translation):
            if len(tr) != grid.ndim or len(rot) != (3 if grid.ndim == 3 else 1):
                raise ParameterError(f"Motion copies of a {grid.ndim}D image need {grid.ndim} translations and "
                                     f"{3 if grid.ndim == 3 else 1} angle(s) each, got {tr} and {rot}")
            moved = execute(tmp, [Affine(rotation=rot if grid.ndim == 3 else rot[0], translation=tr)])
            out.append(moved["image"].tensor.to(device=data.device, dtype=torch.float32))
        return out

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        if not self.times:
            return data
        ax = array_axis(self.axis, data.ndim)
        n = data.shape[ax]
        spectra = [kspace(c) for c in self._copies(data.to(torch.float32), grid)]
        bounds = [0, *[int(t * n) for t in self.times], n]
        centre = n // 2
        seg_of_centre = max(i for i in range(len(bounds) - 1) if bounds[i] <= centre)
        moved = iter(spectra[1:])
        result = torch.empty_like(spectra[0])
        index = [slice(None)] * data.ndim
        for i in range(len(bounds) - 1):
            index[ax] = slice(bounds[i], bounds[i + 1])
            src = spectra[0] if i == seg_of_centre else next(moved)
            result[tuple(index)] = src[tuple(index)]
        return image_from_kspace(result, _is_magnitude(data))

    def short(self) -> str:
        return f"motion ×{len(self.times)}"


@dataclass
class RandomMotion(RandomIntensityTransform):
    """Random rigid motion artifact.

    Parameters
    ----------
    degrees : float or [min, max]
        Rotation of each moved copy (per axis in 3D); ``d`` means (-d, d).
    translation : float or [min, max]
        Translation in mm of each moved copy, per axis; ``d`` means (-d, d).
    num_transforms : int or [min, max]
        Number of moved copies (movements during the acquisition), >= 1.
    axis : int, list of int, optional
        Phase-encode axis, or candidates to pick from; any axis when omitted.
    mask : str, optional
    p : float
    """

    degrees: RangeLike = 10.0
    translation: RangeLike = 10.0
    num_transforms: int | tuple[int, int] | list[int] = 2
    axis: AxisChoice = None
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._deg = DEGREES.parse(self.degrees, "degrees")
        warn_if_radians(self.degrees, "degrees", type(self).__name__)
        self._tr = TRANSLATION.parse(self.translation, "translation")
        self._n = Range("exact", bounds=NUM_TRANSFORMS).ints(self.num_transforms, "num_transforms")
        self._axes = axis_choices(self.axis)

    def sample(self, rng: np.random.Generator, ctx: Context) -> Motion:
        nd = ctx.ndim
        n = int(rng.integers(self._n[0], self._n[1] + 1))
        step = 1.0 / (n + 1)
        times = step * np.arange(1, n + 1) + rng.uniform(-0.3 * step, 0.3 * step, n)
        return Motion(
            degrees=rng.uniform(*self._deg, size=(n, 1 if nd == 2 else 3)).tolist(),
            translation=rng.uniform(*self._tr, size=(n, nd)).tolist(),
            times=np.sort(times).tolist(),
            axis=pick_axis(rng, self._axes, nd, "axis"),
            mask=self.mask,
        )


# ------------------------------------------------------------------ ghosting
@dataclass
class Ghosting(IntensityTransform):
    """Periodic ghosts along the phase-encode axis: every ``num_ghosts``-th k-space line is scaled by ``1 - intensity``.

    Parameters
    ----------
    num_ghosts : int
        Period of the modulated lines; ghosts appear shifted by ``n / num_ghosts`` voxels.
    axis : int
        Phase-encode index axis (0 = x, 1 = y, 2 = z).
    intensity : float
        Artifact strength in [0, 1] (0: none).
    restore : float
        Fraction of the k-space centre along ``axis`` kept intact (the central line at least).
    mask : str, optional
    """

    num_ghosts: int = 4
    axis: int = 1
    intensity: float = 0.5
    restore: float = 0.02
    mask: str | None = None

    def __post_init__(self) -> None:
        self.axis = index_axis(self.axis)
        self.num_ghosts = count(self.num_ghosts, "num_ghosts", NUM_GHOSTS)
        self.intensity = number(self.intensity, "intensity", (0.0, 1.0))
        self.restore = number(self.restore, "restore", (0.0, 0.99))

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        ax = array_axis(self.axis, data.ndim)
        n = data.shape[ax]
        factor = torch.ones(n, dtype=torch.float32, device=data.device)
        factor[:: self.num_ghosts] = 1.0 - self.intensity
        mid, half = n // 2, int(round(self.restore * n)) // 2
        factor[max(mid - half, 0) : mid + max(half, 1)] = 1.0
        return image_from_kspace(kspace(data) * _along(factor, ax, data.ndim), _is_magnitude(data))

    def short(self) -> str:
        return f"ghosts {self.num_ghosts}"


@dataclass
class RandomGhosting(RandomIntensityTransform):
    """Random MRI ghosting.

    Parameters
    ----------
    num_ghosts : int or [min, max]
        Integer range of the ghost period.
    axis : int, list of int, optional
        Phase-encode axis or candidates; any axis when omitted.
    intensity : float or [min, max]
        Strength in [0, 1].
    restore : float
        Fraction of the k-space centre kept.
    mask : str, optional
    p : float
    """

    num_ghosts: int | tuple[int, int] | list[int] = (4, 10)
    axis: AxisChoice = None
    intensity: RangeLike = (0.5, 1.0)
    restore: float = 0.02
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._n = Range("exact", bounds=NUM_GHOSTS).ints(self.num_ghosts, "num_ghosts")
        self._axes = axis_choices(self.axis)
        self._int = Range("exact", bounds=(0.0, 1.0)).parse(self.intensity, "intensity")
        self.restore = Ghosting(restore=self.restore).restore

    def sample(self, rng: np.random.Generator, ctx: Context) -> Ghosting:
        return Ghosting(
            num_ghosts=int(rng.integers(self._n[0], self._n[1] + 1)),
            axis=pick_axis(rng, self._axes, ctx.ndim, "axis"),
            intensity=float(rng.uniform(*self._int)),
            restore=float(self.restore),
            mask=self.mask,
        )


# ------------------------------------------------------------------ spikes
@dataclass
class Spike(IntensityTransform):
    """Herringbone (spike) artifact: bright points added to k-space.

    Parameters
    ----------
    positions : list
        One k-space position per spike, as fractions in [0, 1) of each index
        axis (x, y, z order); 0.5 is the centre of k-space.
    intensity : float
        Spike height relative to the largest k-space magnitude.
    mask : str, optional
    """

    positions: list[list[float]] | tuple[list[float], ...] = ()
    intensity: float = 1.0
    mask: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.positions, (list, tuple)) or len(self.positions) > NUM_SPIKES[1]:
            raise ParameterError(f"Spike 'positions' must be a list of at most {NUM_SPIKES[1]} positions, got {self.positions!r}")
        self.positions = [numbers(p, "positions", (0.0, 0.999999), sizes=(2, 3)) for p in self.positions]
        self.intensity = number(self.intensity, "intensity", SPIKE.bounds)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        if not self.positions or self.intensity == 0:
            return data
        spec = kspace(data)
        height = spec.abs().max() * self.intensity
        shape = np.asarray(spec.shape)
        for p in self.positions:
            if len(p) != data.ndim:
                raise ParameterError(f"Spike position {p} does not match a {data.ndim}D image")
            idx = np.floor(np.asarray(p[::-1]) * shape).astype(int)
            spec[tuple(int(i) for i in idx)] += height
        return image_from_kspace(spec, _is_magnitude(data))

    def short(self) -> str:
        return f"spikes {len(self.positions)}"


@dataclass
class RandomSpike(RandomIntensityTransform):
    """Random k-space spikes.

    Parameters
    ----------
    num_spikes : int or [min, max]
        Integer range of the number of spikes.
    intensity : float or [min, max]
        Spike height relative to the k-space maximum; ``r`` means (-r, r).
    mask : str, optional
    p : float
    """

    num_spikes: int | tuple[int, int] | list[int] = 1
    intensity: RangeLike = (1.0, 3.0)
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._n = Range("exact", bounds=NUM_SPIKES).ints(self.num_spikes, "num_spikes")
        self._int = SPIKE.parse(self.intensity, "intensity")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Spike:
        n = int(rng.integers(self._n[0], self._n[1] + 1))
        return Spike(
            positions=rng.uniform(0.0, 1.0, size=(n, ctx.ndim)).clip(0.0, 0.999999).tolist(),
            intensity=float(rng.uniform(*self._int)),
            mask=self.mask,
        )


# ------------------------------------------------------------------ Gibbs
@dataclass
class Gibbs(IntensityTransform):
    """Gibbs ringing: keep only the central fraction ``alpha`` of k-space along some axes.

    Parameters
    ----------
    alpha : float
        Fraction of k-space kept along each axis in ``axes``, in (0, 1].
    axes : int or list of int, optional
        Index axes truncated (0 = x, 1 = y, 2 = z); every axis when omitted.
    mask : str, optional
    """

    renamed_from = ("GibbsRinging",)

    alpha: float = 0.8
    axes: AxisChoice = None
    mask: str | None = None

    def __post_init__(self) -> None:
        self.alpha = number(self.alpha, "alpha", (0.0, 1.0), low_open=True)
        self.axes = axis_choices(self.axes, "axes")

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        axes = range(data.ndim) if self.axes is None else [array_axis(a, data.ndim, "axes") for a in self.axes]
        spec = kspace(data)
        for ax in axes:
            n = data.shape[ax]
            keep = torch.abs(torch.arange(n, device=data.device) - n // 2) <= self.alpha * n / 2
            spec = spec * _along(keep.to(spec.dtype), ax, data.ndim)
        return image_from_kspace(spec, _is_magnitude(data))

    def short(self) -> str:
        return f"Gibbs {self.alpha:.2f}"


@dataclass
class RandomGibbs(RandomIntensityTransform):
    """Random Gibbs ringing (draws a :class:`Gibbs`).

    Parameters
    ----------
    alpha : float or [min, max]
        Range of the fraction of k-space kept, within (0, 1].
    axes : int or list of int, optional
        Truncated axes; all when omitted.
    mask : str, optional
    p : float
    """

    alpha: RangeLike = (0.6, 0.9)
    axes: AxisChoice = None
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._alpha = Range("exact", bounds=(0.0, 1.0), low_open=True).parse(self.alpha, "alpha")
        self.axes = Gibbs(axes=self.axes).axes

    def sample(self, rng: np.random.Generator, ctx: Context) -> Gibbs:
        return Gibbs(alpha=float(rng.uniform(*self._alpha)), axes=self.axes, mask=self.mask)
