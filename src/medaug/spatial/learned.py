"""Deformations from registration: apply a known field, or draw learned ones at random.

:class:`Deformation` applies ``x_in = A(x + s * u(x))`` — the result of
:func:`medaug.registration.register` — optionally onto the fixed image's grid:
carry a label map or an atlas onto a new case.  :class:`RandomLearnedDeformation`
picks one of the fields stored by ``medaug learn-deformations`` (shape
differences between real patients), scales it by a random factor and applies
it to the sample in hand; the engine fuses it with the other spatial transforms
into the one resampling, labels nearest-neighbour.

A field learned on another patient is carried to the sample "through the
reference space": with ``alignment="center"`` the centre of the sample's grid
is placed on the centre of the field's grid (both in physical mm, so the
direction cosines of either do not matter); with ``"physical"`` the sample is
assumed to be in the field's physical space already (e.g. both registered to
one atlas).
"""

from __future__ import annotations

import csv
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data.field import DisplacementField, det_identity_plus, load_field
from ..data.grid import Grid
from ..engine.ranges import Range, RangeLike, flag, number
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp, ChainWarp, FieldWarp, Warp
from ..errors import InvalidImageError, ParameterError
from .affine import _checked_matrix

__all__ = ["Deformation", "LearnedDeformation", "RandomLearnedDeformation"]

_ALIGNMENTS = ("center", "physical")
#: Factors applied to a field.
FIELD_SCALE = (-10.0, 10.0)


def _reference(d: dict[str, Any] | Grid | None) -> dict[str, Any] | None:
    """A reference grid as its dict (checked), or None."""
    if d is None:
        return None
    if isinstance(d, Grid):
        return d.to_dict()
    if not isinstance(d, dict):
        raise ParameterError(f"'reference' must be a grid dict (size, spacing, origin, direction), got {d!r}")
    try:
        return Grid.from_dict(d).to_dict()
    except InvalidImageError as exc:
        raise ParameterError(f"'reference': {exc}") from None


# ---------------------------------------------------------------- a cache of loaded fields (per process)
_CACHE: OrderedDict[tuple[str, float], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def _field(ref: Any) -> Any:
    """A DisplacementField from a path (cached by path and modification time) or the field itself."""
    if isinstance(ref, DisplacementField):
        return ref
    p = Path(str(ref))
    try:
        key = (str(p.resolve()), p.stat().st_mtime)
    except OSError:
        return load_field(p)  # raises the clear "not found" error
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    f = load_field(p)
    with _CACHE_LOCK:
        _CACHE[key] = f
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return f


def _field_name(ref: Any) -> Any:

    if isinstance(ref, DisplacementField):
        return ref.source or "<in-memory field>"
    return str(ref)


# ---------------------------------------------------------------- deterministic
@dataclass
class Deformation(SpatialTransform):
    """Apply a known deformation ``x_in = A(x + scale * u(x))`` (pull-back, physical mm).

    Parameters
    ----------
    field : str or DisplacementField
        The displacement ``u`` (a file written by :func:`medaug.registration.save_field`,
        ``medaug register`` or an ITK/ANTs tool), defined on the output space.
    affine : list of lists, optional
        Homogeneous matrix ``A`` applied after the field (registration's affine part).
    scale : float
        Multiplies ``u`` (0: only ``A``; with no ``A`` the identity).
    reference : dict or Grid, optional
        Output grid (e.g. the fixed image's, from ``registration.json``); by
        default the sample stays on its own grid.
    """

    field: str | DisplacementField
    affine: list[list[float]] | None = None
    scale: float = 1.0
    reference: dict[str, Any] | None = None

    fold_hint = "use a smaller scale"

    def __post_init__(self) -> None:
        if self.affine is not None:
            self.affine = _checked_matrix(self.affine).tolist()
        self.scale = number(self.scale, "scale", FIELD_SCALE)
        self.reference = _reference(self.reference)

    def output_grid(self, grid: Grid) -> Grid:
        return grid if self.reference is None else Grid.from_dict(self.reference)

    def warp(self, grid_in: Grid, grid_out: Grid) -> Warp:
        u = _field(self.field)
        if u.ndim != grid_out.ndim:
            raise ParameterError(f"a {u.ndim}D field cannot deform a {grid_out.ndim}D image ({_field_name(self.field)})")
        warps: list[Warp] = []
        if self.affine is not None:
            warps.append(AffineWarp(np.asarray(self.affine, float)))
        s = float(self.scale)
        if s != 0.0:
            warps.append(FieldWarp(lambda p: s * u.evaluate(p), u.ndim, float(u.feature_mm), abs(s) * u.max_norm_mm))
        if not warps:
            return AffineWarp.identity(grid_out.ndim)
        return warps[0] if len(warps) == 1 else ChainWarp(tuple(warps))

    def config_params(self) -> dict[str, Any]:
        return {"field": _field_name(self.field), "affine": self.affine, "scale": float(self.scale), "reference": self.reference}

    def short(self) -> str:
        return f"deform ×{self.scale:.2f}"


@dataclass
class LearnedDeformation(SpatialTransform):
    """A stored (learned) field applied to a sample on its own grid: ``x_in = x + s·u(a(x))``.

    ``u = weight * u_field + (1 - weight) * u_mix_with`` when ``mix_with`` is given
    (both fields on the same grid); ``a`` aligns the sample with the field's space.

    Parameters
    ----------
    field : str
        Path of the displacement field.
    scale : float
        Multiplies the field (0 is the identity).
    mix_with : str, optional
        A second field on the same grid, blended in.
    weight : float
        Weight of ``field`` in the blend, in [0, 1].
    alignment : {"center", "physical"}
        How sample points map into the field's space (see the module docstring).
    """

    field: str | DisplacementField
    scale: float = 1.0
    mix_with: str | DisplacementField | None = None
    weight: float = 1.0
    alignment: Literal["center", "physical"] = "center"

    fold_hint = "use a smaller scale"

    def __post_init__(self) -> None:
        if self.alignment not in _ALIGNMENTS:
            raise ParameterError(f"alignment must be one of {_ALIGNMENTS}, got {self.alignment!r}")
        self.weight = number(self.weight, "weight", (0.0, 1.0))
        self.scale = number(self.scale, "scale", FIELD_SCALE)

    def warp(self, grid_in: Grid, grid_out: Grid) -> Warp:
        s = float(self.scale)
        if s == 0.0:
            return AffineWarp.identity(grid_out.ndim)
        u1 = _field(self.field)
        u2 = _field(self.mix_with) if self.mix_with is not None else None
        if u1.ndim != grid_out.ndim:
            raise ParameterError(f"a {u1.ndim}D field cannot deform a {grid_out.ndim}D image ({_field_name(self.field)})")
        w = float(self.weight) if u2 is not None else 1.0
        shift = (u1.grid.center() - grid_in.center()) if self.alignment == "center" else np.zeros(grid_out.ndim)

        def displacement(points: np.ndarray) -> np.ndarray:
            q = points + shift
            d = w * u1.evaluate(q)
            if u2 is not None:
                d = d + (1.0 - w) * u2.evaluate(q)
            return s * d

        feature = min(float(u1.feature_mm), float(u2.feature_mm) if u2 is not None else np.inf)
        bound = abs(s) * (w * u1.max_norm_mm + ((1 - w) * u2.max_norm_mm if u2 is not None else 0.0))
        return FieldWarp(displacement, grid_out.ndim, feature, bound)

    def config_params(self) -> dict[str, Any]:
        return {
            "field": _field_name(self.field),
            "scale": float(self.scale),
            "mix_with": None if self.mix_with is None else _field_name(self.mix_with),
            "weight": float(self.weight),
            "alignment": self.alignment,
        }

    def short(self) -> str:
        return f"learned ×{self.scale:.2f}"


# ---------------------------------------------------------------- random
@dataclass
class RandomLearnedDeformation(RandomTransform):
    """Apply one of the deformations learned between real patients, randomly scaled.

    Parameters
    ----------
    fields : str or list of str
        The output folder of ``medaug learn-deformations`` (its ``manifest.csv``
        lists the fields; those flagged unusable — folded — are never used), or
        a list of field files.
    scale : float or [min, max]
        Fraction of the learned field applied; a number d means [0, d].
        Values above 1 exaggerate the anatomy and are refused above 1.5.
    mix : bool
        Blend two fields with a random weight (only fields on the same grid,
        i.e. learned against one reference).
    alignment : {"center", "physical"}
        How the sample is placed in the field's space.
    min_jacobian : float
        Smallest Jacobian determinant allowed for the applied (scaled, mixed)
        field; when the draw goes below it the scale is halved until it does
        not (the recorded scale is the one applied).  Must be > 0: a learned
        deformation never folds.
    p : float
        Probability of applying.

    Examples
    --------
    >>> RandomLearnedDeformation(fields=[], scale=[0.3, 1.0])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ParameterError: RandomLearnedDeformation: no fields given
    """

    fields: str | list[str] | None = None
    scale: RangeLike = (0.3, 1.0)
    mix: bool = False
    alignment: Literal["center", "physical"] = "center"
    min_jacobian: float = 0.2
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._scale = Range("from", bounds=(0.0, 1.5)).parse(self.scale, "scale")
        if self.alignment not in _ALIGNMENTS:
            raise ParameterError(f"alignment must be one of {_ALIGNMENTS}, got {self.alignment!r}")
        self.min_jacobian = number(self.min_jacobian, "min_jacobian", (0.0, 0.999), low_open=True)
        self.mix = flag(self.mix, "mix")
        self._paths = _field_paths(self.fields)

    def sample(self, rng: np.random.Generator, ctx: Context) -> LearnedDeformation:
        i = int(rng.integers(len(self._paths)))
        s = float(rng.uniform(*self._scale))
        other, w = None, 1.0
        u1 = _field(self._paths[i])
        if u1.ndim != ctx.ndim:
            raise ParameterError(f"RandomLearnedDeformation: {self._paths[i]} is {u1.ndim}D, the sample is {ctx.ndim}D")
        grad = u1.gradient
        if self.mix and len(self._paths) > 1:
            j = int(rng.integers(len(self._paths) - 1))
            j = j + 1 if j >= i else j
            u2 = _field(self._paths[j])
            if not u2.grid.same_as(u1.grid):
                raise ParameterError(
                    "RandomLearnedDeformation(mix=True) needs fields on one grid (learned against one --reference); "
                    f"{self._paths[i]} and {self._paths[j]} differ"
                )
            w = float(rng.uniform(0.0, 1.0))
            other = self._paths[j]
            grad = w * grad + (1.0 - w) * u2.gradient

        for _ in range(20):  # halve the scale until the field keeps every Jacobian above the bound
            if s == 0.0 or float(det_identity_plus(s * grad).min()) >= self.min_jacobian:
                break
            s *= 0.5
        else:  # pragma: no cover - 2**-20 of any finite field is the identity to machine precision
            s = 0.0
        return LearnedDeformation(field=self._paths[i], scale=s, mix_with=other, weight=w, alignment=self.alignment)


def _field_paths(fields: Any) -> list[str]:
    if fields is None or (isinstance(fields, (list, tuple)) and not fields):
        raise ParameterError("RandomLearnedDeformation: no fields given")
    if isinstance(fields, (list, tuple)):
        paths = [str(Path(f)) for f in fields]
        for p in paths:
            if not Path(p).is_file():
                raise ParameterError(f"RandomLearnedDeformation: field file not found: {p}")
        return paths
    root = Path(str(fields))
    manifest = root / "manifest.csv" if root.is_dir() else root
    if not manifest.is_file():
        raise ParameterError(
            f"RandomLearnedDeformation: {root} is neither a field file list nor a 'medaug learn-deformations' "
            "output folder (no manifest.csv)"
        )
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    paths = [str((manifest.parent / r["field"]).resolve()) for r in rows if r.get("usable") == "True" and r.get("field")]
    if not paths:
        raise ParameterError(f"RandomLearnedDeformation: {manifest} lists no usable (fold-free) field")
    return sorted(paths)
