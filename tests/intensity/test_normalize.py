"""Intensity preprocessing: Clip, ClipPercentile, ZNormalize, RescaleIntensity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medaug import Compose, Image, ParameterError, Sample, pipeline_from_config, replay, shepp_logan_2d
from medaug.engine.record import applied
from medaug.intensity import Clip, ClipPercentile, RescaleIntensity, ZNormalize
from medaug.spatial import Flip

from ..conftest import blob_sample


def _mri_like(seed: int = 0) -> Sample:
    """Skull-stripped-MRI-like: positive tissue values inside, exact zeros outside, and a label map."""
    rng = np.random.default_rng(seed)
    s = shepp_logan_2d(48, seed=seed)
    lab = s["label"].array
    img = np.where(lab > 0, 300.0 + 40.0 * lab + rng.normal(0, 15, lab.shape), 0.0).astype(np.float32)
    return Sample(image=s["image"].with_data(img), label=s["label"])


def test_znormalize_nonzero_has_mean_0_std_1_there_and_keeps_background():
    s = _mri_like()
    src = s["image"].array
    out = ZNormalize(mask="nonzero")(s)
    arr = out["image"].array
    fg = src != 0
    assert abs(float(arr[fg].mean())) < 1e-5
    assert abs(float(arr[fg].std()) - 1.0) < 1e-5
    np.testing.assert_array_equal(arr[~fg], 0.0)
    np.testing.assert_array_equal(out["label"].array, s["label"].array)  # label maps untouched
    assert applied(out.history) == [{"name": "ZNormalize", "params": {"mask": "nonzero"}}]


def test_znormalize_over_a_label_map_and_over_everything():
    s = blob_sample((20, 24))
    src = s["image"].array
    region = s["label"].array != 0
    out = ZNormalize(mask="label")(s)["image"].array
    np.testing.assert_allclose(out[region].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[region].std(), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[~region], src[~region])  # background at its value
    whole = ZNormalize()(s)["image"].array
    np.testing.assert_allclose([whole.mean(), whole.std()], [0.0, 1.0], atol=1e-5)
    with pytest.raises(ParameterError, match="neither 'nonzero'"):
        ZNormalize(mask="liver")(s)


def test_znormalize_constant_region_and_tensor_api():
    data = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    out = ZNormalize(mask="nonzero").apply_tensor(data, None, None)
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.0]]  # zero spread: only centred
    with pytest.raises(ParameterError):
        ZNormalize(mask="label").apply_tensor(data, None, None)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_clip_fuses_with_a_spatial_transform(backend):
    s = shepp_logan_2d(40, seed=1)
    fused = Compose([Flip(axes=["LR"]), Clip(lo=-100, hi=100)], backend=backend)(s)
    ref = np.clip(s["image"].array[:, ::-1], -100, 100)
    np.testing.assert_array_equal(fused["image"].array, ref)
    alone = Clip(lo=None, hi=50)(s)["image"].array
    np.testing.assert_array_equal(alone, np.minimum(s["image"].array, 50))
    with pytest.raises(ParameterError):
        Clip(lo=5, hi=1)


def test_clip_percentile_uses_the_data():
    rng = np.random.default_rng(0)
    arr = rng.normal(0, 1, (30, 40)).astype(np.float32)
    s = Sample(image=Image(arr))
    out = ClipPercentile(lower=1, upper=99)(s)["image"].array
    lo, hi = np.percentile(arr.astype(np.float64), [1, 99])
    np.testing.assert_allclose(out, np.clip(arr, lo, hi), rtol=1e-6)
    with pytest.raises(ParameterError):
        ClipPercentile(lower=60, upper=40)


def test_rescale_intensity_min_max_and_percentiles():
    s = shepp_logan_2d(32, seed=0)
    out = RescaleIntensity()(s)["image"].array
    assert out.min() == 0.0 and out.max() == 1.0
    src = s["image"].array.astype(np.float64)
    np.testing.assert_allclose(out, (src - src.min()) / (src.max() - src.min()), atol=1e-6)
    out = RescaleIntensity(out_min=-1, out_max=1, percentiles=[5, 95])(s)["image"].array
    lo, hi = np.percentile(src, [5, 95])
    np.testing.assert_allclose(out, np.clip((src - lo) / (hi - lo) * 2 - 1, -1, 1), atol=1e-5)
    const = Sample(image=Image(np.full((4, 4), 7.0, np.float32)))
    assert (RescaleIntensity()(const)["image"].array == 0).all()
    with pytest.raises(ParameterError):
        RescaleIntensity(out_min=1, out_max=0)
    with pytest.raises(ParameterError):
        RescaleIntensity(percentiles=[5])


def test_config_names_and_replay():
    s = _mri_like(1)
    p = pipeline_from_config(
        [
            {"ClipPercentile": {"lower": 0.5, "upper": 99.5}},
            {"ZNormalize": {"mask": "nonzero"}},
            {"RescaleIntensity": {"out_min": 0, "out_max": 1}},
            {"Clip": {"lo": 0.1, "hi": 0.9}},
        ]
    )
    out = p(s, seed=0)
    assert [h["name"] for h in applied(out.history)] == ["ClipPercentile", "ZNormalize", "RescaleIntensity", "Clip"]
    again = replay(out.history)(s)
    np.testing.assert_array_equal(again["image"].array, out["image"].array)
    assert out["image"].array.min() >= 0.1 and out["image"].array.max() <= 0.9
