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

import os
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch

from ..data.grid import Grid
from ..errors import ParameterError
from .pointwise import FusedOps, apply_ops_torch, pack_programs
from .warp import ChainWarp

__all__ = ["ResampleOptions", "Coordinates", "plan_coordinates", "resample_arrays", "numba_available"]

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
    m_in_inv = np.linalg.inv(grid_in.array_index_to_physical_matrix())
    base = m_in_inv @ chain.affine_part() @ m_out
    base3 = _pad3(_snap(base), n)
    bmat, cvec = base3[:3, :3].copy(), base3[:3, 3].copy()
    out3 = cast(tuple[int, int, int], grid_out.shape if n == 3 else (1, *grid_out.shape))
    in3 = cast(tuple[int, int, int], grid_in.shape if n == 3 else (1, *grid_in.shape))
    if chain.is_affine:
        return Coordinates(bmat, cvec, np.zeros((2, 2, 2, 3), np.float32), np.ones(3), False, out3, in3, ndim=n)

    def exact(idx_arr: np.ndarray) -> np.ndarray:
        """Exact input array indices for (N, ndim) output array indices."""
        phys = idx_arr @ m_out[:n, :n].T + m_out[:n, n]
        back = chain(phys)
        return back @ m_in_inv[:n, :n].T + m_in_inv[:n, n]

    spacing_arr = np.asarray(grid_out.spacing[::-1], float)  # array order
    feature = chain.feature_mm
    step = np.maximum(1.0, np.floor(feature / 6.0 / spacing_arr))
    rng = np.random.default_rng(0)
    error = np.inf
    for _ in range(6):
        step = np.minimum(step, np.maximum(np.asarray(grid_out.shape, float) - 1.0, 1.0))
        counts = [max(int(np.ceil((s_len - 1) / st)) + 1, 2) for s_len, st in zip(grid_out.shape, step)]
        axes = [np.arange(c) * st for c, st in zip(counts, step)]
        nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, n)
        # check the multilinear interpolation at random cell centres, evaluated with the nodes
        cells = np.stack([rng.integers(0, c - 1, 512) for c in counts], -1)
        centres = (cells + 0.5) * step
        both = np.concatenate([nodes, centres])
        values = exact(both) - (both @ base[:n, :n].T + base[:n, n])
        resid = values[: len(nodes)].reshape(*counts, n)
        interp = _multilinear(resid, centres / step)
        error = float(np.abs(interp - values[len(nodes) :]).max())
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


def _multilinear(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Multilinear interpolation of ``values`` (*counts, C) at fractional node positions."""
    n = pos.shape[1]
    i0 = np.minimum(np.floor(pos).astype(int), np.asarray(values.shape[:n]) - 2)
    t = pos - i0
    out = np.zeros((pos.shape[0], values.shape[-1]))
    for corner in range(1 << n):
        bits = [(corner >> (n - 1 - a)) & 1 for a in range(n)]
        w = np.ones(pos.shape[0])
        idx = []
        for a, b in enumerate(bits):
            w = w * (t[:, a] if b else 1 - t[:, a])
            idx.append(i0[:, a] + b)
        out += w[:, None] * values[tuple(idx)]
    return out


def numba_available() -> bool:
    if os.environ.get("MEDAUG_BACKEND", "").lower() == "torch":
        return False
    try:
        from . import _numba  # noqa: F401
    except Exception:  # pragma: no cover - numba missing or broken
        return False
    return True


def resample_arrays(
    coords: Coordinates,
    intensity: list[torch.Tensor | np.ndarray],
    fills: list[list[float]],
    labels: list[torch.Tensor | np.ndarray],
    label_fill: int,
    programs: list[FusedOps],
    options: ResampleOptions,
) -> tuple[list[torch.Tensor | np.ndarray], list[torch.Tensor | np.ndarray]]:
    """Resample intensity and label arrays through ``coords``; run each channel's fused program.

    Parameters
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
    label_fill : int
    programs : list of FusedOps
        The point-wise operations of each channel, in the order the channels
        are listed (image by image); empty for none.
    options : ResampleOptions

    Returns
    -------
    (list, list)
        The channel-first intensity outputs and the label outputs, NumPy
        (numba backend) or torch (torch backend, same device as the input).
    """
    on_cuda = any(isinstance(a, torch.Tensor) and a.is_cuda for a in [*intensity, *labels])
    backend = options.backend
    if backend == "auto":
        backend = "numba" if (not on_cuda and numba_available()) else "torch"
    if backend == "numba" and on_cuda:
        raise ParameterError("the numba backend runs on CPU only; use backend='torch' for CUDA tensors")
    cubic = options.interpolation == "cubic"
    argmax = options.label_interpolation == "linear_argmax"
    if backend == "numba" and not cubic and not argmax:
        return _resample_numba(coords, intensity, fills, labels, label_fill, programs, options)
    return _resample_torch(coords, intensity, fills, labels, label_fill, programs, options)


def _np(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a)


def _resample_numba(coords, intensity, fills, labels, label_fill, programs, options):
    from . import _numba

    _numba.set_threads(torch.get_num_threads())  # follow torch: 1 inside DataLoader workers
    two_d = coords.ndim == 2
    d, h, w = coords.out_shape3
    counts = [int(a.shape[0]) for a in intensity]
    total = sum(counts)
    if total:
        stack = np.empty((total, *coords.in_shape3), np.float32)
        g = 0
        for a, c in zip(intensity, counts):
            stack[g : g + c] = _np(a).reshape(c, *coords.in_shape3)
            g += c
    else:
        stack = np.zeros((0, 1, 1, 1), np.float32)
    out = np.empty((total, d, h, w), np.float32)
    fills_arr = np.asarray([f for per_image in fills for f in per_image], np.float64) if total else np.zeros(0)
    codes, params, fx, fq = pack_programs(list(programs), (d, h, w))
    lab_arrays = [_np(a) for a in labels]
    groups: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(lab_arrays):
        groups.setdefault(a.dtype, []).append(i)
    results: dict[int, np.ndarray] = {}
    intensity_done = False
    for dtype, members in groups.items():
        labs = np.ascontiguousarray(np.stack([lab_arrays[i].reshape(coords.in_shape3) for i in members]))
        outl = np.empty((len(members), d, h, w), dtype)
        src, dst = (stack, out) if not intensity_done else (np.zeros((0, 1, 1, 1), np.float32), out[:0])
        _numba.resample(src, dst, labs, outl, coords.bmat, coords.cvec, coords.resid, coords.step, coords.has_field,
                        options.interpolation == "nearest", fills_arr if not intensity_done else np.zeros(0),
                        label_fill, codes, params, fx, fq)
        intensity_done = True
        for j, i in enumerate(members):
            results[i] = outl[j]
    if not intensity_done and total:  # no label maps: one run for the intensity channels
        _numba.resample(stack, out, np.zeros((0, 1, 1, 1), np.uint8), np.empty((0, d, h, w), np.uint8),
                        coords.bmat, coords.cvec, coords.resid, coords.step, coords.has_field,
                        options.interpolation == "nearest", fills_arr, label_fill, codes, params, fx, fq)
    outs, g = [], 0
    for c in counts:
        block = out[g : g + c]
        outs.append(block[:, 0] if two_d else block)
        g += c
    lab_out = [results[i][0] if two_d else results[i] for i in range(len(labels))]
    return outs, lab_out


def _resample_torch(coords, intensity, fills, labels, label_fill, programs, options):
    """Plain-PyTorch path: z-slabs of coordinates, ``grid_sample`` for linear, gathers for nearest."""
    import torch.nn.functional as F

    two_d = coords.ndim == 2
    d, h, w = coords.out_shape3
    d0, h0, w0 = coords.in_shape3
    ref = (intensity or labels)[0]
    dev = ref.device if isinstance(ref, torch.Tensor) else torch.device("cpu")
    imgs = [torch.as_tensor(a, device=dev).reshape(a.shape[0], d0, h0, w0).to(torch.float32) for a in intensity]
    labs = [torch.as_tensor(a, device=dev).reshape(d0, h0, w0) for a in labels]
    outs = [torch.empty((img.shape[0], d, h, w), dtype=torch.float32, device=dev) for img in imgs]
    louts = [torch.empty((d, h, w), dtype=lab.dtype, device=dev) for lab in labs]
    lab_values = [torch.unique(lab) for lab in labs] if options.label_interpolation == "linear_argmax" else []
    slab = max(1, _SLAB_VOXELS // max(h * w, 1))
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    sizes = torch.tensor([d0, h0, w0], device=dev, dtype=torch.float64)
    mode = "nearest" if coords.integral else options.interpolation  # exact gathers need no interpolation
    channels = [(i, c) for i, img in enumerate(imgs) for c in range(img.shape[0])]
    for z0 in range(0, d, slab):
        z1 = min(d, z0 + slab)
        zz = torch.arange(z0, z1, device=dev).view(-1, 1, 1)
        q = coords.evaluate(zz, yy, xx)  # (sd, h, w, 3) float64, (z, y, x)
        nearest = torch.floor(q + 0.5).long()
        inside = ((nearest >= 0) & (nearest < sizes.long())).all(-1)
        flat = (nearest[..., 0].clamp(0, d0 - 1) * h0 + nearest[..., 1].clamp(0, h0 - 1)) * w0 + nearest[..., 2].clamp(0, w0 - 1)
        if imgs and mode == "linear":
            denom = torch.clamp(sizes - 1, min=1)
            g = (2.0 * q / denom - 1.0).flip(-1).to(torch.float32)  # grid_sample wants (x, y, z)
            if d0 == 1:
                g = g[..., :2].unsqueeze(0)  # (1, sd, h, w, 2)
                g = g.reshape(1, -1, w, 2)
        for gi, (i, c) in enumerate(channels):
            img, fill = imgs[i][c], fills[i][c]
            if mode == "linear":
                if d0 == 1:
                    v = F.grid_sample((img - fill)[None], g, mode="bilinear", padding_mode="zeros", align_corners=True)
                    v = v.reshape(z1 - z0, h, w) + fill
                else:
                    v = F.grid_sample((img - fill)[None, None], g[None], mode="bilinear", padding_mode="zeros", align_corners=True)
                    v = v[0, 0] + fill
            elif mode == "nearest":
                v = torch.where(inside, img.reshape(-1)[flat], torch.tensor(fill, dtype=torch.float32, device=dev))
            else:
                from scipy.ndimage import map_coordinates

                src = img.cpu().numpy()
                pts = q.reshape(-1, 3).T.cpu().numpy()
                if d0 == 1:
                    src, pts = src[0], pts[1:]
                v = map_coordinates(src, pts, order=3, mode="constant", cval=fill, prefilter=True)
                v = torch.from_numpy(v.astype(np.float32)).reshape(z1 - z0, h, w).to(dev)
            if gi < len(programs) and programs[gi]:
                v = apply_ops_torch(v, programs[gi], channel=gi, z0=z0, full_shape=(d, h, w))
            outs[i][c, z0:z1] = v
        for j, lab in enumerate(labs):
            if options.label_interpolation == "nearest":
                fill_t = torch.tensor(label_fill, dtype=lab.dtype, device=dev)
                louts[j][z0:z1] = torch.where(inside, lab.reshape(-1)[flat], fill_t)
            else:
                louts[j][z0:z1] = _argmax_labels(lab, lab_values[j], q, label_fill, d0, h0, w0)
    if two_d:
        outs = [o[:, 0] for o in outs]
        louts = [o[0] for o in louts]
    return outs, louts


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
