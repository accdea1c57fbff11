"""The fused resampling sweep, compiled with Numba (CPU), over one sample or a batch.

One pass over the output rows of every sample: for each row the input
coordinates are computed on the fly (base affine plus a coarse residual field
interpolated trilinearly), every intensity channel is sampled (linear or
nearest, with its own fill value) and run through the fused point-wise
operations, and every label channel is sampled nearest-neighbour from the same
coordinates.  No sampling grid is ever stored.  Rows of all samples run in
parallel.  :mod:`medaug.engine.resample` holds the PyTorch twin.

Each row is processed in short loops without branches that the compiler
vectorises: the coordinates, then the gathers, then each point-wise
operation.  Power, exp, log, sine and cosine are evaluated with the Cephes
single-precision polynomials (:func:`_expf`, :func:`_logf`, :func:`_sincos_turn`),
which are accurate to about one float32 ulp and vectorise, where the libm
calls do not.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading

import numba
import numpy as np
from numba import njit, prange

from ._jit import cache_kernels

#: The shared library of oneTBB that Numba's ``tbb`` layer links against, per system.
_TBB_LIBRARY = {"Linux": "libtbb.so.12", "Windows": "tbb12.dll", "Darwin": "libtbb.12.dylib"}


def _load_tbb() -> bool:
    """Whether Numba's ``tbb`` layer can run here, after loading the oneTBB library of the ``tbb`` package.

    pip puts the library in the environment's ``lib`` folder, which the loader does not search; once it is
    loaded by its full path, Numba's layer resolves to it by name (a conda environment finds it unaided).
    Numba's own checks then decide: its ``tbbpool`` extension loads, and the library is recent enough.
    """
    import ctypes
    import platform
    import warnings
    from importlib import metadata

    want = _TBB_LIBRARY.get(platform.system())
    try:
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == want:
            try:
                ctypes.CDLL(str(f.locate()), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
            except OSError:
                return False
            break
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Numba warns about an old TBB, and we fall back quietly
            import numba.np.ufunc.tbbpool  # noqa: F401
            from numba.np.ufunc import parallel

            check = getattr(parallel, "_check_tbb_version_compatible", None)
            if check is not None:
                check()  # raises ImportError for a TBB older than 2021.6
    except (ImportError, OSError, ValueError):
        return False
    return True


def threading_layer() -> str:
    """The Numba threading layer the sweep uses: ``NUMBA_THREADING_LAYER`` if set, else ``tbb`` or ``workqueue``.

    ``tbb`` (a dependency on Linux and Windows x86-64) hands a parallel loop to its threads in about a
    microsecond, is safe with several Python threads and with a fork from the main thread (DataLoader
    workers).  ``workqueue`` (built into Numba, the fallback) is fork-safe but takes ~0.15 ms per launch on
    a virtual machine and must not be entered from two threads at once.  GNU OpenMP (``omp``) is never
    chosen: a process that forks after using it aborts.
    """
    chosen = os.environ.get("NUMBA_THREADING_LAYER")
    if chosen:
        if chosen in ("tbb", "safe", "threadsafe", "default"):
            _load_tbb()  # so that Numba finds the pip package's library (else it would fail, or pick omp)
        return chosen
    return "tbb" if _load_tbb() else "workqueue"


numba.config.THREADING_LAYER = threading_layer()  # type: ignore[attr-defined]

#: Held around every parallel launch when the layer may be ``workqueue``, which aborts the process if two
#: threads enter it at once (tbb and omp are thread-safe: no lock).
_LAUNCH_LOCK = threading.RLock()


def launch_guard() -> contextlib.AbstractContextManager:
    """The context a parallel kernel launch runs in: a lock unless the layer is thread-safe (``tbb``, ``omp``)."""
    if numba.config.THREADING_LAYER in ("tbb", "omp", "safe", "threadsafe"):  # type: ignore[attr-defined]
        return contextlib.nullcontext()
    return _LAUNCH_LOCK

_CACHE = cache_kernels()


def set_threads(n: int) -> None:
    """Use ``n`` threads (capped by what Numba started with), e.g. 1 inside DataLoader workers."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


_MASK = np.uint64(0xFFFFFFFF)
#: Output rows per parallel work item (the scratch rows are allocated once per item).
_CHUNK = 8
_F = np.float32
# no 'reassoc' (it would undo the two-constant range reductions of the polynomials), no 'afn' (no libm calls
# left to approximate), no 'nnan'/'ninf' (fills and clips compare values)
_FAST = {"contract", "arcp", "nsz"}


@njit(cache=_CACHE, inline="always")
def _hash32(x):
    """The 32-bit integer hash of the noise streams (as :func:`medaug.engine.pointwise._hash32`), in uint32."""
    x = np.uint32(x ^ (x >> np.uint32(16)))
    x = np.uint32(x * np.uint32(0x7FEB352D))
    x = np.uint32(x ^ (x >> np.uint32(15)))
    x = np.uint32(x * np.uint32(0x846CA68B))
    return np.uint32(x ^ (x >> np.uint32(16)))


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _expf(x):
    """exp(x) in float32 (Cephes ``expf``: relative error below 1 ulp for |x| < 87; clamped outside)."""
    x = min(max(x, _F(-87.0)), _F(88.0))
    # np.floor keeps float32 (math.floor gives an int64, which turns the reduction into float64 and stops vectorising)
    n = np.floor(x * _F(1.44269504088896341) + _F(0.5))
    r = x - n * _F(0.693359375)
    r = r - n * _F(-2.12194440e-4)
    p = _F(1.9875691500e-4)
    p = p * r + _F(1.3981999507e-3)
    p = p * r + _F(8.3334519073e-3)
    p = p * r + _F(4.1665795894e-2)
    p = p * r + _F(1.6666665459e-1)
    p = p * r + _F(5.0000001201e-1)
    y = p * (r * r) + r + _F(1.0)
    scale = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)  # 2**n
    return y * scale


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _logf(x):
    """log(x) in float32 for normal x > 0 (Cephes ``logf``: absolute error below 3e-7 near 1, 1 ulp elsewhere)."""
    bits = np.float32(x).view(np.int32)
    e = np.int32(((bits >> np.int32(23)) & np.int32(0xFF)) - np.int32(126))
    m = np.int32((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000)).view(np.float32)  # mantissa in [0.5, 1)
    small = m < _F(0.70710678118654752440)
    ef = _F(e) - (_F(1.0) if small else _F(0.0))
    m = (m + m if small else m) - _F(1.0)
    z = m * m
    p = _F(7.0376836292e-2)
    p = p * m + _F(-1.1514610310e-1)
    p = p * m + _F(1.1676998740e-1)
    p = p * m + _F(-1.2420140846e-1)
    p = p * m + _F(1.4249322787e-1)
    p = p * m + _F(-1.6668057665e-1)
    p = p * m + _F(2.0000714765e-1)
    p = p * m + _F(-2.4999993993e-1)
    p = p * m + _F(3.3333331174e-1)
    y = p * m * z + ef * _F(-2.12194440e-4) - _F(0.5) * z
    return m + y + ef * _F(0.693359375)


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _sincos_turn(u):
    """(cos 2πu, sin 2πu) in float32 for u in [0, 1]: quadrant from 4u, Cephes polynomials on [-π/4, π/4]."""
    v = u * _F(4.0)
    k = np.int32(v + _F(0.5))  # the nearest quarter turn (v >= 0: truncation is floor)
    f = (v - _F(k)) * _F(1.5707963267948966)
    z = f * f
    s = f + f * z * (_F(-1.6666654611e-1) + z * (_F(8.3321608736e-3) + z * _F(-1.9515295891e-4)))
    c = _F(1.0) - _F(0.5) * z + z * z * (
        _F(4.166664568298827e-2) + z * (_F(-1.388731625493765e-3) + z * _F(2.443315711809948e-5))
    )
    # quarter turn k: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c); single selects, which vectorise
    swap = (k & np.int32(1)) != 0
    cb = s if swap else c
    sb = c if swap else s
    neg_c = (((k + np.int32(1)) >> np.int32(1)) & np.int32(1)) != 0
    neg_s = (k & np.int32(2)) != 0
    return (-cb if neg_c else cb), (-sb if neg_s else sb)


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _gauss_pair(j, key):
    """Box–Muller on the hash of pair ``j``: the normal values of voxels 2j (cosine) and 2j+1 (sine)."""
    i2 = np.uint32(np.uint64(2) * np.uint64(j) & _MASK)  # the voxel index modulo 2**32
    a = _hash32(np.uint32(i2 ^ key))
    b = _hash32(np.uint32(np.uint32(i2 + np.uint32(1)) ^ key))
    u1 = (np.float32(a) + _F(1.0)) * _F(2.3283064e-10)
    u2 = np.float32(b) * _F(2.3283064e-10)
    r = math.sqrt(_F(-2.0) * _logf(u1))
    c, s = _sincos_turn(u2)
    return r * c, r * s


# ---------------------------------------------------------------- one row
@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _row_coords(b, z, y, bmat, cvec, rt, lattice, step, has_field, flat, qz, qy, qx, nodes, jx, tx):
    """Input coordinates (z, y, x) of output row (z, y) of sample ``b``: the affine, plus the lattice residual.

    ``rt`` is the residual lattice with its component axis before x, ``(B, MZ, MY, 3, MX)``; ``nodes`` (3, MX) scratch.
    ``jx[b, x]`` is the lattice cell of column ``x`` and ``tx[b, x]`` the column's position in it: the same for every
    row.  Where ``flat[b]`` (a 2D map: the input z of every voxel is its output z) the z coordinate is set, not computed.
    """
    w = qx.shape[0]
    ry = bmat[b, 1, 0] * z + bmat[b, 1, 1] * y + cvec[b, 1]
    rx = bmat[b, 2, 0] * z + bmat[b, 2, 1] * y + cvec[b, 2]
    by, bx = bmat[b, 1, 2], bmat[b, 2, 2]
    if flat[b]:
        zf = np.float64(z)
        for x in range(w):
            qz[x] = zf
    else:
        rz = bmat[b, 0, 0] * z + bmat[b, 0, 1] * y + cvec[b, 0]
        bz = bmat[b, 0, 2]
        for x in range(w):
            qz[x] = rz + bz * x
    for x in range(w):
        qy[x] = ry + by * x
        qx[x] = rx + bx * x
    if not has_field[b]:
        return
    mz, my, mx = lattice[b, 0], lattice[b, 1], lattice[b, 2]
    fz = z / step[b, 0]
    iz0 = min(int(fz), mz - 2)
    tz = fz - iz0
    fy = y / step[b, 1]
    iy0 = min(int(fy), my - 2)
    ty = fy - iy0
    a00 = (1.0 - ty) * (1.0 - tz)
    a01 = ty * (1.0 - tz)
    a10 = (1.0 - ty) * tz
    a11 = ty * tz
    k0 = 1 if flat[b] else 0  # a flat map's z residual is zero
    for k in range(k0, 3):  # the residual along this row at the lattice's x nodes (rt: x innermost, so this vectorises)
        for j in range(mx):
            nodes[k, j] = (rt[b, iz0, iy0, k, j] * a00 + rt[b, iz0, iy0 + 1, k, j] * a01
                           + rt[b, iz0 + 1, iy0, k, j] * a10 + rt[b, iz0 + 1, iy0 + 1, k, j] * a11)
    if not flat[b]:
        for x in range(w):
            j = jx[b, x]
            qz[x] += nodes[0, j] + (nodes[0, j + 1] - nodes[0, j]) * tx[b, x]
    for x in range(w):  # one loop over the row (a loop per cell is too short to vectorise)
        j = jx[b, x]
        t = tx[b, x]
        qy[x] += nodes[1, j] + (nodes[1, j + 1] - nodes[1, j]) * t
        qx[x] += nodes[2, j] + (nodes[2, j + 1] - nodes[2, j]) * t


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _plan_nearest(d0, h0, w0, qz, qy, qx, offn):
    """Flat index of the nearest input voxel of each column, -1 outside: shared by every channel sampled nearest."""
    for x in range(offn.shape[0]):
        iz = int(np.floor(qz[x] + 0.5))
        iy = int(np.floor(qy[x] + 0.5))
        ix = int(np.floor(qx[x] + 0.5))
        inside = 0 <= iz < d0 and 0 <= iy < h0 and 0 <= ix < w0
        offn[x] = (iz * h0 + iy) * w0 + ix if inside else -1


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _plan_linear(d0, h0, w0, qz, qy, qx, off, az, ay, ax):
    """Flat index of each column's first corner and its weights, shared by every channel sampled linearly.

    ``off[x]`` is -1 where a corner lies outside the input (those columns take the slow path of
    :func:`_linear_at`).  In 2D (``d0 == 1``) the unit z axis is never interpolated.
    """
    if d0 == 1:
        for x in range(off.shape[0]):
            fy = np.floor(qy[x])
            fx = np.floor(qx[x])
            y0 = int(fy)
            x0 = int(fx)
            ay[x] = np.float32(qy[x] - fy)
            ax[x] = np.float32(qx[x] - fx)
            az[x] = _F(0.0)
            off[x] = y0 * w0 + x0 if (0 <= y0 and y0 + 1 < h0 and 0 <= x0 and x0 + 1 < w0) else -1
        return
    for x in range(off.shape[0]):
        fz = np.floor(qz[x])
        fy = np.floor(qy[x])
        fx = np.floor(qx[x])
        z0 = int(fz)
        y0 = int(fy)
        x0 = int(fx)
        az[x] = np.float32(qz[x] - fz)
        ay[x] = np.float32(qy[x] - fy)
        ax[x] = np.float32(qx[x] - fx)
        inside = 0 <= z0 and z0 + 1 < d0 and 0 <= y0 and y0 + 1 < h0 and 0 <= x0 and x0 + 1 < w0
        off[x] = (z0 * h0 + y0) * w0 + x0 if inside else -1


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _gather_nearest(img, line, offn, fill):
    """Values of ``img`` (d0, h0, w0, C-contiguous) at the planned nearest indices; ``fill`` outside."""
    flat = img.reshape(img.size)
    for x in range(line.shape[0]):
        p = offn[x]
        line[x] = flat[p] if p >= 0 else fill


@njit(cache=_CACHE, inline="always")
def _at(img, z, y, x, fill):
    d0, h0, w0 = img.shape
    return img[z, y, x] if (0 <= z < d0 and 0 <= y < h0 and 0 <= x < w0) else fill


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _linear_at(img, qz, qy, qx, f):
    """Linear value of ``img`` at one point near or beyond its border: outside voxels count as ``f``."""
    d0 = img.shape[0]
    fy = np.floor(qy)
    fx = np.floor(qx)
    y0 = int(fy)
    x0 = int(fx)
    ay = np.float32(qy - fy)
    ax = np.float32(qx - fx)
    z0 = 0
    az = _F(0.0)
    if d0 != 1:
        fz = np.floor(qz)
        z0 = int(fz)
        az = np.float32(qz - fz)
    a, b_ = _at(img, z0, y0, x0, f), _at(img, z0, y0, x0 + 1, f)
    c, d = _at(img, z0, y0 + 1, x0, f), _at(img, z0, y0 + 1, x0 + 1, f)
    top = a + (b_ - a) * ax
    bot = c + (d - c) * ax
    s0 = top + (bot - top) * ay
    if d0 == 1:
        return s0
    e, g = _at(img, z0 + 1, y0, x0, f), _at(img, z0 + 1, y0, x0 + 1, f)
    h, k = _at(img, z0 + 1, y0 + 1, x0, f), _at(img, z0 + 1, y0 + 1, x0 + 1, f)
    top1 = e + (g - e) * ax
    bot1 = h + (k - h) * ax
    s1 = top1 + (bot1 - top1) * ay
    return s0 + (s1 - s0) * az


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _gather_linear(img, line, off, az, ay, ax, qz, qy, qx, fill):
    """Linear (bi- or trilinear) values of ``img`` (d0, h0, w0, C-contiguous) at the planned corners and weights."""
    d0, h0, w0 = img.shape
    flat = img.reshape(img.size)
    f = np.float32(fill)
    hw = h0 * w0
    if d0 == 1:
        for x in range(line.shape[0]):
            p = off[x]
            if p >= 0:
                a, b_ = flat[p], flat[p + 1]
                c, d = flat[p + w0], flat[p + w0 + 1]
                top = a + (b_ - a) * ax[x]
                bot = c + (d - c) * ax[x]
                line[x] = top + (bot - top) * ay[x]
            else:
                line[x] = _linear_at(img, qz[x], qy[x], qx[x], f)
        return
    for x in range(line.shape[0]):
        p = off[x]
        if p >= 0:
            a, b_ = flat[p], flat[p + 1]
            c, d = flat[p + w0], flat[p + w0 + 1]
            e, g = flat[p + hw], flat[p + hw + 1]
            h, k = flat[p + hw + w0], flat[p + hw + w0 + 1]
            top0 = a + (b_ - a) * ax[x]
            bot0 = c + (d - c) * ax[x]
            top1 = e + (g - e) * ax[x]
            bot1 = h + (k - h) * ax[x]
            s0 = top0 + (bot0 - top0) * ay[x]
            s1 = top1 + (bot1 - top1) * ay[x]
            line[x] = s0 + (s1 - s0) * az[x]
        else:
            line[x] = _linear_at(img, qz[x], qy[x], qx[x], f)


# ---------------------------------------------------------------- point-wise operations on one row
@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _op_affine(row, a, b):
    for x in range(row.shape[0]):
        row[x] = row[x] * a + b


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _op_gamma(row, g, lo, hi):
    span = np.float32(hi - lo)
    inv = np.float32(1.0 / (hi - lo))
    lo32 = np.float32(lo)
    g32 = np.float32(g)
    tiny = _F(1.1754944e-38)
    for x in range(row.shape[0]):
        t = max((row[x] - lo32) * inv, _F(0.0))
        p = _expf(g32 * _logf(max(t, tiny)))  # evaluated on every voxel, then selected: the loop stays branch-free
        row[x] = lo32 + span * (p if t >= tiny else _F(0.0))  # 0 (and subnormals) to the power g: 0


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _op_field(row, fx, q, buf):
    """Multiply by ``exp(sum_i fx[i, x] q[i])``; the sum is built term by term in ``buf`` (loops over x vectorise)."""
    w = row.shape[0]
    for x in range(w):
        buf[x] = _F(0.0)
    for i in range(q.shape[0]):
        qi = q[i]
        for x in range(w):
            buf[x] += fx[i, x] * qi
    for x in range(w):
        row[x] = row[x] * _expf(buf[x])


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _op_noise(row, sigma, key, base, buf):
    """Add ``sigma`` × the counter-based normal of each voxel (linear index ``base + x``)."""
    w = row.shape[0]
    j0 = base >> 1
    for i in range(((base + w - 1) >> 1) - j0 + 1):
        c, s = _gauss_pair(j0 + i, key)
        buf[2 * i] = c
        buf[2 * i + 1] = s
    sig = np.float32(sigma)
    off = base & 1
    for x in range(w):
        row[x] += sig * buf[x + off]


@njit(cache=_CACHE, inline="always", fastmath=_FAST)
def _op_clip(row, lo, hi):
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    for x in range(row.shape[0]):
        row[x] = min(max(row[x], lo32), hi32)


@njit(cache=_CACHE)
def _setup(nb, nc, w, nops, codes, params, bmat, cvec, resid, lattice, step, has_field):
    """Each channel's noise keys; the lattice cell of each output column and the column's position in it; which
    samples' maps keep z (2D maps, whose z coordinates :func:`_row_coords` then sets instead of computing).

    Compiled apart from :func:`resample`: inside a ``parallel=True`` function every ``np.zeros`` becomes a
    parallel loop of its own, and each launch hands work to the thread pool (about 0.15 ms with the
    ``workqueue`` layer on a virtual machine, about 1 µs with ``tbb``).
    """
    keys = np.empty((nb, max(nc, 1), nops), np.uint32)
    for b in range(nb):
        for ch in range(min(nc, codes.shape[1])):
            for k in range(nops):
                kk = _hash32(np.uint32(np.uint64(np.int64(params[b, ch, k, 1])) & _MASK))
                keys[b, ch, k] = _hash32(np.uint32(kk ^ np.uint32(np.uint64(ch * 0x9E3779B9) & _MASK)))
    jx = np.zeros((nb, w), np.int64)  # the lattice cell of each output column
    tx = np.zeros((nb, w))  # the position of each output column in its cell
    for b in range(nb):
        if has_field[b]:
            mx = lattice[b, 2]
            st = step[b, 2]
            for x in range(w):  # cell j: j <= x / st < j + 1 (the last cell takes the rest of the row)
                j = min(int(x / st), mx - 2)
                jx[b, x] = j
                tx[b, x] = x / st - j
    rt = np.ascontiguousarray(resid.transpose(0, 1, 2, 4, 3))  # (B, MZ, MY, 3, MX)
    # flat: the map keeps z (a 2D map padded to 3D): z row of the affine (1, 0, 0 | 0), no z residual
    flat = np.zeros(nb, np.bool_)
    for b in range(nb):
        f = bmat[b, 0, 0] == 1.0 and bmat[b, 0, 1] == 0.0 and bmat[b, 0, 2] == 0.0 and cvec[b, 0] == 0.0
        if f and has_field[b]:
            for i in range(resid.shape[1]):
                for j in range(resid.shape[2]):
                    for k in range(resid.shape[3]):
                        if resid[b, i, j, k, 0] != 0.0:
                            f = False
        flat[b] = f
    return keys, jx, tx, rt, flat


@njit(cache=_CACHE, parallel=True)
def resample(
    imgs, isrc, out, labs, lsrc, outl, bmat, cvec, resid, lattice, step, has_field, nearest_intensity, fills, lfill,
    codes, params, fx, fq,
):
    """Fill ``out`` (B, C, D, H, W) and ``outl`` (B, L, D, H, W) for a batch of B samples.

    Parameters
    ----------
    imgs : (N, C, d0, h0, w0) float32
        The distinct intensity inputs; sample ``b`` reads ``imgs[isrc[b]]``.
    labs : (NL, L, d0, h0, w0)
        The distinct label inputs; sample ``b`` reads ``labs[lsrc[b]]``.
    bmat, cvec : (B, 3, 3), (B, 3) float64
        Base affine of each sample, output array index → input array index (z, y, x).
    resid, lattice, step, has_field : (B, MZ, MY, MX, 3) float32, (B, 3) int64, (B, 3) float64, (B,) bool
        Each sample's residual lattice (its own node counts, padded to the largest), node spacing in output voxels.
    fills : (B, C) float64
        Fill value of each intensity channel.
    codes, params : (B, C, K) int64, (B, C, K, 4) float64
        Each channel's program of point-wise operations, ended by a code -1.
    fx, fq : (B, F, M, W), (B, F, M, D, H) float32
        Separable factors of the bias fields.

    Rows (b, z, y) of every sample run in parallel, in chunks of ``_CHUNK``: each
    row's coordinates are computed once, then the input indices and weights once
    for all channels (nearest for labels, linear for images), every channel is
    gathered from them, and the programs run over the fresh row.  The inputs must
    be C-contiguous.
    """
    nb = bmat.shape[0]
    nc = out.shape[1]
    nl = outl.shape[1]
    if nc > 0:
        d, h, w = out.shape[2], out.shape[3], out.shape[4]
    else:
        d, h, w = outl.shape[2], outl.shape[3], outl.shape[4]
    nops = codes.shape[2]
    mxmax = resid.shape[3]
    keys, jx, tx, rt, flat = _setup(nb, nc, w, nops, codes, params, bmat, cvec, resid, lattice, step, has_field)
    in_shape = imgs.shape[2:] if nc > 0 else labs.shape[2:]
    d0, h0, w0 = in_shape[0], in_shape[1], in_shape[2]
    rows = d * h
    total = nb * rows
    chunks = (total + _CHUNK - 1) // _CHUNK
    for c in prange(chunks):  # the scratch rows are allocated once per chunk of rows
        qz = np.empty(w)
        qy = np.empty(w)
        qx = np.empty(w)
        nodes = np.empty((3, mxmax))
        offn = np.empty(w, np.int64)
        off = np.empty(w, np.int64)
        az = np.empty(w, np.float32)
        ay = np.empty(w, np.float32)
        ax = np.empty(w, np.float32)
        buf = np.empty(w + 2, np.float32)
        for r in range(c * _CHUNK, min(total, (c + 1) * _CHUNK)):
            b = r // rows
            zy = r - b * rows
            z = zy // h
            y = zy - z * h
            _row_coords(b, z, y, bmat, cvec, rt, lattice, step, has_field, flat, qz, qy, qx, nodes, jx, tx)
            if nl > 0 or (nc > 0 and nearest_intensity):
                _plan_nearest(d0, h0, w0, qz, qy, qx, offn)
            for li in range(nl):
                _gather_nearest(labs[lsrc[b], li], outl[b, li, z, y], offn, lfill)
            if nc > 0 and not nearest_intensity:
                _plan_linear(d0, h0, w0, qz, qy, qx, off, az, ay, ax)
            for ch in range(nc):
                src = imgs[isrc[b], ch]
                if nearest_intensity:
                    _gather_nearest(src, out[b, ch, z, y], offn, np.float32(fills[b, ch]))
                else:
                    _gather_linear(src, out[b, ch, z, y], off, az, ay, ax, qz, qy, qx, fills[b, ch])
            base = (z * h + y) * w
            for ch in range(min(nc, codes.shape[1])):
                line = out[b, ch, z, y]
                for k in range(nops):
                    code = codes[b, ch, k]
                    if code < 0:
                        break
                    if code == 0:
                        _op_affine(line, np.float32(params[b, ch, k, 0]), np.float32(params[b, ch, k, 1]))
                    elif code == 1:
                        _op_gamma(line, params[b, ch, k, 0], params[b, ch, k, 1], params[b, ch, k, 2])
                    elif code == 2:
                        fi = int(params[b, ch, k, 0])
                        _op_field(line, fx[b, fi], fq[b, fi, :, z, y], buf)
                    elif code == 3:
                        _op_noise(line, params[b, ch, k, 0], keys[b, ch, k], base, buf)
                    else:
                        _op_clip(line, params[b, ch, k, 0], params[b, ch, k, 1])
