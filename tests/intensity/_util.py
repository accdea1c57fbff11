"""Checks shared by the intensity tests: config round trip, replay, fusion."""

from __future__ import annotations

import numpy as np

from medaug import Sample, pipeline_from_config, replay
from medaug.engine.execute import execute
from medaug.engine.record import applied
from medaug.spatial import Affine


def assert_untouched_geometry_and_labels(out: Sample, ref: Sample) -> None:
    """Label maps identical, every image on the same grid, points unchanged."""
    for name, img in ref.items():
        assert out[name].grid.same_as(img.grid)
        assert out[name].shape == img.shape
    for name, lab in ref.label_maps.items():
        assert out[name].is_label
        np.testing.assert_array_equal(out[name].array, lab.array)
    for k, v in ref.points.items():
        np.testing.assert_array_equal(out.points[k], v)


def check_random_config(cfg: dict, sample: Sample, seed: int = 3) -> Sample:
    """Build from config, apply twice with one seed (same output), replay the history (same arrays)."""
    pipeline = pipeline_from_config([cfg])
    out = pipeline(sample, seed=seed)
    again = pipeline(sample, seed=seed)
    assert out.history, f"{cfg} applied nothing"
    replayed = replay(out.history)(sample)
    for name in sample:
        np.testing.assert_array_equal(out[name].array, again[name].array)
        np.testing.assert_array_equal(out[name].array, replayed[name].array)
    assert applied(replayed.history) == applied(out.history)
    assert_untouched_geometry_and_labels(out, sample)
    return out


def check_fused_equals_stepwise(sample: Sample, transform, rotation: float = 5.0, atol: float = 1e-2) -> None:
    """``[Affine, transform]`` fused in one sweep equals applying them one after the other."""
    assert transform.fused_ops(sample.grid), f"{type(transform).__name__} should be fusable"
    a = Affine(rotation=rotation)
    fused = execute(sample, [a, transform])
    stepwise = execute(execute(sample, [a]), [transform])
    for name in sample.intensity_images:
        np.testing.assert_allclose(fused[name].array, stepwise[name].array, rtol=1e-5, atol=atol)
    for name in sample.label_maps:
        np.testing.assert_array_equal(fused[name].array, stepwise[name].array)
    assert fused.history == stepwise.history


def check_tensor_input(sample: Sample, transforms: list) -> None:
    """Images held as torch tensors (as on a GPU) give the same values as NumPy images, and stay tensors."""
    import torch

    as_tensors = sample.replace({k: v.with_data(torch.from_numpy(np.array(v.array))) for k, v in sample.items()})
    a = execute(sample, transforms)
    b = execute(as_tensors, transforms)
    for name in sample.intensity_images:
        assert isinstance(b[name].data, torch.Tensor)
        np.testing.assert_allclose(b[name].array, a[name].array, rtol=1e-5, atol=1e-3)
    for name in sample.label_maps:
        np.testing.assert_array_equal(b[name].array, sample[name].array)
