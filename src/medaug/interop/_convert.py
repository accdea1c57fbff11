"""Arrays, channels and label maps between channel-first foreign tensors and medaug images.

Shared by :mod:`medaug.interop.monai` and :mod:`medaug.interop.torchio`; imports
neither library.

Channels: a foreign intensity entry ``key`` with ``C`` channels becomes one
medaug image ``key`` with a channel axis, ``(C, z, y, x)`` (a permuted view of
CPU data, no copy); intensity transforms draw per channel, spatial transforms
move the channels together.  A label entry with several channels (one-hot
maps) becomes ``C`` label maps named ``key``, ``key_0001``, ``key_0002`` ...
(medaug label maps are scalar).  The way back stacks them again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..errors import InvalidImageError

__all__ = ["channel_names", "group_channels", "split_channels", "stack_channels", "as_label_array"]

_CHANNEL = re.compile(r"^(.+)_(\d{4})$")


def channel_names(key: str, channels: int) -> list[str]:
    """Sample names of the channels of ``key``: ``key``, ``key_0001``, ``key_0002`` ...

    >>> channel_names("image", 3)
    ['image', 'image_0001', 'image_0002']
    """
    return [key] + [f"{key}_{c:04d}" for c in range(1, channels)]


def group_channels(names: Iterable[str]) -> dict[str, list[str]]:
    """Group sample names into channel-first entries: ``image``, ``image_0001`` -> ``{"image": [...]}``.

    A name ``base_XXXX`` joins ``base`` only when ``base`` exists and the
    suffixes run 0001, 0002, ... without a gap; otherwise it is its own entry.

    >>> group_channels(["image", "image_0001", "label", "t2_0003"])
    {'image': ['image', 'image_0001'], 'label': ['label'], 't2_0003': ['t2_0003']}
    """
    names = list(names)
    present = set(names)
    groups: dict[str, list[str]] = {}
    for name in names:
        m = _CHANNEL.match(name)
        if m and m.group(1) in present:
            base, k = m.group(1), int(m.group(2))
            expected = channel_names(base, k + 1)
            if all(n in present for n in expected):
                groups.setdefault(base, [base])
                if name not in groups[base]:
                    groups[base].append(name)
                continue
        groups.setdefault(name, [name])
    for base, members in groups.items():
        members.sort(key=lambda n: 0 if n == base else int(n.rsplit("_", 1)[1]))
    return groups


def _spatial_to_medaug(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """One channel in (x, y[, z]) order -> medaug's (z, y, x): a view of CPU data, a contiguous CUDA tensor."""
    if isinstance(x, torch.Tensor):
        t = x.permute(*reversed(range(x.ndim)))
        if t.is_cuda:
            return t.contiguous()
        return t.detach().numpy()
    return np.asarray(x).transpose(*reversed(range(np.ndim(x))))


def split_channels(
    data: np.ndarray | torch.Tensor,
    grid: Grid,
    names: Sequence[str],
    *,
    is_label: bool,
    what: str,
    path: str | None = None,
) -> dict[str, Image]:
    """Channel-first foreign data ``(C, x, y[, z])`` -> one medaug image per channel on ``grid``.

    CPU data becomes NumPy arrays (medaug then takes exactly the path it takes
    for images read from disk); CUDA tensors stay on their device.  Label maps
    are checked to hold non-negative whole numbers and stored as integers.
    """
    if isinstance(data, torch.Tensor) and not data.is_cuda:
        data = data.detach().cpu()
    if not is_label and len(names) > 1:  # one multi-channel image: (C, x, y[, z]) -> (C, z, y, x)
        if isinstance(data, torch.Tensor) and data.is_cuda:
            arr: np.ndarray | torch.Tensor = data.permute(0, *reversed(range(1, data.ndim))).contiguous()
        else:
            a = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
            arr = a.transpose(0, *reversed(range(1, a.ndim)))
        if tuple(arr.shape[1:]) != grid.shape:
            arr = arr.reshape(arr.shape[0], *grid.shape)  # e.g. TorchIO's (W, H, 1) for a 2D image
        if isinstance(arr, np.ndarray) and arr.dtype.kind not in "fiub":
            raise InvalidImageError(f"{what}: intensity data must be real numbers, got {arr.dtype}")
        return {names[0]: Image(arr, grid=grid, path=path, channel_axis=True)}
    out: dict[str, Image] = {}
    for c, name in enumerate(names):
        arr = _spatial_to_medaug(data[c])
        if tuple(arr.shape) != grid.shape:
            arr = arr.reshape(grid.shape)  # e.g. TorchIO's (W, H, 1) for a 2D image
        if is_label:
            arr = as_label_array(arr, what)
        elif isinstance(arr, np.ndarray) and arr.dtype.kind not in "fiub":
            raise InvalidImageError(f"{what}: intensity data must be real numbers, got {arr.dtype}")
        out[name] = Image(arr, grid=grid, is_label=is_label, path=path)
    return out


def stack_channels(images: Sequence[Image], spatial_ndim: int | None = None) -> torch.Tensor:
    """medaug images (scalar ``(z, y, x)`` or with channels) -> a channel-first tensor ``(C, x, y[, z])``.

    ``spatial_ndim`` larger than the images' (3 for a 2D image in TorchIO) appends size-1 axes.
    """
    chans = []
    for img in images:
        for k in range(img.channels):
            one = img.channel(k)
            t = one.tensor if isinstance(one.data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(one.array))
            t = t.permute(*reversed(range(t.ndim)))
            while spatial_ndim is not None and t.ndim < spatial_ndim:
                t = t.unsqueeze(-1)
            chans.append(t)
    return torch.stack(chans).contiguous()


def as_label_array(arr: np.ndarray | torch.Tensor, what: str) -> np.ndarray | torch.Tensor:
    """Check that a label map holds class indices (non-negative whole numbers); cast floats to integers."""
    is_t = isinstance(arr, torch.Tensor)
    a = arr.detach().cpu().numpy() if is_t else np.asarray(arr)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "uif":
        raise InvalidImageError(f"{what}: a label map must hold integers, got {a.dtype}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise InvalidImageError(
                f"{what}: the label map has non-integer values; label keys must hold class indices 0, 1, 2, ... "
                "(one-hot maps are fine, probabilities are not): interpolate labels with mode='nearest', or "
                "pass the key as an intensity key"
            )
    if a.size and a.min() < 0:
        raise InvalidImageError(
            f"{what}: the label map has negative values (min {a.min():g}); labels must be 0, 1, 2, ..."
        )
    if a.dtype.kind == "f":
        hi = a.max() if a.size else 0
        for dt in (np.uint8, np.int16, np.int32, np.int64):
            if hi <= np.iinfo(dt).max:
                a = a.astype(dt)
                break
    if is_t:
        return torch.from_numpy(a).to(arr.device) if arr.is_cuda else a  # type: ignore[union-attr]
    return a
