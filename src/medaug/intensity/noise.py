"""Noise: Gaussian, Rician, Poisson (shot), salt-and-pepper and speckle.

Random values come from a counter-based generator keyed by the recorded
``seed``: the same seed gives the same noise on CPU or GPU, whole or in slabs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..engine.pointwise import NOISE, FusedOps, apply_ops_torch, hash_gauss_torch, noise_key
from ..engine.ranges import BIG, INTENSITY, Range, RangeLike, count, flag, number
from ..engine.transform import Context, IntensityTransform, RandomIntensityTransform
from ..errors import ParameterError
from ._base import intensity_range

__all__ = ["Noise", "RandomNoise"]

Kind = Literal["gaussian", "rician", "poisson", "salt_pepper", "speckle"]
_KINDS = ("gaussian", "rician", "poisson", "salt_pepper", "speckle")
#: Poisson counts per intensity unit.
RATE = (0.0, BIG)


def _uniform(shape: tuple[int, ...], key: int, device: torch.device) -> torch.Tensor:
    idx = torch.arange(int(np.prod(shape)), device=device, dtype=torch.int64)
    g = hash_gauss_torch(idx, key)
    # the normal CDF turns the hash normals into uniforms on (0, 1)
    return (0.5 * (1.0 + torch.erf(g / np.sqrt(2.0)))).reshape(shape)


@dataclass
class Noise(IntensityTransform):
    """Add noise of one kind.

    Parameters
    ----------
    kind : {"gaussian", "rician", "poisson", "salt_pepper", "speckle"}
        ``gaussian``: ``v + std * n`` (std in image units, e.g. HU).
        ``rician``: ``sqrt((v + std n1)² + (std n2)²)``, magnitude MRI; never negative.
        ``poisson``: shot noise, ``lo + Poisson((v - lo) * rate) / rate``; variance tracks the signal.
        ``salt_pepper``: a fraction ``amount`` of voxels set to ``lo`` or ``hi``.
        ``speckle``: multiplicative ``v * (1 + std * n)``, ultrasound.
    std : float
        Standard deviation (gaussian, rician: image units; speckle: relative).
    rate : float
        Poisson: counts per intensity unit (higher means less noise).
    amount : float
        Salt-and-pepper: fraction of voxels changed.
    lo, hi : float
        Poisson floor; salt-and-pepper values.
    seed : int
        Seed of the noise.
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    kind: Kind = "gaussian"
    std: float = 0.0
    rate: float = 1.0
    amount: float = 0.0
    lo: float = 0.0
    hi: float = 1.0
    seed: int = 0
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ParameterError(f"Noise 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        self.std = number(self.std, "std", (0.0, INTENSITY[1]))
        self.rate = number(self.rate, "rate", RATE, low_open=True)
        self.amount = number(self.amount, "amount", (0.0, 1.0))
        self.lo = number(self.lo, "lo", INTENSITY)
        self.hi = number(self.hi, "hi", INTENSITY)
        self.seed = count(self.seed, "seed", (0, 2**63 - 1))

    def fused_ops(self, grid: Grid) -> FusedOps | None:
        if self.kind != "gaussian" or self.mask is not None:
            return None
        ops = FusedOps()
        ops.add(NOISE, self.std, self.seed)
        return ops

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        dev = data.device
        shape = tuple(data.shape)
        key = noise_key(self.seed, channel)
        if self.kind == "gaussian":
            ops = FusedOps()
            ops.add(NOISE, self.std, self.seed)
            return apply_ops_torch(data, ops, channel=channel)
        idx = torch.arange(data.numel(), device=dev, dtype=torch.int64)
        if self.kind == "rician":
            n1 = hash_gauss_torch(idx, key).reshape(shape)
            n2 = hash_gauss_torch(idx, noise_key(self.seed + 1, channel)).reshape(shape)
            return torch.sqrt((data + self.std * n1) ** 2 + (self.std * n2) ** 2).to(torch.float32)
        if self.kind == "speckle":
            return (data * (1.0 + self.std * hash_gauss_torch(idx, key).reshape(shape))).to(torch.float32)
        if self.kind == "poisson":
            lam = torch.clamp(data - self.lo, min=0).to(torch.float64) * self.rate
            gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
            counts = torch.poisson(lam.cpu(), generator=gen).to(dev)
            return (self.lo + counts / self.rate).to(torch.float32)
        u = _uniform(shape, key, dev)
        out = data.clone()
        out[u < self.amount / 2] = self.lo
        out[(u >= self.amount / 2) & (u < self.amount)] = self.hi
        return out

    def short(self) -> str:
        return f"{self.kind} σ{self.std:.3g}" if self.kind != "salt_pepper" else f"s&p {self.amount:.3f}"


@dataclass
class RandomNoise(RandomIntensityTransform):
    """Random noise; ``std`` drawn uniformly from a range in image units.

    Parameters
    ----------
    std : float or [min, max]
        A single number s means [0, s].  For ``speckle`` it is relative.
    kind : {"gaussian", "rician", "poisson", "salt_pepper", "speckle"}
    rate : float or [min, max]
        Poisson counts per intensity unit.
    amount : float or [min, max]
        Salt-and-pepper fraction (a single number a means [0, a]).
    relative : bool
        Read ``std`` as a fraction of the image's intensity range (max - min),
        for modalities without absolute units (MRI, X-ray).
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    p : float
        Probability of applying.
    """

    std: RangeLike = 0.05
    kind: Kind = "gaussian"
    rate: RangeLike = 1.0
    amount: RangeLike = 0.01
    relative: bool = False
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        if self.kind not in _KINDS:
            raise ParameterError(f"RandomNoise 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        self.relative = flag(self.relative, "relative")
        self._std = Range("from", bounds=(0.0, 10.0 if self.relative else BIG)).parse(self.std, "std")
        self._amount = Range("from", bounds=(0.0, 1.0)).parse(self.amount, "amount")
        self._rate = Range("exact", bounds=RATE, low_open=True).parse(self.rate, "rate")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Noise:
        lo, hi = intensity_range(ctx)
        unit = (hi - lo) if self.relative and self.kind != "speckle" else 1.0
        return Noise(
            kind=self.kind,
            std=float(rng.uniform(*self._std)) * unit,
            rate=float(rng.uniform(*self._rate)),
            amount=float(rng.uniform(*self._amount)),
            lo=lo,
            hi=hi,
            seed=int(rng.integers(0, 2**31 - 1)),
            mask=self.mask,
        )
