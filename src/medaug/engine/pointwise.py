"""Point-wise intensity operations that the engine can fuse into the resampling sweep.

An operation is a tuple ``(code, p0, p1, p2, p3)`` plus, for fields, separable
factors.  The same operations are implemented twice with the same arithmetic:
in PyTorch here (CPU or CUDA, any shape) and in the Numba kernel
(:mod:`medaug.engine._numba`), so that fused and step-wise results agree.

Noise comes from a counter-based generator: the value at a voxel depends only
on ``(seed, channel, linear voxel index)``, so it is the same whether the volume
is processed whole, in slabs, on CPU or on GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "AFFINE", "GAMMA", "FIELD", "NOISE", "CLIP", "FusedOps", "pack_programs", "apply_ops_torch", "hash_gauss_torch",
]

AFFINE, GAMMA, FIELD, NOISE, CLIP = 0, 1, 2, 3, 4
_MASK = 0xFFFFFFFF


@dataclass
class FusedOps:
    """A small program of point-wise operations on one grid.

    ``fields_x[k]`` has shape (K, W) and ``fields_q[k]`` shape (K, D, H):
    field k at voxel (z, y, x) is ``exp(sum_i fields_x[k][i, x] * fields_q[k][i, z, y])``.
    """

    codes: list[int] = field(default_factory=list)
    params: list[tuple[float, float, float, float]] = field(default_factory=list)
    fields_x: list[np.ndarray] = field(default_factory=list)
    fields_q: list[np.ndarray] = field(default_factory=list)

    def add(self, code: int, *params: float) -> None:
        p = tuple(float(v) for v in params) + (0.0,) * (4 - len(params))
        self.codes.append(code)
        self.params.append(p)  # type: ignore[arg-type]

    def add_field(self, fx: np.ndarray, fq: np.ndarray) -> None:
        self.add(FIELD, len(self.fields_x))
        self.fields_x.append(np.ascontiguousarray(fx, np.float32))
        self.fields_q.append(np.ascontiguousarray(fq, np.float32))

    def extend(self, other: FusedOps) -> None:
        base = len(self.fields_x)
        for code, p in zip(other.codes, other.params):
            if code == FIELD:
                p = (p[0] + base, *p[1:])
            self.codes.append(code)
            self.params.append(p)
        self.fields_x.extend(other.fields_x)
        self.fields_q.extend(other.fields_q)

    def __bool__(self) -> bool:
        return bool(self.codes)



def pack_programs(programs: list[FusedOps], shape3: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Arrays for the Numba kernel: one program of operations per channel.

    Returns
    -------
    codes : (C, K) int64
        Operation codes per channel, padded with -1 (no operation).
    params : (C, K, 4) float64
    fx : (F, M, W) float32 and fq : (F, M, D, H) float32
        The separable factors of every field of every channel (``FIELD``
        parameter 0 indexes them), padded to a common M.
    """
    d, h, w = shape3
    n = max(len(programs), 1)
    k = max([len(p.codes) for p in programs], default=0)
    codes = np.full((n, max(k, 1)), -1, np.int64)
    params = np.zeros((n, max(k, 1), 4), np.float64)
    fields: list[tuple[np.ndarray, np.ndarray]] = []
    for c, prog in enumerate(programs):
        for i, (code, p) in enumerate(zip(prog.codes, prog.params)):
            codes[c, i] = code
            params[c, i] = p
            if code == FIELD:
                params[c, i, 0] = len(fields)
                fields.append((prog.fields_x[int(p[0])], prog.fields_q[int(p[0])]))
    m = max([x.shape[0] for x, _ in fields], default=1)
    fx = np.zeros((max(len(fields), 1), m, w), np.float32)
    fq = np.zeros((max(len(fields), 1), m, d, h), np.float32)
    for i, (x, q) in enumerate(fields):
        fx[i, : x.shape[0]] = x
        fq[i, : q.shape[0]] = q.reshape(q.shape[0], d, h)
    return codes, params, fx, fq


def _hash32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def noise_key(seed: int, channel: int) -> int:
    """The 32-bit stream key for a (seed, channel) pair (same in every backend)."""
    k = _hash32(torch.tensor(int(seed) & _MASK, dtype=torch.int64))
    k = _hash32(k ^ ((channel * 0x9E3779B9) & _MASK))
    return int(k)


def hash_gauss_torch(index: torch.Tensor, key: int) -> torch.Tensor:
    """Standard normal values for int64 voxel indices.

    Box–Muller on a 32-bit hash of the pair ``j = index // 2``: voxel ``2j``
    gets the cosine branch, ``2j + 1`` the sine branch (float32 arithmetic,
    as in the Numba kernel).
    """
    j = index >> 1
    a = _hash32(((2 * j) & _MASK) ^ key)
    b = _hash32(((2 * j + 1) & _MASK) ^ key)
    scale = torch.tensor(2.3283064e-10, dtype=torch.float32)
    u1 = (a.to(torch.float32) + 1.0) * scale
    u2 = b.to(torch.float32) * scale
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = 6.2831855 * u2
    return torch.where((index & 1) == 0, r * torch.cos(theta), r * torch.sin(theta))


def apply_ops_torch(
    values: torch.Tensor, ops: FusedOps, *, channel: int = 0, z0: int = 0, full_shape: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Apply ``ops`` to ``values`` (shape (D, H, W) or (H, W); a z-slab starting at ``z0``)."""
    v = values.to(torch.float32)
    shape3 = tuple(v.shape) if v.ndim == 3 else (1, *v.shape)
    full = tuple(full_shape) if full_shape is not None else shape3
    if len(full) == 2:
        full = (1, *full)
    v3 = v.reshape(shape3)
    dev = v.device
    for code, p in zip(ops.codes, ops.params):
        if code == AFFINE:
            v3 = v3 * p[0] + p[1]
        elif code == GAMMA:
            lo, hi = p[1], p[2]
            t = torch.clamp((v3 - lo) / (hi - lo), min=0.0)
            v3 = lo + (hi - lo) * torch.pow(t, p[0])
        elif code == FIELD:
            fx = torch.from_numpy(ops.fields_x[int(p[0])]).to(dev)
            fq = torch.from_numpy(ops.fields_q[int(p[0])]).to(dev).reshape(fx.shape[0], full[0], full[1])
            fq = fq[:, z0 : z0 + shape3[0]]
            poly = torch.einsum("kzy,kx->zyx", fq, fx)
            v3 = v3 * torch.exp(poly)
        elif code == NOISE:
            key = noise_key(int(p[1]), channel)
            d, h, w = shape3
            idx = torch.arange(d * h * w, device=dev, dtype=torch.int64) + z0 * h * w
            v3 = v3 + (p[0] * hash_gauss_torch(idx, key)).to(torch.float32).reshape(shape3)
        elif code == CLIP:
            v3 = torch.clamp(v3, p[0], p[1])
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown fused op {code}")
    return v3.reshape(v.shape).to(torch.float32)
