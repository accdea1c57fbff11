"""Gaussian blur and unsharp masking with widths in mm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medaug import Image, ParameterError, Sample, shepp_logan_2d
from medaug.engine.execute import execute
from medaug.intensity import Blur, RandomBlur, RandomSharpen, Sharpen

from ..conftest import blob_sample
from ._util import assert_untouched_geometry_and_labels, check_random_config, check_tensor_input


def _impulse(shape, spacing):
    data = np.zeros(shape, np.float32)
    data[tuple(s // 2 for s in shape)] = 1.0
    return Sample(image=Image(data, spacing=spacing))


@pytest.mark.parametrize("shape, spacing", [((41, 41, 41), (0.5, 1.0, 2.0)), ((61, 41), (0.8, 2.0))])
def test_impulse_response_has_the_physical_width(shape, spacing):
    std = 2.0
    out = execute(_impulse(shape, spacing), [Blur(std=std)]).image.array.astype(np.float64)
    assert out.sum() == pytest.approx(1.0, abs=1e-4)
    for array_axis in range(len(shape)):
        sp = spacing[len(shape) - 1 - array_axis]
        pos = (np.arange(shape[array_axis]) - shape[array_axis] // 2) * sp
        profile = out.sum(axis=tuple(a for a in range(len(shape)) if a != array_axis))
        measured = np.sqrt((profile * pos**2).sum())
        assert measured == pytest.approx(std, rel=0.05), (array_axis, measured)


def test_blur_matches_scipy_in_voxel_units():
    s = blob_sample((20, 22, 18), spacing=(1.0, 0.5, 2.0))
    out = execute(s, [Blur(std=[2.0, 1.0, 4.0])]).image.array
    # (x, y, z) widths 2, 1, 4 mm over spacing 1, 0.5, 2 mm -> 2 voxels on every axis
    ref = ndimage.gaussian_filter(s.image.array.astype(np.float64), sigma=2.0, mode="mirror", truncate=3.0)
    np.testing.assert_allclose(out, ref, atol=0.05, rtol=1e-4)
    assert_untouched_geometry_and_labels(out=execute(s, [Blur(std=1.0)]), ref=s)


def test_blur_keeps_mean_and_lowers_variation():
    s = shepp_logan_2d(64)
    out = execute(s, [Blur(std=1.5)])
    v, w = s.image.array.astype(np.float64), out.image.array.astype(np.float64)
    assert w.mean() == pytest.approx(v.mean(), rel=1e-2)
    for axis in (0, 1):
        assert np.abs(np.diff(w, axis=axis)).mean() < 0.8 * np.abs(np.diff(v, axis=axis)).mean()
    assert_untouched_geometry_and_labels(out, s)


def test_zero_width_is_identity(sample3d):
    out = execute(sample3d, [Blur(std=0.0), Sharpen(std=1.0, amount=0.0)])
    np.testing.assert_allclose(out.image.array, sample3d.image.array, atol=1e-3)


def test_blur_along_one_axis_only():
    rng = np.random.default_rng(0)
    z_only = np.broadcast_to(rng.normal(size=(16, 1, 1)), (16, 12, 10)).astype(np.float32)
    xy_only = np.broadcast_to(rng.normal(size=(1, 12, 10)), (16, 12, 10)).astype(np.float32)
    blur_z = [Blur(std=[0.0, 0.0, 2.0])]  # (x, y, z) widths in mm
    out_xy = execute(Sample(image=Image(xy_only.copy())), blur_z).image.array
    np.testing.assert_allclose(out_xy, xy_only, atol=1e-5)  # nothing varies along z
    out_z = execute(Sample(image=Image(z_only.copy())), blur_z).image.array
    assert out_z.std() < 0.8 * z_only.std()
    np.testing.assert_allclose(out_z, out_z[:, :1, :1] * np.ones_like(out_z), atol=1e-5)


def test_sharpen_raises_edges_and_keeps_mean():
    s = shepp_logan_2d(64)
    out = execute(s, [Sharpen(std=1.5, amount=1.0)])
    v, w = s.image.array.astype(np.float64), out.image.array.astype(np.float64)
    np.testing.assert_allclose(w, v + 1.0 * (v - execute(s, [Blur(std=1.5)]).image.array), atol=1e-2)
    assert np.abs(np.diff(w, axis=1)).mean() > 1.2 * np.abs(np.diff(v, axis=1)).mean()
    assert w.mean() == pytest.approx(v.mean(), rel=1e-2)
    assert_untouched_geometry_and_labels(out, s)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Blur(std=-1.0), "std"),
        (lambda: RandomBlur(std=-2.0), "std"),
        (lambda: RandomBlur(std=[3.0, 1.0]), "min > max"),
        (lambda: Sharpen(amount=-1.0), "amount"),
        (lambda: RandomSharpen(amount=[-1.0, 1.0]), "amount"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


def test_random_blur_draws_within_range(sample2d):
    for seed in range(10):
        std = RandomBlur(std=[0.5, 1.5])(sample2d, seed=seed).history[-1]["params"]["std"]
        assert 0.5 <= std <= 1.5
    per_axis = RandomBlur(std=[0.5, 1.5], isotropic=False)(sample2d, seed=0).history[-1]["params"]["std"]
    assert len(per_axis) == 2 and len(set(per_axis)) == 2


@pytest.mark.parametrize(
    "cfg",
    [
        {"RandomBlur": {"std": [0.5, 2.0]}},
        {"RandomBlur": {"std": 1.5, "isotropic": False}},
        {"RandomSharpen": {"std": [1, 2], "amount": 1.5, "p": 1.0}},
    ],
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14), spacing=(0.8, 1.0, 2.5)))


def test_tensor_images(sample3d, sample2d):
    check_tensor_input(sample3d, [Blur(std=[1.0, 2.0, 0.5]), Sharpen(std=1.0, amount=0.7)])
    check_tensor_input(sample2d, [Blur(std=1.5)])
