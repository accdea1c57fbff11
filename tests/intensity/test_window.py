"""CT windowing and window/level jitter."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import ParameterError, pipeline_from_config, replay, shepp_logan_3d
from medaug.engine.execute import execute
from medaug.intensity import CT_WINDOWS, RandomWindow, Window

from ..conftest import blob_sample
from ._util import (
    assert_untouched_geometry_and_labels,
    check_fused_equals_stepwise,
    check_random_config,
    check_tensor_input,
)


def test_window_hu_clips_and_keeps_units(sample3d):
    out = execute(sample3d, [Window(center=100.0, width=400.0)])
    v = sample3d.image.array
    np.testing.assert_array_equal(out.image.array, np.clip(v, -100.0, 300.0))
    assert_untouched_geometry_and_labels(out, sample3d)


def test_window_unit_maps_window_to_0_1(sample3d):
    out = execute(sample3d, [Window(center=100.0, width=400.0, output="unit")]).image.array
    v = sample3d.image.array.astype(np.float64)
    np.testing.assert_allclose(out, (np.clip(v, -100.0, 300.0) + 100.0) / 400.0, atol=1e-6)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_named_windows_resolve_and_replay():
    assert CT_WINDOWS["lung"] == (-600, 1500) and len(CT_WINDOWS) == 9
    s = shepp_logan_3d(20)
    w = Window(name="brain", center=999.0, width=5.0)  # the name wins
    assert (w.center, w.width) == (40.0, 80.0)
    out = w(s)
    rec = out.history[-1]
    assert rec["name"] == "Window" and rec["params"]["center"] == 40.0 and rec["params"]["width"] == 80.0
    assert rec["params"]["name"] == "brain"
    assert out.image.array.min() >= 0.0 and out.image.array.max() <= 80.0
    np.testing.assert_array_equal(replay(out.history)(s).image.array, out.image.array)


@pytest.mark.parametrize("output", ["hu", "unit"])
def test_fused_equals_stepwise(oblique_sample, output):
    check_fused_equals_stepwise(oblique_sample, Window(name="soft_tissue", output=output))


def test_window_jitter_stays_in_hu():
    s = shepp_logan_3d(20)
    v = s.image.array
    pipeline = pipeline_from_config([{"RandomWindow": {"window": "brain", "center_jitter": 10, "width_jitter": 0.25}}])
    centers, widths = [], []
    for seed in range(30):
        out = pipeline(s, seed=seed)
        p = out.history[-1]["params"]
        assert p["name"] is None and p["output"] == "hu"
        lo, hi = p["center"] - p["width"] / 2, p["center"] + p["width"] / 2
        w = out.image.array
        assert w.min() >= lo - 1e-3 and w.max() <= hi + 1e-3
        inside = (v > lo) & (v < hi)
        np.testing.assert_array_equal(w[inside], v[inside])  # HU kept inside the window
        centers.append(p["center"])
        widths.append(p["width"])
    assert 30 <= min(centers) and max(centers) <= 50 and np.std(centers) > 2
    assert 60 <= min(widths) and max(widths) <= 100 and np.std(widths) > 2


def test_random_window_from_center_width_and_default():
    out = RandomWindow(center=-600, width=1500, center_jitter=[-5, 5])(blob_sample((12, 14, 10)), seed=0)
    assert abs(out.history[-1]["params"]["center"] + 600) <= 5
    assert RandomWindow()._base == (50.0, 400.0)  # soft tissue by default


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Window(name="lungs"), "did you mean 'lung'"),
        (lambda: Window(center=0.0), "'center' and 'width'"),
        (lambda: Window(center=0.0, width=-1.0), "width"),
        (lambda: Window(center=0.0, width=10.0, output="HU01"), "output"),
        (lambda: RandomWindow(window="brain", center=40, width=80), "either"),
        (lambda: RandomWindow(width_jitter=1.5), "width_jitter"),
        (lambda: RandomWindow(center_jitter=[5, -5]), "center_jitter"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


@pytest.mark.parametrize(
    "cfg",
    [
        {"RandomWindow": {"window": "liver", "center_jitter": 15, "width_jitter": 0.1}},
        {"RandomWindow": {"center": 40, "width": 400, "width_jitter": [-0.2, 0.1], "output": "unit", "p": 1.0}},
    ],
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14)))


def test_tensor_images(sample3d):
    check_tensor_input(sample3d, [Window(name="bone", output="unit")])
