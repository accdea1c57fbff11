"""An image: a scalar array plus its physical geometry and its role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from ..errors import InvalidImageError
from .grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Image"]


class Image:
    """A 2D or 3D scalar image in physical space.

    Parameters
    ----------
    data : ndarray or torch.Tensor
        Voxel values in array order (z, y, x), or (y, x) in 2D, as SimpleITK's
        ``GetArrayFromImage``.  A tensor may live on a CUDA device.
    spacing, origin : sequence of float, optional
        Voxel size and first-voxel position in mm, (x, y, z) order.
    direction : array_like, optional
        ``ndim x ndim`` direction cosines, row-major as ITK.  Identity if omitted.
    is_label : bool
        True for a label map: resampled nearest-neighbour, never intensity-augmented.
    path : str, optional
        Where the image came from, for error messages and manifests.

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.zeros((4, 5, 6), np.float32), spacing=(1.0, 1.0, 2.5))
    >>> img.shape, img.spacing
    ((4, 5, 6), (1.0, 1.0, 2.5))
    """

    __slots__ = ("_data", "grid", "is_label", "path")

    def __init__(
        self,
        data: np.ndarray | torch.Tensor,
        spacing: Sequence[float] | None = None,
        origin: Sequence[float] | None = None,
        direction: Sequence[float] | np.ndarray | None = None,
        *,
        is_label: bool = False,
        path: str | None = None,
        grid: Grid | None = None,
    ) -> None:
        if not _is_tensor(data):
            data = np.asarray(data)
        shape = tuple(data.shape)
        where = f"{path}: " if path else ""
        if len(shape) not in (2, 3):
            raise InvalidImageError(f"{where}expected a 2D or 3D scalar image, got an array of shape {shape}")
        if any(s == 0 for s in shape):
            raise InvalidImageError(f"{where}the image is empty (shape {shape})")
        if grid is None:
            grid = Grid(shape, spacing, origin, direction)
        elif grid.shape != shape:
            raise InvalidImageError(f"{where}grid shape {grid.shape} does not match data shape {shape}")
        self._data = data
        self.grid = grid
        self.is_label = bool(is_label)
        self.path = path

    # ----------------------------------------------------------- properties
    @property
    def data(self) -> np.ndarray | torch.Tensor:
        """The stored voxel values (ndarray or tensor, as given)."""
        return self._data

    @property
    def array(self) -> np.ndarray:
        """Voxel values as a NumPy array in (z, y, x) order."""
        d = self._data
        if _is_tensor(d):
            return d.detach().cpu().numpy()
        return np.asarray(d)

    @property
    def tensor(self) -> torch.Tensor:
        """Voxel values as a torch tensor (shares memory with a NumPy array when possible)."""
        import torch

        d = self._data
        return d if isinstance(d, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(d))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def dtype(self) -> Any:
        return self._data.dtype

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.grid.spacing

    @property
    def origin(self) -> tuple[float, ...]:
        return self.grid.origin

    @property
    def direction(self) -> np.ndarray:
        return self.grid.direction

    # --------------------------------------------------------------- helpers
    def with_data(self, data: np.ndarray | torch.Tensor, grid: Grid | None = None) -> Image:
        """A new image with other voxel values, on this grid or on ``grid``."""
        return Image(data, grid=grid if grid is not None else self.grid, is_label=self.is_label, path=self.path)

    def copy(self) -> Image:
        d = self._data
        return self.with_data(d.clone() if _is_tensor(d) else np.array(d, copy=True))

    def check_finite(self) -> Image:
        """Raise :class:`InvalidImageError` when any voxel is NaN or infinite."""
        arr = self.array
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            bad = int(np.size(arr) - np.isfinite(arr).sum())
            where = f"{self.path}: " if self.path else ""
            raise InvalidImageError(f"{where}{bad} voxel(s) are NaN or infinite; clean the image before augmenting")
        return self

    def label_values(self) -> np.ndarray:
        """The sorted distinct values of a label map."""
        return np.unique(self.array)

    def __repr__(self) -> str:
        kind = "label" if self.is_label else "intensity"
        dev = f", device={self._data.device}" if _is_tensor(self._data) else ""
        return f"Image({kind}, shape={self.shape}, dtype={self.dtype}{dev}, {self.grid!r})"


def _is_tensor(x: object) -> TypeGuard[torch.Tensor]:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")
