"""CLAHE: output range in image units, local contrast, transform and config."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import ParameterError, Sample
from medaug.data.sample_data import ct_small
from medaug.engine.execute import execute
from medaug.intensity import CLAHE, RandomCLAHE, equalize_adaptive

from ..conftest import blob_sample
from ._util import assert_untouched_geometry_and_labels, check_random_config, check_tensor_input


def _mean_tile_std(x: np.ndarray, tiles: int = 8) -> float:
    h, w = x.shape
    return float(np.mean([
        x[i * h // tiles : (i + 1) * h // tiles, j * w // tiles : (j + 1) * w // tiles].std()
        for i in range(tiles) for j in range(tiles)
    ]))


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    return ct_small().array.astype(np.float64)


def test_output_spans_the_input_range_in_hu(ct):
    out = equalize_adaptive(ct, clip_limit=0.02, tiles=8)
    assert out.dtype == np.float64 and out.shape == ct.shape
    assert out.min() == ct.min() and out.max() == ct.max()


def test_output_stays_within_lo_hi(ct):
    out = equalize_adaptive(ct, clip_limit=0.02, tiles=4, lo=-200.0, hi=300.0)
    assert out.min() == -200.0 and out.max() == 300.0
    wide = equalize_adaptive(ct, clip_limit=0.02, tiles=4, lo=-3000.0, hi=3000.0)
    # the clipped input's range [max(lo, min), min(hi, max)] is kept, inside [lo, hi]
    assert wide.min() == ct.min() and wide.max() == ct.max()


@pytest.mark.parametrize("clip_limit", [0.01, 0.03])
def test_local_contrast_increases_on_ct_small(ct, clip_limit):
    out = equalize_adaptive(ct, clip_limit=clip_limit, tiles=8)
    assert _mean_tile_std(out) > 1.3 * _mean_tile_std(ct)


def test_higher_clip_limit_gives_more_contrast(ct):
    low = equalize_adaptive(ct, clip_limit=0.01, tiles=8)
    high = equalize_adaptive(ct, clip_limit=0.03, tiles=8)
    assert _mean_tile_std(high) > _mean_tile_std(low)


def test_constant_input_is_returned_unchanged():
    flat = np.full((16, 16), 7.0)
    np.testing.assert_array_equal(equalize_adaptive(flat, 0.02, 4), flat)


@pytest.mark.parametrize("shape", [(12, 20, 3), (4, 3, 4), (16, 18, 14)])
def test_3d_volumes_including_short_last_axes(shape):
    # a last axis of 3 or 4 must not be taken for RGB channels
    v = np.random.default_rng(0).normal(size=shape) * 100.0
    out = equalize_adaptive(v, 0.02, (2, 2, 2))
    assert out.shape == v.shape
    assert out.min() == pytest.approx(v.min()) and out.max() == pytest.approx(v.max())


def test_clahe_transform_on_a_sample():
    img = ct_small()
    s = Sample(image=img, metadata={"modality": "ct"})
    out = execute(s, [CLAHE(clip_limit=0.02, tiles=8)])
    expected = equalize_adaptive(img.array, 0.02, 8).astype(np.float32)
    np.testing.assert_array_equal(out.image.array, expected)
    assert out.image.dtype == np.float32 and out.image.grid.same_as(img.grid)


def test_clahe_leaves_labels_and_grid(sample3d):
    out = execute(sample3d, [CLAHE(clip_limit=0.02, tiles=[2, 3, 2], lo=-1000.0, hi=500.0)])
    assert_untouched_geometry_and_labels(out, sample3d)
    assert out.image.array.min() >= -1000.0 and out.image.array.max() <= 500.0


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: CLAHE(clip_limit=0.0), "clip_limit"),
        (lambda: CLAHE(tiles=0), "tiles"),
        (lambda: CLAHE(lo=10.0, hi=5.0), "hi > lo"),
        (lambda: RandomCLAHE(tiles=[8, 4]), "tiles"),
        (lambda: RandomCLAHE(tiles=[2.5, 4]), "tiles"),
        (lambda: RandomCLAHE(clip_limit=[0.01, 2.0]), "clip_limit"),
        (lambda: equalize_adaptive(np.zeros(5), 0.01, 4), "2D or 3D"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


def test_random_clahe_draws_integer_tiles(sample2d):
    tiles = {RandomCLAHE(tiles=[2, 4])(sample2d, seed=k).history[-1]["params"]["tiles"] for k in range(20)}
    assert tiles == {2, 3, 4}


@pytest.mark.parametrize(
    "cfg", [{"RandomCLAHE": {}}, {"RandomCLAHE": {"clip_limit": 0.02, "tiles": 4, "lo": -1000, "hi": 400}}]
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14)))


def test_tensor_images(sample2d):
    check_tensor_input(sample2d, [CLAHE(clip_limit=0.02, tiles=4)])
