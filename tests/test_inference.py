"""Test-time augmentation: predictions mapped back onto the input grid, averaged, with an uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medaug
from medaug import Compose, ParameterError
from medaug.intensity import RandomNoise
from medaug.spatial import Affine, Flip, RandomAffine, RandomElastic, RandomFlip


def threshold(x):
    """A point-wise "model": two class probabilities from the intensity (NumPy or torch)."""
    if isinstance(x, torch.Tensor):
        p = 0.5 * (1.0 + torch.tanh((x - 20.0) / 20.0))
        return torch.stack([1.0 - p, p])
    p = 0.5 * (1.0 + np.tanh((np.asarray(x, np.float64) - 20.0) / 20.0))
    return np.stack([1.0 - p, p])


@pytest.mark.parametrize("ndim", [2, 3])
def test_exact_maps_give_the_plain_prediction_and_no_uncertainty(ndim):
    s = medaug.shepp_logan_3d(24) if ndim == 3 else medaug.shepp_logan_2d(40)
    pipeline = Compose([RandomFlip(axes=["LR", "AP"], p=0.5)])
    r = medaug.tta(threshold, s, pipeline, n=6, seed=0)
    np.testing.assert_allclose(r.mean, threshold(s.image.array), atol=1e-6)
    assert r.uncertainty.shape == s.grid.shape and float(r.uncertainty.max()) < 1e-10
    np.testing.assert_allclose(r.coverage, 6.0)
    assert len(r.histories) == 6 and r.grid.same_as(s.grid)


def test_deformations_and_noise_average_back_onto_the_input_grid():
    s = medaug.shepp_logan_2d(64)
    pipeline = Compose([RandomAffine(rotation=10, scale=0.1), RandomElastic(control_points=6, max_displacement=3),
                        RandomNoise(std=[5, 10])])
    r = medaug.tta(threshold, s, pipeline, n=5, seed=1)
    full = r.coverage > 4.999
    direct = threshold(s.image.array)
    np.testing.assert_allclose(r.mean.sum(0)[full], 1.0, atol=1e-5)  # probabilities stay probabilities
    assert np.abs(r.mean - direct)[:, full].mean() < 0.05  # close to the plain prediction ...
    assert r.uncertainty[full].max() > 1e-3  # ... with some spread where edges move and noise falls
    ent = medaug.tta(threshold, s, pipeline, n=5, seed=1, uncertainty="entropy")
    np.testing.assert_allclose(ent.mean, r.mean)
    assert 0.0 <= ent.uncertainty.min() and ent.uncertainty.max() <= np.log(2) + 1e-9
    # a copy that did not cover a voxel gives it no vote: the mean is not pulled towards the fill (0)
    partial = (r.coverage > 0.5) & ~full
    assert np.allclose(r.mean.sum(0)[partial], 1.0, atol=1e-3)


def test_a_regression_map_and_the_torch_path_agree():
    s = medaug.shepp_logan_3d(24)
    pipeline = Compose([RandomAffine(rotation=8)])

    def regress(x):
        return x * 2.0 + 1.0

    a = medaug.tta(regress, s, pipeline, n=3, seed=2)
    assert isinstance(a.mean, np.ndarray) and a.mean.shape == s.grid.shape
    as_tensor = s.replace({k: v.with_data(torch.from_numpy(np.array(v.array))) for k, v in s.items()})
    on_torch = Compose([RandomAffine(rotation=8)], backend="torch")  # keeps tensors tensors (as on CUDA)
    b = medaug.tta(regress, as_tensor, on_torch, n=3, seed=2, backend="torch")
    assert isinstance(b.mean, torch.Tensor)
    np.testing.assert_allclose(b.mean.numpy(), a.mean, rtol=1e-4, atol=0.05)
    np.testing.assert_allclose(b.coverage.numpy(), a.coverage, atol=1e-4)
    images = a.images()
    assert set(images) == {"mean_0", "uncertainty", "coverage"} and images["mean_0"].grid.same_as(s.grid)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_tensors_stay_on_the_device():  # pragma: no cover - needs a GPU
    s = medaug.shepp_logan_3d(32)
    on_gpu = s.replace({k: v.with_data(torch.from_numpy(np.array(v.array)).cuda()) for k, v in s.items()})
    r = medaug.tta(threshold, on_gpu, Compose([RandomAffine(rotation=8)], backend="torch"), n=3, seed=0)
    assert r.mean.is_cuda and r.uncertainty.is_cuda
    ref = medaug.tta(threshold, s, Compose([RandomAffine(rotation=8)]), n=3, seed=0, backend="torch")
    np.testing.assert_allclose(r.mean.cpu().numpy(), ref.mean, atol=1e-4)


def test_bad_arguments_are_named():
    s = medaug.shepp_logan_2d(32)
    p = Compose([Flip(axes=["LR"]), Affine(rotation=3.0)])
    with pytest.raises(ParameterError, match="shape"):
        medaug.tta(lambda x: np.zeros((5, 5)), s, p, n=2, seed=0)
    with pytest.raises(ParameterError, match="'n'"):
        medaug.tta(threshold, s, p, n=0)
    with pytest.raises(ParameterError, match="intensity image"):
        medaug.tta(threshold, s, p, image="label")
    with pytest.raises(ParameterError, match="entropy"):
        medaug.tta(lambda x: x, s, p, n=2, seed=0, uncertainty="entropy")
