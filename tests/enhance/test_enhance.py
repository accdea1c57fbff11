"""Enhancement and restoration: N4, CLAHE, denoising, unsharp masking; geometry never changes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from medaug import Image, ParameterError, shepp_logan_2d
from medaug.data.sample_data import ct_small
from medaug.enhance import EnhanceReport, clahe, denoise, estimate_noise, n4_bias_correction, unsharp_mask
from medaug.spatial.preprocess import foreground_mask

_VALUES = {0: 0.0, 1: 300.0, 2: 600.0, 3: 250.0, 4: 700.0}


def _mr_phantom(size: int = 96, noise: float = 5.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Image]:
    """An MR-like phantom (positive tissue, zero air) with noise; returns (clean, labels, noisy image)."""
    s = shepp_logan_2d(size, seed=seed, spacing=(0.9, 1.2))
    lab = s["label"].array
    clean = np.vectorize(_VALUES.get)(lab).astype(np.float32)
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, noise, clean.shape), 0, None).astype(np.float32)
    return clean, lab, s["image"].with_data(noisy)


def _cv(arr: np.ndarray, region: np.ndarray) -> float:
    v = arr[region].astype(np.float64)
    return float(v.std() / v.mean())


def test_n4_reduces_the_coefficient_of_variation_of_a_known_bias_field():
    clean, lab, img = _mr_phantom(128)
    yy, xx = np.mgrid[-1:1:128j, -1:1:128j]
    bias = np.exp(0.4 * xx + 0.3 * yy - 0.2 * xx * yy)
    biased = img.with_data((img.array * bias).astype(np.float32))
    brain = lab == 2
    out, report, field = n4_bias_correction(biased, shrink=2)
    before, after = _cv(biased.array, brain), _cv(out.array, brain)
    assert before > 0.15
    assert after < 0.25 * before and after < 1.5 * _cv(img.array, brain)
    # the estimated field follows the true one (up to a constant)
    r = np.corrcoef(np.log(field.array[brain]), np.log(bias[brain]))[0, 1]
    assert r > 0.95
    assert out.grid.same_as(biased.grid) and field.grid.same_as(biased.grid)
    assert report.method == "n4" and report.parameters["shrink"] == 2 and report.seconds > 0
    assert report.details["field_range"][0] < 1 < report.details["field_range"][1]


def test_n4_refuses_ct_in_hounsfield_units_and_bad_parameters():
    with pytest.raises(ParameterError, match="positive intensities"):
        n4_bias_correction(ct_small())
    _, _, img = _mr_phantom(32)
    with pytest.raises(ParameterError):
        n4_bias_correction(img, shrink=0)
    with pytest.raises(ParameterError):
        n4_bias_correction(img, iterations=[])


def _local_contrast(arr: np.ndarray, region: np.ndarray) -> float:
    a = arr.astype(np.float64)
    mu = uniform_filter(a, 9)
    sd = np.sqrt(np.maximum(uniform_filter(a * a, 9) - mu * mu, 0))
    return float(sd[region].mean())


def test_clahe_raises_local_contrast_on_ct_small():
    ct = ct_small()
    body, _ = foreground_mask(ct.array)
    out, report = clahe(ct, clip_limit=0.02, tiles=8)
    assert _local_contrast(out.array, body) > 1.5 * _local_contrast(ct.array, body)
    # same units, range, dtype and grid
    assert out.dtype == np.int16 and out.grid.same_as(ct.grid)
    assert report.output_range == report.input_range == (float(ct.array.min()), float(ct.array.max()))
    # with a window, the result stays inside it
    out, report = clahe(ct, clip_limit=0.02, tiles=4, lo=-160, hi=240)
    assert out.array.min() >= -160 and out.array.max() <= 240
    assert report.parameters == {"clip_limit": 0.02, "tiles": 4, "lo": -160.0, "hi": 240.0}


@pytest.mark.parametrize(("method", "gain"), [("curvature", 0.9), ("bilateral", 0.5), ("nlm", 0.5)])
def test_denoisers_reduce_noise_and_error(method, gain):
    clean, lab, img = _mr_phantom(128, noise=20.0)
    head = lab > 0
    out, report = denoise(img, method)
    err_before = np.abs(img.array - clean)[head].mean()
    err_after = np.abs(out.array - clean)[head].mean()
    assert err_after < gain * err_before
    assert report.details["noise_after"] < report.details["noise_estimate"]
    assert out.grid.same_as(img.grid) and out.dtype == np.float32
    assert report.parameters["denoiser"] == method


def test_noise_estimate_and_unknown_denoiser():
    rng = np.random.default_rng(1)
    noisy = 100.0 + rng.normal(0, 7.0, (64, 64))
    assert abs(estimate_noise(noisy) - 7.0) < 0.7
    _, _, img = _mr_phantom(32)
    with pytest.raises(ParameterError, match="did you mean 'nlm'"):
        denoise(img, "nlmm")


def test_unsharp_mask_sharpens_edges_in_mm():
    clean, _, _ = _mr_phantom(64, noise=0.0)
    img = Image(clean, spacing=(0.5, 2.0))
    out, report = unsharp_mask(img, sigma_mm=2.0, amount=1.0)
    grad = lambda a: sum(np.abs(g).mean() for g in np.gradient(a.astype(np.float64)))  # noqa: E731
    assert grad(out.array) > 1.3 * grad(img.array)
    assert abs(out.array.mean() - img.array.mean()) < 0.02 * img.array.mean()
    assert out.grid.same_as(img.grid)
    with pytest.raises(ParameterError):
        unsharp_mask(img, sigma_mm=0)


def test_integer_images_keep_their_dtype_unless_asked_and_report_is_jsonable():
    ct = ct_small()
    out, report = unsharp_mask(ct, keep_dtype=False)
    assert out.dtype == np.float32
    out, report = denoise(ct, "curvature")
    assert out.dtype == np.int16 and out.grid.same_as(ct.grid)
    assert isinstance(report, EnhanceReport)
    d = report.to_dict()
    assert d["method"] == "denoise" and d["shape"] == [128, 128] and d["dtype"] == "int16"
    line = report.one_line()
    assert "\n" not in line and line.startswith("denoise denoiser=curvature") and line.endswith(" s")
    with pytest.raises(ParameterError, match="label map"):
        clahe(Image(np.zeros((8, 8), np.uint8), is_label=True))
