"""Resample every image of a sample once, through a composed warp.

The map from an output voxel to an input coordinate is split in two:

* a base affine ``q = B @ i + c`` (array index to array index) — the product
  of every affine in the chain, exact;
* when the chain holds a non-linear warp, a residual ``exact(i) - (B @ i + c)``
  evaluated exactly on a coarse lattice of the output grid and interpolated
  trilinearly in between.  The lattice is refined until the interpolation
  error, checked at cell centres, is below ``tolerance`` voxels.

Two backends apply it with the same arithmetic: a fused Numba sweep on CPU
(no stored grid, image and labels from one coordinate computation, point-wise
intensity operations in the same pass) and a plain-PyTorch path that runs on
CPU or CUDA in z-slabs.  Cubic B-spline interpolation uses SciPy's
``map_coordinates`` on the PyTorch path's coordinates.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch

from ..data.grid import Grid, apply_homogeneous
from ..errors import ParameterError
from .pointwise import FusedOps, apply_ops_torch, pack_programs
from .warp import ChainWarp

__all__ = [
    "ResampleOptions", "Coordinates", "ResampleJob", "plan_coordinates", "resample_arrays", "resample_batch", "numba_available",
]

Backend = Literal["auto", "numba", "torch"]
_SLAB_VOXELS = 1 << 20


@dataclass
class ResampleOptions:
    """How the engine interpolates.

    Attributes
    ----------
    interpolation : {"linear", "nearest", "cubic"}
        For intensity images.  ``cubic`` is a cubic B-spline (SciPy, CPU).
    label_interpolation : {"nearest", "linear_argmax"}
        For label maps.  ``linear_argmax`` interpolates each label's indicator
        linearly and takes the most likely label.  Neither creates new values.
    backend : {"auto", "numba", "torch"}
        ``auto`` uses the fused Numba sweep on CPU when available, PyTorch otherwise.
    tolerance : float
        Largest interpolation error allowed for non-linear warps, in voxels.
    """

    interpolation: Literal["linear", "nearest", "cubic"] = "linear"
    label_interpolation: Literal["nearest", "linear_argmax"] = "nearest"
    backend: Backend = "auto"
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if self.interpolation not in ("linear", "nearest", "cubic"):
            raise ParameterError(f"interpolation must be linear, nearest or cubic, got {self.interpolation!r}")
        if self.label_interpolation not in ("nearest", "linear_argmax"):
            raise ParameterError(
                f"label_interpolation must be nearest or linear_argmax, got {self.label_interpolation!r}"
            )
        if self.backend not in ("auto", "numba", "torch"):
            raise ParameterError(f"backend must be auto, numba or torch, got {self.backend!r}")


@dataclass
class Coordinates:
    """Output-index → input-index map in 3D array order (2D padded with a unit z axis)."""

    bmat: np.ndarray  # (3, 3) float64
    cvec: np.ndarray  # (3,) float64
    resid: np.ndarray  # (mz, my, mx, 3) float32, zeros when affine
    step: np.ndarray  # (3,) float64 lattice step in output voxels
    has_field: bool
    out_shape3: tuple[int, int, int]
    in_shape3: tuple[int, int, int]
    lattice_error: float = 0.0
    ndim: int = 3  # spatial dimensions of the grids (2D maps are padded with a unit z axis)

    @property
    def integral(self) -> bool:
        """True when every output voxel maps exactly onto an input voxel (flips, 90° turns, crops)."""
        b = self.bmat
        perm = np.all(np.isin(b, (-1.0, 0.0, 1.0))) and np.all(np.abs(b).sum(0) == 1) and np.all(np.abs(b).sum(1) == 1)
        return bool(not self.has_field and perm and np.all(self.cvec == np.round(self.cvec)))

    def evaluate(self, z: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Input coordinates (…, 3) in (z, y, x) order at integer output indices (broadcast)."""
        dev = z.device
        b = torch.as_tensor(self.bmat, dtype=torch.float64, device=dev)
        c = torch.as_tensor(self.cvec, dtype=torch.float64, device=dev)
        zf, yf, xf = z.to(torch.float64), y.to(torch.float64), x.to(torch.float64)
        q = [b[k, 0] * zf + b[k, 1] * yf + b[k, 2] * xf + c[k] for k in range(3)]
        if self.has_field:
            r = torch.as_tensor(self.resid, device=dev)
            mz, my, mx = r.shape[:3]

            def split(t: torch.Tensor, s: float, m: int) -> tuple[torch.Tensor, torch.Tensor]:
                f = t / s
                i0 = torch.clamp(torch.floor(f).long(), max=m - 2) if m > 1 else torch.zeros_like(t, dtype=torch.long)
                return i0, (f - i0) if m > 1 else torch.zeros_like(f)

            iz, tz = split(zf, self.step[0], mz)
            iy, ty = split(yf, self.step[1], my)
            ix, tx = split(xf, self.step[2], mx)
            iz1 = iz + 1 if mz > 1 else iz
            for k in range(3):
                rk = r[..., k].to(torch.float64)
                r00 = rk[iz, iy, ix] * (1 - tx) + rk[iz, iy, ix + 1] * tx
                r01 = rk[iz, iy + 1, ix] * (1 - tx) + rk[iz, iy + 1, ix + 1] * tx
                r10 = rk[iz1, iy, ix] * (1 - tx) + rk[iz1, iy, ix + 1] * tx
                r11 = rk[iz1, iy + 1, ix] * (1 - tx) + rk[iz1, iy + 1, ix + 1] * tx
                q[k] = q[k] + (r00 * (1 - ty) + r01 * ty) * (1 - tz) + (r10 * (1 - ty) + r11 * ty) * tz
        return torch.stack(q, dim=-1)


def _snap(a: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    r = np.round(a)
    return np.where(np.abs(a - r) < tol, r, a)


def _pad3(m: np.ndarray, ndim: int) -> np.ndarray:
    """Lift a 2D array-index homogeneous matrix (3×3) to 3D (4×4) with a unit z axis."""
    if ndim == 3:
        return m
    out = np.eye(4)
    out[1:3, 1:3] = m[:2, :2]
    out[1:3, 3] = m[:2, 2]
    return out


def plan_coordinates(chain: ChainWarp, grid_in: Grid, grid_out: Grid, tolerance: float = 0.1) -> Coordinates:
    """Compose ``chain`` with the two grids' index maps into kernel coordinates."""
    n = grid_out.ndim
    m_out = grid_out.array_index_to_physical_matrix()
    m_in_inv = grid_in.physical_to_array_index_matrix()
    base = m_in_inv @ chain.affine_part() @ m_out
    base3 = _pad3(_snap(base), n)
    bmat, cvec = base3[:3, :3].copy(), base3[:3, 3].copy()
    out3 = cast(tuple[int, int, int], grid_out.shape if n == 3 else (1, *grid_out.shape))
    in3 = cast(tuple[int, int, int], grid_in.shape if n == 3 else (1, *grid_in.shape))
    if chain.is_affine:
        return Coordinates(bmat, cvec, np.zeros((2, 2, 2, 3), np.float32), np.ones(3), False, out3, in3, ndim=n)

    def exact(idx_arr: np.ndarray) -> np.ndarray:
        """Exact input array indices for (N, ndim) output array indices."""
        phys = apply_homogeneous(idx_arr, m_out)
        back = chain(phys)
        return apply_homogeneous(back, m_in_inv)

    spacing_arr = np.asarray(grid_out.spacing[::-1], float)  # array order
    feature = chain.feature_mm
    step = np.maximum(1.0, np.floor(feature / 6.0 / spacing_arr))
    error = np.inf
    for _ in range(6):
        step = np.minimum(step, np.maximum(np.asarray(grid_out.shape, float) - 1.0, 1.0))
        counts = tuple(max(int(np.ceil((s_len - 1) / st)) + 1, 2) for s_len, st in zip(grid_out.shape, step))
        # the nodes, then random cell centres where the multilinear interpolation is checked
        both, corners = _lattice_points(counts, tuple(float(st) for st in step))
        values = exact(both) - apply_homogeneous(both, base)
        nodes = len(both) - len(corners)
        resid = values[:nodes].reshape(*counts, n)
        # multilinear at a cell centre: the mean of its corners, summed corner by corner in order (np.mean's
        # values: its reduction over the middle axis is sequential too, but about 10x slower), times 2**-n
        at = np.take(values, corners.T, axis=0)  # (2**n, cells, n)
        total = at[0].copy()
        for k in range(1, len(at)):
            total += at[k]
        interp = total * (1.0 / len(at))
        error = float(np.abs(interp - values[nodes:]).max())
        if error <= tolerance or np.all(step <= 1):
            break
        # the error of linear interpolation grows with the square of the step
        step = np.maximum(1.0, np.floor(step * min(0.7, 0.9 * np.sqrt(tolerance / error))))
    if n == 2:
        r3 = np.zeros((2, *resid.shape[:2], 3), np.float32)
        r3[..., 1:] = resid[None]
        resid3, step3 = r3, np.array([1.0, *step])
    else:
        resid3, step3 = resid.astype(np.float32), step.astype(float)
    return Coordinates(bmat, cvec, np.ascontiguousarray(resid3), step3, True, out3, in3, error, ndim=n)


@functools.lru_cache(maxsize=64)
def _lattice_points(counts: tuple[int, ...], step: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The lattice's nodes (output voxel indices) followed by 512 cell centres, and the nodes at those cells' corners.

    Returns ``(points, corners)``: ``points`` (nodes + 512, n) and ``corners`` (512, 2**n), node numbers (C order).

    The cells are drawn from a fixed stream, so a lattice is checked at the
    same places every time (cached per lattice: the arrays are read-only).
    """
    n = len(counts)
    axes = [np.arange(c) * st for c, st in zip(counts, step)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, n)
    rng = np.random.default_rng(0)
    cells = np.stack([rng.integers(0, c - 1, 512) for c in counts], -1)
    both = np.concatenate([nodes, (cells + 0.5) * np.asarray(step)])
    strides = np.cumprod((*counts[1:], 1)[::-1])[::-1]
    offsets = np.array([[(corner >> (n - 1 - a)) & 1 for a in range(n)] for corner in range(1 << n)]) @ strides
    corners = (cells @ strides)[:, None] + offsets[None, :]
    both.setflags(write=False)
    corners.setflags(write=False)
    return both, corners


def numba_available() -> bool:
    """Whether the Numba sweep can run here (``MEDAUG_BACKEND=torch`` turns it off)."""
    if os.environ.get("MEDAUG_BACKEND", "").lower() == "torch":
        return False
    return _numba_imports()


@functools.lru_cache(maxsize=1)
def _numba_imports() -> bool:
    """Whether the compiled kernels import (asked once per process)."""
    try:
        from . import _numba  # noqa: F401
    except Exception:  # pragma: no cover - numba missing or broken
        return False
    return True


@dataclass
class ResampleJob:
    """What one sample brings to a fused sweep.

    Attributes
    ----------
    coords : Coordinates
    intensity : list of arrays
        Channel-first intensity images, ``(C_i, z, y, x)`` (or ``(C_i, y, x)``):
        every channel of every image is sampled from the one coordinate of each
        output voxel.
    fills : list of list of float
        The fill value of each channel of each image.
    labels : list of arrays
        Label maps ``(z, y, x)`` (or ``(y, x)``), sampled from the same coordinates.
    programs : list of FusedOps
        The point-wise operations of each channel, in the order the channels
        are listed (image by image); empty for none.
    """

    coords: Coordinates
    intensity: list[torch.Tensor | np.ndarray]
    fills: list[list[float]]
    labels: list[torch.Tensor | np.ndarray]
    programs: list[FusedOps]

    def layout(self) -> tuple:
        """What must agree between the jobs of one sweep: grids' shapes, channels, label dtypes, dimensions."""
        return (self.coords.out_shape3, self.coords.in_shape3, self.coords.ndim,
                tuple(int(a.shape[0]) for a in self.intensity), tuple(str(a.dtype) for a in self.labels))


def resample_arrays(
    coords: Coordinates,
    intensity: list[torch.Tensor | np.ndarray],
    fills: list[list[float]],
    labels: list[torch.Tensor | np.ndarray],
    label_fill: int,
    programs: list[FusedOps],
    options: ResampleOptions,
) -> tuple[list[torch.Tensor | np.ndarray], list[torch.Tensor | np.ndarray]]:
    """Resample one sample's intensity and label arrays through ``coords`` (see :class:`ResampleJob`).

    Returns
    -------
    (list, list)
        The channel-first intensity outputs and the label outputs, NumPy
        (numba backend) or torch (torch backend, same device as the input).
    """
    return resample_batch([ResampleJob(coords, intensity, fills, labels, programs)], label_fill, options)[0]


def resample_batch(
    jobs: list[ResampleJob], label_fill: int, options: ResampleOptions
) -> list[tuple[list[torch.Tensor | np.ndarray], list[torch.Tensor | np.ndarray]]]:
    """Resample several samples of one layout in one sweep (one kernel launch on CPU, batched ``grid_sample`` on torch).

    Every job gets exactly what :func:`resample_arrays` would give it alone:
    the arithmetic of each output voxel does not depend on the other samples.

    Parameters
    ----------
    jobs : list of ResampleJob
        Samples with the same :meth:`ResampleJob.layout` (output and input
        shapes, channel counts, label dtypes).
    label_fill : int
    options : ResampleOptions

    Returns
    -------
    list of (list, list)
        Per job, its intensity outputs and label outputs (the numba backend's
        are views of one array for the whole batch).

    Raises
    ------
    ParameterError
        When the jobs' layouts differ.
    """
    if not jobs:
        return []
    first = jobs[0].layout()
    for i, job in enumerate(jobs[1:], start=1):
        if job.layout() != first:
            raise ParameterError(f"sample {i} cannot share a sweep with sample 0: layout {job.layout()} vs {first}")
    arrays = [a for job in jobs for a in (*job.intensity, *job.labels)]
    on_cuda = any(isinstance(a, torch.Tensor) and a.is_cuda for a in arrays)
    backend = options.backend
    if backend == "auto":
        backend = "numba" if (not on_cuda and numba_available()) else "torch"
    if backend == "numba" and on_cuda:
        raise ParameterError("the numba backend runs on CPU only; use backend='torch' for CUDA tensors")
    cubic = options.interpolation == "cubic"
    argmax = options.label_interpolation == "linear_argmax"
    if backend == "numba" and not cubic and not argmax:
        return _resample_numba(jobs, label_fill, options)
    return _resample_torch(jobs, label_fill, options)


def _np(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a)


def _distinct_inputs(per_job: list[list[np.ndarray]], shape: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Stack each job's arrays as ``(N, C, *shape)`` once per distinct input; which one each job reads.

    Jobs that read the same arrays (the same memory) share one entry, and a
    single job whose one array is already contiguous in ``dtype`` is used
    without a copy.
    """
    per_channel = max(math.prod(shape), 1)
    channels = sum(a.size for a in per_job[0]) // per_channel
    keys: dict[tuple, int] = {}
    slots = []
    which = []
    for arrays in per_job:
        key = tuple((a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str) for a in arrays)
        if key not in keys:
            keys[key] = len(keys)
            slots.append(arrays)
        which.append(keys[key])
    index = np.asarray(which, np.int64)
    if len(slots) == 1 and len(slots[0]) == 1:
        one = slots[0][0]
        if one.dtype == dtype and one.flags.c_contiguous:
            return one.reshape(1, channels, *shape), index
    stack = np.empty((len(slots), channels, *shape), dtype)
    for n, arrays in enumerate(slots):
        g = 0
        for a in arrays:
            c = a.size // per_channel
            stack[n, g : g + c] = a.reshape(c, *shape)
            g += c
    return stack, index


def _pack_coordinates(coords: list[Coordinates]) -> tuple[np.ndarray, ...]:
    """Each sample's base affine and residual lattice, the lattices padded to the largest node counts."""
    lattice = np.asarray([c.resid.shape[:3] for c in coords], np.int64)
    resid = np.zeros((len(coords), *lattice.max(0), 3), np.float32)
    for b, c in enumerate(coords):
        mz, my, mx = c.resid.shape[:3]
        resid[b, :mz, :my, :mx] = c.resid
    return (np.stack([c.bmat for c in coords]), np.stack([c.cvec for c in coords]), resid, lattice,
            np.stack([np.asarray(c.step, float) for c in coords]), np.asarray([c.has_field for c in coords]))


def _pack_batch_programs(jobs: list[ResampleJob], shape3: tuple[int, int, int], channels: int) -> tuple[np.ndarray, ...]:
    """:func:`pack_programs` of every job, padded to common sizes: (B, C, K), (B, C, K, 4), (B, F, M, W), (B, F, M, D, H)."""
    packed = [pack_programs(list(job.programs) + [FusedOps()] * (channels - len(job.programs)), shape3) for job in jobs]
    k = max(p[0].shape[1] for p in packed)
    f = max(p[2].shape[0] for p in packed)
    m = max(p[2].shape[1] for p in packed)
    n = len(jobs)
    c = packed[0][0].shape[0]
    codes = np.full((n, c, k), -1, np.int64)
    params = np.zeros((n, c, k, 4), np.float64)
    fx = np.zeros((n, f, m, shape3[2]), np.float32)
    fq = np.zeros((n, f, m, shape3[0], shape3[1]), np.float32)
    for b, (cb, pb, xb, qb) in enumerate(packed):
        codes[b, :, : cb.shape[1]] = cb
        params[b, :, : cb.shape[1]] = pb
        fx[b, : xb.shape[0], : xb.shape[1]] = xb
        fq[b, : qb.shape[0], : qb.shape[1]] = qb
    return codes, params, fx, fq


def _resample_numba(jobs: list[ResampleJob], label_fill: int, options: ResampleOptions):
    from . import _numba

    _numba.set_threads(torch.get_num_threads())  # follow torch: 1 inside DataLoader workers
    coords0 = jobs[0].coords
    two_d = coords0.ndim == 2
    d, h, w = coords0.out_shape3
    in3 = coords0.in_shape3
    nb = len(jobs)
    counts = [int(a.shape[0]) for a in jobs[0].intensity]
    total = sum(counts)
    if total:
        stack, isrc = _distinct_inputs([[_np(a) for a in job.intensity] for job in jobs], in3, np.dtype(np.float32))
    else:
        stack, isrc = np.zeros((1, 0, 1, 1, 1), np.float32), np.zeros(nb, np.int64)
    out = np.empty((nb, total, d, h, w), np.float32)
    fills = np.asarray([[f for per_image in job.fills for f in per_image] for job in jobs], np.float64).reshape(nb, total)
    codes, params, fx, fq = _pack_batch_programs(jobs, (d, h, w), total)
    bmat, cvec, resid, lattice, step, has_field = _pack_coordinates([job.coords for job in jobs])
    nearest = options.interpolation == "nearest"
    labels = [[_np(a) for a in job.labels] for job in jobs]
    groups: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(labels[0]):
        groups.setdefault(a.dtype, []).append(i)
    results: dict[int, np.ndarray] = {}
    runs = [(dtype, members) for dtype, members in groups.items()] or [(np.dtype(np.uint8), [])]
    for r, (dtype, members) in enumerate(runs):  # one launch per label dtype; the intensity channels in the first
        if members:
            labs, lsrc = _distinct_inputs([[job_labels[i] for i in members] for job_labels in labels], in3, dtype)
        else:
            labs, lsrc = np.zeros((1, 0, 1, 1, 1), dtype), np.zeros(nb, np.int64)
        outl = np.empty((nb, len(members), d, h, w), dtype)
        src, dst = (stack, out) if r == 0 else (stack[:, :0], out[:, :0])
        with _numba.launch_guard():
            _numba.resample(src, isrc, dst, labs, lsrc, outl, bmat, cvec, resid, lattice, step, has_field, nearest,
                            fills[:, : dst.shape[1]], label_fill, codes[:, : dst.shape[1]], params[:, : dst.shape[1]],
                            fx, fq)
        for j, i in enumerate(members):
            results[i] = outl[:, j]
    return _per_job(out, counts, [results[i] for i in range(len(labels[0]))], two_d)


#: Output voxels whose coordinates the PyTorch path holds at once (per device kind).
_SLAB_VOXELS_CUDA = 1 << 24


def _resample_torch(jobs: list[ResampleJob], label_fill: int, options: ResampleOptions):
    """Plain-PyTorch path: ``grid_sample`` over several samples at once (linear), batched gathers (nearest).

    The samples are taken in chunks, and a large volume in z-slabs, so that at
    most ``_SLAB_VOXELS`` output coordinates are held at a time (more on CUDA).
    """
    import torch.nn.functional as F

    coords0 = jobs[0].coords
    two_d = coords0.ndim == 2
    d, h, w = coords0.out_shape3
    d0, h0, w0 = coords0.in_shape3
    ref = (jobs[0].intensity or jobs[0].labels)[0]
    dev = ref.device if isinstance(ref, torch.Tensor) else torch.device("cpu")
    nb = len(jobs)
    counts = [int(a.shape[0]) for a in jobs[0].intensity]
    total = sum(counts)
    nlab = len(jobs[0].labels)
    imgs = torch.stack([
        torch.cat([torch.as_tensor(a, device=dev).reshape(a.shape[0], d0, h0, w0).to(torch.float32) for a in job.intensity])
        for job in jobs
    ]) if total else torch.zeros((nb, 0, d0, h0, w0), device=dev)
    fills = torch.tensor([[f for per in job.fills for f in per] for job in jobs], dtype=torch.float32,
                         device=dev).reshape(nb, total)
    labs = [torch.stack([torch.as_tensor(job.labels[j], device=dev).reshape(d0, h0, w0) for job in jobs])
            for j in range(nlab)]
    out = torch.empty((nb, total, d, h, w), dtype=torch.float32, device=dev)
    louts = [torch.empty((nb, d, h, w), dtype=lab.dtype, device=dev) for lab in labs]
    argmax = options.label_interpolation == "linear_argmax"
    lab_values = [[torch.unique(lab[b]) for b in range(nb)] for lab in labs] if argmax else []
    budget = _SLAB_VOXELS_CUDA if dev.type == "cuda" else _SLAB_VOXELS
    per_sample = d * h * w
    chunk = max(1, budget // max(per_sample, 1))  # samples per launch
    slab = d if chunk > 1 else max(1, budget // max(h * w, 1))  # z-slab of one sample when one is too large
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    sizes = torch.tensor([d0, h0, w0], device=dev, dtype=torch.float64)
    integral = all(job.coords.integral for job in jobs)
    mode = "nearest" if integral else options.interpolation  # exact gathers need no interpolation
    for b0 in range(0, nb, chunk):
        b1 = min(nb, b0 + chunk)
        part = jobs[b0:b1]
        n = b1 - b0
        for z0 in range(0, d, slab):
            z1 = min(d, z0 + slab)
            zz = torch.arange(z0, z1, device=dev).view(-1, 1, 1)
            q = torch.stack([job.coords.evaluate(zz, yy, xx) for job in part])  # (n, sd, h, w, 3) float64, (z, y, x)
            nearest = torch.floor(q + 0.5).long()
            inside = ((nearest >= 0) & (nearest < sizes.long())).all(-1)  # (n, sd, h, w)
            flat = ((nearest[..., 0].clamp(0, d0 - 1) * h0 + nearest[..., 1].clamp(0, h0 - 1)) * w0
                    + nearest[..., 2].clamp(0, w0 - 1)).reshape(n, 1, -1)
            src = imgs[b0:b1]
            fill5 = fills[b0:b1].view(n, total, 1, 1, 1)
            if total and mode == "linear":
                g = (2.0 * q / torch.clamp(sizes - 1, min=1) - 1.0).flip(-1).to(torch.float32)  # grid_sample: (x, y, z)
                if d0 == 1:
                    g2 = g[..., :2].reshape(n, -1, w, 2)
                    v = F.grid_sample(src[:, :, 0] - fill5[:, :, 0], g2, mode="bilinear", padding_mode="zeros",
                                      align_corners=True).reshape(n, total, z1 - z0, h, w) + fill5
                else:
                    v = F.grid_sample(src - fill5, g, mode="bilinear", padding_mode="zeros", align_corners=True) + fill5
            elif total and mode == "nearest":
                picked = src.reshape(n, total, -1).gather(2, flat.expand(n, total, -1)).reshape(n, total, z1 - z0, h, w)
                v = torch.where(inside[:, None], picked, fill5)
            elif total:
                v = torch.stack([_cubic(src[k], fills[b0 + k], q[k]) for k in range(n)])
            else:
                v = out[b0:b1, :, z0:z1]
            for k, job in enumerate(part):
                for gi, prog in enumerate(job.programs[:total]):
                    if prog:
                        v[k, gi] = apply_ops_torch(v[k, gi], prog, channel=gi, z0=z0, full_shape=(d, h, w))
            out[b0:b1, :, z0:z1] = v
            for j, lab in enumerate(labs):
                if not argmax:
                    fill_t = torch.tensor(label_fill, dtype=lab.dtype, device=dev)
                    picked_l = lab[b0:b1].reshape(n, -1).gather(1, flat[:, 0]).reshape(n, z1 - z0, h, w)
                    louts[j][b0:b1, z0:z1] = torch.where(inside, picked_l, fill_t)
                else:
                    for k in range(n):
                        louts[j][b0 + k, z0:z1] = _argmax_labels(lab[b0 + k], lab_values[j][b0 + k], q[k], label_fill,
                                                                 d0, h0, w0)
    return _per_job(out, counts, louts, two_d)


def _per_job(out: Any, counts: Sequence[int], label_outs: Sequence[Any], two_d: bool) -> list[tuple[list[Any], list[Any]]]:
    """Split a batch's outputs per job: ``out`` (B, channels of every image, ...) into each job's images
    (``counts`` channels each) and each label output (B, ...) into the job's label maps; 2D drops the z axis."""
    per_job = []
    for b in range(out.shape[0]):
        outs, at = [], 0
        for c in counts:
            block = out[b, at : at + c]
            outs.append(block[:, 0] if two_d else block)
            at += c
        per_job.append((outs, [lo[b, 0] if two_d else lo[b] for lo in label_outs]))
    return per_job


def _cubic(src: torch.Tensor, fills: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Cubic B-spline values (SciPy, CPU) of every channel of ``src`` (C, d0, h0, w0) at ``q`` (sd, h, w, 3)."""
    from scipy.ndimage import map_coordinates

    pts = q.reshape(-1, 3).T.cpu().numpy()
    values = []
    for c in range(src.shape[0]):
        img = src[c].cpu().numpy()
        if img.shape[0] == 1:
            img, p = img[0], pts[1:]
        else:
            p = pts
        v = map_coordinates(img, p, order=3, mode="constant", cval=float(fills[c]), prefilter=True)
        values.append(torch.from_numpy(v.astype(np.float32)).reshape(q.shape[:3]))
    return torch.stack(values).to(src.device)


def _argmax_labels(lab, values, q, label_fill, d0, h0, w0):
    import torch.nn.functional as F

    sizes = torch.tensor([d0, h0, w0], device=q.device, dtype=torch.float64)
    g = (2.0 * q / torch.clamp(sizes - 1, min=1) - 1.0).flip(-1).to(torch.float32)
    fill_t = torch.tensor(label_fill, dtype=lab.dtype, device=lab.device)
    all_values = torch.unique(torch.cat([values, fill_t.view(1)]))
    best = None
    best_p = None
    for val in all_values:
        ind = (lab == val).to(torch.float32)
        pad = 1.0 if val == fill_t else 0.0
        if d0 == 1:
            gg = g[..., :2].reshape(1, -1, g.shape[2], 2)
            p = F.grid_sample((ind - pad)[None], gg, mode="bilinear", padding_mode="zeros", align_corners=True)
            p = p.reshape(g.shape[:3]) + pad
        else:
            p = F.grid_sample((ind - pad)[None, None], g[None], mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0] + pad
        if best is None or best_p is None:
            best, best_p = torch.full_like(p, float(val)).to(lab.dtype), p
        else:
            better = p > best_p
            best = torch.where(better, val.to(lab.dtype), best)
            best_p = torch.where(better, p, best_p)
    return best
