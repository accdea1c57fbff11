"""Sample data shipped with pydicom and nibabel."""

from __future__ import annotations

import numpy as np
import pydicom

from medaug.data import anatomical_mri, ct_small, epi_mri, load, mr_small, sample_paths


def test_sample_paths_exist() -> None:
    paths = sample_paths()
    assert set(paths) == {"ct_small", "mr_small", "epi_mri", "anatomical_mri"}
    assert all(p.is_file() for p in paths.values())


def test_ct_small_is_in_hounsfield_units() -> None:
    img = ct_small()
    ds = pydicom.dcmread(sample_paths()["ct_small"])
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert img.ndim == 2 and img.shape == expected.shape and img.dtype == np.int16
    np.testing.assert_array_equal(img.array, expected)
    assert float(ds.RescaleIntercept) == -1024.0
    assert img.array.min() < -800  # air / lung well below 0 HU
    np.testing.assert_allclose(img.spacing, [float(v) for v in ds.PixelSpacing[::-1]])
    np.testing.assert_allclose(img.origin, [float(v) for v in ds.ImagePositionPatient[:2]])


def test_mr_small_matches_pydicom() -> None:
    img = mr_small()
    ds = pydicom.dcmread(sample_paths()["mr_small"])
    assert img.shape == (64, 64)
    np.testing.assert_array_equal(img.array, ds.pixel_array)


def test_epi_mri_is_first_volume() -> None:
    img = epi_mri()
    assert img.shape == (24, 96, 128) and img.dtype == np.int16
    np.testing.assert_allclose(img.spacing, (2.0, 2.0, 2.2), atol=1e-5)
    assert img.array.max() > 0
    same = load(sample_paths()["epi_mri"], volume=0)
    np.testing.assert_array_equal(img.array, same.array)
    other = load(sample_paths()["epi_mri"], volume=1)
    assert not np.array_equal(img.array, other.array)


def test_anatomical_mri() -> None:
    img = anatomical_mri()
    assert img.shape == (25, 41, 33) and img.ndim == 3
    assert np.isfinite(img.array).all() and img.array.max() > 0
    np.testing.assert_allclose(img.spacing, (2.0, 2.0, 2.0))
