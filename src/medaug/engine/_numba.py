"""The fused resampling sweep, compiled with Numba (CPU).

One pass over the output grid: for each voxel the input coordinate is computed
on the fly (base affine plus a coarse residual field interpolated trilinearly),
every intensity channel is sampled (linear or nearest, with its own fill
value) and run through the fused point-wise operations, and every label
channel is sampled nearest-neighbour from the same coordinate.  No sampling
grid is ever stored.  :mod:`medaug.engine.resample` holds the PyTorch twin.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import njit, prange

# GNU OpenMP aborts a process that forks after using it (DataLoader workers fork):
# the workqueue layer is fork-safe and needs no extra package.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]


def set_threads(n: int) -> None:
    """Use ``n`` threads (capped by what Numba started with), e.g. 1 inside DataLoader workers."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]

_MASK = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _hash32(x):
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & _MASK
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & _MASK
    return x ^ (x >> np.uint64(16))


@njit(cache=True, inline="always")
def _gauss_pair(j, key):
    """Box–Muller on the hash of pair ``j``: returns (radius, angle) shared by voxels 2j and 2j+1."""
    i2 = np.uint64(2) * np.uint64(j)
    a = _hash32((i2 & _MASK) ^ key)
    b = _hash32(((i2 + np.uint64(1)) & _MASK) ^ key)
    u1 = (np.float32(a) + np.float32(1.0)) * np.float32(2.3283064e-10)
    u2 = np.float32(b) * np.float32(2.3283064e-10)
    return math.sqrt(np.float32(-2.0) * math.log(u1)), np.float32(6.2831855) * u2


@njit(cache=True, inline="always")
def _sample_linear(img, ch, qz, qy, qx, fill):
    d0, h0, w0 = img.shape[1], img.shape[2], img.shape[3]
    z0 = int(math.floor(qz))
    y0 = int(math.floor(qy))
    x0 = int(math.floor(qx))
    az = qz - z0
    ay = qy - y0
    ax = qx - x0
    if d0 == 1:
        z0 = 0
        az = 0.0
    z1 = z0 + 1 if d0 > 1 else 0
    if z0 >= 0 and y0 >= 0 and x0 >= 0 and z1 < d0 and y0 + 1 < h0 and x0 + 1 < w0:
        c00 = img[ch, z0, y0, x0] * (1.0 - ax) + img[ch, z0, y0, x0 + 1] * ax
        c01 = img[ch, z0, y0 + 1, x0] * (1.0 - ax) + img[ch, z0, y0 + 1, x0 + 1] * ax
        c10 = img[ch, z1, y0, x0] * (1.0 - ax) + img[ch, z1, y0, x0 + 1] * ax
        c11 = img[ch, z1, y0 + 1, x0] * (1.0 - ax) + img[ch, z1, y0 + 1, x0 + 1] * ax
        return (c00 * (1.0 - ay) + c01 * ay) * (1.0 - az) + (c10 * (1.0 - ay) + c11 * ay) * az
    v = 0.0
    nz = 2 if d0 > 1 else 1
    for dz in range(nz):
        zz = z0 + dz
        wz = az if dz == 1 else 1.0 - az
        if wz == 0.0:
            continue
        for dy in range(2):
            yy = y0 + dy
            wy = ay if dy == 1 else 1.0 - ay
            for dx in range(2):
                xx = x0 + dx
                w = wz * wy * (ax if dx == 1 else 1.0 - ax)
                if 0 <= zz < d0 and 0 <= yy < h0 and 0 <= xx < w0:
                    v += w * img[ch, zz, yy, xx]
                else:
                    v += w * fill
    return v


_FAST = {"contract", "arcp", "afn", "reassoc", "nsz"}  # no 'nnan'/'ninf': fills and clips compare values


@njit(cache=True, fastmath=_FAST, inline="always")
def _op_affine(row, a, b):
    for x in range(row.shape[0]):
        row[x] = row[x] * a + b


@njit(cache=True, fastmath=_FAST, inline="always")
def _op_gamma(row, g, lo, hi):
    span = np.float32(hi - lo)
    inv = np.float32(1.0 / (hi - lo))
    lo32 = np.float32(lo)
    g32 = np.float32(g)
    for x in range(row.shape[0]):
        t = (row[x] - lo32) * inv
        t = max(t, np.float32(0.0))
        row[x] = lo32 + span * t**g32


@njit(cache=True, fastmath=_FAST, inline="always")
def _op_field(row, fx, q):
    for x in range(row.shape[0]):
        s = np.float32(0.0)
        for i in range(q.shape[0]):
            s += fx[i, x] * q[i]
        row[x] = row[x] * math.exp(s)


@njit(cache=True, fastmath=_FAST, inline="always")
def _op_noise(row, sigma, key, base):
    w = row.shape[0]
    sig = np.float32(sigma)
    for j in range(base >> 1, ((base + w - 1) >> 1) + 1):
        r, th = _gauss_pair(j, key)
        x0 = 2 * j - base
        if 0 <= x0 < w:
            row[x0] += sig * r * math.cos(th)
        if 0 <= x0 + 1 < w:
            row[x0 + 1] += sig * r * math.sin(th)


@njit(cache=True, fastmath=_FAST, inline="always")
def _op_clip(row, lo, hi):
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    for x in range(row.shape[0]):
        row[x] = min(max(row[x], lo32), hi32)


@njit(cache=True, parallel=True)
def resample(
    imgs, out, labs, outl, bmat, cvec, resid, step, has_field, nearest_intensity, fills, lfill,
    codes, params, fx, fq,
):
    """Fill ``out`` (C, D, H, W) and ``outl`` (L, D, H, W); see the module docstring.

    Rows (z, y) run in parallel.  Each row is sampled first, then channel
    ``ch``'s program of fused operations (``codes[ch]``, ``params[ch]``, ended
    by a code -1) runs over the row in tight loops.
    """
    nc = out.shape[0]
    nl = outl.shape[0]
    d, h, w = (out.shape[1], out.shape[2], out.shape[3]) if nc > 0 else (outl.shape[1], outl.shape[2], outl.shape[3])
    ld0, lh0, lw0 = labs.shape[1], labs.shape[2], labs.shape[3]
    mz, my, mx = resid.shape[0], resid.shape[1], resid.shape[2]
    nops = codes.shape[1]
    keys = np.empty((max(nc, 1), nops), np.uint64)
    for ch in range(min(nc, codes.shape[0])):
        for k in range(nops):
            kk = _hash32(np.uint64(np.int64(params[ch, k, 1])) & _MASK)
            keys[ch, k] = _hash32(kk ^ (np.uint64(ch * 0x9E3779B9) & _MASK))
    for zy in prange(d * h):
        z = zy // h
        y = zy - z * h
        row = np.zeros((mx, 3), np.float64)  # the residual along this output row, at the lattice's x nodes
        fz = z / step[0]
        iz0 = min(int(fz), mz - 2) if mz > 1 else 0
        tz = fz - iz0 if mz > 1 else 0.0
        iz1 = iz0 + 1 if mz > 1 else 0
        fy = y / step[1]
        iy0 = min(int(fy), my - 2)
        ty = fy - iy0
        if has_field:
            for j in range(mx):
                for k in range(3):
                    row[j, k] = (resid[iz0, iy0, j, k] * (1.0 - ty) + resid[iz0, iy0 + 1, j, k] * ty) * (1.0 - tz) + (
                        resid[iz1, iy0, j, k] * (1.0 - ty) + resid[iz1, iy0 + 1, j, k] * ty
                    ) * tz
        rz = bmat[0, 0] * z + bmat[0, 1] * y + cvec[0]
        ry = bmat[1, 0] * z + bmat[1, 1] * y + cvec[1]
        rx = bmat[2, 0] * z + bmat[2, 1] * y + cvec[2]
        for x in range(w):
            qz = rz + bmat[0, 2] * x
            qy = ry + bmat[1, 2] * x
            qx = rx + bmat[2, 2] * x
            if has_field:
                fxx = x / step[2]
                ix0 = min(int(fxx), mx - 2)
                tx = fxx - ix0
                qz += row[ix0, 0] * (1.0 - tx) + row[ix0 + 1, 0] * tx
                qy += row[ix0, 1] * (1.0 - tx) + row[ix0 + 1, 1] * tx
                qx += row[ix0, 2] * (1.0 - tx) + row[ix0 + 1, 2] * tx
            if nl > 0:
                nz_ = int(math.floor(qz + 0.5))
                ny_ = int(math.floor(qy + 0.5))
                nx_ = int(math.floor(qx + 0.5))
                inside = 0 <= nz_ < ld0 and 0 <= ny_ < lh0 and 0 <= nx_ < lw0
                for li in range(nl):
                    outl[li, z, y, x] = labs[li, nz_, ny_, nx_] if inside else lfill
            for ch in range(nc):
                if nearest_intensity:
                    nz_ = int(math.floor(qz + 0.5))
                    ny_ = int(math.floor(qy + 0.5))
                    nx_ = int(math.floor(qx + 0.5))
                    if 0 <= nz_ < imgs.shape[1] and 0 <= ny_ < imgs.shape[2] and 0 <= nx_ < imgs.shape[3]:
                        out[ch, z, y, x] = imgs[ch, nz_, ny_, nx_]
                    else:
                        out[ch, z, y, x] = fills[ch]
                else:
                    out[ch, z, y, x] = _sample_linear(imgs, ch, qz, qy, qx, fills[ch])
        base = (z * h + y) * w
        for ch in range(min(nc, codes.shape[0])):
            line = out[ch, z, y]
            for k in range(nops):
                code = codes[ch, k]
                if code < 0:
                    break
                if code == 0:
                    _op_affine(line, np.float32(params[ch, k, 0]), np.float32(params[ch, k, 1]))
                elif code == 1:
                    _op_gamma(line, params[ch, k, 0], params[ch, k, 1], params[ch, k, 2])
                elif code == 2:
                    fi = int(params[ch, k, 0])
                    _op_field(line, fx[fi], fq[fi, :, z, y])
                elif code == 3:
                    _op_noise(line, params[ch, k, 0], keys[ch, k], base)
                else:
                    _op_clip(line, params[ch, k, 0], params[ch, k, 1])
