"""An image: an array of voxel values (one or several channels) plus its physical geometry and its role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from ..errors import InvalidImageError
from .grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Image"]


class Image:
    """A 2D or 3D image in physical space, with one channel or several.

    Parameters
    ----------
    data : ndarray or torch.Tensor
        Voxel values in array order (z, y, x), or (y, x) in 2D, as SimpleITK's
        ``GetArrayFromImage``; with ``channel_axis=True`` a leading channel
        axis comes first: (C, z, y, x) or (C, y, x).  A tensor may live on a
        CUDA device.
    spacing, origin : sequence of float, optional
        Voxel size and first-voxel position in mm, (x, y, z) order.
    direction : array_like, optional
        ``ndim x ndim`` direction cosines, row-major as ITK.  Identity if omitted.
    is_label : bool
        True for a label map: resampled nearest-neighbour, never intensity-augmented.
        A label map has one channel.
    path : str, optional
        Where the image came from, for error messages and manifests.
    grid : Grid, optional
        The geometry (instead of spacing, origin, direction); its shape is the
        spatial shape of ``data``.
    channel_axis : bool
        The first axis of ``data`` holds channels (MRI sequences, CT phases,
        RGB colours, vector components).  Every channel shares the grid: a
        spatial transform moves them together.
    channel_names : sequence of str, optional
        A name per channel (e.g. ``("FLAIR", "T1w", "T1gd", "T2w")``); implies
        ``channel_axis``.
    metadata : mapping, optional
        What the file held beyond the voxels and the grid, kept so that
        :func:`~medaug.save` writes it back: for a 4D NIfTI read as channels,
        ``time_step`` (``pixdim[4]``), ``time_units`` (the time part of
        ``xyzt_units``: ``"sec"``, ``"msec"``, ``"usec"``, ``"hz"``, ``"ppm"``,
        ``"rads"`` or ``"unknown"``) and ``time_offset`` (``toffset``).  Kept by
        :meth:`with_data` while the channels stay the same (as the names).

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.zeros((4, 5, 6), np.float32), spacing=(1.0, 1.0, 2.5))
    >>> img.shape, img.spacing, img.channels
    ((4, 5, 6), (1.0, 1.0, 2.5), 1)
    >>> mr = Image(np.zeros((2, 4, 5, 6), np.float32), channel_names=("T1w", "FLAIR"))
    >>> mr.shape, mr.channels, mr.array.shape
    ((4, 5, 6), 2, (2, 4, 5, 6))
    """

    __slots__ = ("_data", "grid", "is_label", "path", "channel_axis", "channel_names", "metadata")

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
        channel_axis: bool = False,
        channel_names: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not _is_tensor(data):
            data = np.asarray(data)
        full = tuple(data.shape)
        where = f"{path}: " if path else ""
        channel_axis = bool(channel_axis or channel_names is not None)
        shape = full[1:] if channel_axis else full
        if len(shape) not in (2, 3):
            kind = "a channel axis followed by 2 or 3 spatial axes" if channel_axis else "a 2D or 3D scalar image"
            raise InvalidImageError(f"{where}expected {kind}, got an array of shape {full}")
        if any(s == 0 for s in full):
            raise InvalidImageError(f"{where}the image is empty (shape {full})")
        if channel_axis and is_label:
            raise InvalidImageError(f"{where}a label map has one channel; got {full[0]} channels")
        names = None
        if channel_names is not None:
            names = tuple(str(n) for n in channel_names)
            if len(names) != full[0]:
                raise InvalidImageError(f"{where}{len(names)} channel names for {full[0]} channels: {names}")
        if grid is None:
            grid = Grid(shape, spacing, origin, direction)
        elif grid.shape != shape:
            raise InvalidImageError(f"{where}grid shape {grid.shape} does not match data shape {shape}")
        self._data = data
        self.grid = grid
        self.is_label = bool(is_label)
        self.path = path
        self.channel_axis = channel_axis
        self.channel_names = names
        #: What the file held beyond voxels and grid, written back by save() (see the class notes).
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ----------------------------------------------------------- properties
    @property
    def data(self) -> np.ndarray | torch.Tensor:
        """The stored voxel values (ndarray or tensor, as given)."""
        return self._data

    @property
    def array(self) -> np.ndarray:
        """Voxel values as a NumPy array: (z, y, x), or (C, z, y, x) with a channel axis."""
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
        """The spatial shape, (z, y, x) or (y, x): without the channel axis."""
        return self.grid.shape

    @property
    def channels(self) -> int:
        """Number of channels: 1 for a scalar image."""
        return int(self._data.shape[0]) if self.channel_axis else 1

    @property
    def ndim(self) -> int:
        """Spatial dimensions, 2 or 3 (the channel axis is not counted)."""
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
        """A new image with other voxel values (same channel layout), on this grid or on ``grid``."""
        same = not self.channel_axis or data.shape[0] == self.channels
        names = self.channel_names if self.channel_axis and same else None
        return Image(data, grid=grid if grid is not None else self.grid, is_label=self.is_label, path=self.path,
                     channel_axis=self.channel_axis, channel_names=names, metadata=self.metadata if same else None)

    def channel(self, k: int) -> Image:
        """Channel ``k`` as a scalar image (a view of the data where possible)."""
        if not 0 <= k < self.channels:
            raise IndexError(f"channel {k} of an image with {self.channels} channel(s)")
        data = self._data[k] if self.channel_axis else self._data
        return Image(data, grid=self.grid, is_label=self.is_label, path=self.path)

    @staticmethod
    def stack(images: Sequence[Image], names: Sequence[str] | None = None) -> Image:
        """Scalar images on one grid as the channels of one image (copies the data).

        Raises
        ------
        GeometryError
            When the images are not on one grid.
        """
        from ..errors import GeometryError

        if not images:
            raise InvalidImageError("stack() needs at least one image")
        ref = images[0]
        for i, img in enumerate(images[1:], start=1):
            problem = ref.grid.mismatch(img.grid)
            if problem or img.channel_axis:
                raise GeometryError(f"channel {i} ({img.path or 'in memory'}) cannot join channel 0 "
                                    f"({ref.path or 'in memory'}): {problem or 'it has channels itself'}", path=img.path)
        if _is_tensor(ref.data):
            import torch

            data: Any = torch.stack([img.tensor for img in images])
        else:
            data = np.stack([np.asarray(img.array) for img in images])
        return Image(data, grid=ref.grid, path=ref.path, channel_names=names, channel_axis=True)

    def copy(self) -> Image:
        d = self._data
        return self.with_data(d.clone() if _is_tensor(d) else np.array(d, copy=True))

    def check_finite(self) -> Image:
        """Raise :class:`InvalidImageError` when any voxel is NaN or infinite."""
        arr = self.array
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            bad = int(np.size(arr) - np.isfinite(arr).sum())
            raise InvalidImageError(f"{bad} voxel(s) are NaN or infinite; clean the image before augmenting",
                                    path=self.path)
        return self

    def label_values(self) -> np.ndarray:
        """The sorted distinct values of a label map."""
        return np.unique(self.array)

    def __repr__(self) -> str:
        kind = "label" if self.is_label else "intensity"
        dev = f", device={self._data.device}" if _is_tensor(self._data) else ""
        ch = f", channels={self.channels}" + (f" {list(self.channel_names)}" if self.channel_names else "") if self.channel_axis else ""
        return f"Image({kind}, shape={self.shape}{ch}, dtype={self.dtype}{dev}, {self.grid!r})"


def _is_tensor(x: object) -> TypeGuard[torch.Tensor]:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")
