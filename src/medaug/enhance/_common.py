"""What every enhancement shares: the report, the timing, and the output dtype."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.image import Image
from ..errors import ParameterError

__all__ = ["EnhanceReport", "finish", "as_float", "check_image"]


@dataclass
class EnhanceReport:
    """What an enhancement did.

    Attributes
    ----------
    method : str
        ``clahe``, ``n4``, ``denoise`` or ``unsharp``.
    parameters : dict
        Every parameter used, defaults and estimated values included.
    seconds : float
        Run time.
    shape : tuple of int
        Array shape (unchanged: enhancements never change geometry).
    dtype : str
        Output dtype.
    input_range, output_range : (float, float)
        Min and max before and after.
    details : dict
        Method-specific results (e.g. N4's bias-field range).
    """

    method: str
    parameters: dict[str, Any]
    seconds: float
    shape: tuple[int, ...]
    dtype: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..engine.transform import to_jsonable

        return to_jsonable(
            {
                "method": self.method,
                "parameters": self.parameters,
                "seconds": round(self.seconds, 4),
                "shape": list(self.shape),
                "dtype": self.dtype,
                "input_range": list(self.input_range),
                "output_range": list(self.output_range),
                "details": self.details,
            }
        )

    def one_line(self) -> str:
        """E.g. ``clahe clip_limit=0.01 tiles=8 | 128x128 int16 | range [-1024, 1350] -> [-1024, 1350] | 0.03 s``."""
        params = " ".join(f"{k}={_fmt(v)}" for k, v in self.parameters.items())
        extra = " ".join(f"{k}={_fmt(v)}" for k, v in self.details.items())
        shape = "x".join(str(s) for s in self.shape)
        lo, hi = self.input_range
        a, b = self.output_range
        parts = [
            f"{self.method} {params}".strip(),
            f"{shape} {self.dtype}",
            f"range [{lo:.4g}, {hi:.4g}] -> [{a:.4g}, {b:.4g}]",
        ]
        if extra:
            parts.append(extra)
        parts.append(f"{self.seconds:.2f} s")
        return " | ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v)
    return str(v)


def check_image(image: Any, method: str) -> Image:
    if not isinstance(image, Image):
        raise ParameterError(f"{method} needs a medaug Image, got {type(image).__name__}")
    if image.is_label:
        raise ParameterError(f"{method} works on intensity images; this is a label map")
    return image


def as_float(image: Image) -> np.ndarray:
    """The image's values as a float32 array."""
    return np.asarray(image.array, dtype=np.float32)


def finish(
    image: Image,
    result: np.ndarray,
    method: str,
    parameters: dict[str, Any],
    started: float,
    *,
    keep_dtype: bool = True,
    details: dict[str, Any] | None = None,
) -> tuple[Image, EnhanceReport]:
    """Wrap ``result`` on the input's grid (integer inputs rounded back to their dtype when ``keep_dtype``)."""
    src = image.array
    out = np.asarray(result)
    if out.shape != src.shape:  # pragma: no cover - programming error
        raise RuntimeError(f"{method} changed the shape {src.shape} -> {out.shape}")
    if keep_dtype and src.dtype.kind in "iu":
        info = np.iinfo(src.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(src.dtype)
    elif keep_dtype and src.dtype.kind == "f" and src.dtype.itemsize >= 4:
        out = out.astype(src.dtype, copy=False)
    else:
        out = out.astype(np.float32, copy=False)
    new = Image(out, grid=image.grid, path=image.path)
    report = EnhanceReport(
        method=method,
        parameters=parameters,
        seconds=time.perf_counter() - started,
        shape=tuple(out.shape),
        dtype=str(out.dtype),
        input_range=(float(src.min()), float(src.max())),
        output_range=(float(out.min()), float(out.max())),
        details=details or {},
    )
    return new, report


def timed() -> float:
    return time.perf_counter()


Runner = Callable[..., tuple[Image, EnhanceReport]]
