"""Contrast, brightness and monotone histogram curves."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import ParameterError, shepp_logan_2d
from medaug.engine.execute import execute
from medaug.intensity import (
    Brightness,
    Contrast,
    HistogramShift,
    RandomBrightness,
    RandomContrast,
    RandomHistogramShift,
)

from ..conftest import blob_sample
from ._util import (
    assert_untouched_geometry_and_labels,
    check_fused_equals_stepwise,
    check_random_config,
    check_tensor_input,
)


def test_contrast_scales_about_mean_and_shifts(sample3d):
    t = Contrast(scale=1.2, shift=15.0, mean=-300.0)
    out = execute(sample3d, [t])
    v = sample3d.image.array.astype(np.float64)
    np.testing.assert_allclose(out.image.array, -300.0 + 1.2 * (v + 300.0) + 15.0, rtol=1e-6, atol=1e-3)
    assert_untouched_geometry_and_labels(out, sample3d)


def test_random_contrast_keeps_mean_without_shift(sample2d):
    out = RandomContrast(scale=[0.5, 0.6])(sample2d, seed=1)
    params = out.history[-1]["params"]
    assert 0.5 <= params["scale"] <= 0.6
    np.testing.assert_allclose(params["mean"], sample2d.image.array.mean(dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(out.image.array.mean(dtype=np.float64), params["mean"], rtol=1e-4)
    assert out.image.array.std() == pytest.approx(params["scale"] * sample2d.image.array.std(), rel=1e-4)


def test_contrast_mask_changes_only_masked_voxels(sample3d):
    out = execute(sample3d, [Contrast(scale=2.0, shift=10.0, mean=0.0, mask="label")])
    inside = sample3d.label.array > 0
    v = sample3d.image.array
    np.testing.assert_array_equal(out.image.array[~inside], v[~inside])
    np.testing.assert_allclose(out.image.array[inside], 2.0 * v[inside] + 10.0, rtol=1e-6)
    assert Contrast(scale=2.0, mask="label").fused_ops(sample3d.grid) is None


def test_brightness_adds_shift(sample2d):
    out = execute(sample2d, [Brightness(shift=-42.5)])
    np.testing.assert_allclose(out.image.array, sample2d.image.array - 42.5, rtol=1e-6)
    assert_untouched_geometry_and_labels(out, sample2d)


@pytest.mark.parametrize("transform", [Contrast(scale=0.8, shift=12.0, mean=-250.0), Brightness(shift=33.0)])
def test_fused_equals_stepwise(oblique_sample, transform):
    check_fused_equals_stepwise(oblique_sample, transform)


def test_histogram_shift_is_monotone_with_fixed_end_points():
    s = shepp_logan_2d(64)
    for seed in range(5):
        for kind in ("pchip", "linear"):
            out = RandomHistogramShift(control_points=[4, 8], kind=kind)(s, seed=seed)
            v, w = s.image.array.ravel(), out.image.array.ravel()
            order = np.argsort(v, kind="stable")
            assert (np.diff(w[order].astype(np.float64)) >= -1e-3).all()
            assert w.min() == pytest.approx(v.min(), abs=1e-3) and w.max() == pytest.approx(v.max(), abs=1e-3)
            assert not np.allclose(w, v)
            assert_untouched_geometry_and_labels(out, s)


def test_histogram_shift_passes_control_points_and_is_identity_outside():
    x, y = [0.0, 10.0, 20.0], [0.0, 4.0, 20.0]
    data = np.array([[-5.0, 0.0, 5.0, 10.0], [15.0, 20.0, 25.0, 10.0]], np.float32)
    from medaug import Image, Sample

    s = Sample(image=Image(data))
    lin = execute(s, [HistogramShift(x=x, y=y, kind="linear")]).image.array
    np.testing.assert_allclose(lin, [[-5.0, 0.0, 2.0, 4.0], [12.0, 20.0, 25.0, 4.0]], atol=1e-5)
    cub = execute(s, [HistogramShift(x=x, y=y, kind="pchip")]).image.array
    np.testing.assert_allclose(cub[0, [0, 1, 3]], [-5.0, 0.0, 4.0], atol=1e-5)
    np.testing.assert_allclose(cub[1, [1, 2]], [20.0, 25.0], atol=1e-5)


def test_histogram_shift_strength_zero_is_identity(sample2d):
    out = RandomHistogramShift(strength=0.0)(sample2d, seed=0)
    np.testing.assert_allclose(out.image.array, sample2d.image.array, atol=1e-3)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: RandomContrast(scale=1.5), "scale"),
        (lambda: RandomContrast(p=2.0), "'p'"),
        (lambda: Contrast(scale=-1.0), "scale"),
        (lambda: HistogramShift(x=[0, 1, 2], y=[0, 1.5, 1.0, 2]), "'x' and 'y'"),
        (lambda: HistogramShift(x=[0, 1, 2], y=[0, 1.5, 1.0]), "'y'"),
        (lambda: HistogramShift(x=[0, 1, 2], y=[0.5, 1.0, 2.0]), "end points"),
        (lambda: RandomHistogramShift(control_points=2), "control_points"),
        (lambda: RandomHistogramShift(kind="cubic"), "kind"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


@pytest.mark.parametrize(
    "cfg",
    [
        {"RandomContrast": {"scale": 0.2, "shift": 30}},
        {"RandomBrightness": {"shift": [-40, 40]}},
        {"RandomHistogramShift": {"control_points": [4, 7], "strength": 0.8, "kind": "linear"}},
        {"RandomHistogramShift": {"control_points": 6}},
    ],
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14)))


def test_different_seeds_differ(sample2d):
    a = RandomBrightness(shift=50)(sample2d, seed=1).image.array
    b = RandomBrightness(shift=50)(sample2d, seed=2).image.array
    assert not np.array_equal(a, b)


def test_tensor_images(sample3d):
    check_tensor_input(sample3d, [Contrast(scale=1.3, shift=2.0, mean=-100.0), Brightness(shift=3.0),
                                  HistogramShift(x=[-1000.0, 0.0, 500.0], y=[-1000.0, 100.0, 500.0])])
