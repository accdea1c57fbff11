"""Smooth multiplicative bias fields: polynomial (MRI inhomogeneity) and Gaussian blobs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import product
from typing import Literal

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..engine.pointwise import FusedOps
from ..engine.ranges import BIG, INTENSITY, Numbers, Range, RangeLike, count, number, numbers
from ..engine.transform import Context, IntensityTransform, PointwiseTransform, RandomIntensityTransform
from ..errors import ParameterError

#: Polynomial coefficients of ``P`` in ``exp(P)``: |P| stays below ~ 10 x the number of terms.
COEFFICIENT = Range("symmetric", bounds=(-10.0, 10.0))
ORDER = (0, 8)
SIGMA = Range("exact", bounds=(0.0, 1e4), low_open=True, unit="mm")
Mode = Literal["multiplicative", "additive"]

__all__ = ["BiasField", "RandomBiasField", "GaussianField", "RandomGaussianField", "polynomial_terms"]


def polynomial_terms(order: int, ndim: int) -> list[tuple[int, ...]]:
    """Exponents (z, y, x) of every monomial of total degree <= ``order``."""
    return [e for e in product(range(order + 1), repeat=ndim) if sum(e) <= order]


def _coords(n: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)


@functools.lru_cache(maxsize=4)  # a 3D grid's planes are a few MB
def _monomials(order: int, n: int, shape3: tuple[int, int, int]) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """The separable factors of every monomial on a grid of ``shape3`` (z, y, x), cached per shape (read-only).

    Returns ``fx`` (order + 1, x): the powers of x; for each term of :func:`polynomial_terms`, its (z, y) plane
    ``z**ez y**ey`` and its power of x.
    """
    z, y, x = (_coords(s) for s in shape3)
    fx = np.stack([x**i for i in range(order + 1)])
    planes, ex = [], []
    for e in polynomial_terms(order, n):
        ez, ey, exx = (0, *e) if n == 2 else e
        plane = np.outer(z**ez, y**ey)
        plane.setflags(write=False)
        planes.append(plane)
        ex.append(exx)
    fx.setflags(write=False)
    return fx, planes, ex


@dataclass
class BiasField(PointwiseTransform):
    """Multiply by ``exp(P)``, ``P`` a polynomial in coordinates normalised to [-1, 1] per array axis.

    Parameters
    ----------
    order : int
        Polynomial degree.
    coefficients : list of float
        One per monomial, in the order of :func:`polynomial_terms` (exponents (z, y, x)).
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    order: int = 3
    coefficients: list[float] | tuple[float, ...] = ()
    mask: str | None = None

    def __post_init__(self) -> None:
        self.order = count(self.order, "order", ORDER)
        self.coefficients = numbers(self.coefficients, "coefficients", COEFFICIENT.bounds, sizes=range(0, 200))

    def _factors(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        n = grid.ndim
        shape3 = grid.shape if n == 3 else (1, *grid.shape)
        fx, planes, ex = _monomials(int(self.order), n, tuple(int(s) for s in shape3))
        coef = np.asarray(self.coefficients, float)
        if coef.size != len(planes):  # one plane per term of polynomial_terms
            raise ParameterError(f"BiasField of order {self.order} in {n}D needs {len(planes)} coefficients, got {coef.size}")
        fq = np.zeros((fx.shape[0], shape3[0], shape3[1]))
        for plane, e, c in zip(planes, ex, coef):
            fq[e] += c * plane
        return fx.copy(), fq

    def point_ops(self, grid: Grid) -> FusedOps:
        ops = FusedOps()
        ops.add_field(*self._factors(grid))
        return ops

    def short(self) -> str:
        return f"bias o{self.order}"


@dataclass
class RandomBiasField(RandomIntensityTransform):
    """Random polynomial bias field; each coefficient uniform in ``coefficients`` (``c`` means (-c, c)).

    Parameters
    ----------
    order : int
        Polynomial degree (3 is typical for MRI).
    coefficients : float or [min, max]
        Range of every coefficient of ``P`` in ``exp(P)``.
    mask : str, optional
    p : float
    """

    order: int = 3
    coefficients: RangeLike = 0.5
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self.order = count(self.order, "order", ORDER)
        self._range = COEFFICIENT.parse(self.coefficients, "coefficients")

    def sample(self, rng: np.random.Generator, ctx: Context) -> BiasField:
        terms = polynomial_terms(self.order, ctx.ndim)
        coef = rng.uniform(*self._range, size=len(terms))
        coef[0] = 0.0  # the constant term would only rescale the image
        return BiasField(order=self.order, coefficients=coef.tolist(), mask=self.mask)


@dataclass
class GaussianField(IntensityTransform):
    """Add or multiply a Gaussian blob centred anywhere: ``v * (1 + a g)`` or ``v + a g``.

    Parameters
    ----------
    center : list of float, optional
        Physical centre in mm (x, y, z); the grid centre if omitted.
    sigma : float
        Width in mm.
    amplitude : float
        Peak change: relative when multiplicative, image units when additive.
    mode : {"multiplicative", "additive"}
        ``v * (1 + a g)`` or ``v + a g``.
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    center: Numbers | None = None
    sigma: float = 20.0
    amplitude: float = 0.1
    mode: Mode = "multiplicative"
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("multiplicative", "additive"):
            raise ParameterError(f"GaussianField 'mode' must be multiplicative or additive, got {self.mode!r}")
        if self.center is not None:
            numbers(self.center, "center", (-BIG, BIG), sizes=(2, 3), unit="mm")
        self.sigma = number(self.sigma, "sigma", SIGMA.bounds, low_open=True, unit="mm")
        self.amplitude = number(self.amplitude, "amplitude", INTENSITY)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        n = grid.ndim
        axes = [torch.arange(s, dtype=torch.float64, device=data.device) for s in grid.shape]
        mesh = torch.meshgrid(*axes, indexing="ij")
        idx = torch.stack([m.reshape(-1) for m in reversed(mesh)], 1)  # ITK order x, y, z
        m = torch.as_tensor(grid.index_to_physical_matrix(), device=data.device)
        phys = idx @ m[:n, :n].T + m[:n, n]
        center = grid.center() if self.center is None else np.asarray(self.center, float)
        if center.shape != (n,):
            raise ParameterError(f"GaussianField 'center' needs {n} coordinates for a {n}D image, got {self.center}")
        c = torch.as_tensor(center, device=data.device)
        g = torch.exp(-((phys - c) ** 2).sum(1) / (2 * self.sigma**2)).reshape(data.shape)
        out = data * (1 + self.amplitude * g) if self.mode == "multiplicative" else data + self.amplitude * g
        return out.to(torch.float32)


@dataclass
class RandomGaussianField(RandomIntensityTransform):
    """A Gaussian bias blob at a random position inside the field of view.

    Parameters
    ----------
    sigma : float or [min, max]
        Width in mm.
    amplitude : float or [min, max]
        ``a`` means (-a, a).
    mode : {"multiplicative", "additive"}
    p : float
    """

    sigma: RangeLike = (20.0, 60.0)
    amplitude: RangeLike = 0.2
    mode: Mode = "multiplicative"
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._sigma = SIGMA.parse(self.sigma, "sigma")
        self._amp = Range("symmetric", bounds=(-BIG, BIG)).parse(self.amplitude, "amplitude")
        GaussianField(mode=self.mode)

    def sample(self, rng: np.random.Generator, ctx: Context) -> GaussianField:
        idx = rng.uniform(0, 1, ctx.ndim) * (np.asarray(ctx.grid.size_xyz) - 1)
        center = ctx.grid.index_to_physical(idx[None])[0]
        return GaussianField(
            center=center.tolist(),
            sigma=float(rng.uniform(*self._sigma)),
            amplitude=float(rng.uniform(*self._amp)),
            mode=self.mode,
            mask=self.mask,
        )
