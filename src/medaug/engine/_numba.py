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
    numba.config.THREADING_LAYER = "workqueue"


def set_threads(n: int) -> None:
    """Use ``n`` threads (capped by what Numba started with), e.g. 1 inside DataLoader workers."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))

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


@njit(cache=True, parallel=True)
def resample(
    imgs, out, labs, outl, bmat, cvec, resid, step, has_field, nearest_intensity, fills, lfill,
    codes, params, fx, fq,
):
    """Fill ``out`` (C, D, H, W) and ``outl`` (L, D, H, W); see the module docstring."""
    nc = out.shape[0]
    nl = outl.shape[0]
    d, h, w = (out.shape[1], out.shape[2], out.shape[3]) if nc > 0 else (outl.shape[1], outl.shape[2], outl.shape[3])
    ld0, lh0, lw0 = labs.shape[1], labs.shape[2], labs.shape[3]
    mz, my, mx = resid.shape[0], resid.shape[1], resid.shape[2]
    nops = codes.shape[0]
    keys = np.empty((nops, max(nc, 1)), np.uint64)
    for k in range(nops):
        for ch in range(max(nc, 1)):
            kk = _hash32(np.uint64(np.int64(params[k, 1])) & _MASK)
            keys[k, ch] = _hash32(kk ^ (np.uint64(ch * 0x9E3779B9) & _MASK))
    for z in prange(d):
        pair_j = np.full((nops, max(nc, 1)), -1, np.int64)
        pair_c = np.zeros((nops, max(nc, 1)), np.float32)
        pair_s = np.zeros((nops, max(nc, 1)), np.float32)
        row = np.zeros((mx, 3), np.float64)  # the residual along this output row, at the lattice's x nodes
        fz = z / step[0]
        iz0 = min(int(fz), mz - 2) if mz > 1 else 0
        tz = fz - iz0 if mz > 1 else 0.0
        iz1 = iz0 + 1 if mz > 1 else 0
        for y in range(h):
            fy = y / step[1]
            iy0 = min(int(fy), my - 2)
            ty = fy - iy0
            if has_field:
                for j in range(mx):
                    for k in range(3):
                        row[j, k] = (resid[iz0, iy0, j, k] * (1.0 - ty) + resid[iz0, iy0 + 1, j, k] * ty) * (1.0 - tz) + (
                            resid[iz1, iy0, j, k] * (1.0 - ty) + resid[iz1, iy0 + 1, j, k] * ty
                        ) * tz
            for x in range(w):
                qz = bmat[0, 0] * z + bmat[0, 1] * y + bmat[0, 2] * x + cvec[0]
                qy = bmat[1, 0] * z + bmat[1, 1] * y + bmat[1, 2] * x + cvec[1]
                qx = bmat[2, 0] * z + bmat[2, 1] * y + bmat[2, 2] * x + cvec[2]
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
                            v = float(imgs[ch, nz_, ny_, nx_])
                        else:
                            v = fills[ch]
                    else:
                        v = _sample_linear(imgs, ch, qz, qy, qx, fills[ch])
                    for k in range(nops):
                        code = codes[k]
                        if code == 0:
                            v = v * params[k, 0] + params[k, 1]
                        elif code == 1:
                            lo = params[k, 1]
                            hi = params[k, 2]
                            t = np.float32((v - lo) / (hi - lo))
                            if t < 0.0:
                                t = np.float32(0.0)
                            v = lo + (hi - lo) * float(t ** np.float32(params[k, 0]))
                        elif code == 2:
                            fi = int(params[k, 0])
                            s = 0.0
                            for i in range(fx.shape[1]):
                                s += fx[fi, i, x] * fq[fi, i, z, y]
                            v = v * float(math.exp(np.float32(s)))
                        elif code == 3:
                            idx = (z * h + y) * w + x
                            j = idx >> 1
                            if pair_j[k, ch] != j:
                                r, th = _gauss_pair(j, keys[k, ch])
                                pair_j[k, ch] = j
                                pair_c[k, ch] = r * math.cos(th)
                                pair_s[k, ch] = r * math.sin(th)
                            v = v + params[k, 0] * (pair_c[k, ch] if idx & 1 == 0 else pair_s[k, ch])
                        else:
                            if v < params[k, 0]:
                                v = params[k, 0]
                            elif v > params[k, 1]:
                                v = params[k, 1]
                        v = np.float32(v)
                    out[ch, z, y, x] = v
