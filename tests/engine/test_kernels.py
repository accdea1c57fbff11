"""The compiled sweep's own arithmetic: float32 power, exp, log, sine and cosine; the compile note and cache folder."""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medaug.engine import _jit
from medaug.engine.pointwise import FusedOps, apply_ops_torch
from medaug.engine.resample import Coordinates, ResampleOptions, resample_arrays

numba = pytest.importorskip("numba")
kernels = importlib.import_module("medaug.engine._numba")


@numba.njit
def _apply(x, which):
    out = np.empty((2, x.size), np.float32)
    for i in range(x.size):
        v = np.float32(x[i])
        if which == 0:
            out[0, i] = kernels._expf(v)
        elif which == 1:
            out[0, i] = kernels._logf(v)
        else:
            c, s = kernels._sincos_turn(v)
            out[0, i], out[1, i] = c, s
    return out


def test_exp_log_sincos_keep_float32_accuracy():
    rng = np.random.default_rng(0)
    x = rng.uniform(-80, 80, 20000).astype(np.float32)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(_apply(x, 0)[0] - ref) / ref) < 2.5e-7  # ~2 ulp
    y = np.exp(rng.uniform(-80, 80, 20000)).astype(np.float32)
    err = np.abs(_apply(y, 1)[0] - np.log(y.astype(np.float64)))
    assert np.max(err / np.maximum(np.abs(np.log(y.astype(np.float64))), 1.0)) < 2.5e-7
    u = rng.uniform(0, 1, 20000).astype(np.float32)
    cs = _apply(u, 2)
    turn = 2 * np.pi * u.astype(np.float64)
    assert np.max(np.abs(cs[0] - np.cos(turn))) < 3e-7 and np.max(np.abs(cs[1] - np.sin(turn))) < 3e-7


def _identity(shape):
    d, h, w = shape
    return Coordinates(np.eye(3), np.zeros(3), np.zeros((2, 2, 2, 3), np.float32), np.ones(3), False, shape, shape)


@settings(max_examples=25, deadline=None)
@given(gamma=st.floats(0.3, 3.0), std=st.floats(0.0, 0.5), seed=st.integers(0, 2**40), coef=st.floats(-1.0, 1.0),
       offset=st.integers(0, 7))
def test_numba_and_torch_twins_agree_on_point_wise_programs(gamma, std, seed, coef, offset):
    shape = (3, 5, 37 + offset)  # odd rows: noise pairs straddle rows
    values = np.random.default_rng(seed % 1000).uniform(-0.2, 1.2, shape).astype(np.float32)
    ops = FusedOps()
    ops.add(1, gamma, 0.0, 1.0)
    ops.add(3, std, seed)
    z, y, x = (np.linspace(-1, 1, n) for n in shape)
    ops.add_field(np.stack([np.ones_like(x), x]), np.stack([coef * np.outer(z, y), np.full((3, 5), 0.5 * coef)]))
    ops.add(4, 0.0, 1.0)
    ops.add(0, 2.0, -0.5)
    fused, _ = resample_arrays(_identity(shape), [values[None]], [[0.0]], [], 0, [ops], ResampleOptions(backend="numba"))
    twin = apply_ops_torch(__import__("torch").from_numpy(values), ops).numpy()
    np.testing.assert_allclose(fused[0][0], twin, rtol=2e-6, atol=2e-6)


def test_the_compile_note_is_printed_once_and_not_when_quiet(capsys, monkeypatch):
    assert _jit.NOTE is not None

    def make(name):
        def f(x):
            return x + 1

        f.__module__ = name
        return numba.njit(f)

    monkeypatch.setattr(_jit.NOTE, "said", False)
    monkeypatch.setenv("MEDAUG_QUIET", "1")
    make("medaug.fake")(1)
    assert _jit.MESSAGE not in capsys.readouterr().err
    monkeypatch.delenv("MEDAUG_QUIET")
    make("other.module")(1)
    assert _jit.MESSAGE not in capsys.readouterr().err
    make("medaug.fake")(1)
    make("medaug.fake")(2)
    assert capsys.readouterr().err.count(_jit.MESSAGE) == 1


def test_a_read_only_install_caches_under_the_user_cache(tmp_path, monkeypatch):
    ro = tmp_path / "site" / "medaug"
    (ro / "engine").mkdir(parents=True)
    os.chmod(ro / "engine", 0o555)
    monkeypatch.setattr(_jit, "_PACKAGE", ro)
    monkeypatch.setattr(_jit, "_decided", None)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)
    try:
        if os.access(ro / "engine", os.W_OK):  # root ignores permissions
            pytest.skip("cannot make a read-only folder as this user")
        assert _jit.cache_kernels() is True
        assert numba.config.CACHE_DIR == str(tmp_path / "cache" / "medaug" / "numba")
    finally:
        os.chmod(ro / "engine", 0o755)


CHILD = """
import sys
import medaug.engine._jit
medaug.engine._jit.cache_kernels()  # installs the note, as the kernel modules do
sys.path.insert(0, sys.argv[1])
import medaug_tmp_kernel
print(medaug_tmp_kernel.twice(2.0))
"""


def test_the_note_comes_with_a_real_compile_not_with_a_cache_load(tmp_path):
    """Two children run one cached medaug kernel: the first compiles (note), the second loads it (no note)."""
    import subprocess

    source = tmp_path / "medaug_tmp_kernel.py"
    source.write_text("from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MEDAUG_QUIET", None)
    runs = [subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.strip() == "4.0" and runs[0].stderr.count(_jit.MESSAGE) == 1
    assert _jit.MESSAGE not in runs[1].stderr


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(2, 6), min_size=2, max_size=3), seed=st.integers(0, 1000))
def test_lattice_check_interpolates_as_scipy_order_1(shape, seed):
    """The lattice check's value at each checked cell centre (the mean of the cell's corner nodes) is scipy's order-1."""
    from scipy.ndimage import map_coordinates

    from medaug.engine.resample import _lattice_points

    counts = tuple(shape)
    step = tuple(float(v) for v in np.random.default_rng(seed).integers(1, 5, len(counts)))
    points, corners = _lattice_points(counts, step)
    nodes = int(np.prod(counts))
    centres = points[nodes:] / np.asarray(step)  # in node units
    values = np.random.default_rng(seed).normal(size=(*counts, 2))
    ref = np.stack([map_coordinates(values[..., c], centres.T, order=1) for c in range(2)], 1)
    np.testing.assert_allclose(values.reshape(nodes, 2)[corners].mean(axis=1), ref, atol=1e-12)
    np.testing.assert_array_equal(points[:nodes] / np.asarray(step), np.indices(counts).reshape(len(counts), -1).T)


@pytest.mark.parametrize("zrow, zres", [
    ((1.0, 0.0, 0.0, 0.0), 0.0),    # keeps z: the sweep sets z instead of computing it
    ((1.0, 0.0, 0.0, 0.0), 0.3),    # keeps z in its affine, but the residual moves z
    ((1.0, 0.02, 0.0, 0.25), 0.0),  # the affine moves z
])
def test_maps_that_keep_z_and_maps_that_move_it_agree_with_the_torch_twin(zrow, zres):
    """The z shortcut of 2D maps (z row of the affine 1, 0, 0 | 0 and no z residual) is taken only where it holds."""
    shape = (6, 20, 24)
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, shape).astype(np.float32)
    label = rng.integers(0, 4, shape).astype(np.uint8)
    bmat = np.array([zrow[:3], [0.0, 0.98, 0.1], [0.0, -0.1, 0.98]])
    cvec = np.array([zrow[3], 0.7, 1.3])
    resid = rng.uniform(-0.5, 0.5, (3, 4, 5, 3)).astype(np.float32)
    resid[..., 0] *= zres
    coords = Coordinates(bmat, cvec, resid, np.array([2.5, 6.5, 5.75]), True, shape, shape)
    out = {}
    for backend in ("numba", "torch"):
        imgs, labs = resample_arrays(coords, [image[None]], [[0.0]], [label], 0, [FusedOps()],
                                     ResampleOptions(backend=backend))
        out[backend] = (np.asarray(imgs[0]), np.asarray(labs[0]))
    np.testing.assert_allclose(out["numba"][0], out["torch"][0], atol=2e-5)
    assert np.mean(out["numba"][1] != out["torch"][1]) < 1e-3  # nearest: ties at half voxels may round apart
