"""The core never needs MONAI or TorchIO; the geometry conversion is exact."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import medaug
from medaug.interop._convert import group_channels
from medaug.interop.geometry import affine_from_grid, embed_affine, grid_from_affine

from .conftest import phantom

_WALK = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    {block}
    import medaug
    failed = []
    for m in pkgutil.walk_packages(medaug.__path__, "medaug."):
        if m.name in ("medaug.interop.monai", "medaug.interop.torchio") or m.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(m.name)
        except Exception as exc:
            failed.append(f"{{m.name}}: {{type(exc).__name__}}: {{exc}}")
    assert not failed, failed
    out = medaug.preset("ct")(medaug.shepp_logan_3d(24), seed=0)
    assert out["image"].shape == (24, 24, 24)
    {after}
    print("OK")
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)


def test_core_works_without_monai_and_torchio():
    block = 'sys.modules["monai"] = None\nsys.modules["torchio"] = None'
    after = textwrap.dedent(
        """
        import medaug.interop, medaug.interop.geometry
        for lib, extra in (("monai", "monai"), ("torchio", "torchio")):
            try:
                importlib.import_module("medaug.interop." + lib)
            except ImportError as exc:
                assert f"pip install medaug[{extra}]" in str(exc), exc
            else:
                raise AssertionError(lib + " imported")
        """
    )
    res = _run(_WALK.format(block=block, after=after))
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


def test_core_does_not_import_them_when_installed():
    after = 'assert "monai" not in sys.modules and "torchio" not in sys.modules, "imported by the core"'
    res = _run(_WALK.format(block="", after=after))
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_affine_round_trip(ndim, space):
    grid = phantom(ndim).grid
    affine = affine_from_grid(grid, space)
    assert affine.shape == (ndim + 1, ndim + 1)
    back = grid_from_affine(affine, tuple(reversed(grid.shape)), space)
    assert back.mismatch(grid, atol=1e-9) is None
    # the affine maps a foreign (x, y, z) index to the point medaug puts that voxel at (LPS <-> RAS: x, y negated)
    idx = np.array([3.0, 5.0, 2.0][:ndim])
    world = affine[:ndim, :ndim] @ idx + affine[:ndim, ndim]
    lps = grid.index_to_physical(idx[None])[0]
    sign = np.array([-1.0, -1.0, 1.0][:ndim]) if space == "RAS" else np.ones(ndim)
    np.testing.assert_allclose(world, sign * lps, atol=1e-9)
    if ndim == 2:  # a 2D image in a 4x4 affine (NIfTI, TorchIO) keeps its slice position
        big = embed_affine(affine, size=4)
        big[2, 3] = 12.5
        assert grid_from_affine(big, tuple(reversed(grid.shape)), space).mismatch(grid, atol=1e-9) is None
        assert embed_affine(affine, big)[2, 3] == 12.5


def test_affine_errors():
    tilted = np.eye(4)
    tilted[2, 0] = 0.5  # the 2D image's x axis points out of the x/y plane
    with pytest.raises(medaug.GeometryError, match="tilted plane"):
        grid_from_affine(tilted, (8, 8))
    with pytest.raises(medaug.GeometryError, match="square affine"):
        grid_from_affine(np.eye(3), (8, 8, 8))
    with pytest.raises(medaug.ParameterError, match="unknown world space"):
        affine_from_grid(medaug.Grid((4, 4)), "XYZ")


def test_channel_grouping():
    assert group_channels(["image", "image_0001", "image_0002", "label"]) == {
        "image": ["image", "image_0001", "image_0002"], "label": ["label"]}
    # a gap (no _0001): not channels
    assert group_channels(["scan_0002", "scan"]) == {"scan_0002": ["scan_0002"], "scan": ["scan"]}
