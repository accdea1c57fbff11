"""Low resolution along one axis, back on the original grid."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import Image, ParameterError, Sample, shepp_logan_3d
from medaug.engine.execute import execute
from medaug.intensity import LowResolution, RandomLowResolution

from ..conftest import blob_sample
from ._util import assert_untouched_geometry_and_labels, check_random_config, check_tensor_input


def _stripes(shape, array_axis, period):
    idx = np.arange(shape[array_axis])
    prof = 100.0 * np.cos(2 * np.pi * idx / period)
    view = [1] * len(shape)
    view[array_axis] = -1
    return Sample(image=Image(np.broadcast_to(prof.reshape(view), shape).astype(np.float32).copy()))


@pytest.mark.parametrize("shape", [(24, 20, 22), (40, 36)])
def test_only_the_chosen_axis_loses_resolution(shape):
    nd = len(shape)
    axis = nd - 1  # index axis z in 3D, y in 2D: array axis 0
    along = _stripes(shape, 0, period=3.0)  # varies along array axis 0 only, fine detail
    across = _stripes(shape, nd - 1, period=3.0)  # varies along x only
    t = LowResolution(axis=axis, factor=3.0)
    out_along = execute(along, [t]).image.array
    out_across = execute(across, [t]).image.array
    assert out_along.std() < 0.3 * along.image.array.std()  # detail below the new resolution is gone
    np.testing.assert_allclose(out_across, across.image.array, atol=1e-3)  # nothing varies along the axis
    assert execute(along, [t]).image.grid.same_as(along.image.grid)


def test_coarse_structure_survives_and_mean_is_kept():
    s = shepp_logan_3d(32)
    out = execute(s, [LowResolution(axis=2, factor=2.0)])
    v, w = s.image.array.astype(np.float64), out.image.array.astype(np.float64)
    assert w.mean() == pytest.approx(v.mean(), rel=2e-2)
    assert np.corrcoef(v.ravel(), w.ravel())[0, 1] > 0.9
    assert np.abs(np.diff(w, axis=0)).mean() < np.abs(np.diff(v, axis=0)).mean()
    assert_untouched_geometry_and_labels(out, s)


def test_factor_one_is_identity(sample3d):
    out = execute(sample3d, [LowResolution(axis=0, factor=1.0)])
    np.testing.assert_array_equal(out.image.array, sample3d.image.array)


def test_default_axis_is_the_slice_axis(sample3d):
    a = execute(sample3d, [LowResolution(factor=3.0)]).image.array
    b = execute(sample3d, [LowResolution(axis="z", factor=3.0)]).image.array
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: LowResolution(factor=0.5), "factor"),
        (lambda: LowResolution(axis=5), "axis"),
        (lambda: RandomLowResolution(factor=[0.5, 2.0]), "factor"),
        (lambda: RandomLowResolution(factor=0.5), "factor"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


def test_random_axis_choices(sample3d):
    axes = {RandomLowResolution(axis=[0, 2])(sample3d, seed=k).history[-1]["params"]["axis"] for k in range(20)}
    assert axes == {0, 2}


@pytest.mark.parametrize("cfg", [{"RandomLowResolution": {}}, {"RandomLowResolution": {"axis": 2, "factor": [2, 3]}}])
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14), spacing=(1.0, 1.0, 3.0)))


def test_tensor_images(sample3d):
    check_tensor_input(sample3d, [LowResolution(axis=1, factor=2.5)])
